#include "gpuhive/passes.h"

#include <gtest/gtest.h>

#include <cmath>

#include "gpuhive/onnx_import.h"
#include "gpuhive/post_ops.h"
#include "onnx_test_util.h"

namespace gpuhive {
namespace {
using namespace gpuhive::testing;  // NOLINT
constexpr int kF = onnx::TensorProto::FLOAT;

std::unique_ptr<ir::Model> Import(const onnx::ModelProto& m) {
  auto r = ImportOnnxBytes(Serialize(m));
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : nullptr;
}

std::vector<std::string> OpTypes(const ir::Graph& g) {
  std::vector<std::string> ops;
  for (const auto& n : g.nodes()) ops.push_back(n->domain.empty() ? n->op_type : n->domain + "." + n->op_type);
  return ops;
}

const ir::Node* Find(const ir::Graph& g, const std::string& op) {
  for (const auto& n : g.nodes()) {
    if (n->op_type == op) return n.get();
  }
  ADD_FAILURE() << "no " << op << " node";
  static ir::Node none;
  return &none;
}

std::vector<std::string> PostOps(const ir::Node& n) {
  auto p = n.GetStrings("post_ops");
  EXPECT_TRUE(p.ok()) << n.Describe();
  return p.ok() ? *p : std::vector<std::string>{};
}

const float* F(const ir::Value* v) {
  EXPECT_TRUE(v && v->constant);
  return v->constant->as<float>();
}

// Naive reference kernels, written independently of the passes.
// 1x1 convolution of x[C_in, HW] with w[C_out, C_in] and bias b.
std::vector<float> Conv1x1(const std::vector<float>& x, int cin, int hw, const float* w, const float* b, int cout) {
  std::vector<float> y(cout * hw);
  for (int o = 0; o < cout; ++o)
    for (int p = 0; p < hw; ++p) {
      float s = b ? b[o] : 0.f;
      for (int i = 0; i < cin; ++i) s += w[o * cin + i] * x[i * hw + p];
      y[o * hw + p] = s;
    }
  return y;
}

TEST(FoldBatchNorm, ConvNumericsMatchConvThenBn) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "x", kF, {int64_t{1}, int64_t{2}, int64_t{2}, int64_t{2}});
  std::vector<float> w = {0.5f, -1.f, 2.f, 0.25f, 1.5f, 1.f};  // [3,2,1,1]
  std::vector<float> b = {0.1f, -0.2f, 0.3f};
  std::vector<float> gamma = {1.f, 2.f, 0.5f}, beta = {0.f, 1.f, -1.f}, mean = {0.5f, -0.5f, 2.f},
                     var = {1.f, 4.f, 0.25f};
  const float eps = 1e-3f;
  AddFloatInit(g, "W", {3, 2, 1, 1}, w);
  AddFloatInit(g, "B", {3}, b);
  AddFloatInit(g, "gamma", {3}, gamma);
  AddFloatInit(g, "beta", {3}, beta);
  AddFloatInit(g, "mean", {3}, mean);
  AddFloatInit(g, "var", {3}, var);
  AddNode(g, "Conv", {"x", "W", "B"}, {"c"});
  AddFloatAttr(AddNode(g, "BatchNormalization", {"c", "gamma", "beta", "mean", "var"}, {"y"}), "epsilon", eps);
  AddOutput(g, "y", kF, {int64_t{1}, int64_t{3}, int64_t{2}, int64_t{2}});
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  auto n = FoldBatchNorm(*model->graph);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1);
  ASSERT_EQ(OpTypes(*model->graph), std::vector<std::string>{"Conv"});
  const ir::Node& conv = *model->graph->nodes()[0];
  EXPECT_EQ(conv.outputs[0]->name, "y");
  EXPECT_TRUE(conv.outputs[0]->is_graph_output);

  std::vector<float> x = {1.f, 2.f, -3.f, 0.5f, 4.f, -1.f, 0.f, 2.5f};
  std::vector<float> ref = Conv1x1(x, 2, 4, w.data(), b.data(), 3);
  for (int c = 0; c < 3; ++c)
    for (int p = 0; p < 4; ++p) {
      float& v = ref[c * 4 + p];
      v = (v - mean[c]) / std::sqrt(var[c] + eps) * gamma[c] + beta[c];
    }
  std::vector<float> got = Conv1x1(x, 2, 4, F(conv.inputs[1]), F(conv.inputs[2]), 3);
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-5f) << i;
  // Spot check against numbers worked out by hand: channel 1, pixel 0:
  // conv = 2*1 + 0.25*4 - 0.2 = 2.8; bn = (2.8 + 0.5) / sqrt(4.001) * 2 + 1 = 4.29963...
  EXPECT_NEAR(got[4], 4.29963f, 1e-4f);
}

