#include <cmath>
#include <limits>

#include "math_test_util.h"

namespace gpuhive::testing::math {
namespace {

struct BinCase {
  std::string op;
  std::function<double(double, double)> ref;
};

std::vector<std::pair<Shape, Shape>> ShapePairs() {
  return {
      {{2, 3, 4}, {2, 3, 4}},  // same shape
      {{2, 3, 4}, {4}},        // trailing broadcast
      {{2, 1, 4}, {3, 1}},     // both sides broadcast
      {{2, 3, 4}, {}},         // scalar
      {{}, {5}},               // scalar on the left
      {{3, 1}, {1, 4}},        // outer product
      {{2, 3, 1, 5}, {3, 4, 1}},
      {{4, 1, 3}, {4, 2, 1}},
      {{0, 3}, {3}},           // zero-size dim
      {{1, 3}, {0, 1}},
  };
}

TEST(MathBinary, FloatArithmeticBroadcasts) {
  const std::vector<BinCase> cases = {
      {"Add", [](double a, double b) { return a + b; }},
      {"Sub", [](double a, double b) { return a - b; }},
      {"Mul", [](double a, double b) { return a * b; }},
      {"Div", [](double a, double b) { return a / b; }},
      {"Max", [](double a, double b) { return std::max(a, b); }},
      {"Min", [](double a, double b) { return std::min(a, b); }},
      {"Pow", [](double a, double b) { return std::pow(a, b); }},
  };
  uint32_t seed = 1;
  for (const auto& [sa, sb] : ShapePairs()) {
    for (const BinCase& c : cases) {
      auto va = Random(NumElements(sa), seed++, 0.5, 3);
      auto vb = Random(NumElements(sb), seed++, 0.5, 3);
      Tensor a = Make(DataType::kFloat32, sa, va), b = Make(DataType::kFloat32, sb, vb);
      auto expect = RefBroadcastMap({sa, sb}, {ToDoubles(a), ToDoubles(b)},
                                    [&](const std::vector<double>& x) { return c.ref(x[0], x[1]); });
      Tensor y = Run1(Node(c.op), {&a, &b});
      EXPECT_TRUE(TensorNear(y, Make(DataType::kFloat32, RefBroadcast({sa, sb}), expect), 1e-5, 1e-5))
          << c.op << " " << ShapeToString(sa) << " " << ShapeToString(sb);
    }
  }
}

TEST(MathBinary, LargeTrailingBroadcastMultiThreaded) {
  const Shape sa{8, 64, 256}, sb{256};
  Tensor a = Make(DataType::kFloat32, sa, Random(NumElements(sa), 5, -1, 1));
  Tensor b = Make(DataType::kFloat32, sb, Random(256, 6, -1, 1));
  RunOptions opts;
  opts.num_threads = 4;
  Tensor y = Run1(Node("Add"), {&a, &b}, opts);
  auto expect = RefBroadcastMap({sa, sb}, {ToDoubles(a), ToDoubles(b)},
                                [](const std::vector<double>& x) { return x[0] + x[1]; });
  EXPECT_TRUE(TensorNear(y, Make(DataType::kFloat32, sa, expect), 1e-6, 1e-6));
}

TEST(MathBinary, OtherTypes) {
  for (DataType dt : {DataType::kFloat64, DataType::kFloat16, DataType::kBFloat16, DataType::kInt8,
                      DataType::kInt16, DataType::kInt32, DataType::kInt64, DataType::kUint8,
                      DataType::kUint16, DataType::kUint32, DataType::kUint64}) {
    const Shape sa{2, 3}, sb{3};
    Tensor a = Make(dt, sa, {1, 2, 3, 4, 5, 6});
    Tensor b = Make(dt, sb, {1, 2, 3});
    EXPECT_TRUE(TensorNear(Run1(Node("Add"), {&a, &b}), Make(dt, sa, {2, 4, 6, 5, 7, 9}))) << DataTypeName(dt);
    EXPECT_TRUE(TensorNear(Run1(Node("Mul"), {&a, &b}), Make(dt, sa, {1, 4, 9, 4, 10, 18}))) << DataTypeName(dt);
    EXPECT_TRUE(TensorNear(Run1(Node("Sub"), {&a, &b}), Make(dt, sa, {0, 0, 0, 3, 3, 3}))) << DataTypeName(dt);
    EXPECT_TRUE(TensorNear(Run1(Node("Greater"), {&a, &b}), Make(DataType::kBool, sa, {0, 0, 0, 1, 1, 1})));
    EXPECT_TRUE(TensorNear(Run1(Node("Equal"), {&a, &b}), Make(DataType::kBool, sa, {1, 1, 1, 0, 0, 0})));
    EXPECT_TRUE(TensorNear(Run1(Node("LessOrEqual"), {&a, &b}), Make(DataType::kBool, sa, {1, 1, 1, 0, 0, 0})));
    EXPECT_TRUE(TensorNear(Run1(Node("Less"), {&b, &a}), Make(DataType::kBool, sa, {0, 0, 0, 1, 1, 1})));
    EXPECT_TRUE(TensorNear(Run1(Node("GreaterOrEqual"), {&b, &a}), Make(DataType::kBool, sa, {1, 1, 1, 0, 0, 0})));
  }
}

TEST(MathBinary, IntegerDivisionTruncatesAndNeverTraps) {
  Tensor a = Make(DataType::kInt32, {6}, {7, -7, 7, -7, 5, -2147483648.0});
  Tensor b = Make(DataType::kInt32, {6}, {2, 2, -2, -2, 0, -1});
  Tensor y = Run1(Node("Div"), {&a, &b});
  auto v = ToDoubles(y);
  EXPECT_EQ(v[0], 3);
  EXPECT_EQ(v[1], -3);
  EXPECT_EQ(v[2], -3);
  EXPECT_EQ(v[3], 3);
  EXPECT_EQ(v[4], 0);  // division by zero gives 0 instead of trapping
  EXPECT_EQ(v[5], -2147483648.0);
}

TEST(MathBinary, IntegerOverflowWraps) {
  const double kMax = 2147483647.0, kMin = -2147483648.0;
  Tensor a = Make(DataType::kInt32, {3}, {kMax, kMin, 65536});
  Tensor b = Make(DataType::kInt32, {3}, {1, 1, 65536});
  EXPECT_TRUE(TensorNear(Run1(Node("Add"), {&a, &b}), Make(DataType::kInt32, {3}, {kMin, kMin + 1, 131072})));
  EXPECT_TRUE(TensorNear(Run1(Node("Mul"), {&a, &b}), Make(DataType::kInt32, {3}, {kMax, kMin, 0})));
  Tensor m = Make(DataType::kInt32, {1}, {kMin});
  EXPECT_TRUE(TensorNear(Run1(Node("Neg"), {&m}), m));
  Tensor u = Make(DataType::kUint16, {1}, {65535});
  EXPECT_TRUE(TensorNear(Run1(Node("Mul"), {&u, &u}), Make(DataType::kUint16, {1}, {1})));
}

TEST(MathBinary, ModSignSemantics) {
  Tensor a = Make(DataType::kInt32, {4}, {5, -5, 5, -5});
  Tensor b = Make(DataType::kInt32, {4}, {3, 3, -3, -3});
  // fmod = 0: sign follows the divisor (Python %).
  EXPECT_TRUE(TensorNear(Run1(Node("Mod"), {&a, &b}), Make(DataType::kInt32, {4}, {2, 1, -1, -2})));
  // fmod = 1: sign follows the dividend (C fmod).
  EXPECT_TRUE(TensorNear(Run1(Node("Mod", 13, {{"fmod", AttrInt(1)}}), {&a, &b}),
                         Make(DataType::kInt32, {4}, {2, -2, 2, -2})));
  Tensor fa = Make(DataType::kFloat32, {2}, {5.5, -5.5}), fb = Make(DataType::kFloat32, {2}, {2, 2});
  EXPECT_TRUE(TensorNear(Run1(Node("Mod", 13, {{"fmod", AttrInt(1)}}), {&fa, &fb}),
                         Make(DataType::kFloat32, {2}, {1.5, -1.5})));
  EXPECT_EQ(RunCode(Node("Mod"), {&fa, &fb}), StatusCode::kInvalidArgument);
  Tensor ua = Make(DataType::kUint8, {2}, {7, 9}), ub = Make(DataType::kUint8, {2}, {4, 0});
  EXPECT_TRUE(TensorNear(Run1(Node("Mod"), {&ua, &ub}), Make(DataType::kUint8, {2}, {3, 0})));
}

TEST(MathBinary, PowMixedTypes) {
  Tensor fb = Make(DataType::kFloat32, {3}, {2, 3, 4});
  Tensor ie = Make(DataType::kInt64, {3}, {3, 2, -1});
  EXPECT_TRUE(TensorNear(Run1(Node("Pow", 15), {&fb, &ie}), Make(DataType::kFloat32, {3}, {8, 9, 0.25})));
  Tensor ib = Make(DataType::kInt32, {3}, {2, -3, 5});
  Tensor fe = Make(DataType::kFloat32, {3}, {3, 2, 0.5});
  EXPECT_TRUE(TensorNear(Run1(Node("Pow", 15), {&ib, &fe}), Make(DataType::kInt32, {3}, {8, 9, 2})));
  Tensor ib64 = Make(DataType::kInt64, {2}, {3, 2}), ie64 = Make(DataType::kInt64, {2}, {39, 62});
  auto v = Run1(Node("Pow", 15), {&ib64, &ie64});
  EXPECT_EQ(v.as<int64_t>()[0], 4052555153018976267LL);  // 3^39 exactly
  EXPECT_EQ(v.as<int64_t>()[1], int64_t{1} << 62);
  Tensor two = Make(DataType::kFloat32, {}, {2});
  Tensor x = Make(DataType::kFloat32, {3}, {-1.5, 0, 3});
  EXPECT_TRUE(TensorNear(Run1(Node("Pow"), {&x, &two}), Make(DataType::kFloat32, {3}, {2.25, 0, 9})));
}

TEST(MathBinary, VariadicMaxMinSumMean) {
  const Shape s0{2, 1, 3}, s1{4, 1}, s2{3};
  auto v0 = Random(6, 1, -2, 2), v1 = Random(4, 2, -2, 2), v2 = Random(3, 3, -2, 2);
  Tensor a = Make(DataType::kFloat32, s0, v0), b = Make(DataType::kFloat32, s1, v1),
         c = Make(DataType::kFloat32, s2, v2);
  const std::vector<std::vector<double>> vals = {ToDoubles(a), ToDoubles(b), ToDoubles(c)};
  const Shape out = RefBroadcast({s0, s1, s2});
  auto check = [&](const std::string& op, std::function<double(const std::vector<double>&)> f) {
    auto expect = RefBroadcastMap({s0, s1, s2}, vals, f);
    EXPECT_TRUE(TensorNear(Run1(Node(op), {&a, &b, &c}), Make(DataType::kFloat32, out, expect), 1e-5, 1e-5)) << op;
  };
  check("Max", [](const std::vector<double>& x) { return std::max({x[0], x[1], x[2]}); });
  check("Min", [](const std::vector<double>& x) { return std::min({x[0], x[1], x[2]}); });
  check("Sum", [](const std::vector<double>& x) { return x[0] + x[1] + x[2]; });
  check("Mean", [](const std::vector<double>& x) { return (x[0] + x[1] + x[2]) / 3; });
  // One input copies; ints work for Max.
  EXPECT_TRUE(TensorNear(Run1(Node("Sum"), {&a}), a));
  Tensor i1 = Make(DataType::kInt32, {3}, {1, 5, 3}), i2 = Make(DataType::kInt32, {3}, {4, 2, 3});
  EXPECT_TRUE(TensorNear(Run1(Node("Max"), {&i1, &i2}), Make(DataType::kInt32, {3}, {4, 5, 3})));
  // NaN propagates through Max/Min.
  Tensor n1 = Make(DataType::kFloat32, {2}, {NAN, 1}), n2 = Make(DataType::kFloat32, {2}, {1, NAN});
  auto m = ToDoubles(Run1(Node("Max"), {&n1, &n2}));
  EXPECT_TRUE(std::isnan(m[0]) && std::isnan(m[1]));
}

TEST(MathBinary, LogicAndBitShift) {
  Tensor a = Make(DataType::kBool, {2, 2}, {0, 0, 1, 1}), b = Make(DataType::kBool, {2}, {0, 1});
  EXPECT_TRUE(TensorNear(Run1(Node("And"), {&a, &b}), Make(DataType::kBool, {2, 2}, {0, 0, 0, 1})));
  EXPECT_TRUE(TensorNear(Run1(Node("Or"), {&a, &b}), Make(DataType::kBool, {2, 2}, {0, 1, 1, 1})));
  EXPECT_TRUE(TensorNear(Run1(Node("Xor"), {&a, &b}), Make(DataType::kBool, {2, 2}, {0, 1, 1, 0})));
  EXPECT_TRUE(TensorNear(Run1(Node("Equal"), {&a, &b}), Make(DataType::kBool, {2, 2}, {1, 0, 0, 1})));
  Tensor x = Make(DataType::kUint32, {4}, {1, 16, 255, 7}), s = Make(DataType::kUint32, {4}, {3, 2, 40, 0});
  EXPECT_TRUE(TensorNear(Run1(Node("BitShift", 11, {{"direction", AttrString("LEFT")}}), {&x, &s}),
                         Make(DataType::kUint32, {4}, {8, 64, 0, 7})));
  EXPECT_TRUE(TensorNear(Run1(Node("BitShift", 11, {{"direction", AttrString("RIGHT")}}), {&x, &s}),
                         Make(DataType::kUint32, {4}, {0, 4, 0, 7})));
  EXPECT_EQ(RunCode(Node("BitShift", 11, {{"direction", AttrString("UP")}}), {&x, &s}),
            StatusCode::kInvalidArgument);
  Tensor f = Make(DataType::kFloat32, {1}, {1});
  EXPECT_EQ(RunCode(Node("And"), {&f, &f}), StatusCode::kUnimplemented);
}

TEST(MathBinary, WhereThreeWayBroadcast) {
  const Shape sc{2, 1}, sx{1, 3}, sy{};
  Tensor c = Make(DataType::kBool, sc, {1, 0});
  Tensor x = Make(DataType::kInt64, sx, {1, 2, 3});
  Tensor y = Make(DataType::kInt64, sy, {-1});
  EXPECT_TRUE(TensorNear(Run1(Node("Where"), {&c, &x, &y}), Make(DataType::kInt64, {2, 3}, {1, 2, 3, -1, -1, -1})));
  const Shape big{4, 5, 6};
  Tensor cb = Make(DataType::kBool, big, RandomInts(120, 4, 0, 1));
  Tensor xb = Make(DataType::kFloat32, {6}, Random(6, 5, -1, 1));
  Tensor yb = Make(DataType::kFloat32, {5, 1}, Random(5, 6, -1, 1));
  auto expect = RefBroadcastMap({big, {6}, {5, 1}}, {ToDoubles(cb), ToDoubles(xb), ToDoubles(yb)},
                                [](const std::vector<double>& v) { return v[0] != 0 ? v[1] : v[2]; });
  EXPECT_TRUE(TensorNear(Run1(Node("Where"), {&cb, &xb, &yb}), Make(DataType::kFloat32, big, expect), 0, 0));
  Tensor fc = Make(DataType::kFloat32, sc, {1, 0});
  EXPECT_EQ(RunCode(Node("Where"), {&fc, &x, &y}), StatusCode::kInvalidArgument);
}

TEST(MathBinary, ClipOpsetVariants) {
  Tensor x = Make(DataType::kFloat32, {5}, {-3, -1, 0, 1, 3});
  EXPECT_TRUE(TensorNear(Run1(Node("Clip", 6, {{"min", AttrFloat(-1.5f)}, {"max", AttrFloat(2.f)}}), {&x}),
                         Make(DataType::kFloat32, {5}, {-1.5, -1, 0, 1, 2})));
  EXPECT_TRUE(TensorNear(Run1(Node("Clip", 6), {&x}), x));
  Tensor lo = Make(DataType::kFloat32, {}, {-0.5}), hi = Make(DataType::kFloat32, {}, {0.5});
  EXPECT_TRUE(TensorNear(Run1(Node("Clip", 13), {&x, &lo, &hi}), Make(DataType::kFloat32, {5}, {-0.5, -0.5, 0, 0.5, 0.5})));
  EXPECT_TRUE(TensorNear(Run1(Node("Clip", 13), {&x, nullptr, &hi}), Make(DataType::kFloat32, {5}, {-3, -1, 0, 0.5, 0.5})));
  EXPECT_TRUE(TensorNear(Run1(Node("Clip", 13), {&x, &lo}), Make(DataType::kFloat32, {5}, {-0.5, -0.5, 0, 1, 3})));
  Tensor xi = Make(DataType::kInt32, {3}, {-5, 0, 5}), li = Make(DataType::kInt32, {}, {-1}), hi2 = Make(DataType::kInt32, {}, {2});
  EXPECT_TRUE(TensorNear(Run1(Node("Clip", 13), {&xi, &li, &hi2}), Make(DataType::kInt32, {3}, {-1, 0, 2})));
  EXPECT_EQ(RunCode(Node("Clip", 13), {&xi, &lo}), StatusCode::kInvalidArgument);  // type mismatch
}

TEST(MathBinary, ErrorCases) {
  Tensor a = Make(DataType::kFloat32, {2, 3}, Random(6, 1, 0, 1));
  Tensor b = Make(DataType::kFloat32, {4}, Random(4, 2, 0, 1));
  EXPECT_EQ(RunCode(Node("Add"), {&a, &b}), StatusCode::kInvalidArgument);
  Tensor z = Make(DataType::kFloat32, {0}, {});
  EXPECT_EQ(RunCode(Node("Add"), {&a, &z}), StatusCode::kInvalidArgument);
  Tensor i = Make(DataType::kInt32, {3}, {1, 2, 3});
  EXPECT_EQ(RunCode(Node("Add"), {&a, &i}), StatusCode::kInvalidArgument);
  Tensor s = Make(DataType::kInt32, {3}, {1, 2, 3});
  EXPECT_EQ(RunCode(Node("Sum"), {&s, &s}), StatusCode::kUnimplemented);
  EXPECT_EQ(RunCode(Node("Add"), {&a}), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gpuhive::testing::math
