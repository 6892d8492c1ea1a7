// Helpers for the math kernel tests: typed tensor builders and an independent numpy-broadcast
// reference (plain per-element index arithmetic, not the kernels' broadcast plans).
#pragma once

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "kernels/cpu/loops/common.h"
#include "support/kernel_harness.h"

namespace gpuhive::testing::math {

// A tensor of `dtype` holding `values` converted from double (16-bit floats round to nearest).
inline Tensor Make(DataType dtype, const Shape& shape, const std::vector<double>& values) {
  EXPECT_EQ(static_cast<int64_t>(values.size()), NumElements(shape));
  auto t = Tensor::Allocate(dtype, shape);
  EXPECT_TRUE(t.ok());
  Tensor out = std::move(t).value();
  Status st = cpu::loops::VisitAll(dtype, "test", [&](auto tag) -> Status {
    using T = typename decltype(tag)::type;
    T* p = out.as<T>();
    for (size_t i = 0; i < values.size(); ++i) {
      if constexpr (cpu::loops::kIsHalf<T>) p[i] = T(static_cast<float>(values[i]));
      else p[i] = static_cast<T>(values[i]);
    }
    return Status::OK();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

inline std::vector<double> Random(int64_t n, uint32_t seed, double lo, double hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = d(rng);
  return v;
}

inline std::vector<double> RandomInts(int64_t n, uint32_t seed, int lo, int hi) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = d(rng);
  return v;
}

// Numpy broadcast of shapes, computed independently of the kernels' helper.
inline Shape RefBroadcast(const std::vector<Shape>& shapes) {
  size_t rank = 0;
  for (const auto& s : shapes) rank = std::max(rank, s.size());
  Shape out(rank, 1);
  for (const auto& s : shapes) {
    for (size_t i = 0; i < s.size(); ++i) {
      int64_t& o = out[rank - s.size() + i];
      if (s[i] != 1) o = s[i];
    }
  }
  return out;
}

// Index into an operand of shape `s` for output multi-index `idx` (rank of out).
inline int64_t RefIndex(const Shape& s, const std::vector<int64_t>& idx) {
  int64_t off = 0;
  const size_t lead = idx.size() - s.size();
  for (size_t i = 0; i < s.size(); ++i) off = off * s[i] + (s[i] == 1 ? 0 : idx[lead + i]);
  return off;
}

// Elementwise reference over broadcast operands: f(values at the element) -> double.
inline std::vector<double> RefBroadcastMap(const std::vector<Shape>& shapes,
                                           const std::vector<std::vector<double>>& vals,
                                           const std::function<double(const std::vector<double>&)>& f) {
  Shape out = RefBroadcast(shapes);
  std::vector<double> res(static_cast<size_t>(NumElements(out)));
  std::vector<int64_t> idx(out.size(), 0);
  std::vector<double> args(shapes.size());
  for (size_t e = 0; e < res.size(); ++e) {
    int64_t rem = static_cast<int64_t>(e);
    for (int64_t d = static_cast<int64_t>(out.size()) - 1; d >= 0; --d) {
      idx[d] = rem % out[d];
      rem /= out[d];
    }
    for (size_t k = 0; k < shapes.size(); ++k) args[k] = vals[k][RefIndex(shapes[k], idx)];
    res[e] = f(args);
  }
  return res;
}

inline NodeSpec Node(const std::string& op, int opset = 17,
                     std::map<std::string, ir::Attribute> attrs = {}, int num_outputs = 1) {
  NodeSpec s;
  s.op_type = op;
  s.opset = opset;
  s.attrs = std::move(attrs);
  s.num_outputs = num_outputs;
  return s;
}

// Runs a single-output node and returns the output (fails the test on error).
inline Tensor Run1(const NodeSpec& spec, const std::vector<const Tensor*>& inputs,
                   const RunOptions& opts = {}) {
  auto r = RunNode(spec, inputs, opts);
  EXPECT_TRUE(r.ok()) << spec.op_type << ": " << r.status().ToString();
  if (!r.ok() || r->empty()) return Tensor();
  return std::move((*r)[0]);
}

inline StatusCode RunCode(const NodeSpec& spec, const std::vector<const Tensor*>& inputs,
                          const RunOptions& opts = {}) {
  return RunNode(spec, inputs, opts).status().code();
}

}  // namespace gpuhive::testing::math
