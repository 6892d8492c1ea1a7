// Helpers for the shape / indexing / data-movement kernel tests.
#pragma once

#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "support/kernel_harness.h"

namespace gpuhive::testing::tensor_ops {

inline NodeSpec Node(std::string op, int opset = 17, std::map<std::string, ir::Attribute> attrs = {},
                     int num_outputs = 1) {
  NodeSpec s;
  s.op_type = std::move(op);
  s.opset = opset;
  s.attrs = std::move(attrs);
  s.num_outputs = num_outputs;
  return s;
}

template <typename T>
Tensor Make(DataType dt, const Shape& shape, const std::vector<T>& v) {
  EXPECT_EQ(static_cast<int64_t>(v.size()), NumElements(shape));
  return MakeTensor(dt, shape, v.data());
}
inline Tensor F(const Shape& s, const std::vector<float>& v) { return MakeFloat(s, v); }
inline Tensor I64(const Shape& s, const std::vector<int64_t>& v) { return MakeInt64(s, v); }
inline Tensor I32(const Shape& s, const std::vector<int32_t>& v) { return Make(DataType::kInt32, s, v); }
inline Tensor B(const Shape& s, const std::vector<uint8_t>& v) { return Make(DataType::kBool, s, v); }

// 0, 1, 2, ... as float.
inline Tensor Iota(const Shape& s, float start = 0) {
  std::vector<float> v(static_cast<size_t>(NumElements(s)));
  std::iota(v.begin(), v.end(), start);
  return F(s, v);
}

// Runs the node and returns output 0 (or an empty tensor after a gtest failure).
inline Tensor Run1(const NodeSpec& spec, const std::vector<const Tensor*>& in, RunOptions opts = {}) {
  auto r = RunNode(spec, in, opts);
  if (!r.ok()) {
    ADD_FAILURE() << spec.op_type << ": " << r.status().ToString();
    return Tensor();
  }
  return std::move((*r)[0]);
}

// All input slots from `from` on are visible at prepare time.
inline RunOptions ConstFrom(int from, int count = 8, int threads = 1) {
  RunOptions o;
  for (int i = from; i < from + count; ++i) o.constant_inputs.push_back(i);
  o.num_threads = threads;
  return o;
}

inline std::vector<float> Floats(const Tensor& t) {
  auto d = ToDoubles(t);
  return std::vector<float>(d.begin(), d.end());
}
inline std::vector<int64_t> Ints(const Tensor& t) {
  auto d = ToDoubles(t);
  return std::vector<int64_t>(d.begin(), d.end());
}

// Multi-index helpers for naive references.
inline std::vector<int64_t> Unravel(int64_t i, const Shape& s) {
  std::vector<int64_t> c(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    c[d] = i % s[d];
    i /= s[d];
  }
  return c;
}
inline int64_t Ravel(const std::vector<int64_t>& c, const Shape& s) {
  int64_t i = 0;
  for (size_t d = 0; d < s.size(); ++d) i = i * s[d] + c[d];
  return i;
}

}  // namespace gpuhive::testing::tensor_ops