// text_detector's upsampling: ConvTranspose then BatchNormalization (0.75 ms of its 13 ms run
// unfolded). A 1x1 ConvTranspose with stride 1 is y[o, p] = sum_i W[i, o] x[i, p] + b[o].
TEST(FoldBatchNorm, ConvTransposeScalesItsOutputChannelsDimOne) {
  const std::vector<float> gamma = {1.f, 2.f, 0.5f}, beta = {0.f, 1.f, -1.f}, mean = {0.5f, -0.5f, 2.f},
                           var = {1.f, 4.f, 0.25f};
  // group 1: W [C_in 2, C_out 3, 1, 1]; group 3: W [C_in 3, 1, 1, 1] (C_out 3).
  auto build = [&](int64_t group) {
    auto m = MakeModel(13);
    auto* g = m.mutable_graph();
    const int64_t cin = group == 1 ? 2 : 3;
    AddInput(g, "x", kF, {int64_t{1}, cin, int64_t{1}, int64_t{2}});
    AddFloatInit(g, "W", {cin, group == 1 ? 3 : 1, 1, 1},
                 group == 1 ? std::vector<float>{0.5f, -1.f, 2.f, 0.25f, 1.5f, 1.f} : std::vector<float>{0.5f, -1.f, 2.f});
    AddFloatInit(g, "gamma", {3}, gamma);
    AddFloatInit(g, "beta", {3}, beta);
    AddFloatInit(g, "mean", {3}, mean);
    AddFloatInit(g, "var", {3}, var);
    AddIntAttr(AddNode(g, "ConvTranspose", {"x", "W"}, {"c"}), "group", group);
    AddFloatAttr(AddNode(g, "BatchNormalization", {"c", "gamma", "beta", "mean", "var"}, {"y"}), "epsilon", 0.f);
    AddOutput(g, "y", kF, {int64_t{1}, int64_t{3}, int64_t{1}, int64_t{2}});
    return m;
  };
  auto model = Import(build(1));
  ASSERT_NE(model, nullptr);
  ASSERT_EQ(*FoldBatchNorm(*model->graph), 1);
  ASSERT_EQ(OpTypes(*model->graph), std::vector<std::string>{"ConvTranspose"});
  const ir::Node& ct = *model->graph->nodes()[0];
  EXPECT_EQ(ct.outputs[0]->name, "y");
  const std::vector<float> w = {0.5f, -1.f, 2.f, 0.25f, 1.5f, 1.f};  // [C_in 2, C_out 3]
  const std::vector<float> x = {1.f, 2.f, -3.f, 0.5f};               // [C_in 2, 2 pixels]
  const float* fw = F(ct.inputs[1]);
  const float* fb = F(ct.inputs[2]);
  for (int o = 0; o < 3; ++o)
    for (int p = 0; p < 2; ++p) {
      float conv = 0.f, folded = fb[o];
      for (int i = 0; i < 2; ++i) {
        conv += w[i * 3 + o] * x[i * 2 + p];
        folded += fw[i * 3 + o] * x[i * 2 + p];
      }
      EXPECT_NEAR(folded, (conv - mean[o]) / std::sqrt(var[o]) * gamma[o] + beta[o], 1e-5f) << o << " " << p;
    }
  // Grouped: dim 1 is the channel within a group only; left alone.
  auto grouped = Import(build(3));
  ASSERT_NE(grouped, nullptr);
  EXPECT_EQ(*FoldBatchNorm(*grouped->graph), 0);
}

TEST(FoldBatchNorm, GemmTransBWithBias) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "a", kF, {int64_t{2}, int64_t{3}});
  std::vector<float> bw = {1, 2, 3, 4, 5, 6, -1, 0, 1, 0.5f, 0.5f, 0.5f};  // [N=4, K=3]
  std::vector<float> c = {1.f, -1.f, 0.f, 2.f};
  std::vector<float> gamma = {1.f, 0.5f, 2.f, -1.f}, beta = {0.f, 1.f, 2.f, 3.f}, mean = {1.f, 0.f, -1.f, 0.5f},
                     var = {0.5f, 1.f, 2.f, 4.f};
  AddFloatInit(g, "B", {4, 3}, bw);
  AddFloatInit(g, "C", {4}, c);
  for (auto [name, v] : {std::pair{"gamma", &gamma}, {"beta", &beta}, {"mean", &mean}, {"var", &var}}) {
    AddFloatInit(g, name, {4}, *v);
  }
  auto* gemm = AddNode(g, "Gemm", {"a", "B", "C"}, {"h"});
  AddIntAttr(gemm, "transB", 1);
  AddFloatAttr(gemm, "alpha", 2.f);
  AddFloatAttr(gemm, "beta", 0.5f);
  AddNode(g, "BatchNormalization", {"h", "gamma", "beta", "mean", "var"}, {"y"});
  AddOutput(g, "y", kF, {int64_t{2}, int64_t{4}});
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  ASSERT_EQ(*FoldBatchNorm(*model->graph), 1);
  ASSERT_EQ(OpTypes(*model->graph), std::vector<std::string>{"Gemm"});
  const ir::Node& n = *model->graph->nodes()[0];
  std::vector<float> a = {1.f, -2.f, 0.5f, 3.f, 1.f, -1.f};
  auto gemm_ref = [&](const float* bm, const float* cv, float alpha, float be, int i, int j) {
    float s = 0.f;
    for (int k = 0; k < 3; ++k) s += a[i * 3 + k] * bm[j * 3 + k];
    return alpha * s + be * cv[j];
  };
  float new_beta = *n.GetFloat("beta", 1.f);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) {
      float h = gemm_ref(bw.data(), c.data(), 2.f, 0.5f, i, j);
      float ref = (h - mean[j]) / std::sqrt(var[j] + 1e-5f) * gamma[j] + beta[j];
      float got = gemm_ref(F(n.inputs[1]), F(n.inputs[2]), *n.GetFloat("alpha", 1.f), new_beta, i, j);
      EXPECT_NEAR(got, ref, 1e-4f) << i << "," << j;
    }
}

