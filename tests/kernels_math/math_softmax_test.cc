#include <cmath>
#include <limits>

#include "math_test_util.h"

namespace gpuhive::testing::math {
namespace {

// Reference softmax over rows of `d` contiguous elements, strided by `inner`.
std::vector<double> RefSoftmax(const std::vector<double>& x, int64_t outer, int64_t d, int64_t inner,
                               const std::string& op) {
  std::vector<double> y(x.size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t r) { return (o * d + r) * inner + i; };
      double m = -INFINITY, s = 0;
      int64_t arg = 0;
      for (int64_t r = 0; r < d; ++r) {
        if (x[at(r)] > m) {
          m = x[at(r)];
          arg = r;
        }
      }
      for (int64_t r = 0; r < d; ++r) s += std::exp(x[at(r)] - m);
      for (int64_t r = 0; r < d; ++r) {
        if (op == "Softmax") y[at(r)] = std::exp(x[at(r)] - m) / s;
        if (op == "LogSoftmax") y[at(r)] = x[at(r)] - m - std::log(s);
        if (op == "Hardmax") y[at(r)] = r == arg ? 1 : 0;
      }
    }
  }
  return y;
}

TEST(MathSoftmax, Opset13PerAxis) {
  const Shape shape{2, 3, 4};
  for (const char* op : {"Softmax", "LogSoftmax", "Hardmax"}) {
    Tensor x = Make(DataType::kFloat32, shape, Random(24, 1, -3, 3));
    auto xd = ToDoubles(x);
    // axis -1 (default), 1, 0
    EXPECT_TRUE(TensorNear(Run1(Node(op, 13), {&x}), Make(DataType::kFloat32, shape, RefSoftmax(xd, 6, 4, 1, op)), 1e-6, 1e-5)) << op;
    EXPECT_TRUE(TensorNear(Run1(Node(op, 13, {{"axis", AttrInt(1)}}), {&x}),
                           Make(DataType::kFloat32, shape, RefSoftmax(xd, 2, 3, 4, op)), 1e-6, 1e-5)) << op;
    EXPECT_TRUE(TensorNear(Run1(Node(op, 13, {{"axis", AttrInt(0)}}), {&x}),
                           Make(DataType::kFloat32, shape, RefSoftmax(xd, 1, 2, 12, op)), 1e-6, 1e-5)) << op;
  }
}

TEST(MathSoftmax, Opset11FlattensAtAxis) {
  const Shape shape{2, 3, 4};
  for (const char* op : {"Softmax", "LogSoftmax", "Hardmax"}) {
    Tensor x = Make(DataType::kFloat32, shape, Random(24, 2, -3, 3));
    auto xd = ToDoubles(x);
    // Default axis 1: rows of 3*4.
    EXPECT_TRUE(TensorNear(Run1(Node(op, 11), {&x}), Make(DataType::kFloat32, shape, RefSoftmax(xd, 2, 12, 1, op)), 1e-6, 1e-5)) << op;
    EXPECT_TRUE(TensorNear(Run1(Node(op, 11, {{"axis", AttrInt(0)}}), {&x}),
                           Make(DataType::kFloat32, shape, RefSoftmax(xd, 1, 24, 1, op)), 1e-6, 1e-5)) << op;
    EXPECT_TRUE(TensorNear(Run1(Node(op, 11, {{"axis", AttrInt(-1)}}), {&x}),
                           Make(DataType::kFloat32, shape, RefSoftmax(xd, 6, 4, 1, op)), 1e-6, 1e-5)) << op;
  }
}

TEST(MathSoftmax, StableForLargeInputsAndOtherTypes) {
  Tensor x = Make(DataType::kFloat32, {1, 3}, {1000, 1001, 1002});
  auto expect = RefSoftmax({1000, 1001, 1002}, 1, 3, 1, "Softmax");
  EXPECT_TRUE(TensorNear(Run1(Node("Softmax"), {&x}), Make(DataType::kFloat32, {1, 3}, expect), 1e-6, 1e-5));
  Tensor d = Make(DataType::kFloat64, {2, 5}, Random(10, 3, -10, 10));
  EXPECT_TRUE(TensorNear(Run1(Node("LogSoftmax"), {&d}), Make(DataType::kFloat64, {2, 5}, RefSoftmax(ToDoubles(d), 2, 5, 1, "LogSoftmax")), 1e-12, 1e-12));
  Tensor h = Make(DataType::kFloat16, {2, 5}, Random(10, 4, -3, 3));
  EXPECT_TRUE(TensorNear(Run1(Node("Softmax"), {&h}), Make(DataType::kFloat16, {2, 5}, RefSoftmax(ToDoubles(h), 2, 5, 1, "Softmax")), 1e-3, 1e-3));
  Tensor i = Make(DataType::kInt32, {2}, {1, 2});
  EXPECT_EQ(RunCode(Node("Softmax"), {&i}), StatusCode::kUnimplemented);
  EXPECT_EQ(RunCode(Node("Softmax", 13, {{"axis", AttrInt(1)}}), {&i}), StatusCode::kUnimplemented);
  EXPECT_EQ(RunCode(Node("Softmax", 13, {{"axis", AttrInt(2)}}), {&x}), StatusCode::kInvalidArgument);
}

TEST(MathSoftmax, LargeMultiThreaded) {
  const Shape shape{512, 200};
  Tensor x = Make(DataType::kFloat32, shape, Random(NumElements(shape), 5, -5, 5));
  RunOptions opts;
  opts.num_threads = 4;
  EXPECT_TRUE(TensorNear(Run1(Node("Softmax"), {&x}, opts),
                         Make(DataType::kFloat32, shape, RefSoftmax(ToDoubles(x), 512, 200, 1, "Softmax")), 1e-7, 1e-5));
}

// The vectorized float path for contiguous rows (BERT's attention: 128 and more columns), wide
// inputs included, against a double reference; rows with -inf, +inf or NaN take the general path
// and keep ONNX's results (masked columns 0, NaN rows NaN).
TEST(MathSoftmax, ContiguousFloatRowsAndNonFiniteValues) {
  for (int64_t d : {7, 128, 1000}) {
    Tensor x = Make(DataType::kFloat32, {3, d}, Random(3 * d, 5, -40, 40));
    EXPECT_TRUE(TensorNear(Run1(Node("Softmax"), {&x}), Make(DataType::kFloat32, {3, d}, RefSoftmax(ToDoubles(x), 3, d, 1, "Softmax")),
                           1e-7, 1e-5)) << d;
  }
  const float inf = std::numeric_limits<float>::infinity();
  Tensor masked = Make(DataType::kFloat32, {1, 4}, std::vector<double>{1.0, -inf, 2.0, -inf});
  auto out = ToDoubles(Run1(Node("Softmax"), {&masked}));
  EXPECT_NEAR(out[0], 1 / (1 + std::exp(1.0)), 1e-6);
  EXPECT_EQ(out[1], 0.0);
  EXPECT_EQ(out[3], 0.0);
  Tensor nan = Make(DataType::kFloat32, {1, 3}, std::vector<double>{1.0, std::nan(""), 2.0});
  for (double v : ToDoubles(Run1(Node("Softmax"), {&nan}))) EXPECT_TRUE(std::isnan(v));
}

}  // namespace
}  // namespace gpuhive::testing::math
