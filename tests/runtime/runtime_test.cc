// CompiledModel / ExecutionContext: planning per shape signature, arena reuse, plan-time shape
// evaluation, dynamic steps, control flow, input validation, concurrent contexts.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <thread>

#include "gpuhive/onnx_import.h"
#include "gpuhive/runtime.h"

namespace gpuhive {
namespace {

ir::ConstTensor Const(DataType t, Shape s, std::vector<float> f) {
  auto v = Tensor::FromVector<float>(t, std::move(s), f);
  return std::make_shared<const Tensor>(std::move(v).value());
}
ir::ConstTensor ConstI64(Shape s, std::vector<int64_t> v) {
  auto t = Tensor::FromVector<int64_t>(DataType::kInt64, std::move(s), v);
  return std::make_shared<const Tensor>(std::move(t).value());
}

// y = Reshape(Relu(x @ W + b), [batch, 2, 2]) where the target shape is computed from Shape(x):
// exercises plan-time evaluation of shape subgraphs and a data-independent static plan.
std::unique_ptr<ir::Model> MlpModel() {
  auto m = std::make_unique<ir::Model>();
  m->graph = std::make_shared<ir::Graph>();
  m->opsets[""] = 17;
  ir::Graph& g = *m->graph;
  ir::Value* x = g.AddValue("x", DataType::kFloat32);
  x->shape = std::vector<ir::Dim>{ir::Dim{-1, "N"}, ir::Dim{3, ""}};
  x->is_graph_input = true;
  g.inputs().push_back(x);
  ir::Value* w = g.AddValue("w", DataType::kFloat32);
  w->constant = Const(DataType::kFloat32, {3, 4}, {1, 0, 0, 1, 0, 1, 0, -1, 0, 0, 1, 2});
  ir::Value* b = g.AddValue("b", DataType::kFloat32);
  b->constant = Const(DataType::kFloat32, {4}, {0.5f, -0.5f, 0, 0});
  auto val = [&](const char* n, DataType t = DataType::kFloat32) { return g.AddValue(n, t); };
  ir::Value *mm = val("mm"), *add = val("add"), *relu = val("relu"), *shp = val("shape", DataType::kInt64),
            *bdim = val("bdim", DataType::kInt64), *target = val("target", DataType::kInt64), *y = val("y");
  ir::Value* idx0 = g.AddValue("idx0", DataType::kInt64);
  idx0->constant = ConstI64({1}, {0});
  ir::Value* rest = g.AddValue("rest", DataType::kInt64);
  rest->constant = ConstI64({2}, {2, 2});
  for (ir::Node* n : {g.AddNode("MatMul", {x, w}, {mm}), g.AddNode("Add", {mm, b}, {add}),
                      g.AddNode("Relu", {add}, {relu}), g.AddNode("Shape", {x}, {shp}),
                      g.AddNode("Gather", {shp, idx0}, {bdim}), g.AddNode("Concat", {bdim, rest}, {target}),
                      g.AddNode("Reshape", {relu, target}, {y})}) {
    n->opset = 17;
  }
  g.FindValue("target")->producer->attrs["axis"] = ir::Attribute(int64_t{0});
  y->is_graph_output = true;
  g.outputs().push_back(y);
  return m;
}

std::vector<float> Expected(const std::vector<float>& x, int64_t n) {
  const float w[3][4] = {{1, 0, 0, 1}, {0, 1, 0, -1}, {0, 0, 1, 2}};
  const float b[4] = {0.5f, -0.5f, 0, 0};
  std::vector<float> y(n * 4);
  for (int64_t r = 0; r < n; ++r) {
    for (int c = 0; c < 4; ++c) {
      float s = b[c];
      for (int k = 0; k < 3; ++k) s += x[r * 3 + k] * w[k][c];
      y[r * 4 + c] = s > 0 ? s : 0;
    }
  }
  return y;
}

class RuntimeTest : public ::testing::TestWithParam<bool> {};

TEST_P(RuntimeTest, RunsWithComputedReshapeAndReusesPlans) {
  CompileOptions o;
  o.optimize = GetParam();
  auto model = CompiledModel::Create(MlpModel(), o);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  ExecutionContext ctx({1});
  for (int64_t n : {1, 5, 1}) {
    std::vector<float> x(n * 3);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) - 3.f;
    auto xt = Tensor::FromVector<float>(DataType::kFloat32, {n, 3}, x);
    auto out = (*model)->Run(ctx, {xt->view()});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ASSERT_EQ(out->size(), 1u);
    EXPECT_EQ((*out)[0].shape(), (Shape{n, 2, 2}));
    auto want = Expected(x, n);
    for (size_t i = 0; i < want.size(); ++i) EXPECT_FLOAT_EQ((*out)[0].as<float>()[i], want[i]) << i;
    auto stats = (*model)->Prepare({{n, 3}});
    ASSERT_TRUE(stats.ok());
    EXPECT_FALSE(stats->dynamic) << "the reshape target is known while planning";
    EXPECT_LE(stats->activation_bytes, stats->naive_activation_bytes);
    EXPECT_LE(stats->activation_bytes, stats->arena_bytes);
    EXPECT_LE(stats->arena_bytes, stats->activation_bytes + stats->step_workspace_bytes + MemoryResource::kAlignment);
  }
}

INSTANTIATE_TEST_SUITE_P(OptimizeOnOff, RuntimeTest, ::testing::Bool());

// A step's workspace is planned in the arena like a value alive during that step only, so it
// takes the bytes of activations dead by then. x:f64[1,1,64,64] -> a = Concat(x, x) [1,2,64,64]
// (64 KiB) -> b = ReduceMax(a over channels) (32 KiB) -> y = Resize(b, linear, 32x32): Resize on
// f64 converts through float in its workspace ((64*64 + 32*32) * 4 = 20 KiB), at a step where a is
// dead, so the arena is the activations' own peak, not that plus the scratch.
TEST(RuntimePlan, StepWorkspacesTakeTheBytesOfDeadActivations) {
  auto m = std::make_unique<ir::Model>();
  m->graph = std::make_shared<ir::Graph>();
  m->opsets[""] = 13;
  ir::Graph& g = *m->graph;
  ir::Value* x = g.AddValue("x", DataType::kFloat64);
  x->shape = std::vector<ir::Dim>{ir::Dim{1, ""}, ir::Dim{1, ""}, ir::Dim{64, ""}, ir::Dim{64, ""}};
  x->is_graph_input = true;
  g.inputs().push_back(x);
  ir::Value *a = g.AddValue("a", DataType::kFloat64), *b = g.AddValue("b", DataType::kFloat64),
            *y = g.AddValue("y", DataType::kFloat64), *sizes = g.AddValue("sizes", DataType::kInt64);
  sizes->constant = ConstI64({4}, {1, 1, 32, 32});
  ir::Node* concat = g.AddNode("Concat", {x, x}, {a}, "concat");
  concat->attrs["axis"] = ir::Attribute(int64_t{1});
  ir::Node* reduce = g.AddNode("ReduceMax", {a}, {b}, "reduce");
  reduce->attrs["axes"] = ir::Attribute(std::vector<int64_t>{1});
  ir::Node* resize = g.AddNode("Resize", {b, nullptr, nullptr, sizes}, {y}, "resize");
  resize->attrs["mode"] = ir::Attribute(std::string("linear"));
  for (ir::Node* n : {concat, reduce, resize}) n->opset = 13;
  y->is_graph_output = true;
  g.outputs().push_back(y);
  auto model = CompiledModel::Create(std::move(m), CompileOptions{});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto stats = (*model)->Prepare({{1, 1, 64, 64}});
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->step_workspace_bytes, (64u * 64u + 32u * 32u) * sizeof(float));
  EXPECT_GE(stats->activation_bytes, 3u * 64u * 64u * sizeof(double));  // a and b alive together
  EXPECT_EQ(stats->arena_bytes, stats->activation_bytes) << "the Resize scratch did not reuse a's bytes";
  EXPECT_EQ(stats->workspace_bytes, 0u);

