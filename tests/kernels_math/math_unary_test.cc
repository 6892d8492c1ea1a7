#include <cmath>
#include <functional>
#include <limits>

#include "math_test_util.h"

namespace gpuhive::testing::math {
namespace {

struct UnaryCase {
  std::string op;
  std::function<double(double)> ref;
  double lo, hi;
  std::map<std::string, ir::Attribute> attrs = {};
};

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

std::vector<UnaryCase> FloatCases() {
  return {
      {"Abs", [](double x) { return std::fabs(x); }, -5, 5},
      {"Neg", [](double x) { return -x; }, -5, 5},
      {"Reciprocal", [](double x) { return 1.0 / x; }, 0.5, 4},
      {"Floor", [](double x) { return std::floor(x); }, -5, 5},
      {"Ceil", [](double x) { return std::ceil(x); }, -5, 5},
      {"Sign", [](double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0; }, -5, 5},
      {"Sqrt", [](double x) { return std::sqrt(x); }, 0, 9},
      {"Exp", [](double x) { return std::exp(x); }, -5, 5},
      {"Log", [](double x) { return std::log(x); }, 0.1, 9},
      {"Erf", [](double x) { return std::erf(x); }, -3, 3},
      {"Sin", [](double x) { return std::sin(x); }, -3, 3},
      {"Cos", [](double x) { return std::cos(x); }, -3, 3},
      {"Tan", [](double x) { return std::tan(x); }, -1, 1},
      {"Asin", [](double x) { return std::asin(x); }, -0.99, 0.99},
      {"Acos", [](double x) { return std::acos(x); }, -0.99, 0.99},
      {"Atan", [](double x) { return std::atan(x); }, -5, 5},
      {"Sinh", [](double x) { return std::sinh(x); }, -3, 3},
      {"Cosh", [](double x) { return std::cosh(x); }, -3, 3},
      {"Asinh", [](double x) { return std::asinh(x); }, -5, 5},
      {"Acosh", [](double x) { return std::acosh(x); }, 1, 5},
      {"Atanh", [](double x) { return std::atanh(x); }, -0.9, 0.9},
      {"Relu", [](double x) { return std::max(0.0, x); }, -5, 5},
      {"LeakyRelu", [](double x) { return x < 0 ? 0.01 * x : x; }, -5, 5},
      {"LeakyRelu", [](double x) { return x < 0 ? 0.3 * x : x; }, -5, 5, {{"alpha", AttrFloat(0.3f)}}},
      {"Elu", [](double x) { return x < 0 ? 2.0 * (std::exp(x) - 1) : x; }, -5, 5, {{"alpha", AttrFloat(2.f)}}},
      {"Selu",
       [](double x) {
         const double a = 1.67326319217681884765625, g = 1.05070102214813232421875;
         return x > 0 ? g * x : g * (a * std::exp(x) - a);
       },
       -5, 5},
      {"Celu", [](double x) { return std::max(0.0, x) + std::min(0.0, 0.5 * (std::exp(x / 0.5) - 1)); }, -5, 5,
       {{"alpha", AttrFloat(0.5f)}}},
      {"Sigmoid", Sigmoid, -20, 20},
      {"HardSigmoid", [](double x) { return std::max(0.0, std::min(1.0, 0.2 * x + 0.5)); }, -5, 5},
      {"HardSigmoid", [](double x) { return std::max(0.0, std::min(1.0, 0.5 * x + 0.25)); }, -5, 5,
       {{"alpha", AttrFloat(0.5f)}, {"beta", AttrFloat(0.25f)}}},
      {"HardSwish", [](double x) { return x * std::max(0.0, std::min(1.0, x / 6 + 0.5)); }, -5, 5},
      {"Tanh", [](double x) { return std::tanh(x); }, -5, 5},
      {"Softplus", [](double x) { return std::log(std::exp(x) + 1); }, -10, 10},
      {"Softsign", [](double x) { return x / (1 + std::fabs(x)); }, -5, 5},
      {"ThresholdedRelu", [](double x) { return x > 1.0 ? x : 0.0; }, -5, 5},
      {"Shrink", [](double x) { return x < -1.5 ? x + 0.5 : x > 1.5 ? x - 0.5 : 0.0; }, -5, 5,
       {{"lambd", AttrFloat(1.5f)}, {"bias", AttrFloat(0.5f)}}},
  };
}

TEST(MathUnary, FloatOpsMatchReference) {
  for (const UnaryCase& c : FloatCases()) {
    const Shape shape{3, 5, 7};
    auto vals = Random(NumElements(shape), 7, c.lo, c.hi);
    Tensor x = Make(DataType::kFloat32, shape, vals);
    // The reference uses the float-rounded inputs.
    auto xd = ToDoubles(x);
    std::vector<double> expect;
    for (double v : xd) expect.push_back(c.ref(v));
    Tensor y = Run1(Node(c.op, 17, c.attrs), {&x});
    EXPECT_TRUE(TensorNear(y, Make(DataType::kFloat32, shape, expect), 1e-5, 1e-5)) << c.op;
  }
}

TEST(MathUnary, OtherFloatTypes) {
  struct T {
    DataType dt;
    double tol;
  };
  for (T t : {T{DataType::kFloat64, 1e-7}, T{DataType::kFloat16, 2e-3}, T{DataType::kBFloat16, 1.6e-2}}) {
    for (const UnaryCase& c : FloatCases()) {
      const Shape shape{17};
      Tensor x = Make(t.dt, shape, Random(17, 3, c.lo, c.hi));
      std::vector<double> expect;
      for (double v : ToDoubles(x)) expect.push_back(c.ref(v));
      Tensor y = Run1(Node(c.op, 17, c.attrs), {&x});
      EXPECT_TRUE(TensorNear(y, Make(t.dt, shape, expect), t.tol, t.tol))
          << c.op << " " << DataTypeName(t.dt);
    }
  }
}

TEST(MathUnary, RoundIsHalfToEven) {
  Tensor x = Make(DataType::kFloat32, {8}, {0.5, 1.5, 2.5, -0.5, -1.5, 2.4, 2.6, -2.5});
  Tensor y = Run1(Node("Round"), {&x});
  EXPECT_TRUE(TensorNear(y, Make(DataType::kFloat32, {8}, {0, 2, 2, -0., -2, 2, 3, -2})));
}

TEST(MathUnary, IntegerOps) {
  for (DataType dt : {DataType::kInt8, DataType::kInt16, DataType::kInt32, DataType::kInt64}) {
    Tensor x = Make(dt, {6}, {-3, -1, 0, 1, 2, 100});
    EXPECT_TRUE(TensorNear(Run1(Node("Abs"), {&x}), Make(dt, {6}, {3, 1, 0, 1, 2, 100})));
    EXPECT_TRUE(TensorNear(Run1(Node("Neg"), {&x}), Make(dt, {6}, {3, 1, 0, -1, -2, -100})));
    EXPECT_TRUE(TensorNear(Run1(Node("Sign"), {&x}), Make(dt, {6}, {-1, -1, 0, 1, 1, 1})));
    EXPECT_TRUE(TensorNear(Run1(Node("Relu", 14), {&x}), Make(dt, {6}, {0, 0, 0, 1, 2, 100})));
  }
  Tensor u = Make(DataType::kUint8, {3}, {0, 5, 255});
  EXPECT_TRUE(TensorNear(Run1(Node("Abs"), {&u}), u));
  EXPECT_TRUE(TensorNear(Run1(Node("Sign"), {&u}), Make(DataType::kUint8, {3}, {0, 1, 1})));
  EXPECT_EQ(RunCode(Node("Neg"), {&u}), StatusCode::kUnimplemented);
}

TEST(MathUnary, NaNAndInfPredicates) {
  const double inf = std::numeric_limits<double>::infinity();
  Tensor x = Make(DataType::kFloat32, {5}, {1.0, NAN, inf, -inf, 0.0});
  EXPECT_TRUE(TensorNear(Run1(Node("IsNaN"), {&x}), Make(DataType::kBool, {5}, {0, 1, 0, 0, 0})));
  EXPECT_TRUE(TensorNear(Run1(Node("IsInf"), {&x}), Make(DataType::kBool, {5}, {0, 0, 1, 1, 0})));
  EXPECT_TRUE(TensorNear(Run1(Node("IsInf", 17, {{"detect_negative", AttrInt(0)}}), {&x}),
                         Make(DataType::kBool, {5}, {0, 0, 1, 0, 0})));
  EXPECT_TRUE(TensorNear(Run1(Node("IsInf", 17, {{"detect_positive", AttrInt(0)}}), {&x}),
                         Make(DataType::kBool, {5}, {0, 0, 0, 1, 0})));
  Tensor d = Make(DataType::kFloat64, {2}, {NAN, 1});
  EXPECT_TRUE(TensorNear(Run1(Node("IsNaN"), {&d}), Make(DataType::kBool, {2}, {1, 0})));
}

TEST(MathUnary, NotOnBool) {
  Tensor b = Make(DataType::kBool, {3}, {1, 0, 1});
  EXPECT_TRUE(TensorNear(Run1(Node("Not"), {&b}), Make(DataType::kBool, {3}, {0, 1, 0})));
  Tensor f = Make(DataType::kFloat32, {1}, {1});
  EXPECT_EQ(RunCode(Node("Not"), {&f}), StatusCode::kUnimplemented);
}

TEST(MathUnary, UnsupportedTypesAreRefused) {
  Tensor i = Make(DataType::kInt32, {2}, {1, 4});
  EXPECT_EQ(RunCode(Node("Sqrt"), {&i}), StatusCode::kUnimplemented);
  EXPECT_EQ(RunCode(Node("Exp"), {&i}), StatusCode::kUnimplemented);
  Tensor b = Make(DataType::kBool, {1}, {1});
  EXPECT_EQ(RunCode(Node("Abs"), {&b}), StatusCode::kUnimplemented);
}

TEST(MathUnary, LargeTensorsUseThreadsAndMatchSerial) {
  const Shape shape{300, 1000};
  Tensor x = Make(DataType::kFloat32, shape, Random(NumElements(shape), 11, -4, 4));
  RunOptions one, four;
  four.num_threads = 4;
  Tensor a = Run1(Node("Tanh"), {&x}, one);
  Tensor b = Run1(Node("Tanh"), {&x}, four);
  EXPECT_TRUE(TensorNear(a, b, 0, 0));
  EXPECT_NEAR(ToDoubles(b)[123456], std::tanh(ToDoubles(x)[123456]), 1e-6);
}

TEST(MathUnary, EmptyTensor) {
  Tensor x = Make(DataType::kFloat32, {0, 3}, {});
  Tensor y = Run1(Node("Exp"), {&x});
  EXPECT_EQ(y.shape(), (Shape{0, 3}));
}

}  // namespace
}  // namespace gpuhive::testing::math