TEST(FoldBatchNorm, MatMulBecomesMatMulPlusAdd) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "a", kF, {int64_t{1}, int64_t{2}});
  std::vector<float> bw = {1.f, 2.f, 3.f, 4.f};  // [K=2, N=2]
  AddFloatInit(g, "B", {2, 2}, bw);
  AddFloatInit(g, "gamma", {2}, {2.f, 1.f});
  AddFloatInit(g, "beta", {2}, {0.5f, 0.f});
  AddFloatInit(g, "mean", {2}, {1.f, 1.f});
  AddFloatInit(g, "var", {2}, {3.f, 0.f});
  AddNode(g, "MatMul", {"a", "B"}, {"h"});
  AddFloatAttr(AddNode(g, "BatchNormalization", {"h", "gamma", "beta", "mean", "var"}, {"y"}), "epsilon", 1.f);
  AddOutput(g, "y", kF, {int64_t{1}, int64_t{2}});
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  ASSERT_EQ(*FoldBatchNorm(*model->graph), 1);
  ASSERT_EQ(OpTypes(*model->graph), (std::vector<std::string>{"MatMul", "Add"}));
  const ir::Node& mm = *model->graph->nodes()[0];
  const ir::Node& add = *model->graph->nodes()[1];
  // a = [1, 1]: h = [4, 6]; y = (h - 1) / sqrt(var + 1) * gamma + beta = [3/2*2+0.5, 5/1*1] = [3.5, 5]
  const float* nb = F(mm.inputs[1]);
  const float* bias = F(add.inputs[1]);
  float y0 = nb[0] + nb[2] + bias[0], y1 = nb[1] + nb[3] + bias[1];
  EXPECT_NEAR(y0, 3.5f, 1e-5f);
  EXPECT_NEAR(y1, 5.f, 1e-5f);
  EXPECT_EQ(add.outputs[0]->name, "y");
}

TEST(FoldBatchNorm, StandaloneBnStays) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "x", kF, {int64_t{1}, int64_t{2}, int64_t{2}, int64_t{2}});
  for (const char* n : {"gamma", "beta", "mean", "var"}) AddFloatInit(g, n, {2}, {1.f, 1.f});
  AddNode(g, "Relu", {"x"}, {"r"});
  AddNode(g, "BatchNormalization", {"r", "gamma", "beta", "mean", "var"}, {"y"});
  AddOutput(g, "y", kF, {int64_t{1}, int64_t{2}, int64_t{2}, int64_t{2}});
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(*FoldBatchNorm(*model->graph), 0);
  EXPECT_EQ(OpTypes(*model->graph), (std::vector<std::string>{"Relu", "BatchNormalization"}));
}

// x[1,2,4,4] -> Conv(W[2,2,1,1], no bias) -> c
onnx::ModelProto ConvModel() {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "x", kF, {int64_t{1}, int64_t{2}, int64_t{4}, int64_t{4}});
  AddFloatInit(g, "W", {2, 2, 1, 1}, {1.f, 0.f, 0.f, 1.f});
  AddNode(g, "Conv", {"x", "W"}, {"c"}, "conv");
  return m;
}

TEST(FuseConvAddBias, PerChannelConstant) {
  auto m = ConvModel();
  auto* g = m.mutable_graph();
  AddFloatInit(g, "bias", {1, 2, 1, 1}, {0.5f, -1.5f});
  AddNode(g, "Add", {"bias", "c"}, {"y"});
  AddOutput(g, "y", kF, {int64_t{1}, int64_t{2}, int64_t{4}, int64_t{4}});
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  ASSERT_EQ(*FuseConvAddBias(*model->graph), 1);
  ASSERT_EQ(OpTypes(*model->graph), std::vector<std::string>{"Conv"});
  const ir::Node& conv = *model->graph->nodes()[0];
  EXPECT_EQ(F(conv.inputs[2])[0], 0.5f);
  EXPECT_EQ(F(conv.inputs[2])[1], -1.5f);
  EXPECT_EQ(conv.outputs[0]->name, "y");
}

TEST(FuseConvAddBias, NonChannelShapeStays) {
  auto m = ConvModel();
  auto* g = m.mutable_graph();
  AddFloatInit(g, "bias", {4}, {1.f, 2.f, 3.f, 4.f});  // broadcasts along W, not channels
  AddNode(g, "Add", {"c", "bias"}, {"y"});
  AddOutput(g, "y", kF, {int64_t{1}, int64_t{2}, int64_t{4}, int64_t{4}});
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(*FuseConvAddBias(*model->graph), 0);
}