  std::vector<double> xs(64 * 64);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = 0.25 * static_cast<double>((i * 7) % 31);
  auto xt = Tensor::FromVector<double>(DataType::kFloat64, {1, 1, 64, 64}, xs);
  ASSERT_TRUE(xt.ok());
  ExecutionContext ctx(ExecutionContext::Options{});
  auto out = (*model)->Run(ctx, {xt->view()});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ((*out)[0].shape(), (Shape{1, 1, 32, 32}));
  // Half-pixel linear down-sampling by 2 is the mean of each 2x2 block.
  for (int i = 0; i < 32; ++i) {
    for (int j = 0; j < 32; ++j) {
      const double want = (xs[(2 * i) * 64 + 2 * j] + xs[(2 * i) * 64 + 2 * j + 1] + xs[(2 * i + 1) * 64 + 2 * j] +
                           xs[(2 * i + 1) * 64 + 2 * j + 1]) / 4;
      ASSERT_NEAR((*out)[0].as<double>()[i * 32 + j], want, 1e-6) << i << "," << j;
    }
  }
}

TEST(RuntimeErrors, RejectsBadInputs) {
  auto model = CompiledModel::Create(MlpModel(), {});
  ASSERT_TRUE(model.ok());
  ExecutionContext ctx({1});
  auto wrong_rank = Tensor::FromVector<float>(DataType::kFloat32, {3}, {1, 2, 3});
  auto r = (*model)->Run(ctx, {wrong_rank->view()});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("'x'"), std::string::npos) << r.status().message();
  auto wrong_dim = Tensor::FromVector<float>(DataType::kFloat32, {1, 4}, {1, 2, 3, 4});
  EXPECT_EQ((*model)->Run(ctx, {wrong_dim->view()}).status().code(), StatusCode::kInvalidArgument);
  auto wrong_type = Tensor::FromVector<int64_t>(DataType::kInt64, {1, 3}, {1, 2, 3});
  EXPECT_EQ((*model)->Run(ctx, {wrong_type->view()}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*model)->Run(ctx, {}).status().code(), StatusCode::kInvalidArgument);
}

