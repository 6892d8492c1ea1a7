// Fusion must not change what a graph computes. A small reference interpreter (plain loops,
// float32, static shapes) runs each graph before and after OptimizeModel; gpuhive.Elementwise is
// executed from its post_ops with ApplyUnaryPostOp and numpy broadcasting for the binary entries.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "gpuhive/onnx_import.h"
#include "gpuhive/passes.h"
#include "gpuhive/post_ops.h"
#include "onnx_test_util.h"

namespace gpuhive {
namespace {
using namespace gpuhive::testing;  // NOLINT
constexpr int kF = onnx::TensorProto::FLOAT;

struct Arr {
  Shape shape;
  std::vector<float> v;
};

// out[i] = f(a[i], b[broadcast(i)]) where b broadcasts into a's shape (or the reverse).
Arr Broadcast(const Arr& a, const Arr& b, const std::function<float(float, float)>& f) {
  const Arr& big = a.v.size() >= b.v.size() ? a : b;
  Arr out{big.shape, std::vector<float>(big.v.size())};
  const size_t rank = big.shape.size();
  auto index = [&](const Arr& x, size_t flat) {
    size_t idx = 0, stride = 1;
    size_t off = rank - x.shape.size();
    for (size_t d = rank; d-- > 0;) {
      size_t coord = flat % big.shape[d];
      flat /= big.shape[d];
      if (d >= off) {
        size_t xd = x.shape[d - off];
        idx += (xd == 1 ? 0 : coord) * stride;
        stride *= xd;
      }
    }
    return idx;
  };
  for (size_t i = 0; i < out.v.size(); ++i) out.v[i] = f(a.v[index(a, i)], b.v[index(b, i)]);
  return out;
}

std::function<float(float, float)> BinaryFn(const std::string& op) {
  if (op == "Add") return [](float a, float b) { return a + b; };
  if (op == "Sub") return [](float a, float b) { return a - b; };
  if (op == "Mul") return [](float a, float b) { return a * b; };
  if (op == "Div") return [](float a, float b) { return a / b; };
  if (op == "Max") return [](float a, float b) { return std::max(a, b); };
  if (op == "Min") return [](float a, float b) { return std::min(a, b); };
  if (op == "Pow") return [](float a, float b) { return std::pow(a, b); };
  return nullptr;
}

std::function<float(float)> UnaryFn(const ir::Node& n) {
  const std::string& op = n.op_type;
  if (op == "Relu") return [](float x) { return x > 0 ? x : 0.f; };
  if (op == "Exp") return [](float x) { return std::exp(x); };
  if (op == "Abs") return [](float x) { return std::fabs(x); };
  if (op == "Neg") return [](float x) { return -x; };
  if (op == "Sqrt") return [](float x) { return std::sqrt(x); };
  if (op == "Log") return [](float x) { return std::log(x); };
  if (op == "Erf") return [](float x) { return std::erf(x); };
  if (op == "Tanh") return [](float x) { return std::tanh(x); };
  if (op == "Sigmoid") return [](float x) { return 1.f / (1.f + std::exp(-x)); };
  if (op == "HardSwish") return [](float x) { return x * std::clamp(x / 6.f + 0.5f, 0.f, 1.f); };
  float alpha = *n.GetFloat("alpha", op == "LeakyRelu" ? 0.01f : op == "HardSigmoid" ? 0.2f : 1.f);
  float beta = *n.GetFloat("beta", 0.5f);
  if (op == "LeakyRelu") return [alpha](float x) { return x >= 0 ? x : alpha * x; };
  if (op == "Elu") return [alpha](float x) { return x >= 0 ? x : alpha * (std::exp(x) - 1.f); };
  if (op == "HardSigmoid") return [alpha, beta](float x) { return std::clamp(alpha * x + beta, 0.f, 1.f); };
  return nullptr;
}

// Runs the graph on `inputs` (by name); returns the graph outputs by name.
std::map<std::string, Arr> Run(const ir::Graph& g, const std::map<std::string, Arr>& inputs) {
  std::map<const ir::Value*, Arr> env;
  for (const auto& v : g.values()) {
    if (v->constant) {
      const Tensor& t = *v->constant;
      env[v.get()] = Arr{t.shape(), std::vector<float>(t.as<float>(), t.as<float>() + t.num_elements())};
    }
  }
  for (const ir::Value* v : g.inputs()) env[v] = inputs.at(v->name);
  for (const auto& n : g.nodes()) {
    auto in = [&](size_t i) -> const Arr& { return env.at(n->inputs.at(i)); };
    Arr out;
    if (n->domain == "gpuhive" && n->op_type == "Elementwise") {
      out = in(0);
      size_t extra = 1;
      const std::vector<PostOp> post_ops = *ParsePostOps(*n->GetStrings("post_ops"));
      for (const PostOp& p : post_ops) {
        if (!p.is_binary()) {
          for (float& x : out.v) x = ApplyUnaryPostOp(p, x);
          continue;
        }
        static const std::map<PostOp::Kind, std::string> kOps = {
            {PostOp::Kind::kSum, "Add"}, {PostOp::Kind::kAdd, "Add"}, {PostOp::Kind::kMul, "Mul"},
            {PostOp::Kind::kSub, "Sub"}, {PostOp::Kind::kDiv, "Div"}, {PostOp::Kind::kMax, "Max"},
            {PostOp::Kind::kMin, "Min"}};
        Arr e = in(extra++);
        EXPECT_LE(e.v.size(), out.v.size()) << "post-op operand enlarges the result";
        out = Broadcast(out, e, BinaryFn(kOps.at(p.kind)));
      }
      EXPECT_EQ(extra, n->inputs.size()) << "unused extra inputs";
    } else if (auto bf = BinaryFn(n->op_type)) {
      out = Broadcast(in(0), in(1), bf);
    } else if (n->op_type == "Clip") {
      float lo = n->input(1) ? in(1).v[0] : -3.4e38f, hi = n->input(2) ? in(2).v[0] : 3.4e38f;
      out = in(0);
      for (float& x : out.v) x = std::clamp(x, lo, hi);
    } else if (auto uf = UnaryFn(*n)) {
      out = in(0);
      for (float& x : out.v) x = uf(x);
    } else {
      ADD_FAILURE() << "interpreter cannot run " << n->Describe();
      return {};
    }
    env[n->outputs[0]] = std::move(out);
  }
  std::map<std::string, Arr> result;
  for (const ir::Value* v : g.outputs()) result[v->name] = env.at(v);
  return result;
}

Arr Random(const Shape& s, std::mt19937& rng) {
  std::uniform_real_distribution<float> d(-3.f, 3.f);
  Arr a{s, std::vector<float>(NumElements(s))};
  for (float& x : a.v) x = d(rng);
  return a;
}

// Imports, runs, optimizes, runs again; the results must agree and `min_fused` Elementwise nodes
// must exist afterwards.
void ExpectSameResults(const onnx::ModelProto& m, const std::map<std::string, Shape>& input_shapes,
                       int min_fused, const std::vector<std::string>& expect_post_ops = {}) {
  auto model = ImportOnnxBytes(Serialize(m));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  std::mt19937 rng(7);
  std::map<std::string, Arr> inputs;
  for (const auto& [name, shape] : input_shapes) inputs[name] = Random(shape, rng);
  auto before = Run(*(*model)->graph, inputs);
  ASSERT_TRUE(OptimizeModel(**model, {}).ok());
  int fused = 0;
  for (const auto& n : (*model)->graph->nodes()) {
    if (n->op_type == "Elementwise") {
      ++fused;
      if (!expect_post_ops.empty()) {
        EXPECT_EQ(*n->GetStrings("post_ops"), expect_post_ops);
      }
    }
  }
  EXPECT_GE(fused, min_fused);
  auto after = Run(*(*model)->graph, inputs);
  ASSERT_EQ(before.size(), after.size());
  for (const auto& [name, ref] : before) {
    const Arr& got = after.at(name);
    ASSERT_EQ(got.shape, ref.shape) << name;
    for (size_t i = 0; i < ref.v.size(); ++i) {
      if (std::isnan(ref.v[i])) {
        EXPECT_TRUE(std::isnan(got.v[i])) << name << "[" << i << "]";
      } else {
        EXPECT_NEAR(got.v[i], ref.v[i], 1e-5f * std::max(1.f, std::fabs(ref.v[i]))) << name << "[" << i << "]";
      }
    }
  }
}

const std::vector<DimSpec> kX = {int64_t{2}, int64_t{3}, int64_t{4}, int64_t{4}};
const Shape kXs = {2, 3, 4, 4};

TEST(FusionSemantics, GeluVariants) {
  for (int variant = 0; variant < 3; ++variant) {
    auto m = MakeModel(13);
    auto* g = m.mutable_graph();
    AddInput(g, "x", kF, kX);
    AddFloatInit(g, "sqrt2", {}, {1.4142135f});
    AddFloatInit(g, "one", {}, {1.f});
    AddFloatInit(g, "half", {}, {0.5f});
    AddNode(g, "Div", {"x", "sqrt2"}, {"d"});
    AddNode(g, "Erf", {"d"}, {"e"});
    AddNode(g, "Add", {"e", "one"}, {"p"});
    if (variant == 0) {
      AddNode(g, "Mul", {"x", "p"}, {"q"});
      AddNode(g, "Mul", {"q", "half"}, {"y"});
    } else if (variant == 1) {
      AddNode(g, "Mul", {"p", "half"}, {"q"});
      AddNode(g, "Mul", {"x", "q"}, {"y"});
    } else {
      AddNode(g, "Mul", {"x", "half"}, {"q"});
      AddNode(g, "Mul", {"q", "p"}, {"y"});
    }
    AddOutput(g, "y", kF, kX);
    SCOPED_TRACE(variant);
    ExpectSameResults(m, {{"x", kXs}}, 1, {"gelu_erf"});
  }
}

TEST(FusionSemantics, BinaryOperandOrderAndScalars) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "x", kF, kX);
  AddInput(g, "z", kF, {int64_t{4}});
  AddFloatInit(g, "row", {4}, {0.5f, 1.f, 2.f, 4.f});
  AddFloatInit(g, "c", {}, {3.f});
  AddFloatInit(g, "two", {1}, {2.f});
  AddNode(g, "Sub", {"row", "x"}, {"a"});  // row - x: x is the second operand
  AddNode(g, "Div", {"a", "c"}, {"b"});
  AddNode(g, "Mul", {"two", "b"}, {"d"});
  AddNode(g, "Sub", {"d", "c"}, {"e"});
  AddNode(g, "Max", {"z", "e"}, {"f"});
  AddNode(g, "Div", {"row", "f"}, {"h"});  // divisor is the running value
  AddNode(g, "Min", {"h", "row"}, {"y"});
  AddOutput(g, "y", kF, kX);
  ExpectSameResults(m, {{"x", kXs}, {"z", {4}}}, 1);
}

