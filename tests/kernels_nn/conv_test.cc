#include <cmath>
#include <string>
#include <utility>

#include "kernels/cpu/onednn/common.h"
#include "kernels_nn/blocked_harness.h"
#include "kernels_nn/reference.h"

namespace gpuhive::testing {
namespace {

struct ConvCase {
  const char* name;
  Shape x, w;
  std::vector<int64_t> strides, dilations, pads;  // pads: begin..., end...
  int64_t group;
  bool bias;
  const char* auto_pad;  // nullptr = NOTSET
  bool const_weights;
};

class ConvTest : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvTest, MatchesReference) {
  const ConvCase& c = GetParam();
  const size_t sp = c.x.size() - 2;
  Tensor x = RandomFloat(c.x, 1);
  Tensor w = RandomFloat(c.w, 2);
  Tensor b = RandomFloat({c.w[0]}, 3);
  NodeSpec spec{"Conv", "", 11, {}};
  if (!c.strides.empty()) spec.attrs["strides"] = AttrInts(c.strides);
  if (!c.dilations.empty()) spec.attrs["dilations"] = AttrInts(c.dilations);
  if (!c.pads.empty()) spec.attrs["pads"] = AttrInts(c.pads);
  if (c.auto_pad) spec.attrs["auto_pad"] = AttrString(c.auto_pad);
  spec.attrs["group"] = AttrInt(c.group);
  ref::ConvParams p;
  p.strides = c.strides.empty() ? std::vector<int64_t>(sp, 1) : c.strides;
  p.dilations = c.dilations.empty() ? std::vector<int64_t>(sp, 1) : c.dilations;
  p.group = c.group;
  p.pads_begin.assign(sp, 0);
  p.pads_end.assign(sp, 0);
  for (size_t i = 0; i < sp && !c.pads.empty(); ++i) {
    p.pads_begin[i] = c.pads[i];
    p.pads_end[i] = c.pads[i + sp];
  }
  if (c.auto_pad && std::string(c.auto_pad) != "VALID") {
    for (size_t i = 0; i < sp; ++i) {
      int64_t in = c.x[2 + i], s = p.strides[i], dk = (c.w[2 + i] - 1) * p.dilations[i] + 1;
      int64_t out = (in + s - 1) / s;
      int64_t total = std::max<int64_t>(0, (out - 1) * s + dk - in);
      bool upper = std::string(c.auto_pad) == "SAME_UPPER";
      p.pads_begin[i] = upper ? total / 2 : total - total / 2;
      p.pads_end[i] = total - p.pads_begin[i];
    }
  }
  Tensor expected = ref::Conv(x, w, c.bias ? &b : nullptr, p);
  RunOptions opts;
  if (c.const_weights) opts.constant_inputs = {1, 2};
  opts.num_threads = 2;
  auto out = c.bias ? RunNode(spec, {&x, &w, &b}, opts) : RunNode(spec, {&x, &w}, opts);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(TensorNear((*out)[0], expected, 1e-4, 1e-4));
}

INSTANTIATE_TEST_SUITE_P(
    Conv, ConvTest,
    ::testing::Values(
        ConvCase{"basic", {1, 3, 7, 7}, {4, 3, 3, 3}, {}, {}, {}, 1, true, nullptr, true},
        ConvCase{"pads_strides", {2, 4, 9, 8}, {6, 4, 3, 3}, {2, 2}, {}, {1, 0, 2, 1}, 1, true, nullptr, true},
        ConvCase{"runtime_weights", {1, 5, 6, 6}, {3, 5, 3, 2}, {1, 2}, {}, {1, 1, 1, 1}, 1, false, nullptr, false},
        ConvCase{"dilations", {1, 2, 10, 10}, {3, 2, 3, 3}, {1, 1}, {2, 3}, {2, 2, 2, 2}, 1, true, nullptr, true},
        ConvCase{"group2", {1, 4, 6, 6}, {6, 2, 3, 3}, {}, {}, {1, 1, 1, 1}, 2, true, nullptr, true},
        ConvCase{"depthwise", {2, 16, 8, 8}, {16, 1, 3, 3}, {2, 2}, {}, {1, 1, 1, 1}, 16, true, nullptr, true},
        ConvCase{"pointwise32", {1, 32, 5, 5}, {64, 32, 1, 1}, {}, {}, {}, 1, true, nullptr, true},
        ConvCase{"same_upper", {1, 3, 7, 8}, {2, 3, 4, 3}, {2, 3}, {}, {}, 1, false, "SAME_UPPER", true},
        ConvCase{"same_lower", {1, 3, 7, 8}, {2, 3, 4, 3}, {2, 2}, {}, {}, 1, true, "SAME_LOWER", true},
        ConvCase{"valid", {1, 3, 7, 8}, {2, 3, 3, 3}, {2, 2}, {}, {}, 1, true, "VALID", true},
        ConvCase{"conv1d", {2, 3, 11}, {4, 3, 3}, {2}, {2}, {1, 2}, 1, true, nullptr, true},
        ConvCase{"conv3d", {1, 2, 5, 6, 4}, {3, 2, 3, 2, 2}, {1, 2, 1}, {}, {1, 0, 1, 1, 1, 0}, 1, true, nullptr, true}),
    [](const ::testing::TestParamInfo<ConvCase>& info) { return std::string(info.param.name); });

TEST(ConvErrors, MismatchedChannelsIsInvalidArgument) {
  Tensor x = RandomFloat({1, 3, 5, 5}, 1);
  Tensor w = RandomFloat({2, 4, 3, 3}, 2);
  auto out = RunNode({"Conv", "", 11, {}}, {&x, &w});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
}

TEST(ConvErrors, RankMismatchIsInvalidArgument) {
  Tensor x = RandomFloat({1, 3, 5}, 1);
  Tensor w = RandomFloat({2, 3, 3, 3}, 2);
  auto out = RunNode({"Conv", "", 11, {}}, {&x, &w});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
}

// FusedConv post-op chains against Conv followed by the reference post-ops.
struct FusedCase {
  const char* name;
  std::vector<std::string> post_ops;
  std::vector<Shape> extras;
};

class FusedConvTest : public ::testing::TestWithParam<FusedCase> {};

TEST_P(FusedConvTest, MatchesUnfused) {
  const FusedCase& c = GetParam();
  Tensor x = RandomFloat({1, 16, 6, 6}, 11);
  Tensor w = RandomFloat({32, 16, 3, 3}, 12, -0.3f, 0.3f);
  Tensor b = RandomFloat({32}, 13);
  ref::ConvParams p{{1, 1}, {1, 1}, {1, 1}, {1, 1}, 1};
  Tensor expected = ref::Conv(x, w, &b, p);
  std::vector<Tensor> extras;
  for (size_t i = 0; i < c.extras.size(); ++i) extras.push_back(RandomFloat(c.extras[i], static_cast<uint32_t>(20 + i), 0.5f, 1.5f));
  ref::ApplyPostOps(expected, c.post_ops, extras);
  NodeSpec spec{"FusedConv", "gpuhive", 1, {{"pads", AttrInts({1, 1, 1, 1})}, {"post_ops", AttrStrings(c.post_ops)}}};
  std::vector<const Tensor*> inputs = {&x, &w, &b};
  for (const Tensor& t : extras) inputs.push_back(&t);
  RunOptions opts;
  opts.constant_inputs = {1, 2};
  auto out = RunNode(spec, inputs, opts);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(TensorNear((*out)[0], expected, 1e-4, 1e-4));

  // Same node with blocked layouts allowed: the blocked result converted back must match.
  std::vector<BlockedValue> vals;
  vals.reserve(inputs.size());
  for (const Tensor* t : inputs) vals.push_back(AsValue(*t));
  std::vector<const BlockedValue*> vin;
  for (const auto& v : vals) vin.push_back(&v);
  auto bout = RunNodeLayouts(spec, vin, {1, 2});
  ASSERT_TRUE(bout.ok()) << bout.status().ToString();
  auto plain = ToPlain((*bout)[0]);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_TRUE(TensorNear(*plain, expected, 1e-4, 1e-4));
}

INSTANTIATE_TEST_SUITE_P(
    FusedConv, FusedConvTest,
    ::testing::Values(
        FusedCase{"relu", {"relu"}, {}},
        FusedCase{"sum_relu", {"sum", "relu"}, {{1, 32, 6, 6}}},
        FusedCase{"hardswish", {"hardswish"}, {}},
        FusedCase{"hardsigmoid_mul", {"hardsigmoid:0.2:0.5", "mul"}, {{1, 32, 1, 1}}},
        FusedCase{"clip_leaky", {"clip:-0.5:0.7", "leaky_relu:0.1"}, {}},
        FusedCase{"add_full_sigmoid", {"add", "sigmoid"}, {{1, 32, 6, 6}}},
        FusedCase{"sub_div_spatial", {"sub", "div"}, {{1, 1, 6, 6}, {32, 1, 1}}},
        FusedCase{"max_min_scalar", {"max", "min"}, {{1}, {1}}},
        FusedCase{"gelu_swish_elu", {"gelu_erf", "swish", "elu:0.5"}, {}},
        FusedCase{"tanh_neg_abs_square", {"tanh", "neg", "abs", "square", "linear:0.5:0.25"}, {}},
        FusedCase{"exp_log_sqrt", {"clip:0.1:1", "exp", "log", "sqrt", "gelu_tanh"}, {}}),
    [](const ::testing::TestParamInfo<FusedCase>& info) { return std::string(info.param.name); });

TEST(ConvBlocked, ChainOfBlockedConvsMatchesPlain) {
  Tensor x = RandomFloat({2, 16, 8, 8}, 31);
  Tensor w1 = RandomFloat({32, 16, 3, 3}, 32, -0.2f, 0.2f);
  Tensor w2 = RandomFloat({32, 32, 1, 1}, 33, -0.2f, 0.2f);
  Tensor b = RandomFloat({32}, 34);
  ref::ConvParams p1{{1, 1}, {1, 1}, {1, 1}, {1, 1}, 1};
  ref::ConvParams p2{{2, 2}, {1, 1}, {0, 0}, {0, 0}, 1};
  Tensor mid = ref::Conv(x, w1, &b, p1);
  Tensor expected = ref::Conv(mid, w2, &b, p2);
  NodeSpec c1{"Conv", "", 11, {{"pads", AttrInts({1, 1, 1, 1})}}};
  NodeSpec c2{"Conv", "", 11, {{"strides", AttrInts({2, 2})}}};
  BlockedValue vx = AsValue(x), vw1 = AsValue(w1), vw2 = AsValue(w2), vb = AsValue(b);
  auto o1 = RunNodeLayouts(c1, {&vx, &vw1, &vb}, {1, 2});
  ASSERT_TRUE(o1.ok()) << o1.status().ToString();
  EXPECT_NE((*o1)[0].layout, Layout::kPlain) << "expected a channel-blocked output on this CPU";
  auto o2 = RunNodeLayouts(c2, {&(*o1)[0], &vw2, &vb}, {1, 2});
  ASSERT_TRUE(o2.ok()) << o2.status().ToString();
  auto plain = ToPlain((*o2)[0]);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_TRUE(TensorNear(*plain, expected, 1e-4, 1e-4));
}

TEST(Reorder, RoundTripsThroughBothBlockSizes) {
  Tensor x = RandomFloat({2, 19, 5, 3}, 41);  // 19 channels: padded in both block sizes
  for (const char* to : {"blocked8", "blocked16"}) {
    auto b = ReorderTo(AsValue(x), to);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_EQ(b->layout, std::string(to) == "blocked8" ? Layout::kBlocked8 : Layout::kBlocked16);
    auto back = ToPlain(*b);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_TRUE(TensorNear(*back, x, 0, 0));
  }
}

// ConvTranspose reference: scatter each input pixel through the kernel.
Tensor RefConvTranspose2D(const Tensor& x, const Tensor& w, const Tensor* b, std::vector<int64_t> s,
                          std::vector<int64_t> d, std::vector<int64_t> pads, std::vector<int64_t> out_pad,
                          int64_t g) {
  int64_t n = x.shape()[0], c = x.shape()[1], ih = x.shape()[2], iw = x.shape()[3];
  int64_t mg = w.shape()[1], kh = w.shape()[2], kw = w.shape()[3], m = mg * g, cg = c / g;
  int64_t oh = s[0] * (ih - 1) + out_pad[0] + (kh - 1) * d[0] + 1 - pads[0] - pads[2];
  int64_t ow = s[1] * (iw - 1) + out_pad[1] + (kw - 1) * d[1] + 1 - pads[1] - pads[3];
  std::vector<double> acc(static_cast<size_t>(n * m * oh * ow), 0.0);
  for (int64_t in = 0; in < n; ++in)
    for (int64_t ic = 0; ic < c; ++ic)
      for (int64_t y = 0; y < ih; ++y)
        for (int64_t xx = 0; xx < iw; ++xx)
          for (int64_t oc = 0; oc < mg; ++oc)
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                int64_t oy = y * s[0] + ky * d[0] - pads[0], ox = xx * s[1] + kx * d[1] - pads[1];
                if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
                int64_t moc = (ic / cg) * mg + oc;
                acc[static_cast<size_t>(((in * m + moc) * oh + oy) * ow + ox)] +=
                    static_cast<double>(x.as<float>()[((in * c + ic) * ih + y) * iw + xx]) *
                    w.as<float>()[((ic * mg + oc) * kh + ky) * kw + kx];
              }
  std::vector<float> r(acc.size());
  for (size_t i = 0; i < r.size(); ++i) r[i] = static_cast<float>(acc[i] + (b ? b->as<float>()[(i / (oh * ow)) % m] : 0.0));
  return MakeFloat({n, m, oh, ow}, r);
}