TEST(RuntimeErrors, UnsupportedOperatorIsNamed) {
  auto m = MlpModel();
  ir::Graph& g = *m->graph;
  ir::Value* extra = g.AddValue("z", DataType::kFloat32);
  ir::Node* n = g.AddNode("FancyNewOp", {g.FindValue("y")}, {extra}, "fancy_node");
  n->opset = 17;
  auto model = CompiledModel::Create(std::move(m), {});
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(model.status().message().find("FancyNewOp"), std::string::npos);
  EXPECT_NE(model.status().message().find("fancy_node"), std::string::npos);
}

TEST(RuntimeConcurrency, ContextsRunInParallel) {
  auto model = CompiledModel::Create(MlpModel(), {});
  ASSERT_TRUE(model.ok());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      ExecutionContext ctx({1});
      for (int i = 0; i < 50; ++i) {
        int64_t n = 1 + (i + t) % 4;
        std::vector<float> x(n * 3, static_cast<float>(t + 1));
        auto xt = Tensor::FromVector<float>(DataType::kFloat32, {n, 3}, x);
        auto out = (*model)->Run(ctx, {xt->view()});
        if (!out.ok() || (*out)[0].as<float>()[0] != Expected(x, n)[0]) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

// y = Relu(Conv(Relu(Conv(x, W, B)), W2, B)): convolutions whose kernels keep their oneDNN memory
// objects and argument map between runs (rebinding only the data pointers) unless another run
// holds them.
std::unique_ptr<ir::Model> ConvModel() {
  auto m = std::make_unique<ir::Model>();
  m->graph = std::make_shared<ir::Graph>();
  m->opsets[""] = 17;
  ir::Graph& g = *m->graph;
  ir::Value* x = g.AddValue("x", DataType::kFloat32);
  x->shape = std::vector<ir::Dim>{ir::Dim{1, ""}, ir::Dim{16, ""}, ir::Dim{10, ""}, ir::Dim{10, ""}};
  x->is_graph_input = true;
  g.inputs().push_back(x);
  std::vector<float> wv(32 * 16 * 9), bv(32);
  for (size_t i = 0; i < wv.size(); ++i) wv[i] = static_cast<float>((i * 37) % 17) / 17.f - 0.5f;
  for (size_t i = 0; i < bv.size(); ++i) bv[i] = static_cast<float>(i % 5) * 0.1f - 0.2f;
  ir::Value* w = g.AddValue("w", DataType::kFloat32);
  w->constant = Const(DataType::kFloat32, {32, 16, 3, 3}, wv);
  ir::Value* b = g.AddValue("b", DataType::kFloat32);
  b->constant = Const(DataType::kFloat32, {32}, bv);
  std::vector<float> w2v(32 * 32 * 9);
  for (size_t i = 0; i < w2v.size(); ++i) w2v[i] = static_cast<float>((i * 29) % 13) / 13.f - 0.5f;
  ir::Value* w2 = g.AddValue("w2", DataType::kFloat32);
  w2->constant = Const(DataType::kFloat32, {32, 32, 3, 3}, w2v);
  ir::Value* c = g.AddValue("c", DataType::kFloat32);
  ir::Value* r = g.AddValue("r", DataType::kFloat32);
  ir::Value* c2 = g.AddValue("c2", DataType::kFloat32);
  ir::Value* y = g.AddValue("y", DataType::kFloat32);
  // The second convolution reads the first's output in the arena, in the convolutions' own layout.
  for (ir::Node* conv : {g.AddNode("Conv", {x, w, b}, {c}), g.AddNode("Conv", {r, w2, b}, {c2})}) {
    conv->attrs["pads"] = ir::Attribute(std::vector<int64_t>{1, 1, 1, 1});
    conv->opset = 17;
  }
  g.AddNode("Relu", {c}, {r})->opset = 17;
  g.AddNode("Relu", {c2}, {y})->opset = 17;
  y->is_graph_output = true;
  g.outputs().push_back(y);
  return m;
}

// Many runs of one compiled convolution, from one context and from four at once, each with its
// own input: every output must be the one a fresh context computes for that input (a kernel that
// reused a cached memory object without rebinding it, or shared one between concurrent runs, gives
// another input's result).
TEST(RuntimeConcurrency, ConvolutionRunsRebindTheirBuffers) {
  auto model = CompiledModel::Create(ConvModel(), {});
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  constexpr int kInputs = 6;
  std::vector<std::vector<float>> inputs, expected;
  for (int k = 0; k < kInputs; ++k) {
    std::vector<float> x(16 * 10 * 10);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i * (k + 1)) * 0.01f);
    auto xt = Tensor::FromVector<float>(DataType::kFloat32, {1, 16, 10, 10}, x);
    ExecutionContext fresh({1});
    auto out = (*model)->Run(fresh, {xt->view()});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    const float* y = (*out)[0].as<float>();
    expected.emplace_back(y, y + (*out)[0].num_elements());
    inputs.push_back(std::move(x));
  }
  for (int k = 1; k < kInputs; ++k) ASSERT_NE(expected[k], expected[0]);
  // All inputs alive at once, so that each run's input is at another address.
  std::vector<Tensor> xts;
  for (const auto& x : inputs) xts.push_back(*Tensor::FromVector<float>(DataType::kFloat32, {1, 16, 10, 10}, x));
  std::atomic<int> failures{0};
  auto runs = [&](int t) {
    ExecutionContext ctx({1});
    for (int i = 0; i < 60; ++i) {
      const int k = (i + t) % kInputs;
      auto out = (*model)->Run(ctx, {xts[k].view()});
      if (!out.ok()) {
        failures++;
        continue;
      }
      const float* y = (*out)[0].as<float>();
      if (!std::equal(expected[k].begin(), expected[k].end(), y)) failures++;
    }
  };
  runs(0);
  EXPECT_EQ(failures.load(), 0) << "one context";
  {  // two contexts (two arenas) taking turns
    ExecutionContext a({1}), b({1});
    for (int i = 0; i < 12; ++i) {
      const int k = i % kInputs;
      auto out = (*model)->Run(i % 2 ? b : a, {xts[k].view()});
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      const float* y = (*out)[0].as<float>();
      if (!std::equal(expected[k].begin(), expected[k].end(), y)) failures++;
    }
  }
  EXPECT_EQ(failures.load(), 0) << "two contexts taking turns";
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(runs, t);
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0) << "four contexts at once";
}

