#include "kernels/cpu/onednn/common.h"
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

// The layout name of the blocked layout this CPU prefers (the one gpuhive produces).
const char* PreferredBlockedName() {
  return cpu::onednn::PreferredBlockedLayout() == Layout::kBlocked16 ? "blocked16" : "blocked8";
}

// X in layout `to`, then the binary operands of `ops` in order: "sum" operands in `to` too (the
// Elementwise kernel takes them blocked), the others plain.
StatusOr<std::vector<BlockedValue>> BlockedInputs(const Tensor& x, const std::vector<Tensor>& extras,
                                                  const std::vector<std::string>& ops, const char* to) {
  std::vector<BlockedValue> vals;
  ASSIGN_OR_RETURN(BlockedValue bx, ReorderTo(AsValue(x), to));
  vals.push_back(std::move(bx));
  size_t e = 0;
  for (const auto& op : ops) {
    ASSIGN_OR_RETURN(PostOp parsed, ParsePostOp(op));
    if (!parsed.is_binary()) continue;
    if (e >= extras.size()) return InvalidArgument("too few operands for the post-ops");
    if (parsed.kind == PostOp::Kind::kSum) {
      ASSIGN_OR_RETURN(BlockedValue b, ReorderTo(AsValue(extras[e]), to));
      vals.push_back(std::move(b));
    } else {
      vals.push_back(AsValue(extras[e]));
    }
    ++e;
  }
  return vals;
}

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
    // X blocked (in the block this CPU prefers, the one gpuhive produces): output keeps X's
    // layout; "sum" extras come blocked too.
    auto vals = BlockedInputs(x, extras, c.ops, PreferredBlockedName());
    ASSERT_TRUE(vals.ok()) << vals.status().ToString();
    std::vector<const BlockedValue*> vin;
    for (const auto& v : *vals) vin.push_back(&v);
    auto bout = RunNodeLayouts(spec, vin);
    ASSERT_TRUE(bout.ok()) << bout.status().ToString();
    EXPECT_EQ((*bout)[0].layout, cpu::onednn::PreferredBlockedLayout());
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

// Issue 15: chains on the blocked layout this CPU prefers must never run oneDNN's reference
// implementation (a HardSigmoid + Mul chain with a full-size plain operand on aBcd16b took
// eltwise ref:any, 90 % of MobileNetV3's time). Checked by implementation name, not by timing.
// Binary operands are plain ("sum" operands come blocked).
class ElementwiseImplementationTest : public ::testing::TestWithParam<EwCase> {};

TEST_P(ElementwiseImplementationTest, BlockedChainsTakeJitKernels) {
  const auto& c = GetParam();
  Tensor x = RandomFloat(c.x, 11, -4.f, 4.f);
  std::vector<Tensor> extras;
  for (size_t i = 0; i < c.extras.size(); ++i) extras.push_back(RandomFloat(c.extras[i], 21 + static_cast<uint32_t>(i), 0.5f, 1.5f));
  Tensor expected = MakeTensor(DataType::kFloat32, x.shape(), x.data());
  ref::ApplyPostOps(expected, c.ops, extras);
  auto vals = BlockedInputs(x, extras, c.ops, PreferredBlockedName());
  ASSERT_TRUE(vals.ok()) << vals.status().ToString();
  std::vector<const BlockedValue*> vin;
  for (const auto& v : *vals) vin.push_back(&v);
  NodeSpec spec{"Elementwise", "gpuhive", 1, {{"post_ops", AttrStrings(c.ops)}}};
  std::string impl;
  auto out = RunNodeLayouts(spec, vin, {}, [&](const Kernel& k) {
    impl = std::string(k.implementation());
  });
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_FALSE(impl.empty());
  EXPECT_EQ(impl.find("ref"), std::string::npos) << c.name << ": " << impl;
  EXPECT_EQ(impl.find("simple"), std::string::npos) << c.name << ": " << impl;
  auto plain = ToPlain((*out)[0]);
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(TensorNear(*plain, expected, 1e-5, 1e-5));
}

INSTANTIATE_TEST_SUITE_P(
    Elementwise, ElementwiseImplementationTest,
    ::testing::Values(EwCase{"hardswish", {1, 480, 14, 14}, {"hardswish"}, {}},
                      EwCase{"hardsigmoid_mul_full", {1, 480, 14, 14}, {"hardsigmoid:0.1666667:0.5", "mul"}, {{1, 480, 14, 14}}},
                      EwCase{"hardsigmoid_mul_se", {2, 96, 7, 7}, {"hardsigmoid:0.1666667:0.5", "mul"}, {{2, 96, 1, 1}}},
                      EwCase{"mul_se", {8, 672, 7, 7}, {"mul"}, {{8, 672, 1, 1}}},
                      EwCase{"mul_full", {1, 40, 28, 28}, {"mul"}, {{1, 40, 28, 28}}},
                      EwCase{"swish", {1, 112, 14, 14}, {"swish"}, {}},
                      EwCase{"sum_relu", {1, 64, 8, 8}, {"sum", "relu"}, {{1, 64, 8, 8}}},
                      EwCase{"add_bias_clip", {1, 32, 5, 5}, {"add", "clip:0:6"}, {{32, 1, 1}}},
                      EwCase{"sigmoid_mul_full", {1, 48, 10, 10}, {"sigmoid", "mul"}, {{1, 48, 10, 10}}}),
    [](const ::testing::TestParamInfo<EwCase>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace gpuhive::testing
