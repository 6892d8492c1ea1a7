// Factories of the oneDNN-backed CPU kernels (registered in register_onednn.cc).
#pragma once

#include <memory>

#include "gpuhive/kernel.h"

namespace gpuhive::cpu::onednn {

using Factory = StatusOr<std::unique_ptr<Kernel>>(const ir::Node& node);

Factory MakeConv;           // Conv, gpuhive.FusedConv
Factory MakeConvTranspose;  // ConvTranspose
Factory MakeQLinearConv;    // QLinearConv, gpuhive.QConv (qconv.cc)
Factory MakeConvInteger;    // ConvInteger
Factory MakeQMatMul;        // gpuhive.QMatMul (qmatmul.cc)
Factory MakeMatMul;         // MatMul, gpuhive.FusedMatMul
Factory MakeGemm;           // Gemm, gpuhive.FusedGemm
Factory MakeMaxPool;
Factory MakeAveragePool;
Factory MakeLpPool;
Factory MakeGlobalAveragePool;
Factory MakeGlobalMaxPool;
Factory MakeGlobalLpPool;
Factory MakeBatchNormalization;
Factory MakeInstanceNormalization;
Factory MakeLayerNormalization;
Factory MakeLrn;
Factory MakePRelu;
Factory MakeElementwise;  // gpuhive.Elementwise
Factory MakeReorder;      // gpuhive.Reorder
Factory MakeLstm;
Factory MakeGru;
Factory MakeRnn;
Factory MakeAttention;  // gpuhive.Attention

}  // namespace gpuhive::cpu::onednn