// A float chain whose binary operand is a run-time scalar (the shape of ONNX's window functions):
// y = Cos((x * s) * 2) with s a rank-0 input. Optimized and unoptimized runs must agree. With
// `dynamic`, x = Range(0, n, 1) so every step after it is prepared at run time.
std::unique_ptr<ir::Model> ScalarChainModel(bool dynamic) {
  auto m = std::make_unique<ir::Model>();
  m->graph = std::make_shared<ir::Graph>();
  m->opsets[""] = 17;
  ir::Graph& g = *m->graph;
  ir::Value* x = g.AddValue("x", DataType::kFloat32);
  x->shape = std::vector<ir::Dim>{ir::Dim{dynamic ? -1 : 10, ""}};
  ir::Value* s = g.AddValue("s", DataType::kFloat32);
  s->shape = std::vector<ir::Dim>{};
  ir::Value* in0 = x;
  if (dynamic) {
    in0 = g.AddValue("n", DataType::kFloat32);
    in0->shape = std::vector<ir::Dim>{};
    ir::Value* zero = g.AddValue("zero", DataType::kFloat32);
    zero->constant = Const(DataType::kFloat32, {}, {0.f});
    ir::Value* step = g.AddValue("step", DataType::kFloat32);
    step->constant = Const(DataType::kFloat32, {}, {0.1f});
    g.AddNode("Range", {zero, in0, step}, {x})->opset = 17;
  }
  for (ir::Value* v : {in0, s}) {
    v->is_graph_input = true;
    g.inputs().push_back(v);
  }
  ir::Value* two = g.AddValue("two", DataType::kFloat32);
  two->constant = Const(DataType::kFloat32, {}, {2.f});
  ir::Value *a = g.AddValue("a", DataType::kFloat32), *b = g.AddValue("b", DataType::kFloat32),
            *y = g.AddValue("y", DataType::kFloat32);
  a->shape = b->shape = y->shape = x->shape;
  for (ir::Node* n : {g.AddNode("Mul", {x, s}, {a}), g.AddNode("Mul", {a, two}, {b}), g.AddNode("Cos", {b}, {y})}) {
    n->opset = 17;
  }
  y->is_graph_output = true;
  g.outputs().push_back(y);
  return m;
}