TEST(ConvTranspose, MatchesReferenceAcrossAttributes) {
  struct Case {
    Shape x, w;
    std::vector<int64_t> s, d, pads, out_pad;
    int64_t g;
    bool bias;
  };
  const Case cases[] = {
      {{1, 3, 4, 4}, {3, 2, 3, 3}, {1, 1}, {1, 1}, {0, 0, 0, 0}, {0, 0}, 1, true},
      {{2, 4, 3, 5}, {4, 3, 3, 2}, {2, 3}, {1, 1}, {1, 0, 1, 1}, {1, 2}, 1, true},
      {{1, 4, 4, 4}, {4, 2, 3, 3}, {2, 2}, {2, 1}, {1, 1, 0, 0}, {0, 1}, 2, false},
  };
  for (const Case& c : cases) {
    Tensor x = RandomFloat(c.x, 51), w = RandomFloat(c.w, 52), b = RandomFloat({c.w[1] * c.g}, 53);
    Tensor expected = RefConvTranspose2D(x, w, c.bias ? &b : nullptr, c.s, c.d, c.pads, c.out_pad, c.g);
    NodeSpec spec{"ConvTranspose", "", 11,
                  {{"strides", AttrInts(c.s)}, {"dilations", AttrInts(c.d)}, {"pads", AttrInts(c.pads)},
                   {"output_padding", AttrInts(c.out_pad)}, {"group", AttrInt(c.g)}}};
    for (bool constant : {false, true}) {
      RunOptions opts;
      if (constant) opts.constant_inputs = {1, 2};
      auto out = c.bias ? RunNode(spec, {&x, &w, &b}, opts) : RunNode(spec, {&x, &w}, opts);
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      EXPECT_TRUE(TensorNear((*out)[0], expected, 1e-4, 1e-4)) << ShapeToString(c.x);
    }
  }
}