TEST(FusePostOps, ConvSumRelu) {
  auto m = ConvModel();
  auto* g = m.mutable_graph();
  AddNode(g, "Add", {"c", "x"}, {"s"});  // residual of the conv's exact output shape
  AddNode(g, "Relu", {"s"}, {"y"});
  AddOutput(g, "y", kF, {int64_t{1}, int64_t{2}, int64_t{4}, int64_t{4}});
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  auto n = FusePostOps(*model, {});
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_EQ(OpTypes(*model->graph), std::vector<std::string>{"gpuhive.FusedConv"});
  const ir::Node& f = *model->graph->nodes()[0];
  EXPECT_EQ(PostOps(f), (std::vector<std::string>{"sum", "relu"}));
  ASSERT_EQ(f.inputs.size(), 4u);
  EXPECT_EQ(f.inputs[0]->name, "x");
  EXPECT_EQ(f.inputs[1]->name, "W");
  EXPECT_EQ(f.inputs[2], nullptr);
  EXPECT_EQ(f.inputs[3]->name, "x");
  EXPECT_EQ(f.outputs[0]->name, "y");
  EXPECT_EQ(f.opset, 1);
  EXPECT_EQ(model->opsets.at("gpuhive"), 1);
}

TEST(FusePostOps, ClipOpset13AndLeakyRelu) {
  auto m = ConvModel();
  auto* g = m.mutable_graph();
  AddFloatInit(g, "lo", {}, {0.f});
  AddFloatInit(g, "hi", {}, {6.f});
  AddFloatAttr(AddNode(g, "LeakyRelu", {"c"}, {"l"}), "alpha", 0.25f);
  AddNode(g, "Clip", {"l", "lo", "hi"}, {"y"});
  AddOutput(g, "y", kF, {int64_t{1}, int64_t{2}, int64_t{4}, int64_t{4}});
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  ASSERT_EQ(*FusePostOps(*model, {}), 1);
  ASSERT_EQ(model->graph->nodes().size(), 1u);
  auto ops = PostOps(*model->graph->nodes()[0]);
  ASSERT_EQ(ops.size(), 2u);
  auto parsed = ParsePostOps(ops);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ((*parsed)[0].kind, PostOp::Kind::kLeakyRelu);
  EXPECT_FLOAT_EQ((*parsed)[0].alpha, 0.25f);
  EXPECT_EQ((*parsed)[1].kind, PostOp::Kind::kClip);
  EXPECT_FLOAT_EQ((*parsed)[1].alpha, 0.f);
  EXPECT_FLOAT_EQ((*parsed)[1].beta, 6.f);
}

TEST(FusePostOps, ClipOpset6AttrsAndMissingBound) {
  auto m = ConvModel();
  m.mutable_opset_import(0)->set_version(10);
  auto* g = m.mutable_graph();
  AddFloatAttr(AddNode(g, "Clip", {"c"}, {"y"}), "min", -1.f);  // max defaults to +inf
  AddOutput(g, "y", kF, {int64_t{1}, int64_t{2}, int64_t{4}, int64_t{4}});
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  ASSERT_EQ(*FusePostOps(*model, {}), 1);
  auto op = ParsePostOp(PostOps(*model->graph->nodes()[0]).at(0));
  ASSERT_TRUE(op.ok());
  EXPECT_FLOAT_EQ(op->alpha, -1.f);
  EXPECT_GE(op->beta, 3.3e38f);
}

TEST(FusePostOps, SwishAndGeluPatterns) {
  auto m = ConvModel();
  auto* g = m.mutable_graph();
  AddNode(g, "Sigmoid", {"c"}, {"sg"});
  AddNode(g, "Mul", {"sg", "c"}, {"sw"});
  // GELU as exported by PyTorch: (x * (1 + erf(x / 1.4142))) * 0.5
  AddFloatInit(g, "sqrt2", {}, {1.4142135f});
  AddFloatInit(g, "one", {}, {1.f});
  AddFloatInit(g, "half", {}, {0.5f});
  AddNode(g, "Div", {"sw", "sqrt2"}, {"d"});
  AddNode(g, "Erf", {"d"}, {"e"});
  AddNode(g, "Add", {"e", "one"}, {"p"});
  AddNode(g, "Mul", {"sw", "p"}, {"q"});
  AddNode(g, "Mul", {"q", "half"}, {"y"});
  AddOutput(g, "y", kF, {int64_t{1}, int64_t{2}, int64_t{4}, int64_t{4}});
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  ASSERT_EQ(*FusePostOps(*model, {}), 1);
  ASSERT_EQ(OpTypes(*model->graph), std::vector<std::string>{"gpuhive.FusedConv"});
  EXPECT_EQ(PostOps(*model->graph->nodes()[0]), (std::vector<std::string>{"swish", "gelu_erf"}));
}

