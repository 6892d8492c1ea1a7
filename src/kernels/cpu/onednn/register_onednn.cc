#include "kernels/cpu/onednn/kernels.h"
#include "kernels/cpu/register.h"

namespace gpuhive::cpu {

void RegisterOnednnKernels(KernelRegistry& registry) {
  using namespace onednn;  // NOLINT
  registry.Register("", "Conv", MakeConv);
  registry.Register("gpuhive", "FusedConv", MakeConv);
  registry.Register("", "ConvTranspose", MakeConvTranspose);
  registry.Register("", "QLinearConv", MakeQLinearConv);
  registry.Register("gpuhive", "QConv", MakeQLinearConv);
  registry.Register("", "ConvInteger", MakeConvInteger);
  registry.Register("gpuhive", "QMatMul", MakeQMatMul);
  registry.Register("gpuhive", "Elementwise", MakeElementwise);
  registry.Register("gpuhive", "Reorder", MakeReorder);
  registry.Register("", "MatMul", MakeMatMul);
  registry.Register("gpuhive", "FusedMatMul", MakeMatMul);
  registry.Register("", "Gemm", MakeGemm);
  registry.Register("gpuhive", "FusedGemm", MakeGemm);
  registry.Register("", "MaxPool", MakeMaxPool);
  registry.Register("", "AveragePool", MakeAveragePool);
  registry.Register("", "LpPool", MakeLpPool);
  registry.Register("", "GlobalAveragePool", MakeGlobalAveragePool);
  registry.Register("", "GlobalMaxPool", MakeGlobalMaxPool);
  registry.Register("", "GlobalLpPool", MakeGlobalLpPool);
  registry.Register("", "BatchNormalization", MakeBatchNormalization);
  registry.Register("", "InstanceNormalization", MakeInstanceNormalization);
  registry.Register("", "LayerNormalization", MakeLayerNormalization);
  registry.Register("", "LRN", MakeLrn);
  registry.Register("", "PRelu", MakePRelu);
  registry.Register("", "LSTM", MakeLstm);
  registry.Register("", "GRU", MakeGru);
  registry.Register("", "RNN", MakeRnn);
  registry.Register("gpuhive", "Attention", MakeAttention);
}

}  // namespace gpuhive::cpu
