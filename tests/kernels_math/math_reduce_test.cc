#include <cmath>
#include <limits>
#include <set>

#include "math_test_util.h"

namespace gpuhive::testing::math {
namespace {

// Reference reduction over `axes` (empty = all) computed with explicit index arithmetic.
std::vector<double> RefReduce(const Shape& shape, const std::vector<double>& x, std::set<int64_t> axes,
                              const std::string& op, Shape* out_shape, bool keepdims) {
  const int64_t rank = static_cast<int64_t>(shape.size());
  if (axes.empty()) {
    for (int64_t i = 0; i < rank; ++i) axes.insert(i);
  }
  out_shape->clear();
  Shape kept;
  for (int64_t i = 0; i < rank; ++i) {
    if (axes.count(i)) {
      if (keepdims) out_shape->push_back(1);
    } else {
      out_shape->push_back(shape[i]);
      kept.push_back(shape[i]);
    }
  }
  std::vector<std::vector<double>> groups(static_cast<size_t>(NumElements(kept)));
  for (int64_t e = 0; e < NumElements(shape); ++e) {
    int64_t rem = e, o = 0, mul = 1;
    for (int64_t d = rank - 1; d >= 0; --d) {
      const int64_t idx = rem % shape[d];
      rem /= shape[d];
      if (!axes.count(d)) {
        o += idx * mul;
        mul *= shape[d];
      }
    }
    groups[o].push_back(x[e]);
  }
  std::vector<double> out;
  for (const auto& g : groups) {
    double r = 0;
    if (op == "ReduceSum") for (double v : g) r += v;
    if (op == "ReduceMean") { for (double v : g) r += v; r /= g.size(); }
    if (op == "ReduceMax") { r = -INFINITY; for (double v : g) r = std::max(r, v); }
    if (op == "ReduceMin") { r = INFINITY; for (double v : g) r = std::min(r, v); }
    if (op == "ReduceProd") { r = 1; for (double v : g) r *= v; }
    if (op == "ReduceL1") for (double v : g) r += std::fabs(v);
    if (op == "ReduceL2") { for (double v : g) r += v * v; r = std::sqrt(r); }
    if (op == "ReduceSumSquare") for (double v : g) r += v * v;
    if (op == "ReduceLogSum") { for (double v : g) r += v; r = std::log(r); }
    if (op == "ReduceLogSumExp") { for (double v : g) r += std::exp(v); r = std::log(r); }
    out.push_back(r);
  }
  return out;
}

const char* kReduceOps[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                            "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"};

TEST(MathReduce, AllOpsAllAxisPatterns) {
  const Shape shape{3, 4, 5, 2};
  const std::vector<std::vector<int64_t>> axes_cases = {{}, {0}, {1}, {3}, {-1}, {0, 2}, {1, 2}, {0, 3}, {1, 3}, {0, 1, 2, 3}};
  for (const char* op : kReduceOps) {
    Tensor x = Make(DataType::kFloat32, shape, Random(NumElements(shape), 9, 0.5, 1.5));
    for (const auto& axes : axes_cases) {
      for (int keep : {0, 1}) {
        std::set<int64_t> ax;
        for (int64_t a : axes) ax.insert(a < 0 ? a + 4 : a);
        Shape out_shape;
        auto expect = RefReduce(shape, ToDoubles(x), ax, op, &out_shape, keep);
        std::map<std::string, ir::Attribute> attrs = {{"keepdims", AttrInt(keep)}};
        Tensor y;
        if (std::string(op) == "ReduceSum") {
          Tensor at = MakeInt64({static_cast<int64_t>(axes.size())}, axes);
          RunOptions o;
          o.constant_inputs = {1};
          y = Run1(Node(op, 13, attrs), {&x, axes.empty() ? nullptr : &at}, o);
        } else {
          if (!axes.empty()) attrs["axes"] = AttrInts(axes);
          y = Run1(Node(op, 13, attrs), {&x});
        }
        EXPECT_TRUE(TensorNear(y, Make(DataType::kFloat32, out_shape, expect), 1e-5, 1e-5))
            << op << " axes " << ShapeToString(axes) << " keepdims " << keep;
      }
    }
  }
}

TEST(MathReduce, SumOpsetVariantsAndNoop) {
  Tensor x = Make(DataType::kFloat32, {2, 3}, {1, 2, 3, 4, 5, 6});
  // Opset 11: axes attribute.
  EXPECT_TRUE(TensorNear(Run1(Node("ReduceSum", 11, {{"axes", AttrInts({1})}, {"keepdims", AttrInt(0)}}), {&x}),
                         Make(DataType::kFloat32, {2}, {6, 15})));
  // Opset 13: axes input; a non-constant axes input is re-prepared with its value.
  Tensor axes = MakeInt64({1}, {0});
  EXPECT_TRUE(TensorNear(Run1(Node("ReduceSum", 13), {&x, &axes}), Make(DataType::kFloat32, {1, 3}, {5, 7, 9})));
  // noop_with_empty_axes: identity.
  EXPECT_TRUE(TensorNear(Run1(Node("ReduceSum", 13, {{"noop_with_empty_axes", AttrInt(1)}}), {&x}), x));
  EXPECT_TRUE(TensorNear(Run1(Node("ReduceSum", 13), {&x}), Make(DataType::kFloat32, {1, 1}, {21})));
  Tensor bad = MakeInt64({1}, {2});
  EXPECT_EQ(RunCode(Node("ReduceSum", 13), {&x, &bad}), StatusCode::kInvalidArgument);
  EXPECT_EQ(RunCode(Node("ReduceMax", 13, {{"axes", AttrInts({-3})}}), {&x}), StatusCode::kInvalidArgument);
  // Opset 18 style: axes as input for the other reductions.
  EXPECT_TRUE(TensorNear(Run1(Node("ReduceMax", 18), {&x, &axes}), Make(DataType::kFloat32, {1, 3}, {4, 5, 6})));
}

TEST(MathReduce, IntegerAndHalfTypes) {
  Tensor x = Make(DataType::kInt32, {2, 3}, {1, -2, 3, 4, 5, -6});
  EXPECT_TRUE(TensorNear(Run1(Node("ReduceSum", 11, {{"axes", AttrInts({1})}}), {&x}), Make(DataType::kInt32, {2, 1}, {2, 3})));
  EXPECT_TRUE(TensorNear(Run1(Node("ReduceMax", 13, {{"axes", AttrInts({0})}}), {&x}), Make(DataType::kInt32, {1, 3}, {4, 5, 3})));
  EXPECT_TRUE(TensorNear(Run1(Node("ReduceProd", 13, {{"keepdims", AttrInt(0)}}), {&x}), Make(DataType::kInt32, {}, {720})));
  Tensor h = Make(DataType::kFloat16, {2, 2}, {1, 2, 3, 4});
  EXPECT_TRUE(TensorNear(Run1(Node("ReduceMean", 13, {{"axes", AttrInts({1})}}), {&h}), Make(DataType::kFloat16, {2, 1}, {1.5, 3.5})));
  Tensor u = Make(DataType::kUint8, {3}, {200, 100, 7});
  EXPECT_TRUE(TensorNear(Run1(Node("ReduceMin", 13), {&u}), Make(DataType::kUint8, {1}, {7})));
}

TEST(MathReduce, LargeMultiThreaded) {
  const Shape shape{64, 128, 33};
  Tensor x = Make(DataType::kFloat32, shape, Random(NumElements(shape), 21, -1, 1));
  RunOptions opts;
  opts.num_threads = 3;
  for (int64_t axis : {0, 1, 2}) {
    Shape out_shape;
    auto expect = RefReduce(shape, ToDoubles(x), {axis}, "ReduceSum", &out_shape, true);
    Tensor at = MakeInt64({1}, {axis});
    opts.constant_inputs = {1};
    EXPECT_TRUE(TensorNear(Run1(Node("ReduceSum", 13), {&x, &at}, opts), Make(DataType::kFloat32, out_shape, expect), 1e-4, 1e-5))
        << axis;
  }
}

TEST(MathReduce, EmptyReduction) {
  Tensor x = Make(DataType::kFloat32, {2, 0}, {});
  EXPECT_TRUE(TensorNear(Run1(Node("ReduceSum", 11, {{"axes", AttrInts({1})}}), {&x}), Make(DataType::kFloat32, {2, 1}, {0, 0})));
  EXPECT_TRUE(TensorNear(Run1(Node("ReduceProd", 11, {{"axes", AttrInts({1})}}), {&x}), Make(DataType::kFloat32, {2, 1}, {1, 1})));
  auto mx = ToDoubles(Run1(Node("ReduceMax", 11, {{"axes", AttrInts({1})}}), {&x}));
  EXPECT_TRUE(std::isinf(mx[0]) && mx[0] < 0);
}

TEST(MathArg, ArgMaxArgMin) {
  Tensor x = Make(DataType::kFloat32, {2, 4}, {1, 3, 3, 0, 5, 5, -1, -1});
  EXPECT_TRUE(TensorNear(Run1(Node("ArgMax", 13, {{"axis", AttrInt(1)}}), {&x}), MakeInt64({2, 1}, {1, 0})));
  EXPECT_TRUE(TensorNear(Run1(Node("ArgMax", 13, {{"axis", AttrInt(1)}, {"select_last_index", AttrInt(1)}}), {&x}),
                         MakeInt64({2, 1}, {2, 1})));
  EXPECT_TRUE(TensorNear(Run1(Node("ArgMin", 13, {{"axis", AttrInt(-1)}, {"keepdims", AttrInt(0)}}), {&x}),
                         MakeInt64({2}, {3, 2})));
  EXPECT_TRUE(TensorNear(Run1(Node("ArgMin", 13, {{"axis", AttrInt(1)}, {"keepdims", AttrInt(0)}, {"select_last_index", AttrInt(1)}}), {&x}),
                         MakeInt64({2}, {3, 3})));
  EXPECT_TRUE(TensorNear(Run1(Node("ArgMax", 13), {&x}), MakeInt64({1, 4}, {1, 1, 0, 0})));
  Tensor i = Make(DataType::kInt64, {3}, {4, 9, 2});
  EXPECT_TRUE(TensorNear(Run1(Node("ArgMax", 11, {{"keepdims", AttrInt(0)}}), {&i}), MakeInt64({}, {1})));
  EXPECT_EQ(RunCode(Node("ArgMax", 13, {{"axis", AttrInt(2)}}), {&x}), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gpuhive::testing::math
