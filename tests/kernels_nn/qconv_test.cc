// Quantized convolutions (qconv.cc): QLinearConv, ConvInteger and gpuhive.QConv against their ONNX
// definitions computed in float from the dequantized operands, and on oneDNN's int8 kernels (not its
// reference implementation), at both ISA levels the suite runs at (kernels_nn_test and _avx2).
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/onednn/common.h"
#include "kernels_nn/blocked_harness.h"
#include "kernels_nn/reference.h"

namespace gpuhive::testing {
namespace {

template <typename T>
Tensor Ints(const Shape& shape, int lo, int hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<T> v(static_cast<size_t>(NumElements(shape)));
  for (T& e : v) e = static_cast<T>(dist(rng));
  DataType t = std::is_same_v<T, uint8_t> ? DataType::kUint8 : std::is_same_v<T, int8_t> ? DataType::kInt8 : DataType::kInt32;
  return *Tensor::FromVector(t, shape, v);
}

Tensor Floats(const Shape& shape, std::vector<float> v) { return *Tensor::FromVector(DataType::kFloat32, shape, v); }

// Element i of an integer tensor as float.
float At(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DataType::kUint8: return t.as<uint8_t>()[i];
    case DataType::kInt8: return t.as<int8_t>()[i];
    case DataType::kInt32: return static_cast<float>(t.as<int32_t>()[i]);
    default: return t.as<float>()[i];
  }
}

// (q - zero) * scale per element; scale/zero per output channel along axis 0 when they have m values.
Tensor Dequantize(const Tensor& q, const std::vector<float>& scale, const std::vector<int>& zero) {
  Tensor f = *Tensor::Allocate(DataType::kFloat32, q.shape());
  const int64_t n = q.num_elements();
  const int64_t per = scale.size() > 1 ? n / static_cast<int64_t>(scale.size()) : n;
  for (int64_t i = 0; i < n; ++i) {
    const size_t c = scale.size() > 1 ? static_cast<size_t>(i / per) : 0;
    f.as<float>()[i] = (At(q, i) - static_cast<float>(zero[zero.size() > 1 ? c : 0])) * scale[c];
  }
  return f;
}

struct Expect {
  int64_t max_diff = 0;     // largest |got - want| in the output's own units
  double exact_share = 0;   // share of elements equal
};

// Compares an integer output with the float reference `want` quantized by (scale, zero) of type t.
Expect CompareQuantized(const Tensor& got, const Tensor& want, float scale, int zero, DataType t) {
  const float lo = t == DataType::kUint8 ? 0.f : -128.f, hi = t == DataType::kUint8 ? 255.f : 127.f;
  Expect e;
  int64_t equal = 0;
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    const float q = std::min(hi, std::max(lo, std::nearbyint(want.as<float>()[i] / scale) + zero));
    const auto d = static_cast<int64_t>(std::fabs(At(got, i) - q));
    e.max_diff = std::max(e.max_diff, d);
    equal += d == 0;
  }
  e.exact_share = static_cast<double>(equal) / static_cast<double>(want.num_elements());
  return e;
}

bool IsReference(const std::string& impl) { return impl.find("ref") != std::string::npos; }

TEST(QLinearConv, PerChannelUint8MatchesTheDefinitionOnInt8Kernels) {
  const Shape xs{2, 16, 9, 9}, wsh{24, 16, 3, 3};
  Tensor x = Ints<uint8_t>(xs, 0, 255, 1);
  Tensor w = Ints<int8_t>(wsh, -127, 127, 2);
  std::vector<float> w_scale(24);
  for (int c = 0; c < 24; ++c) w_scale[c] = 0.002f + 0.0005f * c;
  Tensor b = Ints<int32_t>({24}, -3000, 3000, 3);
  const float x_scale = 0.02f, y_scale = 0.5f;
  const int x_zero = 120, y_zero = 100;
  Tensor xsc = Floats({}, {x_scale}), ysc = Floats({}, {y_scale}), wsc = Floats({24}, w_scale);
  Tensor xz = *Tensor::FromVector(DataType::kUint8, {}, std::vector<uint8_t>{x_zero});
  Tensor yz = *Tensor::FromVector(DataType::kUint8, {}, std::vector<uint8_t>{y_zero});
  Tensor wz = *Tensor::FromVector(DataType::kInt8, {24}, std::vector<int8_t>(24, 0));

  NodeSpec spec{"QLinearConv", "", 10, {}};
  spec.attrs["pads"] = AttrInts({1, 0, 1, 2});
  spec.attrs["strides"] = AttrInts({2, 1});
  std::string impl;
  RunOptions opts;
  opts.constant_inputs = {1, 2, 3, 4, 5, 6, 7, 8};
  opts.num_threads = 2;
  opts.implementation = &impl;
  auto out = RunNode(spec, {&x, &xsc, &xz, &w, &wsc, &wz, &ysc, &yz, &b}, opts);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_FALSE(IsReference(impl)) << impl;

  std::vector<float> bias_scale(24);
  for (int c = 0; c < 24; ++c) bias_scale[c] = x_scale * w_scale[c];
  Tensor bf = Dequantize(b, bias_scale, {0});
  ref::ConvParams p{{2, 1}, {1, 1}, {1, 0}, {1, 2}, 1};
  Tensor want = ref::Conv(Dequantize(x, {x_scale}, {x_zero}), Dequantize(w, w_scale, {0}), &bf, p);
  ASSERT_EQ((*out)[0].shape(), want.shape());
  ASSERT_EQ((*out)[0].dtype(), DataType::kUint8);
  Expect e = CompareQuantized((*out)[0], want, y_scale, y_zero, DataType::kUint8);
  EXPECT_LE(e.max_diff, 1);
  EXPECT_GE(e.exact_share, 0.99);
}