TEST(ConvTranspose, OutputShapeAttributeSetsPadding) {
  Tensor x = RandomFloat({1, 2, 3, 3}, 61), w = RandomFloat({2, 3, 3, 3}, 62);
  // full size = 2*(3-1)+3 = 7; asking 6 leaves total padding 1, ONNX NOTSET puts it at the beginning.
  Tensor expected = RefConvTranspose2D(x, w, nullptr, {2, 2}, {1, 1}, {1, 1, 0, 0}, {0, 0}, 1);
  NodeSpec spec{"ConvTranspose", "", 11, {{"strides", AttrInts({2, 2})}, {"output_shape", AttrInts({6, 6})}}};
  auto out = RunNode(spec, {&x, &w});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(TensorNear((*out)[0], expected, 1e-4, 1e-4));
}


// Configurations where oneDNN 2.6 silently takes its reference implementation for the formats a
// chain of blocked convolutions hands over (a blocked ConvTranspose src, 8 channels per group in
// nChw16c, a src in nChw8c): the kernel must find a JIT/GEMM one (seconds vs milliseconds in real
// models) and still compute the right result.
struct ImplCase {
  const char* name;
  bool transposed;
  Shape x, w;
  std::vector<int64_t> strides, pads;
  int64_t group;
  const char* input_layout;  // layout X arrives in
  std::vector<std::string> post_ops;  // FusedConv when non-empty ("sum" reads a tensor like X's layout)
};

