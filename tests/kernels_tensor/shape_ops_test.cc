// Shape, Size, Constant, ConstantOfShape, Range, EyeLike, Identity, Dropout, Reshape, Flatten,
// Squeeze, Unsqueeze.
#include "tensor_test_util.h"

namespace gpuhive::testing::tensor_ops {
namespace {

TEST(ShapeOps, ShapeWithStartEnd) {
  Tensor x = Iota({2, 3, 4, 5});
  struct Case {
    int opset;
    std::map<std::string, ir::Attribute> attrs;
    std::vector<int64_t> expect;
  };
  const std::vector<Case> cases = {
      {13, {}, {2, 3, 4, 5}},
      {15, {}, {2, 3, 4, 5}},
      {15, {{"start", AttrInt(1)}}, {3, 4, 5}},
      {15, {{"end", AttrInt(-1)}}, {2, 3, 4}},
      {15, {{"start", AttrInt(-3)}, {"end", AttrInt(3)}}, {3, 4}},
      {15, {{"start", AttrInt(-10)}, {"end", AttrInt(10)}}, {2, 3, 4, 5}},  // clamped
      {15, {{"start", AttrInt(3)}, {"end", AttrInt(1)}}, {}},
      {13, {{"start", AttrInt(1)}}, {2, 3, 4, 5}},  // start ignored before opset 15
  };
  for (const Case& c : cases) {
    Tensor y = Run1(Node("Shape", c.opset, c.attrs), {&x});
    EXPECT_EQ(y.shape(), Shape{static_cast<int64_t>(c.expect.size())});
    EXPECT_EQ(Ints(y), c.expect);
  }
}

TEST(ShapeOps, Size) {
  Tensor x = Iota({2, 3, 4});
  Tensor y = Run1(Node("Size"), {&x});
  EXPECT_EQ(y.shape(), Shape{});
  EXPECT_EQ(Ints(y), std::vector<int64_t>{24});
}

TEST(ShapeOps, ConstantAttributes) {
  Tensor a = Run1(Node("Constant", 13, {{"value_ints", AttrInts({4, 5, 6})}}), {});
  EXPECT_TRUE(TensorNear(a, I64({3}, {4, 5, 6})));
  Tensor b = Run1(Node("Constant", 13, {{"value_float", AttrFloat(2.5f)}}), {});
  EXPECT_TRUE(TensorNear(b, F({}, {2.5f})));
  Tensor c = Run1(Node("Constant", 13, {{"value_int", AttrInt(-7)}}), {});
  EXPECT_TRUE(TensorNear(c, I64({}, {-7})));
  auto v = std::make_shared<const Tensor>(I32({2, 2}, {1, 2, 3, 4}));
  Tensor d = Run1(Node("Constant", 13, {{"value", ir::Attribute(ir::ConstTensor(v))}}), {});
  EXPECT_TRUE(TensorNear(d, I32({2, 2}, {1, 2, 3, 4})));
  EXPECT_FALSE(RunNode(Node("Constant", 13), {}).ok());
}

TEST(ShapeOps, ConstantOfShape) {
  Tensor shape = I64({3}, {2, 1, 3});
  Tensor y = Run1(Node("ConstantOfShape", 9), {&shape}, ConstFrom(0));
  EXPECT_TRUE(TensorNear(y, F({2, 1, 3}, std::vector<float>(6, 0.f))));
  auto v = std::make_shared<const Tensor>(I32({1}, {7}));
  Tensor z = Run1(Node("ConstantOfShape", 9, {{"value", ir::Attribute(ir::ConstTensor(v))}}), {&shape});
  EXPECT_TRUE(TensorNear(z, I32({2, 1, 3}, std::vector<int32_t>(6, 7))));
  Tensor bad = I64({2}, {2, -1});
  EXPECT_FALSE(RunNode(Node("ConstantOfShape", 9), {&bad}).ok());
}

TEST(ShapeOps, Range) {
  struct Case {
    float s, l, d;
  };
  for (Case c : std::vector<Case>{{0, 5, 1}, {1, 2, 0.3f}, {10, 4, -3}, {3, 3, 1}, {5, 1, 2}}) {
    Tensor s = F({}, {c.s}), l = F({}, {c.l}), d = F({}, {c.d});
    std::vector<float> expect;
    for (float x = c.s; c.d > 0 ? x < c.l : x > c.l; x += c.d) expect.push_back(x);
    Tensor y = Run1(Node("Range", 11), {&s, &l, &d});
    EXPECT_TRUE(TensorNear(y, F({static_cast<int64_t>(expect.size())}, expect), 1e-5, 1e-5))
        << c.s << " " << c.l << " " << c.d;
  }
  Tensor s = I32({}, {-3}), l = I32({}, {8}), d = I32({}, {4});
  EXPECT_TRUE(TensorNear(Run1(Node("Range", 11), {&s, &l, &d}), I32({3}, {-3, 1, 5})));
  Tensor zero = I32({}, {0});
  EXPECT_FALSE(RunNode(Node("Range", 11), {&s, &l, &zero}).ok());
}

TEST(ShapeOps, EyeLike) {
  Tensor x = Iota({3, 4});
  Tensor y = Run1(Node("EyeLike", 9, {{"k", AttrInt(1)}, {"dtype", AttrInt(7)}}), {&x});
  EXPECT_TRUE(TensorNear(y, I64({3, 4}, {0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1})));
  Tensor z = Run1(Node("EyeLike", 9, {{"k", AttrInt(-1)}}), {&x});
  EXPECT_TRUE(TensorNear(z, F({3, 4}, {0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0})));
}

TEST(ShapeOps, IdentityAndDropout) {
  Tensor x = Iota({2, 3});
  EXPECT_TRUE(TensorNear(Run1(Node("Identity"), {&x}), x));
  auto r = RunNode(Node("Dropout", 13, {}, 2), {&x});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(TensorNear((*r)[0], x));
  EXPECT_TRUE(TensorNear((*r)[1], B({2, 3}, {1, 1, 1, 1, 1, 1})));
  auto r7 = RunNode(Node("Dropout", 7, {}, 2), {&x});
  ASSERT_TRUE(r7.ok());
  EXPECT_EQ((*r7)[1].dtype(), DataType::kFloat32);  // mask was T before opset 10
  Tensor ratio = F({}, {0.5f});
  Tensor training = B({}, {1});
  EXPECT_EQ(RunNode(Node("Dropout", 13), {&x, &ratio, &training}).status().code(),
            StatusCode::kUnimplemented);
}

TEST(ShapeOps, Reshape) {
  Tensor x = Iota({2, 3, 4});
  struct Case {
    std::vector<int64_t> shape;
    int allowzero;
    Shape expect;  // empty with ok=false for errors
    bool ok;
  };
  const std::vector<Case> cases = {
      {{4, 6}, 0, {4, 6}, true},       {{-1}, 0, {24}, true},
      {{0, -1}, 0, {2, 12}, true},     {{0, 0, 2, -1}, 0, {2, 3, 2, 2}, true},
      {{-1, 4}, 0, {6, 4}, true},      {{5, -1}, 0, {}, false},
      {{-1, -1}, 0, {}, false},        {{7, 7}, 0, {}, false},
      {{0, 0, 0, 0}, 0, {}, false},    {{2, 3, 4}, 1, {2, 3, 4}, true},
      {{-2, 12}, 0, {}, false},
  };
  for (const Case& c : cases) {
    Tensor s = I64({static_cast<int64_t>(c.shape.size())}, c.shape);
    auto r = RunNode(Node("Reshape", 14, {{"allowzero", AttrInt(c.allowzero)}}), {&x, &s});
    ASSERT_EQ(r.ok(), c.ok) << ShapeToString(Shape(c.shape.begin(), c.shape.end()));
    if (!c.ok) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
      continue;
    }
    EXPECT_EQ((*r)[0].shape(), c.expect);
    EXPECT_EQ(Floats((*r)[0]), Floats(x));
  }
  // allowzero keeps a literal 0 dim (only valid for an empty input).
  Tensor empty = F({0, 3}, {});
  Tensor s = I64({2}, {3, 0});
  auto r = RunNode(Node("Reshape", 14, {{"allowzero", AttrInt(1)}}), {&empty, &s});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].shape(), (Shape{3, 0}));
  // Opset 1..4 takes the shape from the attribute.
  Tensor y = Run1(Node("Reshape", 1, {{"shape", AttrInts({4, -1})}}), {&x});
  EXPECT_EQ(y.shape(), (Shape{4, 6}));
}