TEST(FusePostOps, GeluVariantsMulBySqrtHalf) {
  for (int variant = 0; variant < 2; ++variant) {
    auto m = ConvModel();
    auto* g = m.mutable_graph();
    AddFloatInit(g, "r", {}, {0.70710678f});
    AddFloatInit(g, "one", {}, {1.f});
    AddFloatInit(g, "half", {}, {0.5f});
    AddNode(g, "Mul", {"c", "r"}, {"d"});
    AddNode(g, "Erf", {"d"}, {"e"});
    AddNode(g, "Add", {"one", "e"}, {"p"});
    if (variant == 0) {  // x * (0.5 * (1 + erf))
      AddNode(g, "Mul", {"p", "half"}, {"h"});
      AddNode(g, "Mul", {"c", "h"}, {"y"});
    } else {  // (0.5 * x) * (1 + erf)
      AddNode(g, "Mul", {"half", "c"}, {"h"});
      AddNode(g, "Mul", {"h", "p"}, {"y"});
    }
    AddOutput(g, "y", kF, {int64_t{1}, int64_t{2}, int64_t{4}, int64_t{4}});
    auto model = Import(m);
    ASSERT_NE(model, nullptr);
    ASSERT_EQ(*FusePostOps(*model, {}), 1) << variant;
    ASSERT_EQ(OpTypes(*model->graph), std::vector<std::string>{"gpuhive.FusedConv"}) << variant;
    EXPECT_EQ(PostOps(*model->graph->nodes()[0]), std::vector<std::string>{"gelu_erf"});
  }
}

TEST(FusePostOps, MatMulBiasAddAndGemmRelu) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "a", kF, {std::string("N"), int64_t{3}});
  AddFloatInit(g, "B", {3, 2}, {1, 2, 3, 4, 5, 6});
  AddFloatInit(g, "bias", {2}, {1, 2});
  AddFloatInit(g, "G", {2, 2}, {1, 0, 0, 1});
  AddNode(g, "MatMul", {"a", "B"}, {"mm"});
  AddNode(g, "Add", {"mm", "bias"}, {"h"});
  AddNode(g, "Gemm", {"h", "G"}, {"gm"});
  AddNode(g, "Relu", {"gm"}, {"y"});
  AddOutput(g, "y", kF, {std::string("N"), int64_t{2}});
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  ASSERT_EQ(*FusePostOps(*model, {}), 2);
  ASSERT_EQ(OpTypes(*model->graph), (std::vector<std::string>{"gpuhive.FusedMatMul", "gpuhive.FusedGemm"}));
  const ir::Node& mm = *model->graph->nodes()[0];
  EXPECT_EQ(PostOps(mm), std::vector<std::string>{"add"});
  ASSERT_EQ(mm.inputs.size(), 3u);
  EXPECT_EQ(mm.inputs[2]->name, "bias");
  const ir::Node& gm = *model->graph->nodes()[1];
  EXPECT_EQ(PostOps(gm), std::vector<std::string>{"relu"});
  ASSERT_EQ(gm.inputs.size(), 3u);
  EXPECT_EQ(gm.inputs[2], nullptr);  // Gemm's C slot, kept for the convention
  EXPECT_EQ(gm.inputs[0], mm.outputs[0]);
}

TEST(FusePostOps, RespectsSupportsOutputsAndDtype) {
  auto build = [] {
    auto m = ConvModel();
    AddNode(m.mutable_graph(), "Relu", {"c"}, {"y"});
    AddOutput(m.mutable_graph(), "y", kF, {int64_t{1}, int64_t{2}, int64_t{4}, int64_t{4}});
    return m;
  };
  {
    auto model = Import(build());
    OptimizeOptions o;
    o.supports = [](const std::string&, const std::string& op) { return op != "FusedConv"; };
    EXPECT_EQ(*FusePostOps(*model, o), 0);
    EXPECT_EQ(OpTypes(*model->graph), (std::vector<std::string>{"Conv", "Relu"}));
  }
  {
    auto m = build();  // conv output is also a graph output: it must stay observable
    AddOutput(m.mutable_graph(), "c", kF, {int64_t{1}, int64_t{2}, int64_t{4}, int64_t{4}});
    auto model = Import(m);
    EXPECT_EQ(*FusePostOps(*model, {}), 0);
  }
  {
    auto model = Import(build());
    model->graph->FindValue("c")->dtype = DataType::kUndefined;  // unknown dtype: no fusion
    EXPECT_EQ(*FusePostOps(*model, {}), 0);
  }
}

TEST(FuseElementwiseChains, ChainOfUnaryAndScalarOps) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "x", kF, {int64_t{2}, int64_t{8}});
  AddFloatInit(g, "two", {}, {2.f});
  AddFloatInit(g, "three", {1}, {3.f});
  AddFloatInit(g, "row", {8}, {1, 2, 3, 4, 5, 6, 7, 8});
  AddNode(g, "Exp", {"x"}, {"a"});
  AddNode(g, "Mul", {"two", "a"}, {"b"});
  AddNode(g, "Add", {"b", "three"}, {"c"});
  AddNode(g, "Sub", {"c", "row"}, {"d"});
  AddNode(g, "Pow", {"d", "two"}, {"e"});
  AddNode(g, "Sigmoid", {"e"}, {"y"});
  AddOutput(g, "y", kF, {int64_t{2}, int64_t{8}});
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  ASSERT_EQ(*FuseElementwiseChains(*model, {}), 1);
  ASSERT_EQ(OpTypes(*model->graph), std::vector<std::string>{"gpuhive.Elementwise"});
  const ir::Node& f = *model->graph->nodes()[0];
  EXPECT_EQ(PostOps(f), (std::vector<std::string>{"exp", "linear:2:0", "linear:1:3", "sub", "square", "sigmoid"}));
  ASSERT_EQ(f.inputs.size(), 2u);
  EXPECT_EQ(f.inputs[0]->name, "x");
  EXPECT_EQ(f.inputs[1]->name, "row");
  EXPECT_EQ(f.outputs[0]->name, "y");
}

