// Internal to the CUDA executor: turning one prepared node into a device step.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "gpuhive/cuda_kernels.h"
#include "gpuhive/device.h"
#include "gpuhive/ir.h"
#include "gpuhive/tensor.h"

namespace gpuhive::cuda::executor {

// A value as a step sees it: dtype and shape fixed by the plan, device storage, and its host value
// when it was known while planning (constants, Shape results).
struct PlannedValue {
  DataType dtype = DataType::kUndefined;
  Shape shape;
  void* device = nullptr;        // set for values that live on the device
  const Tensor* host = nullptr;  // set for values known while planning
};

// One device step: enqueues its work on `stream`; `workspace` holds at least the bytes the step
// asked for. Must not synchronize (it may be captured into a CUDA graph).
using StepFn = std::function<Status(StreamView stream, void* workspace)>;

struct BuiltStep {
  StepFn run;
  size_t workspace_bytes = 0;
};

class StepInputs {
 public:
  virtual ~StepInputs() = default;
  virtual const ir::Node& node() const = 0;
  virtual size_t num_inputs() const = 0;
  // Null for an omitted optional input.
  virtual const PlannedValue* input(size_t i) const = 0;
  // Device pointer of input i, uploading its host value first when it has no device copy yet.
  virtual StatusOr<const void*> DeviceInput(size_t i) = 0;
  // A device copy of input i converted to `dtype` (kFloat16 or kBFloat16), made once and shared by
  // every plan, when input i is a float32 graph constant; kNotFound otherwise (the caller then
  // converts DeviceInput(i) on every run).
  virtual StatusOr<const void*> DeviceConstant16(size_t i, DataType dtype) = 0;
  virtual size_t num_outputs() const = 0;
  virtual PlannedValue* output(size_t i) const = 0;  // null for an omitted output
  // True when some node or the graph uses output i.
  virtual bool output_used(size_t i) const = 0;
  virtual MathMode math() const = 0;
  virtual MatmulRunner& matmul() = 0;
  // The convolution runner for `desc`: the executor asks cuDNN; a plan preview without a device
  // answers from the descriptor alone (ConvOutputSize).
  virtual StatusOr<std::shared_ptr<ConvRunner>> conv(const ConvDesc& desc) = 0;
  virtual size_t max_workspace_bytes() const = 0;
  virtual int* error_flag() const = 0;  // device int, reset before each run
};

// Builds the step of a node whose outputs the executor already placed. kUnimplemented for
// attribute combinations the device path lacks.
StatusOr<BuiltStep> BuildStep(StepInputs& in);

// Operators whose output 0 is input 0's bytes reinterpreted (no device work).
bool IsAliasOp(const ir::Node& node);

}  // namespace gpuhive::cuda::executor