TEST(ShapeOps, Flatten) {
  Tensor x = Iota({2, 3, 4, 5});
  struct Case {
    int64_t axis;
    Shape expect;
  };
  for (Case c : std::vector<Case>{{0, {1, 120}}, {1, {2, 60}}, {2, {6, 20}}, {4, {120, 1}}, {-1, {24, 5}}}) {
    Tensor y = Run1(Node("Flatten", 13, {{"axis", AttrInt(c.axis)}}), {&x});
    EXPECT_EQ(y.shape(), c.expect) << c.axis;
    EXPECT_EQ(Floats(y), Floats(x));
  }
  EXPECT_FALSE(RunNode(Node("Flatten", 13, {{"axis", AttrInt(5)}}), {&x}).ok());
}

TEST(ShapeOps, SqueezeOpsetVariants) {
  Tensor x = Iota({1, 3, 1, 2});
  Tensor all = Run1(Node("Squeeze", 11), {&x});
  EXPECT_EQ(all.shape(), (Shape{3, 2}));
  Tensor a = Run1(Node("Squeeze", 11, {{"axes", AttrInts({-2})}}), {&x});
  EXPECT_EQ(a.shape(), (Shape{1, 3, 2}));
  Tensor axes = I64({1}, {0});
  Tensor b = Run1(Node("Squeeze", 13), {&x, &axes}, ConstFrom(1));
  EXPECT_EQ(b.shape(), (Shape{3, 1, 2}));
  EXPECT_EQ(Floats(b), Floats(x));
  Tensor c = Run1(Node("Squeeze", 13), {&x});
  EXPECT_EQ(c.shape(), (Shape{3, 2}));
  Tensor no_axes = I64({0}, {});
  EXPECT_EQ(Run1(Node("Squeeze", 13), {&x, &no_axes}).shape(), (Shape{3, 2}));
  Tensor bad = I64({1}, {1});
  EXPECT_EQ(RunNode(Node("Squeeze", 13), {&x, &bad}).status().code(), StatusCode::kInvalidArgument);
}

TEST(ShapeOps, UnsqueezeOpsetVariants) {
  Tensor x = Iota({3, 4});
  Tensor a = Run1(Node("Unsqueeze", 11, {{"axes", AttrInts({0, 3})}}), {&x});
  EXPECT_EQ(a.shape(), (Shape{1, 3, 4, 1}));
  Tensor axes = I64({2}, {-1, 1});
  Tensor b = Run1(Node("Unsqueeze", 13), {&x, &axes});
  EXPECT_EQ(b.shape(), (Shape{3, 1, 4, 1}));
  EXPECT_EQ(Floats(b), Floats(x));
  Tensor dup = I64({2}, {1, 1});
  EXPECT_FALSE(RunNode(Node("Unsqueeze", 13), {&x, &dup}).ok());
  Tensor far = I64({1}, {4});
  EXPECT_FALSE(RunNode(Node("Unsqueeze", 13), {&x, &far}).ok());
}

}  // namespace
}  // namespace gpuhive::testing::tensor_ops