TEST(FuseElementwiseChains, FirstBinaryOpAndBranching) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "x", kF, {int64_t{4}});
  AddInput(g, "z", kF, {int64_t{4}});
  AddNode(g, "Max", {"x", "z"}, {"a"});
  AddNode(g, "Abs", {"a"}, {"b"});
  AddNode(g, "Neg", {"b"}, {"c"});  // b has two consumers: the chain stops at b
  AddNode(g, "Exp", {"b"}, {"d"});
  AddOutput(g, "c", kF, {int64_t{4}});
  AddOutput(g, "d", kF, {int64_t{4}});
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  ASSERT_EQ(*FuseElementwiseChains(*model, {}), 1);
  ASSERT_EQ(OpTypes(*model->graph), (std::vector<std::string>{"gpuhive.Elementwise", "Neg", "Exp"}));
  const ir::Node& f = *model->graph->nodes()[0];
  EXPECT_EQ(PostOps(f), (std::vector<std::string>{"max", "abs"}));
  EXPECT_EQ(f.inputs[0]->name, "x");
  EXPECT_EQ(f.inputs[1]->name, "z");
  EXPECT_EQ(f.outputs[0]->name, "b");
}

TEST(FuseElementwiseChains, SingleOpOnlyForChannelBroadcast) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "x", kF, {std::string("N"), int64_t{8}, int64_t{4}, int64_t{4}});
  AddInput(g, "s", kF, {std::string("N"), int64_t{8}, int64_t{1}, int64_t{1}});
  AddNode(g, "Mul", {"s", "x"}, {"y"});  // SE scaling
  AddNode(g, "Relu", {"y"}, {"r"});      // alone after the Elementwise: absorbed into it
  AddNode(g, "Tanh", {"x"}, {"t"});      // single unary op: left alone
  AddOutput(g, "r", kF, {std::string("N"), int64_t{8}, int64_t{4}, int64_t{4}});
  AddOutput(g, "t", kF, {std::string("N"), int64_t{8}, int64_t{4}, int64_t{4}});
  {
    auto model = Import(m);
    ASSERT_NE(model, nullptr);
    ASSERT_EQ(*FuseElementwiseChains(*model, {}), 1);
    auto ops = OpTypes(*model->graph);
    std::sort(ops.begin(), ops.end());
    EXPECT_EQ(ops, (std::vector<std::string>{"Tanh", "gpuhive.Elementwise"}));
    const ir::Node& f = *Find(*model->graph, "Elementwise");
    EXPECT_EQ(PostOps(f), (std::vector<std::string>{"mul", "relu"}));
    EXPECT_EQ(f.inputs[0]->name, "x");
    EXPECT_EQ(f.inputs[1]->name, "s");
  }
  m.mutable_graph()->mutable_node(1)->set_op_type("Identity");
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  ASSERT_EQ(*FuseElementwiseChains(*model, {}), 1);
  EXPECT_EQ(PostOps(*Find(*model->graph, "Elementwise")), std::vector<std::string>{"mul"});
}

TEST(EliminateIdentity, KeepsGraphOutputNames) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "x", kF, {int64_t{2}, int64_t{3}});
  AddFloatInit(g, "shape", {}, {});
  g->mutable_initializer(0)->set_data_type(onnx::TensorProto::INT64);
  g->mutable_initializer(0)->add_dims(2);
  g->mutable_initializer(0)->clear_raw_data();
  g->mutable_initializer(0)->add_int64_data(0);
  g->mutable_initializer(0)->add_int64_data(-1);
  AddNode(g, "Relu", {"x"}, {"a"});
  AddNode(g, "Identity", {"a"}, {"b"});
  AddNode(g, "Dropout", {"b"}, {"c"});
  AddIntAttr(AddNode(g, "Cast", {"c"}, {"d"}), "to", onnx::TensorProto::FLOAT);
  AddNode(g, "Reshape", {"d", "shape"}, {"e"});
  AddNode(g, "Identity", {"e"}, {"y"});
  AddOutput(g, "y", kF, {int64_t{2}, int64_t{3}});
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  auto n = EliminateIdentity(*model->graph);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 5);
  ASSERT_EQ(OpTypes(*model->graph), std::vector<std::string>{"Relu"});
  EXPECT_EQ(model->graph->nodes()[0]->outputs[0]->name, "y");
  EXPECT_EQ(model->graph->outputs()[0]->name, "y");
}