// Runs `spec` (made gpuhive.FusedConv when `post_ops` is non-empty; a "sum" adds a random tensor
// given in X's layout) on x given in `layout`, with w and b constant, and checks the plain result
// against `expected` (the reference before the post-ops, applied here). Returns the kernel's
// implementation and the output's layout ("" on failure, which is reported).
std::pair<std::string, Layout> RunAgainstReference(NodeSpec spec, const Tensor& x, const Tensor& w, const Tensor& b,
                                                   Tensor expected, const std::vector<std::string>& post_ops,
                                                   const char* layout, uint32_t seed,
                                                   ConvAlgorithm algorithm = ConvAlgorithm::kAuto) {
  std::vector<Tensor> extras;
  for (const std::string& op : post_ops) {
    if (op == "sum") extras.push_back(RandomFloat(expected.shape(), seed));
  }
  ref::ApplyPostOps(expected, post_ops, extras);
  if (!post_ops.empty()) {
    spec = NodeSpec{"FusedConv", "gpuhive", 1, spec.attrs};
    spec.attrs["post_ops"] = AttrStrings(post_ops);
  }
  std::vector<BlockedValue> values;  // x, w, b, extras
  for (const Tensor* t : {&x, &w, &b}) values.push_back(AsValue(*t));
  for (const Tensor& t : extras) values.push_back(AsValue(t));
  for (size_t i = 0; i < values.size(); ++i) {
    if (i == 1 || i == 2) continue;  // weights and bias stay plain
    auto v = ReorderTo(values[i], layout);
    if (!v.ok()) {
      ADD_FAILURE() << v.status().ToString();
      return {};
    }
    values[i] = std::move(v).value();
  }
  std::vector<const BlockedValue*> inputs;
  for (const BlockedValue& v : values) inputs.push_back(&v);
  std::string impl;
  auto out = RunNodeLayouts(
      spec, inputs, {1, 2}, [&](const Kernel& k) { impl = std::string(k.implementation()); }, algorithm);
  if (!out.ok()) {
    ADD_FAILURE() << out.status().ToString();
    return {};
  }
  auto plain = ToPlain((*out)[0]);
  if (!plain.ok()) {
    ADD_FAILURE() << plain.status().ToString();
    return {};
  }
  EXPECT_TRUE(TensorNear(*plain, expected, 1e-4, 1e-4)) << impl;
  return {impl, (*out)[0].layout};
}