TEST(QLinearConv, Int8ActivationsDepthwiseAndUint8WeightsWithTheirZeroPoint) {
  const Shape xs{1, 32, 7, 7}, wsh{32, 1, 3, 3};
  Tensor x = Ints<int8_t>(xs, -128, 127, 4);
  Tensor w = Ints<uint8_t>(wsh, 0, 255, 5);  // zero point 128: W - 128 is int8
  Tensor xsc = Floats({}, {0.05f}), wsc = Floats({}, {0.01f}), ysc = Floats({}, {0.25f});
  Tensor xz = *Tensor::FromVector(DataType::kInt8, {}, std::vector<int8_t>{0});
  Tensor yz = *Tensor::FromVector(DataType::kInt8, {}, std::vector<int8_t>{-5});
  Tensor wz = *Tensor::FromVector(DataType::kUint8, {}, std::vector<uint8_t>{128});
  NodeSpec spec{"QLinearConv", "", 10, {}};
  spec.attrs["group"] = AttrInt(32);
  spec.attrs["pads"] = AttrInts({1, 1, 1, 1});
  std::string impl;
  RunOptions opts;
  opts.constant_inputs = {1, 2, 3, 4, 5, 6, 7};
  opts.implementation = &impl;
  auto out = RunNode(spec, {&x, &xsc, &xz, &w, &wsc, &wz, &ysc, &yz}, opts);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_FALSE(IsReference(impl)) << impl;
  ref::ConvParams p{{1, 1}, {1, 1}, {1, 1}, {1, 1}, 32};
  Tensor want = ref::Conv(Dequantize(x, {0.05f}, {0}), Dequantize(w, {0.01f}, {128}), nullptr, p);
  ASSERT_EQ((*out)[0].dtype(), DataType::kInt8);
  Expect e = CompareQuantized((*out)[0], want, 0.25f, -5, DataType::kInt8);
  EXPECT_LE(e.max_diff, 1);
  EXPECT_GE(e.exact_share, 0.99);
}

TEST(QLinearConv, WeightsBeyondInt8AfterTheirZeroPointRunDequantized) {
  Tensor x = Ints<uint8_t>({1, 4, 5, 5}, 0, 255, 6);
  Tensor w = Ints<uint8_t>({4, 4, 3, 3}, 0, 255, 7);  // minus 5: up to 250, beyond int8
  Tensor xs = Floats({}, {0.02f}), ws = Floats({}, {0.01f}), ys = Floats({}, {0.5f});
  Tensor xz = *Tensor::FromVector(DataType::kUint8, {}, std::vector<uint8_t>{9});
  Tensor wz = *Tensor::FromVector(DataType::kUint8, {}, std::vector<uint8_t>{5});
  Tensor yz = *Tensor::FromVector(DataType::kUint8, {}, std::vector<uint8_t>{3});
  NodeSpec spec{"QLinearConv", "", 10, {}};
  std::string impl;
  RunOptions opts;
  opts.constant_inputs = {1, 2, 3, 4, 5, 6, 7};
  opts.implementation = &impl;
  auto out = RunNode(spec, {&x, &xs, &xz, &w, &ws, &wz, &ys, &yz}, opts);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(impl.rfind("dequantized:", 0), 0u) << impl;
  ref::ConvParams p{{1, 1}, {1, 1}, {0, 0}, {0, 0}, 1};
  Tensor want = ref::Conv(Dequantize(x, {0.02f}, {9}), Dequantize(w, {0.01f}, {5}), nullptr, p);
  Expect e = CompareQuantized((*out)[0], want, 0.5f, 3, DataType::kUint8);
  EXPECT_LE(e.max_diff, 1);
  EXPECT_GE(e.exact_share, 0.95);

  // A scale that is not a constant cannot become part of the primitive: refused, not miscomputed.
  opts.constant_inputs = {2, 3, 4, 5, 6, 7};
  out = RunNode(spec, {&x, &xs, &xz, &w, &ws, &wz, &ys, &yz}, opts);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().ToString().find("x_scale must be a constant"), std::string::npos) << out.status().ToString();
}