TEST(EliminateIdentity, IdentityFromInputToOutputStays) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "x", kF, {int64_t{2}});
  AddNode(g, "Identity", {"x"}, {"y"});
  AddOutput(g, "y", kF, {int64_t{2}});
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(*EliminateIdentity(*model->graph), 0);
  EXPECT_EQ(model->graph->nodes().size(), 1u);
}

TEST(EliminateIdentity, ValueUsedBySubgraphKeepsItsName) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "cond", onnx::TensorProto::BOOL, {});
  AddInput(g, "x", kF, {int64_t{2}});
  AddNode(g, "Relu", {"x"}, {"r"});
  AddNode(g, "Identity", {"r"}, {"named"});
  auto* iff = AddNode(g, "If", {"cond"}, {"y"});
  auto* tb = AddGraphAttr(iff, "then_branch");
  AddNode(tb, "Neg", {"named"}, {"t"});
  AddOutput(tb, "t", kF, {int64_t{2}});
  auto* eb = AddGraphAttr(iff, "else_branch");
  AddNode(eb, "Abs", {"named"}, {"e"});
  AddOutput(eb, "e", kF, {int64_t{2}});
  AddOutput(g, "y", kF, {int64_t{2}});
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(*EliminateIdentity(*model->graph), 0);
  const ir::Node* if_node = Find(*model->graph, "If");
  ASSERT_EQ(if_node->implicit_inputs.size(), 1u);
  EXPECT_EQ(if_node->implicit_inputs[0]->name, "named");
  ASSERT_TRUE(OptimizeModel(*model, {}).ok());
  EXPECT_EQ(Find(*model->graph, "If")->implicit_inputs[0]->name, "named");
}

// Found by the fuzzer: nodes without outputs (legal protobuf, nonsense graph) must not crash any
// pass.
TEST(OptimizeModel, NodesWithoutOutputsAreHarmless) {
  auto m = ConvModel();
  auto* g = m.mutable_graph();
  for (const char* n : {"gamma", "beta", "mean", "var"}) AddFloatInit(g, n, {2}, {1.f, 1.f});
  AddNode(g, "Identity", {"x"}, {});
  AddNode(g, "Dropout", {"x"}, {});
  AddNode(g, "BatchNormalization", {"c", "gamma", "beta", "mean", "var"}, {});
  AddNode(g, "Relu", {"x"}, {"y"});
  AddOutput(g, "y", kF, {int64_t{1}, int64_t{2}, int64_t{4}, int64_t{4}});
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  ASSERT_TRUE(OptimizeModel(*model, {}).ok());
  ASSERT_EQ(model->graph->nodes().size(), 1u);  // everything without a use is gone
  EXPECT_EQ(model->graph->nodes()[0]->op_type, "Relu");
}

// Test evaluator: float Add/Mul of equal shapes; everything else refused.
StatusOr<std::vector<Tensor>> TestEvaluator(const ir::Node& n, const std::vector<const Tensor*>& in) {
  if ((n.op_type != "Add" && n.op_type != "Mul") || in.size() != 2 || in[0]->shape() != in[1]->shape()) {
    return Unimplemented("test evaluator: {}", n.op_type);
  }
  ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(DataType::kFloat32, in[0]->shape()));
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    float a = in[0]->as<float>()[i], b = in[1]->as<float>()[i];
    t.as<float>()[i] = n.op_type == "Add" ? a + b : a * b;
  }
  std::vector<Tensor> out;
  out.push_back(std::move(t));
  return out;
}

