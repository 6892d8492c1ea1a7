// Gather, GatherElements, GatherND, Scatter, ScatterElements, ScatterND, OneHot, NonZero,
// Compress, NonMaxSuppression; out-of-range indices must be errors, never crashes.
#include "tensor_test_util.h"

namespace gpuhive::testing::tensor_ops {
namespace {

TEST(IndexOps, GatherAxesAndNegativeIndices) {
  const Shape s{3, 4, 2};
  Tensor x = Iota(s);
  auto xv = ToDoubles(x);
  for (int64_t axis : {0, 1, 2, -1}) {
    const int64_t ax = axis < 0 ? axis + 3 : axis, dim = s[ax];
    std::vector<int64_t> idx = {dim - 1, 0, -1, -dim};
    Tensor ind = I64({2, 2}, idx);
    Tensor y = Run1(Node("Gather", 13, {{"axis", AttrInt(axis)}}), {&x, &ind}, ConstFrom(99, 0, 2));
    Shape os(s.begin(), s.begin() + ax);
    os.push_back(2);
    os.push_back(2);
    os.insert(os.end(), s.begin() + ax + 1, s.end());
    ASSERT_EQ(y.shape(), os);
    auto yv = ToDoubles(y);
    for (int64_t o = 0; o < NumElements(os); ++o) {
      auto oc = Unravel(o, os);
      std::vector<int64_t> ic(oc.begin(), oc.begin() + ax);
      int64_t i = idx[oc[ax] * 2 + oc[ax + 1]];
      ic.push_back(i < 0 ? i + dim : i);
      ic.insert(ic.end(), oc.begin() + ax + 2, oc.end());
      EXPECT_EQ(yv[o], xv[Ravel(ic, s)]) << axis << " " << o;
    }
  }
  Tensor scalar_idx = I32({}, {2});
  Tensor y = Run1(Node("Gather", 13, {{"axis", AttrInt(1)}}), {&x, &scalar_idx});
  EXPECT_EQ(y.shape(), (Shape{3, 2}));
  for (int64_t bad : {3, -4, 1000000}) {
    Tensor ind = I64({1}, {bad});
    auto r = RunNode(Node("Gather", 13), {&x, &ind});
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(IndexOps, GatherElements) {
  Tensor x = F({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor ind = I64({2, 3}, {1, 2, 0, 2, 0, -3});
  Tensor y = Run1(Node("GatherElements", 13, {{"axis", AttrInt(0)}}), {&x, &ind});
  EXPECT_TRUE(TensorNear(y, F({2, 3}, {4, 8, 3, 7, 2, 3})));
  Tensor ind1 = I32({3, 2}, {0, 0, 1, 0, 2, -1});
  Tensor y1 = Run1(Node("GatherElements", 13, {{"axis", AttrInt(1)}}), {&x, &ind1});
  EXPECT_TRUE(TensorNear(y1, F({3, 2}, {1, 1, 5, 4, 9, 9})));
  Tensor bad = I64({1, 1}, {3});
  EXPECT_EQ(RunNode(Node("GatherElements", 13), {&x, &bad}).status().code(), StatusCode::kInvalidArgument);
}

TEST(IndexOps, GatherND) {
  Tensor x = I32({2, 2}, {0, 1, 2, 3});
  Tensor i1 = I64({2, 2}, {0, 0, 1, 1});
  EXPECT_TRUE(TensorNear(Run1(Node("GatherND", 12), {&x, &i1}), I32({2}, {0, 3})));
  Tensor i2 = I64({2, 1}, {1, 0});
  EXPECT_TRUE(TensorNear(Run1(Node("GatherND", 12), {&x, &i2}), I32({2, 2}, {2, 3, 0, 1})));
  Tensor x3 = I32({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  Tensor i3 = I64({2, 1}, {1, 0});
  Tensor y3 = Run1(Node("GatherND", 12, {{"batch_dims", AttrInt(1)}}), {&x3, &i3});
  EXPECT_TRUE(TensorNear(y3, I32({2, 2}, {2, 3, 4, 5})));
  Tensor i4 = I64({2, 1, 2}, {0, -1, 1, 0});
  Tensor y4 = Run1(Node("GatherND", 12, {{"batch_dims", AttrInt(1)}}), {&x3, &i4});
  EXPECT_TRUE(TensorNear(y4, I32({2, 1}, {1, 6})));
  Tensor bad = I64({1, 2}, {0, 2});
  EXPECT_EQ(RunNode(Node("GatherND", 12), {&x, &bad}).status().code(), StatusCode::kInvalidArgument);
  Tensor too_long = I64({1, 3}, {0, 0, 0});
  EXPECT_FALSE(RunNode(Node("GatherND", 12), {&x, &too_long}).ok());
}

TEST(IndexOps, ScatterElementsReductions) {
  Tensor x = F({3, 3}, {1, 1, 1, 1, 1, 1, 1, 1, 1});
  Tensor ind = I64({2, 3}, {1, 0, 2, 1, 2, -1});
  Tensor upd = F({2, 3}, {2, 3, 4, 5, 6, 7});
  // axis 0: (1,0)<-2, (0,1)<-3, (2,2)<-4, (1,0)<-5, (2,1)<-6, (2,2)<-7
  struct Case {
    std::string reduction;
    std::vector<float> expect;
  };
  const std::vector<Case> cases = {
      {"none", {1, 3, 1, 5, 1, 1, 1, 6, 7}},
      {"add", {1, 4, 1, 8, 1, 1, 1, 7, 12}},
      {"mul", {1, 3, 1, 10, 1, 1, 1, 6, 28}},
      {"max", {1, 3, 1, 5, 1, 1, 1, 6, 7}},
      {"min", {1, 1, 1, 1, 1, 1, 1, 1, 1}},
  };
  for (const Case& c : cases) {
    Tensor y = Run1(Node("ScatterElements", 18, {{"reduction", AttrString(c.reduction)}}), {&x, &ind, &upd});
    EXPECT_TRUE(TensorNear(y, F({3, 3}, c.expect))) << c.reduction;
  }
  // Deprecated Scatter (opset 9) = ScatterElements without reduction.
  Tensor ind1 = I64({1, 2}, {1, 3});
  Tensor upd1 = F({1, 2}, {1.1f, 2.1f});
  Tensor x1 = F({1, 5}, {1, 2, 3, 4, 5});
  EXPECT_TRUE(TensorNear(Run1(Node("Scatter", 9, {{"axis", AttrInt(1)}}), {&x1, &ind1, &upd1}),
                         F({1, 5}, {1, 1.1f, 3, 2.1f, 5})));
  Tensor bad = I64({1, 2}, {1, 5});
  EXPECT_EQ(RunNode(Node("ScatterElements", 13, {{"axis", AttrInt(1)}}), {&x1, &bad, &upd1}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(IndexOps, ScatterND) {
  Tensor x = Iota({4, 2}, 1);
  Tensor ind = I64({3, 1}, {2, 0, 2});
  Tensor upd = F({3, 2}, {10, 20, 30, 40, 50, 60});
  EXPECT_TRUE(TensorNear(Run1(Node("ScatterND", 16, {{"reduction", AttrString("add")}}), {&x, &ind, &upd}),
                         F({4, 2}, {31, 42, 3, 4, 65, 86, 7, 8})));
  EXPECT_TRUE(TensorNear(Run1(Node("ScatterND", 16, {{"reduction", AttrString("mul")}}), {&x, &ind, &upd}),
                         F({4, 2}, {30, 80, 3, 4, 2500, 7200, 7, 8})));
  Tensor ind2 = I64({2, 2}, {0, 1, -1, 0});
  Tensor upd2 = F({2}, {-1, -2});
  EXPECT_TRUE(TensorNear(Run1(Node("ScatterND", 13), {&x, &ind2, &upd2}), F({4, 2}, {1, -1, 3, 4, 5, 6, -2, 8})));
  Tensor bad = I64({2, 2}, {0, 1, 4, 0});
  EXPECT_EQ(RunNode(Node("ScatterND", 13), {&x, &bad, &upd2}).status().code(), StatusCode::kInvalidArgument);
  Tensor wrong_upd = F({3}, {1, 2, 3});
  EXPECT_FALSE(RunNode(Node("ScatterND", 13), {&x, &ind2, &wrong_upd}).ok());
}

TEST(IndexOps, OneHot) {
  Tensor ind = F({2, 2}, {0, 2, -1, 7});
  Tensor depth = I64({}, {3});
  Tensor values = I32({2}, {-1, 5});
  Tensor y = Run1(Node("OneHot", 11), {&ind, &depth, &values}, ConstFrom(1));
  EXPECT_TRUE(TensorNear(y, I32({2, 2, 3}, {5, -1, -1, -1, -1, 5, -1, -1, 5, -1, -1, -1})));
  Tensor y0 = Run1(Node("OneHot", 11, {{"axis", AttrInt(0)}}), {&ind, &depth, &values});
  ASSERT_EQ(y0.shape(), (Shape{3, 2, 2}));
  EXPECT_EQ(Ints(y0), (std::vector<int64_t>{5, -1, -1, -1, -1, -1, -1, -1, -1, 5, 5, -1}));
}

TEST(IndexOps, NonZero) {
  Tensor x = F({2, 3}, {0, 1.5f, 0, -2, -0.f, 3});
  Tensor y = Run1(Node("NonZero", 13), {&x});
  EXPECT_TRUE(TensorNear(y, I64({2, 3}, {0, 1, 1, 1, 0, 2})));
  Tensor b = B({4}, {0, 0, 0, 0});
  EXPECT_EQ(Run1(Node("NonZero", 13), {&b}).shape(), (Shape{1, 0}));
}

TEST(IndexOps, Compress) {
  Tensor x = Iota({3, 2});
  Tensor cond = B({2}, {0, 1});
  EXPECT_TRUE(TensorNear(Run1(Node("Compress", 11, {{"axis", AttrInt(1)}}), {&x, &cond}), F({3, 1}, {1, 3, 5})));
  Tensor cond3 = B({3}, {1, 0, 1});
  EXPECT_TRUE(TensorNear(Run1(Node("Compress", 11, {{"axis", AttrInt(-2)}}), {&x, &cond3}),
                         F({2, 2}, {0, 1, 4, 5})));
  Tensor flat = B({5}, {0, 1, 1, 0, 1});
  EXPECT_TRUE(TensorNear(Run1(Node("Compress", 11), {&x, &flat}), F({3}, {1, 2, 4})));
  Tensor too_long = B({4}, {1, 1, 1, 1});
  EXPECT_FALSE(RunNode(Node("Compress", 11, {{"axis", AttrInt(0)}}), {&x, &too_long}).ok());
}

TEST(IndexOps, NonMaxSuppression) {
  Tensor boxes = F({1, 6, 4}, {0, 0, 1, 1, 0, 0.1f, 1, 1.1f, 0, -0.1f, 1, 0.9f,
                               0, 10, 1, 11, 0, 10.1f, 1, 11.1f, 0, 100, 1, 101});
  Tensor scores = F({1, 1, 6}, {0.9f, 0.75f, 0.6f, 0.95f, 0.5f, 0.3f});
  Tensor max_out = I64({1}, {3}), iou = F({1}, {0.5f}), score = F({1}, {0.f});
  Tensor y = Run1(Node("NonMaxSuppression", 11), {&boxes, &scores, &max_out, &iou, &score});
  EXPECT_TRUE(TensorNear(y, I64({3, 3}, {0, 0, 3, 0, 0, 0, 0, 0, 5})));
  // Center-point boxes, two classes, a score threshold that drops box 5.
  Tensor cboxes = F({1, 6, 4}, {0.5f, 0.5f, 1, 1, 0.5f, 0.6f, 1, 1, 0.5f, 0.4f, 1, 1,
                                0.5f, 10.5f, 1, 1, 0.5f, 10.6f, 1, 1, 0.5f, 100.5f, 1, 1});
  Tensor scores2 = F({1, 2, 6}, {0.9f, 0.75f, 0.6f, 0.95f, 0.5f, 0.3f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f});
  Tensor thr = F({1}, {0.35f});
  Tensor y2 = Run1(Node("NonMaxSuppression", 11, {{"center_point_box", AttrInt(1)}}),
                   {&cboxes, &scores2, &max_out, &iou, &thr});
  EXPECT_TRUE(TensorNear(y2, I64({4, 3}, {0, 0, 3, 0, 0, 0, 0, 1, 5, 0, 1, 4})));
  Tensor none = Run1(Node("NonMaxSuppression", 11), {&boxes, &scores});
  EXPECT_EQ(none.shape(), (Shape{0, 3}));
}

TEST(IndexOps, Unique) {
  Tensor x = F({6}, {2, 1, 1, 3, 4, 3});
  auto sorted = RunNode(Node("Unique", 11, {}, 4), {&x});
  ASSERT_TRUE(sorted.ok()) << sorted.status().ToString();
  EXPECT_TRUE(TensorNear((*sorted)[0], F({4}, {1, 2, 3, 4})));
  EXPECT_EQ(Ints((*sorted)[1]), (std::vector<int64_t>{1, 0, 3, 4}));
  EXPECT_EQ(Ints((*sorted)[2]), (std::vector<int64_t>{1, 0, 0, 2, 3, 2}));
  EXPECT_EQ(Ints((*sorted)[3]), (std::vector<int64_t>{2, 1, 2, 1}));
  auto unsorted = RunNode(Node("Unique", 11, {{"sorted", AttrInt(0)}}, 4), {&x});
  ASSERT_TRUE(unsorted.ok());
  EXPECT_TRUE(TensorNear((*unsorted)[0], F({4}, {2, 1, 3, 4})));
  EXPECT_EQ(Ints((*unsorted)[1]), (std::vector<int64_t>{0, 1, 3, 4}));
  EXPECT_EQ(Ints((*unsorted)[2]), (std::vector<int64_t>{0, 1, 1, 2, 3, 2}));
  EXPECT_EQ(Ints((*unsorted)[3]), (std::vector<int64_t>{1, 2, 2, 1}));
  Tensor m = I64({3, 3}, {2, 3, 4, 1, 0, 0, 2, 3, 4});
  auto rows = RunNode(Node("Unique", 11, {{"axis", AttrInt(0)}}, 4), {&m});
  ASSERT_TRUE(rows.ok());
  EXPECT_TRUE(TensorNear((*rows)[0], I64({2, 3}, {1, 0, 0, 2, 3, 4})));
  EXPECT_EQ(Ints((*rows)[1]), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(Ints((*rows)[2]), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(Ints((*rows)[3]), (std::vector<int64_t>{1, 2}));
}

}  // namespace
}  // namespace gpuhive::testing::tensor_ops
