#include "kernels_nn/blocked_harness.h"
#include "kernels_nn/reference.h"

namespace gpuhive::testing {
namespace {

struct EwCase {
  const char* name;
  Shape x;
  std::vector<std::string> ops;
  std::vector<Shape> extras;
};

class ElementwiseTest : public ::testing::TestWithParam<EwCase> {};

TEST_P(ElementwiseTest, MatchesReferenceInBothLayouts) {
  const auto& c = GetParam();
  Tensor x = RandomFloat(c.x, 1, -2.f, 2.f);
  std::vector<Tensor> extras;
  for (size_t i = 0; i < c.extras.size(); ++i) extras.push_back(RandomFloat(c.extras[i], 5 + static_cast<uint32_t>(i), 0.5f, 1.5f));
  Tensor expected = MakeTensor(DataType::kFloat32, x.shape(), x.data());
  ref::ApplyPostOps(expected, c.ops, extras);
  NodeSpec spec{"Elementwise", "gpuhive", 1, {{"post_ops", AttrStrings(c.ops)}}};
  std::vector<const Tensor*> in = {&x};
  for (const Tensor& t : extras) in.push_back(&t);
  auto out = RunNode(spec, in);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(TensorNear((*out)[0], expected, 1e-5, 1e-5));
  if (c.x.size() == 4) {
    // X blocked: output keeps X's layout; "sum" extras come blocked too.
    auto bx = ReorderTo(AsValue(x), "blocked16");
    ASSERT_TRUE(bx.ok());
    std::vector<BlockedValue> vals;
    vals.reserve(extras.size());
    size_t e = 0;
    for (const auto& op : c.ops) {
      auto parsed = ParsePostOp(op);
      ASSERT_TRUE(parsed.ok());
      if (!parsed->is_binary()) continue;
      if (parsed->kind == PostOp::Kind::kSum) {
        auto b = ReorderTo(AsValue(extras[e]), "blocked16");
        ASSERT_TRUE(b.ok());
        vals.push_back(std::move(*b));
      } else {
        vals.push_back(AsValue(extras[e]));
      }
      ++e;
    }
    std::vector<const BlockedValue*> vin = {&*bx};
    for (const auto& v : vals) vin.push_back(&v);
    auto bout = RunNodeLayouts(spec, vin);
    ASSERT_TRUE(bout.ok()) << bout.status().ToString();
    EXPECT_EQ((*bout)[0].layout, Layout::kBlocked16);
    auto plain = ToPlain((*bout)[0]);
    ASSERT_TRUE(plain.ok());
    EXPECT_TRUE(TensorNear(*plain, expected, 1e-5, 1e-5));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Elementwise, ElementwiseTest,
    ::testing::Values(EwCase{"relu", {2, 20, 3, 3}, {"relu"}, {}},
                      EwCase{"hardsigmoid_first", {1, 16, 2, 2}, {"hardsigmoid:0.2:0.5", "mul"}, {{1, 16, 1, 1}}},
                      EwCase{"mul_se", {2, 24, 4, 4}, {"mul"}, {{2, 24, 1, 1}}},
                      EwCase{"sum_relu", {1, 20, 3, 5}, {"sum", "relu"}, {{1, 20, 3, 5}}},
                      EwCase{"add_sum_clip", {1, 17, 3, 3}, {"add", "sum", "clip:0:6"}, {{17, 1, 1}, {1, 17, 3, 3}}},
                      EwCase{"sub_div_2d", {6, 10}, {"sub", "div", "tanh"}, {{10}, {6, 1}}},
                      EwCase{"swish_3d", {2, 5, 7}, {"swish", "max", "min"}, {{1}, {7}}},
                      EwCase{"gelu_then_linear", {3, 8}, {"gelu_tanh", "linear:2:1", "neg"}, {}},
                      // Rank 0 and 1 with a unary first: ONNX's *window_expanded tails.
                      EwCase{"linear_add_1d", {10}, {"linear:0:0", "add"}, {{10}}},
                      EwCase{"relu_mul_1d_scalar", {64}, {"relu", "mul"}, {{1}}},
                      EwCase{"tanh_sub_0d", {}, {"tanh", "sub"}, {{}}}),
    [](const ::testing::TestParamInfo<EwCase>& info) { return std::string(info.param.name); });

TEST(ElementwiseErrors, ExtraLargerThanXIsRejected) {
  Tensor x = RandomFloat({2, 3}, 1), e = RandomFloat({4, 2, 3}, 2);
  auto out = RunNode({"Elementwise", "gpuhive", 1, {{"post_ops", AttrStrings({"add"})}}}, {&x, &e});
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  auto missing = RunNode({"Elementwise", "gpuhive", 1, {{"post_ops", AttrStrings({"relu", "mul"})}}}, {&x});
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gpuhive::testing