class ConvImplementationTest : public ::testing::TestWithParam<ImplCase> {};

TEST_P(ConvImplementationTest, BlockedInputAvoidsReferenceAndMatches) {
  const ImplCase& c = GetParam();
  Tensor x = RandomFloat(c.x, 71);
  Tensor w = RandomFloat(c.w, 72, -0.3f, 0.3f);
  const int64_t m = c.transposed ? c.w[1] * c.group : c.w[0];
  Tensor b = RandomFloat({m}, 73);
  Tensor expected;
  if (c.transposed) {
    expected = RefConvTranspose2D(x, w, &b, c.strides, {1, 1}, c.pads, {0, 0}, c.group);
  } else {
    ref::ConvParams p{c.strides, {1, 1}, {c.pads[0], c.pads[1]}, {c.pads[2], c.pads[3]}, c.group};
    expected = ref::Conv(x, w, &b, p);
  }
  NodeSpec spec{c.transposed ? "ConvTranspose" : "Conv", "", 11,
                {{"strides", AttrInts(c.strides)}, {"pads", AttrInts(c.pads)}, {"group", AttrInt(c.group)}}};
  const auto [impl, layout] = RunAgainstReference(spec, x, w, b, std::move(expected), c.post_ops, c.input_layout, 74);
  EXPECT_FALSE(impl.empty());
  EXPECT_NE(impl.rfind("ref", 0), 0u) << "oneDNN reference implementation chosen: " << impl;
  // Consumers (binary, pooling) run the block this CPU does not prefer on their reference
  // implementations too (nChw8c on AVX-512, nChw16c on AVX2).
  if (layout != Layout::kPlain) {
    EXPECT_EQ(layout, cpu::onednn::PreferredBlockedLayout());
  }
}

