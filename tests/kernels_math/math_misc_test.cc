// CumSum, TopK, quantization and Einsum.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "math_test_util.h"

namespace gpuhive::testing::math {
namespace {

TEST(MathCumSum, Variants) {
  Tensor x = Make(DataType::kFloat32, {2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor ax1 = MakeInt64({}, {1}), ax0 = Make(DataType::kInt32, {1}, {0});
  EXPECT_TRUE(TensorNear(Run1(Node("CumSum", 14), {&x, &ax1}), Make(DataType::kFloat32, {2, 3}, {1, 3, 6, 4, 9, 15})));
  EXPECT_TRUE(TensorNear(Run1(Node("CumSum", 14), {&x, &ax0}), Make(DataType::kFloat32, {2, 3}, {1, 2, 3, 5, 7, 9})));
  EXPECT_TRUE(TensorNear(Run1(Node("CumSum", 14, {{"exclusive", AttrInt(1)}}), {&x, &ax1}),
                         Make(DataType::kFloat32, {2, 3}, {0, 1, 3, 0, 4, 9})));
  EXPECT_TRUE(TensorNear(Run1(Node("CumSum", 14, {{"reverse", AttrInt(1)}}), {&x, &ax1}),
                         Make(DataType::kFloat32, {2, 3}, {6, 5, 3, 15, 11, 6})));
  EXPECT_TRUE(TensorNear(Run1(Node("CumSum", 14, {{"reverse", AttrInt(1)}, {"exclusive", AttrInt(1)}}), {&x, &ax1}),
                         Make(DataType::kFloat32, {2, 3}, {5, 3, 0, 11, 6, 0})));
  Tensor xi = Make(DataType::kInt64, {4}, {1, -2, 3, 10});
  Tensor neg = MakeInt64({}, {-1});
  EXPECT_TRUE(TensorNear(Run1(Node("CumSum", 14), {&xi, &neg}), Make(DataType::kInt64, {4}, {1, -1, 2, 12})));
  Tensor bad = MakeInt64({}, {2});
  EXPECT_EQ(RunCode(Node("CumSum", 14), {&x, &bad}), StatusCode::kInvalidArgument);
}

TEST(MathTopK, LargestSmallestAxes) {
  Tensor x = Make(DataType::kFloat32, {2, 5}, {3, 1, 4, 1, 5, 9, 2, 6, 5, 3});
  Tensor k = MakeInt64({1}, {3});
  RunOptions constant_k;
  constant_k.constant_inputs = {1};
  auto r = RunNode(Node("TopK", 11, {}, 2), {&x, &k}, constant_k);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(TensorNear((*r)[0], Make(DataType::kFloat32, {2, 3}, {5, 4, 3, 9, 6, 5})));
  EXPECT_TRUE(TensorNear((*r)[1], MakeInt64({2, 3}, {4, 2, 0, 0, 2, 3})));
  // Smallest, ties broken by the lower index; K not constant -> re-prepared with its value.
  r = RunNode(Node("TopK", 11, {{"largest", AttrInt(0)}}, 2), {&x, &k});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(TensorNear((*r)[0], Make(DataType::kFloat32, {2, 3}, {1, 1, 3, 2, 3, 5})));
  EXPECT_TRUE(TensorNear((*r)[1], MakeInt64({2, 3}, {1, 3, 0, 1, 4, 3})));
  // Axis 0, opset 1 with the k attribute.
  r = RunNode(Node("TopK", 1, {{"k", AttrInt(1)}, {"axis", AttrInt(0)}}, 2), {&x});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(TensorNear((*r)[0], Make(DataType::kFloat32, {1, 5}, {9, 2, 6, 5, 5})));
  EXPECT_TRUE(TensorNear((*r)[1], MakeInt64({1, 5}, {1, 1, 1, 1, 0})));
  Tensor big_k = MakeInt64({1}, {6});
  EXPECT_EQ(RunNode(Node("TopK", 11, {}, 2), {&x, &big_k}).status().code(), StatusCode::kInvalidArgument);
}

TEST(MathTopK, RandomAgainstSort) {
  const int64_t n = 1000;
  auto v = Random(n * 4, 77, -100, 100);
  Tensor x = Make(DataType::kFloat64, {4, n}, v);
  Tensor k = MakeInt64({1}, {10});
  auto r = RunNode(Node("TopK", 11, {}, 2), {&x, &k});
  ASSERT_TRUE(r.ok());
  for (int64_t row = 0; row < 4; ++row) {
    std::vector<double> s(v.begin() + row * n, v.begin() + (row + 1) * n);
    std::sort(s.begin(), s.end(), std::greater<>());
    for (int j = 0; j < 10; ++j) {
      EXPECT_EQ((*r)[0].as<double>()[row * 10 + j], s[j]);
      EXPECT_EQ(v[row * n + (*r)[1].as<int64_t>()[row * 10 + j]], s[j]);
    }
  }
}

TEST(MathQuant, QuantizeDequantizePerTensorAndPerAxis) {
  Tensor x = Make(DataType::kFloat32, {6}, {0, 2, 3, 1000, -254, -1000});
  Tensor scale = Make(DataType::kFloat32, {}, {2});
  Tensor zp = Make(DataType::kUint8, {}, {128});
  EXPECT_TRUE(TensorNear(Run1(Node("QuantizeLinear", 13), {&x, &scale, &zp}),
                         Make(DataType::kUint8, {6}, {128, 129, 130, 255, 1, 0})));
  Tensor zp8 = Make(DataType::kInt8, {}, {-1});
  EXPECT_TRUE(TensorNear(Run1(Node("QuantizeLinear", 13), {&x, &scale, &zp8}),
                         Make(DataType::kInt8, {6}, {-1, 0, 1, 127, -128, -128})));
  // No zero point: uint8 output.
  EXPECT_TRUE(TensorNear(Run1(Node("QuantizeLinear", 13), {&x, &scale}), Make(DataType::kUint8, {6}, {0, 1, 2, 255, 0, 0})));
  // Per axis (axis 1 of [2, 3]).
  Tensor x2 = Make(DataType::kFloat32, {2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor s2 = Make(DataType::kFloat32, {3}, {1, 2, 4});
  Tensor z2 = Make(DataType::kUint8, {3}, {0, 10, 20});
  EXPECT_TRUE(TensorNear(Run1(Node("QuantizeLinear", 13), {&x2, &s2, &z2}),
                         Make(DataType::kUint8, {2, 3}, {1, 11, 21, 4, 12, 22})));
  Tensor q = Make(DataType::kUint8, {2, 3}, {1, 11, 21, 4, 12, 22});
  EXPECT_TRUE(TensorNear(Run1(Node("DequantizeLinear", 13), {&q, &s2, &z2}),
                         Make(DataType::kFloat32, {2, 3}, {1, 2, 4, 4, 4, 8})));
  Tensor qi = Make(DataType::kInt32, {2}, {-3, 7});
  Tensor si = Make(DataType::kFloat32, {}, {0.5});
  EXPECT_TRUE(TensorNear(Run1(Node("DequantizeLinear", 13), {&qi, &si}), Make(DataType::kFloat32, {2}, {-1.5, 3.5})));
  Tensor sbad = Make(DataType::kFloat32, {4}, {1, 1, 1, 1});
  EXPECT_EQ(RunCode(Node("QuantizeLinear", 13), {&x2, &sbad}), StatusCode::kInvalidArgument);
}

// The vectorized float32 path (half to even, saturation, NaN -> 0) against the definition, over
// ties, both saturation ends, infinities and NaN, on a tensor large enough to run on two threads.
TEST(MathQuant, QuantizeLinearFastPathMatchesTheDefinition) {
  const int64_t n = 200000;
  std::vector<double> values(static_cast<size_t>(n));
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(-400.0, 400.0);
  for (int64_t i = 0; i < n; ++i) values[i] = i % 3 == 0 ? std::floor(u(rng)) + 0.5 : u(rng);  // a third are ties
  values[0] = std::numeric_limits<double>::infinity();
  values[1] = -std::numeric_limits<double>::infinity();
  values[2] = std::numeric_limits<double>::quiet_NaN();
  values[3] = 1e30;
  values[4] = -1e30;
  Tensor x = Make(DataType::kFloat32, {n}, values);
  for (DataType t : {DataType::kUint8, DataType::kInt8}) {
    SCOPED_TRACE(DataTypeName(t));
    const float scale = 0.5f;
    const double zero = t == DataType::kUint8 ? 100 : -3;
    Tensor s = Make(DataType::kFloat32, {}, {scale}), z = Make(t, {}, {zero});
    const double lo = t == DataType::kUint8 ? 0 : -128, hi = t == DataType::kUint8 ? 255 : 127;
    std::vector<double> want(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const float q = std::nearbyint(x.as<float>()[i] / scale);
      want[i] = std::isnan(q) ? 0 : std::clamp(static_cast<double>(q) + zero, lo, hi);
    }
    auto got = RunNode(Node("QuantizeLinear", 13), {&x, &s, &z}, RunOptions{{}, 2});
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(TensorNear((*got)[0], Make(t, {n}, want)));
  }
}

// ONNX Runtime's contrib operators of the QOperator form (math_qlinear.cc), by hand-computed values.
TEST(MathQuant, QLinearAddMulBroadcastAndRequantize) {
  // A [2,3] uint8 (scale 0.5, zero 10) with B [3] (scale 0.25, zero 0); C scale 1, zero 5.
  Tensor a = Make(DataType::kUint8, {2, 3}, {10, 12, 14, 20, 0, 255});
  Tensor sa = Make(DataType::kFloat32, {}, {0.5}), za = Make(DataType::kUint8, {}, {10});
  Tensor b = Make(DataType::kUint8, {3}, {4, 8, 2});
  Tensor sb = Make(DataType::kFloat32, {}, {0.25}), zb = Make(DataType::kUint8, {}, {0});
  Tensor sc = Make(DataType::kFloat32, {}, {1}), zc = Make(DataType::kUint8, {}, {5});
  NodeSpec add{"QLinearAdd", "com.microsoft", 1, {}};
  // A = {0, 1, 2, 5, -5, 122.5}, B = {1, 2, 0.5}: sums {1, 3, 2.5, 6, -3, 123} -> +5, half to even.
  EXPECT_TRUE(TensorNear(Run1(add, {&a, &sa, &za, &b, &sb, &zb, &sc, &zc}),
                         Make(DataType::kUint8, {2, 3}, {6, 8, 7, 11, 2, 128})));
  NodeSpec mul{"QLinearMul", "com.microsoft", 1, {}};
  // Products {0, 2, 1, 5, -10, 61.25} -> +5, saturating at 0.
  EXPECT_TRUE(TensorNear(Run1(mul, {&a, &sa, &za, &b, &sb, &zb, &sc, &zc}),
                         Make(DataType::kUint8, {2, 3}, {5, 7, 6, 10, 0, 66})));
  // Mixed types are refused.
  Tensor b8 = Make(DataType::kInt8, {3}, {4, 8, 2});
  EXPECT_EQ(RunCode(add, {&a, &sa, &za, &b8, &sb, nullptr, &sc, &zc}), StatusCode::kInvalidArgument);
}

TEST(MathQuant, QLinearGlobalAveragePoolBothLayouts) {
  // [1, 2, 2, 2] int8, scale 0.5, zero 2; y scale 0.25, zero -1.
  Tensor x = Make(DataType::kInt8, {1, 2, 2, 2}, {2, 4, 6, 8, -2, -2, 2, 3});
  Tensor sx = Make(DataType::kFloat32, {}, {0.5}), zx = Make(DataType::kInt8, {}, {2});
  Tensor sy = Make(DataType::kFloat32, {}, {0.25}), zy = Make(DataType::kInt8, {}, {-1});
  NodeSpec gap{"QLinearGlobalAveragePool", "com.microsoft", 1, {}};
  // Means of dequantized values: channel 0 {0,1,2,3} -> 1.5 -> 6 - 1 = 5; channel 1 {-2,-2,0,0.5} -> -0.875 -> -3.5 -> -4 - 1.
  EXPECT_TRUE(TensorNear(Run1(gap, {&x, &sx, &zx, &sy, &zy}), Make(DataType::kInt8, {1, 2, 1, 1}, {5, -5})));
  // channels_last: the same data read as [1, 2, 2, C=2].
  gap.attrs["channels_last"] = AttrInt(1);
  Tensor xl = Make(DataType::kInt8, {1, 2, 2, 2}, {2, -2, 4, -2, 6, 2, 8, 3});
  EXPECT_TRUE(TensorNear(Run1(gap, {&xl, &sx, &zx, &sy, &zy}), Make(DataType::kInt8, {1, 1, 1, 2}, {5, -5})));
}

TEST(MathQuant, DynamicQuantizeLinear) {
  Tensor x = Make(DataType::kFloat32, {6}, {0, 2, -3, -2.5, 1.34, 0.5});
  auto r = RunNode(Node("DynamicQuantizeLinear", 11, {}, 3), {&x});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // min -3, max 2: scale 5/255, zero point round(3 / scale) = 153.
  const double scale = 5.0 / 255.0;
  EXPECT_NEAR(ToDoubles((*r)[1])[0], scale, 1e-7);
  EXPECT_EQ(ToDoubles((*r)[2])[0], 153);
  auto y = ToDoubles((*r)[0]);
  // The spec computes in float32 (x / y_scale with a float scale).
  const float xs[] = {0.f, 2.f, -3.f, -2.5f, 1.34f, 0.5f};
  const float fscale = 5.f / 255.f;
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(y[i], std::clamp(std::nearbyint(xs[i] / fscale) + 153.f, 0.f, 255.f)) << i;
  }
}

// Reference einsum by brute force over all label assignments.
TEST(MathEinsum, CommonEquations) {
  Tensor a = Make(DataType::kFloat32, {2, 3}, Random(6, 1, -1, 1));
  Tensor b = Make(DataType::kFloat32, {3, 4}, Random(12, 2, -1, 1));
  auto ad = ToDoubles(a), bd = ToDoubles(b);
  std::vector<double> mm(8, 0);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 3; ++k) mm[i * 4 + j] += ad[i * 3 + k] * bd[k * 4 + j];
  EXPECT_TRUE(TensorNear(Run1(Node("Einsum", 12, {{"equation", AttrString("ij,jk->ik")}}), {&a, &b}),
                         Make(DataType::kFloat32, {2, 4}, mm), 1e-6, 1e-5));
  // Implicit output (alphabetical single labels): same matmul.
  EXPECT_TRUE(TensorNear(Run1(Node("Einsum", 12, {{"equation", AttrString("ij,jk")}}), {&a, &b}),
                         Make(DataType::kFloat32, {2, 4}, mm), 1e-6, 1e-5));
  // Transpose and sum.
  std::vector<double> at(6);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) at[j * 2 + i] = ad[i * 3 + j];
  EXPECT_TRUE(TensorNear(Run1(Node("Einsum", 12, {{"equation", AttrString("ij->ji")}}), {&a}),
                         Make(DataType::kFloat32, {3, 2}, at)));
  EXPECT_TRUE(TensorNear(Run1(Node("Einsum", 12, {{"equation", AttrString("ij->")}}), {&a}),
                         Make(DataType::kFloat32, {}, {std::accumulate(ad.begin(), ad.end(), 0.0)}), 1e-6, 1e-5));
  // Trace and diagonal.
  Tensor sq = Make(DataType::kFloat32, {3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  EXPECT_TRUE(TensorNear(Run1(Node("Einsum", 12, {{"equation", AttrString("ii")}}), {&sq}), Make(DataType::kFloat32, {}, {15})));
  EXPECT_TRUE(TensorNear(Run1(Node("Einsum", 12, {{"equation", AttrString("ii->i")}}), {&sq}), Make(DataType::kFloat32, {3}, {1, 5, 9})));
  // Batched matmul with ellipsis broadcasting ([2,1,...] x [3,...]).
  Tensor x = Make(DataType::kFloat32, {2, 1, 2, 3}, Random(12, 3, -1, 1));
  Tensor y = Make(DataType::kFloat32, {3, 3, 2}, Random(18, 4, -1, 1));
  auto xd = ToDoubles(x), yd = ToDoubles(y);
  std::vector<double> bm(2 * 3 * 2 * 2, 0);
  for (int p = 0; p < 2; ++p)
    for (int q = 0; q < 3; ++q)
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j)
          for (int k = 0; k < 3; ++k) bm[((p * 3 + q) * 2 + i) * 2 + j] += xd[(p * 2 + i) * 3 + k] * yd[(q * 3 + k) * 2 + j];
  EXPECT_TRUE(TensorNear(Run1(Node("Einsum", 12, {{"equation", AttrString("...ik,...kj->...ij")}}), {&x, &y}),
                         Make(DataType::kFloat32, {2, 3, 2, 2}, bm), 1e-6, 1e-5));
  // Errors.
  EXPECT_EQ(RunCode(Node("Einsum", 12, {{"equation", AttrString("ij,jk->ik")}}), {&a, &a}), StatusCode::kInvalidArgument);
  EXPECT_EQ(RunCode(Node("Einsum", 12, {{"equation", AttrString("ijk->i")}}), {&a}), StatusCode::kInvalidArgument);
  Tensor ia = Make(DataType::kInt32, {2, 2}, {1, 2, 3, 4});
  EXPECT_TRUE(TensorNear(Run1(Node("Einsum", 12, {{"equation", AttrString("ij,jk->ik")}}), {&ia, &ia}),
                         Make(DataType::kInt32, {2, 2}, {7, 10, 15, 22})));
}

TEST(MathMatMulInteger, ZeroPointsAndBroadcast) {
  // A [2, 2, 3] uint8 with per-tensor zero point, B [3, 2] int8 with per-column zero points.
  auto av = RandomInts(12, 1, 0, 255), bv = RandomInts(6, 2, -128, 127);
  Tensor a = Make(DataType::kUint8, {2, 2, 3}, av), b = Make(DataType::kInt8, {3, 2}, bv);
  Tensor azp = Make(DataType::kUint8, {}, {12}), bzp = Make(DataType::kInt8, {2}, {-3, 5});
  std::vector<double> expect(8, 0);
  for (int bi = 0; bi < 2; ++bi)
    for (int m = 0; m < 2; ++m)
      for (int n = 0; n < 2; ++n)
        for (int k = 0; k < 3; ++k)
          expect[(bi * 2 + m) * 2 + n] += (av[(bi * 2 + m) * 3 + k] - 12) * (bv[k * 2 + n] - (n == 0 ? -3 : 5));
  EXPECT_TRUE(TensorNear(Run1(Node("MatMulInteger", 10), {&a, &b, &azp, &bzp}), Make(DataType::kInt32, {2, 2, 2}, expect), 0, 0));
  // No zero points, 1-D A.
  Tensor a1 = Make(DataType::kUint8, {3}, {1, 2, 3});
  Tensor b1 = Make(DataType::kUint8, {3, 2}, {1, 2, 3, 4, 5, 6});
  EXPECT_TRUE(TensorNear(Run1(Node("MatMulInteger", 10), {&a1, &b1}), Make(DataType::kInt32, {2}, {22, 28}), 0, 0));
  Tensor bad = Make(DataType::kUint8, {2, 2}, {1, 2, 3, 4});
  EXPECT_EQ(RunCode(Node("MatMulInteger", 10), {&a1, &bad}), StatusCode::kInvalidArgument);
  Tensor f = Make(DataType::kFloat32, {3}, {1, 2, 3});
  EXPECT_EQ(RunCode(Node("MatMulInteger", 10), {&f, &b1}), StatusCode::kUnimplemented);
}

TEST(MathMatMulInteger, QLinearMatMul) {
  Tensor a = Make(DataType::kUint8, {2, 2}, {10, 20, 30, 40});
  Tensor as = Make(DataType::kFloat32, {}, {0.5}), az = Make(DataType::kUint8, {}, {10});
  Tensor b = Make(DataType::kUint8, {2, 2}, {1, 2, 3, 4});
  Tensor bs = Make(DataType::kFloat32, {}, {0.25}), bz = Make(DataType::kUint8, {}, {1});
  Tensor ys = Make(DataType::kFloat32, {}, {0.1}), yz = Make(DataType::kUint8, {}, {5});
  // Real A = [[0,5],[10,15]], real B = [[0,.25],[.5,.75]], A*B = [[2.5,3.75],[7.5,13.75]].
  std::vector<double> real = {2.5, 3.75, 7.5, 13.75}, expect;
  for (double r : real) expect.push_back(std::min(255.0, std::nearbyint(r / 0.1) + 5));
  EXPECT_TRUE(TensorNear(Run1(Node("QLinearMatMul", 10), {&a, &as, &az, &b, &bs, &bz, &ys, &yz}),
                         Make(DataType::kUint8, {2, 2}, expect), 0, 0));
}

}  // namespace
}  // namespace gpuhive::testing::math