TEST(FusionSemantics, ActivationChain) {
  auto m = MakeModel(14);  // HardSwish
  auto* g = m.mutable_graph();
  AddInput(g, "x", kF, kX);
  AddFloatInit(g, "lo", {}, {-1.f});
  AddFloatInit(g, "hi", {}, {2.5f});
  AddFloatInit(g, "two", {}, {2.f});
  AddNode(g, "Sigmoid", {"x"}, {"s"});
  AddNode(g, "Mul", {"x", "s"}, {"sw"});
  AddFloatAttr(AddNode(g, "LeakyRelu", {"sw"}, {"l"}), "alpha", 0.3f);
  AddNode(g, "HardSwish", {"l"}, {"hs"});
  AddNode(g, "Clip", {"hs", "lo", "hi"}, {"c"});
  AddFloatAttr(AddNode(g, "Elu", {"c"}, {"e"}), "alpha", 0.7f);
  auto* hsig = AddNode(g, "HardSigmoid", {"e"}, {"h"});
  AddFloatAttr(hsig, "alpha", 0.25f);
  AddNode(g, "Pow", {"h", "two"}, {"p"});
  AddNode(g, "Abs", {"p"}, {"a"});
  AddNode(g, "Sqrt", {"a"}, {"q"});
  AddNode(g, "Exp", {"q"}, {"ex"});
  AddNode(g, "Log", {"ex"}, {"lg"});
  AddNode(g, "Tanh", {"lg"}, {"y"});
  AddOutput(g, "y", kF, kX);
  ExpectSameResults(m, {{"x", kXs}}, 1,
                    {"swish", "leaky_relu:0.3", "hardswish", "clip:-1:2.5", "elu:0.7", "hardsigmoid:0.25:0.5",
                     "square", "abs", "sqrt", "exp", "log", "tanh"});
}