TEST(RuntimeOptimizer, ScalarOperandChainMatchesUnoptimized) {
  std::vector<float> xs(10);
  for (int i = 0; i < 10; ++i) xs[i] = 0.1f * i;
  auto st = Tensor::FromVector<float>(DataType::kFloat32, {}, {0.7f});
  for (bool dynamic : {false, true})
  for (bool optimize : {false, true}) {
    auto xt = dynamic ? Tensor::FromVector<float>(DataType::kFloat32, {}, {0.95f})
                      : Tensor::FromVector<float>(DataType::kFloat32, {10}, xs);
    CompileOptions o;
    o.optimize = optimize;
    auto model = CompiledModel::Create(ScalarChainModel(dynamic), o);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    ExecutionContext ctx({1});
    auto out = (*model)->Run(ctx, {xt->view(), st->view()});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ASSERT_EQ((*out)[0].num_elements(), 10);
    for (int i = 0; i < 10; ++i) {
      EXPECT_NEAR((*out)[0].as<float>()[i], std::cos(xs[i] * 0.7f * 2.f), 1e-5)
          << "optimize=" << optimize << " dynamic=" << dynamic << " i=" << i;
    }
  }
}

// Real ONNX test models (Debian's libonnx-testdata) for control flow and data-dependent shapes.
class OnnxTestModel : public ::testing::TestWithParam<const char*> {};

TEST_P(OnnxTestModel, MatchesReference) {
  std::filesystem::path dir = std::filesystem::path("/usr/share/libonnx-testdata/data/node") / GetParam();
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << "libonnx-testdata not installed";
  auto model = ImportOnnxFile((dir / "model.onnx").string());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto compiled = CompiledModel::Create(std::move(model).value(), {});
  ASSERT_TRUE(compiled.ok()) << compiled.status().ToString();
  std::vector<Tensor> inputs;
  std::vector<TensorView> views;
  for (int i = 0;; ++i) {
    auto p = dir / "test_data_set_0" / ("input_" + std::to_string(i) + ".pb");
    if (!std::filesystem::exists(p)) break;
    auto t = ReadTensorProtoFile(p.string());
    ASSERT_TRUE(t.ok());
    inputs.push_back(std::move(t->second));
  }
  for (auto& t : inputs) views.push_back(t.view());
  ExecutionContext ctx({1});
  auto out = (*compiled)->Run(ctx, views);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  for (size_t i = 0; i < out->size(); ++i) {
    auto p = dir / "test_data_set_0" / ("output_" + std::to_string(i) + ".pb");
    auto want = ReadTensorProtoFile(p.string());
    ASSERT_TRUE(want.ok());
    ASSERT_EQ((*out)[i].shape(), want->second.shape()) << "output " << i;
    ASSERT_EQ((*out)[i].bytes(), want->second.bytes());
    if ((*out)[i].dtype() == DataType::kFloat32) {
      for (int64_t k = 0; k < want->second.num_elements(); ++k) {
        EXPECT_NEAR((*out)[i].as<float>()[k], want->second.as<float>()[k], 1e-4) << k;
      }
    } else {
      EXPECT_EQ(0, std::memcmp((*out)[i].data(), want->second.data(), want->second.bytes()));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(ControlFlowAndDynamic, OnnxTestModel,
                         ::testing::Values("test_loop11", "test_if", "test_scan9_sum", "test_nonzero_example",
                                           "test_range_float_type_positive_delta_expanded",
                                           "test_reshape_reordered_all_dims", "test_expand_dim_changed"));

}  // namespace
}  // namespace gpuhive