TEST(ConvInteger, ExactInt32WithAConstantOrARunTimeZeroPoint) {
  const Shape xs{1, 8, 6, 6}, wsh{5, 8, 3, 3};
  Tensor x = Ints<uint8_t>(xs, 0, 255, 8);
  Tensor w = Ints<int8_t>(wsh, -128, 127, 9);
  Tensor xz = *Tensor::FromVector(DataType::kUint8, {}, std::vector<uint8_t>{77});
  ref::ConvParams p{{1, 1}, {1, 1}, {1, 1}, {1, 1}, 1};
  Tensor want = ref::Conv(Dequantize(x, {1.f}, {77}), Dequantize(w, {1.f}, {0}), nullptr, p);  // exact: |sum| < 2^24
  NodeSpec spec{"ConvInteger", "", 10, {}};
  spec.attrs["pads"] = AttrInts({1, 1, 1, 1});
  for (bool runtime_zero : {false, true}) {
    SCOPED_TRACE(runtime_zero ? "zero point computed at run time" : "constant zero point");
    std::string impl;
    RunOptions opts;
    opts.constant_inputs = runtime_zero ? std::vector<int>{1} : std::vector<int>{1, 2};
    opts.implementation = &impl;
    auto out = RunNode(spec, {&x, &w, &xz}, opts);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_FALSE(IsReference(impl)) << impl;
    ASSERT_EQ((*out)[0].dtype(), DataType::kInt32);
    ASSERT_EQ((*out)[0].shape(), want.shape());
    int64_t wrong = 0;
    for (int64_t i = 0; i < want.num_elements(); ++i) wrong += (*out)[0].as<int32_t>()[i] != static_cast<int32_t>(want.as<float>()[i]);
    EXPECT_EQ(wrong, 0);
  }
}

TEST(QConv, FloatOutputWithFloatBiasAndRelu) {
  const Shape xs{1, 16, 8, 8}, wsh{16, 16, 1, 1};
  Tensor x = Ints<uint8_t>(xs, 0, 255, 10);
  Tensor w = Ints<int8_t>(wsh, -127, 127, 11);
  std::vector<float> bias(16);
  for (int c = 0; c < 16; ++c) bias[c] = -2.f + 0.25f * c;
  Tensor b = Floats({16}, bias);
  Tensor xsc = Floats({}, {0.01f}), wsc = Floats({}, {0.004f});
  Tensor xz = *Tensor::FromVector(DataType::kUint8, {}, std::vector<uint8_t>{128});
  NodeSpec spec{"QConv", "gpuhive", 1, {}};
  spec.attrs["relu"] = AttrInt(1);
  RunOptions opts;
  opts.constant_inputs = {1, 2, 3, 4, 8};
  auto out = RunNode(spec, {&x, &xsc, &xz, &w, &wsc, nullptr, nullptr, nullptr, &b}, opts);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ref::ConvParams p{{1, 1}, {1, 1}, {0, 0}, {0, 0}, 1};
  Tensor want = ref::Conv(Dequantize(x, {0.01f}, {128}), Dequantize(w, {0.004f}, {0}), &b, p);
  for (int64_t i = 0; i < want.num_elements(); ++i) want.as<float>()[i] = std::max(0.f, want.as<float>()[i]);
  ASSERT_EQ((*out)[0].dtype(), DataType::kFloat32);
  EXPECT_TRUE(TensorNear((*out)[0], want, 1e-4, 1e-4));
}

// Which path ran is deterministic: the int8 kernels wherever they are exact (VNNI, or weights within
// 7 bits), the dequantized float32 path otherwise; both match the definition.
TEST(ConvInteger, TheInt8KernelsRunWhereverTheyAreExact) {
  Tensor x = Ints<uint8_t>({1, 32, 6, 6}, 0, 255, 12);
  Tensor xz = *Tensor::FromVector(DataType::kUint8, {}, std::vector<uint8_t>{3});
  ref::ConvParams p{{1, 1}, {1, 1}, {0, 0}, {0, 0}, 1};
  for (int bits : {7, 8}) {
    SCOPED_TRACE(bits);
    Tensor w = bits == 7 ? Ints<int8_t>({8, 32, 3, 3}, -64, 63, 13) : Ints<int8_t>({8, 32, 3, 3}, -128, 127, 13);
    std::string impl;
    RunOptions opts;
    opts.constant_inputs = {1, 2};
    opts.implementation = &impl;
    auto out = RunNode(NodeSpec{"ConvInteger", "", 10, {}}, {&x, &w, &xz}, opts);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    const bool exact_int8 = bits == 7 || cpu::onednn::HasInt8DotProduct();
    EXPECT_EQ(impl.rfind("dequantized:", 0) == 0, !exact_int8) << impl;
    EXPECT_FALSE(IsReference(impl)) << impl;
    Tensor want = ref::Conv(Dequantize(x, {1.f}, {3}), Dequantize(w, {1.f}, {0}), nullptr, p);
    int64_t wrong = 0;
    for (int64_t i = 0; i < want.num_elements(); ++i) wrong += (*out)[0].as<int32_t>()[i] != static_cast<int32_t>(want.as<float>()[i]);
    EXPECT_EQ(wrong, 0);
  }
}

}  // namespace
}  // namespace gpuhive::testing