INSTANTIATE_TEST_SUITE_P(
    ConvImplementation, ConvImplementationTest,
    ::testing::Values(
        // text_detector's upsampling: 24 channels (padded to 32 in nChw16c), 2x2 stride 2.
        ImplCase{"deconv_blocked16", true, {1, 24, 10, 10}, {24, 24, 2, 2}, {2, 2}, {0, 0, 0, 0}, 1, "blocked16", {}},
        ImplCase{"deconv_blocked16_to_one_channel", true, {1, 24, 12, 12}, {24, 1, 2, 2}, {2, 2}, {0, 0, 0, 0}, 1, "blocked16", {}},
        ImplCase{"deconv_blocked8", true, {1, 16, 6, 6}, {16, 8, 3, 3}, {2, 2}, {1, 1, 1, 1}, 1, "blocked8", {}},
        // RegNetY's grouped 3x3 convolutions: 8 channels per group.
        ImplCase{"group8ch_blocked16", false, {1, 48, 14, 14}, {48, 8, 3, 3}, {2, 2}, {1, 1, 1, 1}, 6, "blocked16", {}},
        ImplCase{"group8ch_plain_relu", false, {1, 48, 9, 9}, {48, 8, 3, 3}, {1, 1}, {1, 1, 1, 1}, 6, "plain", {"relu"}},
        ImplCase{"group8ch_blocked16_sum_relu", false, {1, 32, 8, 8}, {32, 8, 3, 3}, {1, 1}, {1, 1, 1, 1}, 4, "blocked16", {"sum", "relu"}},
        // ResNeXt's 4 channels per group (oneDNN's JIT kernel wants nChw4c, no gpuhive layout).
        ImplCase{"group4ch_blocked16", false, {1, 32, 10, 10}, {32, 4, 3, 3}, {1, 1}, {1, 1, 1, 1}, 8, "blocked16", {"relu"}},
        // A 1x1 convolution fed nChw8c.
        ImplCase{"pointwise_blocked8", false, {1, 32, 7, 7}, {64, 32, 1, 1}, {1, 1}, {0, 0, 0, 0}, 1, "blocked8", {"relu"}}),
    [](const ::testing::TestParamInfo<ImplCase>& info) { return std::string(info.param.name); });


// FP32 3x3 stride-1 convolutions on oneDNN's Winograd kernels (KernelOptions::conv_algorithm,
// conv.cc's WantsWinograd): which kernel ran is read from the implementation name, not from timing,
// and the result must match the reference whichever ran.
struct WinogradCase {
  const char* name;
  Shape x, w;
  int64_t stride;
  ConvAlgorithm algorithm;
  bool winograd;  // expected where the CPU has the kernels (direct everywhere else)
  std::vector<std::string> post_ops;
};

class ConvAlgorithmTest : public ::testing::TestWithParam<WinogradCase> {};

TEST_P(ConvAlgorithmTest, TakesWinogradWhereTheAlgorithmSaysAndMatches) {
  const WinogradCase& c = GetParam();
  Tensor x = RandomFloat(c.x, 81);
  Tensor w = RandomFloat(c.w, 82, -0.2f, 0.2f);
  Tensor b = RandomFloat({c.w[0]}, 83);
  ref::ConvParams p{{c.stride, c.stride}, {1, 1}, {1, 1}, {1, 1}, 1};
  NodeSpec spec{"Conv", "", 11, {{"strides", AttrInts({c.stride, c.stride})}, {"pads", AttrInts({1, 1, 1, 1})}}};
  const std::string impl =
      RunAgainstReference(spec, x, w, b, ref::Conv(x, w, &b, p), c.post_ops, "blocked16", 84, c.algorithm).first;
  ASSERT_FALSE(impl.empty());
  const bool winograd = impl.find("wino") != std::string::npos;
  EXPECT_EQ(winograd, c.winograd && CpuHasWinogradConv()) << impl;
  EXPECT_NE(impl.rfind("ref", 0), 0u) << impl;
}

