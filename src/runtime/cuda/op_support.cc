// Which operators the CUDA executor runs (include/gpuhive/cuda_executor.h). No CUDA header: the
// support check runs in every build so callers can decide on the CPU fallback without a device.
#include <set>
#include <string>

#include "gpuhive/cuda_executor.h"

namespace gpuhive::cuda {
namespace {

const std::set<std::string>& DeviceOps() {
  static const auto* ops = new std::set<std::string>{
      "Conv", "ConvTranspose", "LSTM", "GRU", "MatMul", "Gemm", "Softmax", "LogSoftmax", "LayerNormalization", "ReduceSum", "ReduceMean",
      "ReduceMax", "ReduceMin", "GlobalAveragePool", "GlobalMaxPool", "MaxPool", "AveragePool", "Transpose",
      "Slice", "Concat", "Gather", "Resize", "Expand", "Split", "Pad", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout",
      "Cast", "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Abs", "Neg", "HardSwish", "LeakyRelu", "Elu",
      "HardSigmoid", "Clip", "Add", "Sub", "Mul", "Div", "Max", "Min", "Erf", "Pow", "Equal", "Less", "Greater",
      "Not", "Where",
      // Evaluated on the host while planning (their inputs are shapes or constants).
      "Shape", "Size", "Constant", "ConstantOfShape", "Range"};
  return *ops;
}

void Collect(const ir::Graph& graph, std::set<std::string>* missing) {
  for (const auto& node : graph.nodes()) {
    if (!CudaSupportsOp(node->domain, node->op_type)) {
      missing->insert(node->domain.empty() ? node->op_type : node->domain + "." + node->op_type);
    }
    for (const auto& [name, attr] : node->attrs) {
      if (const auto* sub = attr.get_if<std::shared_ptr<ir::Graph>>(); sub != nullptr && *sub != nullptr) {
        Collect(**sub, missing);
      }
    }
  }
}

}  // namespace

bool CudaSupportsOp(const std::string& domain, const std::string& op_type) {
  if (domain == "gpuhive") {
    return op_type == "FusedConv" || op_type == "FusedMatMul" || op_type == "FusedGemm" || op_type == "Elementwise";
  }
  if (!domain.empty() && domain != "ai.onnx") return false;
  return DeviceOps().count(op_type) != 0;
}

Status CheckCudaSupport(const ir::Graph& graph) {
  std::set<std::string> missing;
  Collect(graph, &missing);
  if (missing.empty()) return Status::OK();
  std::string list;
  for (const std::string& m : missing) list += (list.empty() ? "" : ", ") + m;
  return Unimplemented("the CUDA executor lacks operator(s): {}", list);
}

}  // namespace gpuhive::cuda