TEST(FoldConstants, EvaluatesConstantSubgraphsAndShapes) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "x", kF, {int64_t{2}, int64_t{3}});
  AddInput(g, "dyn", kF, {std::string("N"), int64_t{3}});
  AddFloatInit(g, "k1", {2}, {1.f, 2.f});
  AddFloatInit(g, "k2", {2}, {10.f, 20.f});
  AddNode(g, "Add", {"k1", "k2"}, {"s"});
  AddNode(g, "Mul", {"s", "k1"}, {"p"});       // depends on a folded value
  AddNode(g, "Shape", {"x"}, {"shape_x"});     // static: folds without the evaluator
  AddNode(g, "Size", {"x"}, {"size_x"});
  AddNode(g, "Shape", {"dyn"}, {"shape_dyn"}); // symbolic: stays
  AddNode(g, "RandomNormalLike", {"k1"}, {"rnd"});
  for (const char* o : {"p", "shape_x", "size_x", "shape_dyn", "rnd"}) AddOutputName(g, o);
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  OptimizeOptions opt;
  opt.evaluator = TestEvaluator;
  auto n = FoldConstants(*model->graph, opt);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 4);
  const ir::Graph& gr = *model->graph;
  EXPECT_EQ(OpTypes(gr), (std::vector<std::string>{"Shape", "RandomNormalLike"}));
  const ir::Value* p = gr.FindValue("p");
  ASSERT_TRUE(p->is_constant());
  EXPECT_EQ(p->constant->as<float>()[0], 11.f);
  EXPECT_EQ(p->constant->as<float>()[1], 44.f);
  const ir::Value* sx = gr.FindValue("shape_x");
  ASSERT_TRUE(sx->is_constant());
  EXPECT_EQ(sx->constant->dtype(), DataType::kInt64);
  EXPECT_EQ(std::vector<int64_t>(sx->constant->as<int64_t>(), sx->constant->as<int64_t>() + 2),
            (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(gr.FindValue("size_x")->constant->as<int64_t>()[0], 6);

  // A result declared larger than the limit is never computed.
  {
    auto m2 = MakeModel(13);
    auto* g2 = m2.mutable_graph();
    AddFloatInit(g2, "big_a", {1000}, std::vector<float>(1000, 1.f));
    AddFloatInit(g2, "big_b", {1000}, std::vector<float>(1000, 2.f));
    AddNode(g2, "Add", {"big_a", "big_b"}, {"big"});
    AddOutput(g2, "big", kF, {int64_t{1000}});
    auto big = Import(m2);
    ASSERT_NE(big, nullptr);
    int calls = 0;
    OptimizeOptions limited;
    limited.max_folded_bytes = 3999;
    limited.evaluator = [&](const ir::Node& n, const std::vector<const Tensor*>& in) {
      ++calls;
      return TestEvaluator(n, in);
    };
    EXPECT_EQ(*FoldConstants(*big->graph, limited), 0);
    EXPECT_EQ(calls, 0);
    limited.max_folded_bytes = 4000;
    EXPECT_EQ(*FoldConstants(*big->graph, limited), 1);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(big->graph->FindValue("big")->constant->as<float>()[999], 3.f);
  }
  // The size limit keeps large results out.
  auto model2 = Import(m);
  opt.max_folded_bytes = 4;
  EXPECT_EQ(*FoldConstants(*model2->graph, opt), 2);  // only Shape/Size
}

TEST(OptimizeModel, ConvBnReluBecomesOneFusedConv) {
  auto m = ConvModel();
  auto* g = m.mutable_graph();
  for (const char* n : {"gamma", "beta", "mean", "var"}) AddFloatInit(g, n, {2}, {1.f, 0.5f});
  AddNode(g, "BatchNormalization", {"c", "gamma", "beta", "mean", "var"}, {"bn"});
  AddNode(g, "Identity", {"bn"}, {"id"});
  AddNode(g, "Relu", {"id"}, {"y"});
  AddNode(g, "Neg", {"x"}, {"unused"});
  AddOutput(g, "y", kF, {int64_t{1}, int64_t{2}, int64_t{4}, int64_t{4}});
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  ASSERT_TRUE(OptimizeModel(*model, {}).ok());
  ASSERT_EQ(OpTypes(*model->graph), std::vector<std::string>{"gpuhive.FusedConv"});
  const ir::Node& f = *model->graph->nodes()[0];
  EXPECT_EQ(PostOps(f), std::vector<std::string>{"relu"});
  ASSERT_NE(f.inputs[2], nullptr);  // the folded BN bias
  EXPECT_TRUE(f.inputs[2]->is_constant());
  EXPECT_EQ(f.outputs[0]->name, "y");
  EXPECT_EQ(model->opsets.at("gpuhive"), 1);
  EXPECT_EQ(model->graph->FindValue("gamma"), nullptr);  // unused constants are dropped
  // Running again changes nothing.
  ASSERT_TRUE(OptimizeModel(*model, {}).ok());
  EXPECT_EQ(OpTypes(*model->graph), std::vector<std::string>{"gpuhive.FusedConv"});
  EXPECT_EQ(PostOps(*model->graph->nodes()[0]), std::vector<std::string>{"relu"});
}

TEST(OptimizeModel, SubgraphsAreOptimizedToo) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "cond", onnx::TensorProto::BOOL, {});
  AddInput(g, "x", kF, {int64_t{2}});
  auto* iff = AddNode(g, "If", {"cond"}, {"y"});
  auto* tb = AddGraphAttr(iff, "then_branch");
  AddNode(tb, "Identity", {"x"}, {"i"});
  AddNode(tb, "Exp", {"i"}, {"e"});
  AddNode(tb, "Sqrt", {"e"}, {"t"});
  AddOutput(tb, "t", kF, {int64_t{2}});
  auto* eb = AddGraphAttr(iff, "else_branch");
  AddNode(eb, "Neg", {"x"}, {"n"});
  AddOutput(eb, "n", kF, {int64_t{2}});
  AddOutput(g, "y", kF, {int64_t{2}});
  auto model = Import(m);
  ASSERT_NE(model, nullptr);
  ASSERT_TRUE(OptimizeModel(*model, {}).ok());
  const ir::Graph& tg = **model->graph->nodes()[0]->GetGraph("then_branch");
  ASSERT_EQ(OpTypes(tg), std::vector<std::string>{"gpuhive.Elementwise"});
  EXPECT_EQ(PostOps(*tg.nodes()[0]), (std::vector<std::string>{"exp", "sqrt"}));
  EXPECT_TRUE(tg.nodes()[0]->inputs[0]->is_outer_ref);
}

}  // namespace
}  // namespace gpuhive
