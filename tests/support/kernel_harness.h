// Test harness for single CPU kernels (ONNX Runtime's OpTester idea): builds a one-node graph,
// prepares the kernel from the CPU registry and runs it on plain host tensors.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gpuhive/ir.h"
#include "gpuhive/kernel.h"
#include "gpuhive/tensor.h"

#include <gtest/gtest.h>

namespace gpuhive::testing {

struct NodeSpec {
  std::string op_type;
  std::string domain;  // "" = ONNX default domain
  int opset = 17;
  std::map<std::string, ir::Attribute> attrs;
  int num_outputs = 1;
};

struct RunOptions {
  // Inputs whose values the kernel may read while preparing (like initializers). Others are
  // hidden at prepare time; a kernel that returns DataDependentShape is prepared again with every
  // value visible, as the runtime does.
  std::vector<int> constant_inputs;
  int num_threads = 1;
  // When set, receives the prepared kernel's Kernel::implementation().
  std::string* implementation = nullptr;
  // KernelOptions::bf16_compute (the caller checks CpuHasBf16Compute()).
  bool bf16_compute = false;
};

// Runs the node. `inputs[i] == nullptr` means the optional input i is omitted.
StatusOr<std::vector<Tensor>> RunNode(const NodeSpec& spec, const std::vector<const Tensor*>& inputs,
                                      const RunOptions& options = {});

// Attribute helpers for NodeSpec::attrs.
inline ir::Attribute AttrInt(int64_t v) { return ir::Attribute(v); }
inline ir::Attribute AttrFloat(float v) { return ir::Attribute(v); }
inline ir::Attribute AttrString(std::string v) { return ir::Attribute(std::move(v)); }
inline ir::Attribute AttrInts(std::vector<int64_t> v) { return ir::Attribute(std::move(v)); }
inline ir::Attribute AttrFloats(std::vector<float> v) { return ir::Attribute(std::move(v)); }
inline ir::Attribute AttrStrings(std::vector<std::string> v) { return ir::Attribute(std::move(v)); }

// Tensor builders (abort the test on failure via gtest's ADD_FAILURE and return an empty tensor).
Tensor MakeFloat(const Shape& shape, const std::vector<float>& values);
Tensor MakeInt64(const Shape& shape, const std::vector<int64_t>& values);
Tensor MakeTensor(DataType dtype, const Shape& shape, const void* data);
// Deterministic pseudo-random floats in [lo, hi).
Tensor RandomFloat(const Shape& shape, uint32_t seed, float lo = -1.f, float hi = 1.f);

// Values as doubles for comparisons, whatever the dtype.
std::vector<double> ToDoubles(const Tensor& t);

// ||got - want|| / ||want|| over float32 values (the same element count; 0 when want is all zeros
// and got equals it).
double RelativeL2(const Tensor& got, const Tensor& want);

// gtest assertion helper: same dtype and shape, and |a-b| <= atol + rtol*|b| elementwise.
::testing::AssertionResult TensorNear(const Tensor& actual, const Tensor& expected,
                                      double atol = 1e-5, double rtol = 1e-5);

}  // namespace gpuhive::testing