INSTANTIATE_TEST_SUITE_P(
    ConvAlgorithm, ConvAlgorithmTest,
    ::testing::Values(
        // 28x28 outputs, 0.14 MiB of weights (F(2,3) adds 0.11 MiB).
        WinogradCase{"auto_28x28", {1, 64, 28, 28}, {64, 64, 3, 3}, 1, ConvAlgorithm::kAuto, true, {"relu"}},
        // Three rows with a residual sum: the batch-1 weight format, rows run one by one where
        // the 3-row primitive does not take it.
        WinogradCase{"auto_three_rows_sum", {3, 32, 16, 16}, {32, 32, 3, 3}, 1, ConvAlgorithm::kAuto, true, {"sum", "relu"}},
        // ResNet-50's third stage: F(2,3) would add 1.75 MiB to the layer's 2.25 MiB of weights,
        // more than auto pays for the time it saves; winograd takes it.
        WinogradCase{"auto_costly_copy", {1, 256, 14, 14}, {256, 256, 3, 3}, 1, ConvAlgorithm::kAuto, false, {"relu"}},
        WinogradCase{"winograd_costly_copy", {1, 256, 14, 14}, {256, 256, 3, 3}, 1, ConvAlgorithm::kWinograd, true, {"relu"}},
        // 7x7 outputs: the transform is reused too few times for its bytes.
        WinogradCase{"auto_7x7", {1, 64, 7, 7}, {64, 64, 3, 3}, 1, ConvAlgorithm::kAuto, false, {"relu"}},
        WinogradCase{"winograd_7x7", {1, 64, 7, 7}, {64, 64, 3, 3}, 1, ConvAlgorithm::kWinograd, true, {}},
        WinogradCase{"direct_28x28", {1, 64, 28, 28}, {64, 64, 3, 3}, 1, ConvAlgorithm::kDirect, false, {"relu"}},
        WinogradCase{"winograd_stride2", {1, 64, 28, 28}, {64, 64, 3, 3}, 2, ConvAlgorithm::kWinograd, false, {}}),
    [](const ::testing::TestParamInfo<WinogradCase>& info) { return std::string(info.param.name); });


// A ConvTranspose whose kernel equals its stride (no padding, dilation, groups or output padding:
// text_detector's 2x2 stride-2 upsampling) runs as gpuhive's own product-then-place path
// (conv.cc, IsStrideBlockDeconv) instead of oneDNN's GEMM deconvolution; any other one does not.
TEST(ConvTranspose, KernelEqualToStrideRunsAsProductsPlacedByStride) {
  struct Case {
    Shape x, w;
    std::vector<int64_t> strides, pads;
    bool own;
  };
  for (const Case& c : {Case{{2, 24, 5, 7}, {24, 10, 2, 2}, {2, 2}, {0, 0, 0, 0}, true},
                        Case{{1, 8, 6, 4}, {8, 3, 3, 2}, {3, 2}, {0, 0, 0, 0}, true},
                        Case{{1, 8, 6, 4}, {8, 3, 3, 3}, {2, 2}, {0, 0, 0, 0}, false},
                        Case{{1, 8, 6, 4}, {8, 3, 2, 2}, {2, 2}, {1, 0, 0, 0}, false}}) {
    Tensor x = RandomFloat(c.x, 91), w = RandomFloat(c.w, 92), b = RandomFloat({c.w[1]}, 93);
    Tensor expected = RefConvTranspose2D(x, w, &b, c.strides, {1, 1}, c.pads, {0, 0}, 1);
    NodeSpec spec{"ConvTranspose", "", 11, {{"strides", AttrInts(c.strides)}, {"pads", AttrInts(c.pads)}}};
    std::string impl;
    RunOptions opts;
    opts.constant_inputs = {1, 2};
    opts.implementation = &impl;
    auto out = RunNode(spec, {&x, &w, &b}, opts);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(impl.rfind("gpuhive:deconv_stride_blocks", 0) == 0, c.own) << impl << " " << ShapeToString(c.w);
    EXPECT_TRUE(TensorNear((*out)[0], expected, 1e-4, 1e-4)) << impl << " " << ShapeToString(c.w);
  }
}

}  // namespace
}  // namespace gpuhive::testing