TEST(FusionSemantics, SqueezeExcitationAndBranches) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "x", kF, kX);
  AddInput(g, "s", kF, {int64_t{2}, int64_t{3}, int64_t{1}, int64_t{1}});
  AddNode(g, "Sigmoid", {"s"}, {"gate"});  // [2,3,1,1]: a short chain of its own
  AddNode(g, "Mul", {"x", "gate"}, {"scaled"});
  AddNode(g, "Relu", {"scaled"}, {"r"});
  AddNode(g, "Neg", {"r"}, {"y1"});  // r has two consumers: chains stop there
  AddNode(g, "Exp", {"r"}, {"y2"});
  AddOutput(g, "y1", kF, kX);
  AddOutput(g, "y2", kF, kX);
  ExpectSameResults(m, {{"x", kXs}, {"s", {2, 3, 1, 1}}}, 1);
}

// The tails of ONNX's *window_expanded tests: unary-first chains with run-time binary operands on a
// rank-1 tensor of symbolic length and on rank-0 values. Fusing them must keep what they compute
// (these tests once failed with the optimizer on; the fused graph was right and oneDNN's eltwise
// kernel was not, see tests/kernels_nn/elementwise_test.cc).
TEST(FusionSemantics, WindowFunctionTails) {
  auto m = MakeModel(17);
  auto* g = m.mutable_graph();
  AddInput(g, "x", kF, {std::string("n")});
  AddInput(g, "t", kF, {std::string("n")});
  AddInput(g, "s", kF, {});
  AddInput(g, "p", kF, {});
  AddFloatInit(g, "a", {}, {0.25f});
  AddFloatInit(g, "one", {}, {1.f});
  AddFloatInit(g, "zero", {}, {0.f});
  AddNode(g, "Relu", {"x"}, {"r"});
  AddNode(g, "Mul", {"a", "r"}, {"ar"});
  AddNode(g, "Add", {"t", "ar"}, {"y"});
  AddNode(g, "Sub", {"s", "one"}, {"sm"});
  AddNode(g, "Mul", {"sm", "zero"}, {"sz"});
  AddNode(g, "Add", {"p", "sz"}, {"z"});
  AddOutput(g, "y", kF, {std::string("n")});
  AddOutput(g, "z", kF, {});
  ExpectSameResults(m, {{"x", {10}}, {"t", {10}}, {"s", {}}, {"p", {}}}, 2);
}

}  // namespace
}  // namespace gpuhive
