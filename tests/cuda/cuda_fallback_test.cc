// CPU fallback (runs on every machine, with or without CUDA): device discovery finds no GPU, the
// reason is reported once, strict mode refuses with a clear error, and a model still runs on the
// CPU. Also the host-only parts of the CUDA API (priority mapping, operator support check).
#include <gtest/gtest.h>

#include <cstdlib>
#include <deque>
#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gpuhive/cuda_device.h"
#include "gpuhive/cuda_executor.h"
#include "gpuhive/device_discovery.h"
#include "gpuhive/onnx_import.h"
#include "gpuhive/runtime.h"

namespace gpuhive {
namespace {

bool HasGpu() { return !DiscoverDevices().gpus.empty(); }

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

TEST(CudaFallback, DiscoveryFindsNoGpuAndSaysWhy) {
  if (HasGpu()) GTEST_SKIP() << "a GPU is present: the fallback path is not taken on this machine";
  DiscoveryResult r = DiscoverDevices();
  EXPECT_TRUE(r.gpus.empty());
  EXPECT_FALSE(r.gpu_unavailable_reason.empty());
  EXPECT_TRUE(r.cpu.id.is_cpu());
}

TEST(CudaFallback, ChoosesCpuAndReportsTheReasonOnce) {
  if (HasGpu()) GTEST_SKIP() << "a GPU is present: the fallback path is not taken on this machine";
  ::testing::internal::CaptureStderr();
  int reported = 0;
  for (int i = 0; i < 3; ++i) {
    StatusOr<cuda::BackendChoice> c = cuda::ChooseBackend();
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_TRUE(c->device.is_cpu());
    EXPECT_FALSE(c->fallback_reason.empty());
    EXPECT_FALSE(c->device_name.empty());
    reported += c->reported_now ? 1 : 0;
    if (i > 0) {
      EXPECT_FALSE(c->reported_now) << "call " << i << " reported again";
    }
  }
  std::string log = ::testing::internal::GetCapturedStderr();
  // Once per process: this test may not be the first caller when the whole binary runs.
  EXPECT_LE(reported, 1);
  EXPECT_EQ(Count(log, "running models on the CPU"), static_cast<size_t>(reported)) << log;
}

TEST(CudaFallback, StrictGpuRefusesWithTheReason) {
  if (HasGpu()) GTEST_SKIP() << "a GPU is present: strict mode succeeds on this machine";
  std::string reason = DiscoverDevices().gpu_unavailable_reason;
  cuda::BackendOptions o;
  o.strict_gpu = true;
  StatusOr<cuda::BackendChoice> c = cuda::ChooseBackend(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(c.status().message().find("strict"), std::string::npos) << c.status().ToString();
  EXPECT_NE(c.status().message().find(reason), std::string::npos) << c.status().ToString();
}

TEST(CudaFallback, DeviceCallsFailCleanlyWithoutADevice) {
  if (HasGpu()) GTEST_SKIP() << "a GPU is present";
  StatusOr<std::unique_ptr<cuda::Stream>> s = cuda::Stream::Create({0, 0});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable) << s.status().ToString();
  StatusOr<double> bw = cuda::MeasureHostToDeviceBandwidth(0, 1 << 20, 1);
  ASSERT_FALSE(bw.ok());
  EXPECT_EQ(bw.status().code(), StatusCode::kUnavailable) << bw.status().ToString();
}

// y = Relu(x @ W + b): built in memory so the test needs no model file.
std::unique_ptr<ir::Model> SmallModel() {
  auto m = std::make_unique<ir::Model>();
  m->graph = std::make_shared<ir::Graph>();
  m->opsets[""] = 17;
  ir::Graph& g = *m->graph;
  ir::Value* x = g.AddValue("x", DataType::kFloat32);
  x->shape = std::vector<ir::Dim>{ir::Dim{-1, "N"}, ir::Dim{2, ""}};
  x->is_graph_input = true;
  g.inputs().push_back(x);
  ir::Value* w = g.AddValue("w", DataType::kFloat32);
  w->constant = std::make_shared<const Tensor>(
      Tensor::FromVector<float>(DataType::kFloat32, {2, 3}, {1.f, -1.f, 2.f, 0.5f, 1.f, -3.f}).value());
  ir::Value* b = g.AddValue("b", DataType::kFloat32);
  b->constant = std::make_shared<const Tensor>(
      Tensor::FromVector<float>(DataType::kFloat32, {3}, {0.25f, 0.f, -1.f}).value());
  ir::Value* mm = g.AddValue("mm", DataType::kFloat32);
  ir::Value* add = g.AddValue("add", DataType::kFloat32);
  ir::Value* y = g.AddValue("y", DataType::kFloat32);
  for (ir::Node* n : {g.AddNode("MatMul", {x, w}, {mm}), g.AddNode("Add", {mm, b}, {add}), g.AddNode("Relu", {add}, {y})}) {
    n->opset = 17;
  }
  y->is_graph_output = true;
  g.outputs().push_back(y);
  return m;
}

TEST(CudaFallback, ModelRunsOnTheCpuWhenNoGpuIsChosen) {
  StatusOr<cuda::BackendChoice> choice = cuda::ChooseBackend();
  ASSERT_TRUE(choice.ok()) << choice.status().ToString();
  if (!choice->device.is_cpu()) GTEST_SKIP() << "a GPU was chosen: the CPU fallback is not taken here";
  auto model = SmallModel();
  ASSERT_TRUE(cuda::CheckCudaSupport(*model->graph).ok());
  StatusOr<std::unique_ptr<CompiledModel>> compiled = CompiledModel::Create(std::move(model), CompileOptions{});
  ASSERT_TRUE(compiled.ok()) << compiled.status().ToString();
  ExecutionContext ctx({});
  std::vector<float> x = {1.f, 2.f, -1.f, 0.5f};
  TensorView view{DataType::kFloat32, {2, 2}, x.data()};
  StatusOr<std::vector<Tensor>> out = (*compiled)->Run(ctx, {view});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->size(), 1u);
  ASSERT_EQ((*out)[0].shape(), (Shape{2, 3}));
  // Worked by hand: row 0 = [1*1+2*0.5, 1*-1+2*1, 1*2+2*-3] + b = [2.25, 1, -5] -> relu.
  //                 row 1 = [-1+0.25, 1+0.5, -2-1.5] + b = [-0.5, 1.5, -4.5] -> relu.
  const std::vector<float> expected = {2.25f, 1.f, 0.f, 0.f, 1.5f, 0.f};
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_FLOAT_EQ((*out)[0].as<float>()[i], expected[i]) << i;
}

// y = Reshape(Relu(x @ W + b), [N, 3, 1]) with the target shape computed from Shape(x): the shape
// arithmetic is evaluated on the host while planning, the rest becomes device steps.
std::unique_ptr<ir::Model> ShapeMathModel() {
  auto m = SmallModel();
  ir::Graph& g = *m->graph;
  ir::Value* relu = g.outputs()[0];
  relu->is_graph_output = false;
  g.outputs().clear();
  auto i64 = [&](const char* name, Shape shape, std::vector<int64_t> v) {
    ir::Value* c = g.AddValue(name, DataType::kInt64);
    c->constant = std::make_shared<const Tensor>(Tensor::FromVector<int64_t>(DataType::kInt64, shape, v).value());
    return c;
  };
  ir::Value* shp = g.AddValue("shape", DataType::kInt64);
  ir::Value* n = g.AddValue("n", DataType::kInt64);
  ir::Value* target = g.AddValue("target", DataType::kInt64);
  ir::Value* y = g.AddValue("y2", DataType::kFloat32);
  ir::Node* concat = nullptr;
  for (ir::Node* node : {g.AddNode("Shape", {g.inputs()[0]}, {shp}), g.AddNode("Gather", {shp, i64("zero", {1}, {0})}, {n}),
                         concat = g.AddNode("Concat", {n, i64("rest", {2}, {3, 1})}, {target}),
                         g.AddNode("Reshape", {relu, target}, {y})}) {
    node->opset = 17;
  }
  concat->attrs["axis"] = ir::Attribute(int64_t{0});
  y->is_graph_output = true;
  g.outputs().push_back(y);
  return m;
}

TEST(CudaPlanPreview, ShapeMathRunsOnTheHostAndAliasesShareTheArena) {
  auto model = ShapeMathModel();
  for (int64_t batch : {1, 5}) {
    SCOPED_TRACE(batch);
    TensorView x{DataType::kFloat32, {batch, 2}, nullptr};
    StatusOr<cuda::PlanPreview> p = cuda::PreviewCudaPlan(*model->graph, {x});
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_EQ(p->host_evaluated_nodes, 3u);  // Shape, Gather, Concat
    EXPECT_EQ(p->device_steps, 4u);          // MatMul, Add, Relu, Reshape
    EXPECT_EQ(p->device_ops.at("MatMul"), 1);
    EXPECT_EQ(p->device_ops.at("Reshape"), 1);
    EXPECT_EQ(p->device_ops.count("Shape"), 0u);
    // Buffers: x, mm, add, relu (= y, aliased); at least x and y are live together.
    const size_t per_value = 256;  // every buffer here rounds up to one 256-byte slot
    EXPECT_EQ(p->naive_bytes, 4 * per_value);
    EXPECT_GE(p->arena_bytes, 2 * per_value);
    EXPECT_LT(p->arena_bytes, p->naive_bytes);
  }
  TensorView wrong_rank{DataType::kFloat32, {2}, nullptr};
  EXPECT_FALSE(cuda::PreviewCudaPlan(*model->graph, {wrong_rank}).ok());
  EXPECT_EQ(cuda::PreviewCudaPlan(*model->graph, {}).status().code(), StatusCode::kInvalidArgument);
}

TEST(CudaPriority, LevelZeroIsTheMostUrgentAndLevelsClamp) {
  cuda::StreamPriorityRange r{0, -5};  // what recent GPUs report: least 0, greatest -5
  EXPECT_EQ(cuda::CudaPriorityForLevel(0, r), -5);
  EXPECT_EQ(cuda::CudaPriorityForLevel(1, r), -4);
  EXPECT_EQ(cuda::CudaPriorityForLevel(5, r), 0);
  EXPECT_EQ(cuda::CudaPriorityForLevel(50, r), 0);
  EXPECT_EQ(cuda::CudaPriorityForLevel(-3, r), -5);
  cuda::StreamPriorityRange flat{0, 0};  // devices without priorities
  EXPECT_EQ(cuda::CudaPriorityForLevel(0, flat), 0);
  EXPECT_EQ(cuda::CudaPriorityForLevel(3, flat), 0);
}

TEST(CudaSupport, NamesEveryMissingOperator) {
  ir::Graph g;
  ir::Value* x = g.AddValue("x", DataType::kFloat32);
  ir::Value* a = g.AddValue("a", DataType::kFloat32);
  ir::Value* b = g.AddValue("b", DataType::kFloat32);
  ir::Value* c = g.AddValue("c", DataType::kFloat32);
  g.AddNode("Relu", {x}, {a});
  g.AddNode("NonMaxSuppression", {a}, {b});
  g.AddNode("TopK", {b}, {c});
  Status st = cuda::CheckCudaSupport(g);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kUnimplemented);
  EXPECT_NE(st.message().find("NonMaxSuppression"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("TopK"), std::string::npos) << st.ToString();
  EXPECT_EQ(st.message().find("Relu"), std::string::npos) << st.ToString();
  EXPECT_TRUE(cuda::CudaSupportsOp("gpuhive", "FusedConv"));
  EXPECT_FALSE(cuda::CudaSupportsOp("gpuhive", "QLinearConv"));
  EXPECT_FALSE(cuda::CudaSupportsOp("com.microsoft", "Relu"));
}

// Plans of the benchmark models, computed without a device: no shape depends on device data, the
// convolutions are fused, and the arena reuses memory.
TEST(CudaPlanPreview, BenchmarkModelsPlanWithoutADevice) {
  const char* env = std::getenv("GPUHIVE_MODELS_DIR");
  std::filesystem::path root =
      env != nullptr ? std::filesystem::path(env) : std::filesystem::path(GPUHIVE_SOURCE_DIR) / "models" / "generated";
  int checked = 0;
  for (const char* name : {"resnet50", "mobilenet_v3_large", "bert_base"}) {
    std::filesystem::path p = root / (std::string(name) + ".onnx");
    if (!std::filesystem::exists(p)) continue;
    SCOPED_TRACE(name);
    auto model = ImportOnnxFile(p.string());
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    ASSERT_TRUE(cuda::OptimizeForCuda(**model).ok());
    std::vector<TensorView> inputs;
    for (const ir::Value* v : (*model)->graph->inputs()) {
      Shape shape;
      for (const ir::Dim& d : *v->shape) shape.push_back(d.is_known() ? d.value : (shape.empty() ? 2 : 16));
      inputs.push_back(TensorView{v->dtype, shape, nullptr});
    }
    StatusOr<cuda::PlanPreview> plan = cuda::PreviewCudaPlan(*(*model)->graph, inputs);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    EXPECT_GT(plan->device_steps, 10u);
    EXPECT_LT(plan->arena_bytes, plan->naive_bytes);
    if (std::string(name) != "bert_base") {
      EXPECT_GT(plan->device_ops["gpuhive.FusedConv"], 10);
      EXPECT_GT(plan->device_ops["gpuhive.FusedConv"], plan->device_ops["Conv"]);
    } else {
      EXPECT_EQ(plan->device_ops["Softmax"], 12);
      EXPECT_EQ(plan->device_ops["LayerNormalization"], 25);
      EXPECT_GT(plan->host_evaluated_nodes, 0u);
    }
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << "no benchmark model under " << root;
}

#ifdef GPUHIVE_HAVE_CUDA
// The benchmark models, once optimized for CUDA, use only operators the executor has: without a
// device Create gets past the support check and stops at the device check (kUnavailable).
TEST(CudaSupport, BenchmarkModelsNeedNoMissingOperator) {
  if (HasGpu()) GTEST_SKIP() << "a GPU is present: the cross-backend test runs these models";
  const char* env = std::getenv("GPUHIVE_MODELS_DIR");
  std::filesystem::path root = env != nullptr ? std::filesystem::path(env) : std::filesystem::path(GPUHIVE_SOURCE_DIR) / "models" / "generated";
  const char* list = std::getenv("GPUHIVE_SUPPORT_MODELS");
  std::vector<std::string> names = {"mobilenet_v3_large", "efficientnet_b0", "lraspp_mobilenet_v3", "resnet50",
                                    "bert_base", "audio_lstm"};
  if (list != nullptr) {
    names.clear();
    std::stringstream ss(list);
    for (std::string n; std::getline(ss, n, ',');) names.push_back(n);
  }
  int checked = 0;
  for (const std::string& name : names) {
    std::filesystem::path p = root / (name + ".onnx");
    if (!std::filesystem::exists(p)) continue;
    SCOPED_TRACE(name);
    auto model = ImportOnnxFile(p.string());
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    auto ex = cuda::CreateCudaExecutorForModel(std::move(*model), {});
    ASSERT_FALSE(ex.ok());
    EXPECT_EQ(ex.status().code(), StatusCode::kUnavailable) << ex.status().ToString();
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << "no benchmark model under " << root;
}

// Issue 13: every model of the built-in repository and every benchmark model runs whole on the
// device: the executor's own step builders accept every node of its plan (no node left to the
// CPU), computed on the host with stand-ins for cuDNN and cuBLASLt. At batch 1 and 8.
std::vector<std::filesystem::path> DeviceCoverageModels(const std::filesystem::path& source) {
  std::vector<std::filesystem::path> paths;
  for (const char* name : {"audio_lstm", "bert_encoder", "mobilenet_v3", "resnet50", "text_detector", "tiny_mlp"}) {
    paths.push_back(source / "models" / "repository" / name / "1" / "model.onnx");
  }
  for (const char* name : {"efficientnet_b0", "lraspp_mobilenet_v3", "mobilenet_v3_large", "bert_base", "audio_lstm",
                           "resnet50"}) {
    paths.push_back(source / "models" / "generated" / (std::string(name) + ".onnx"));
  }
  return paths;
}

std::vector<TensorView> PreviewInputs(const ir::Graph& g, int64_t batch, std::deque<std::vector<int64_t>>* keep) {
  std::vector<TensorView> inputs;
  for (const ir::Value* v : g.inputs()) {
    Shape shape;
    if (!v->shape.has_value()) {
      ADD_FAILURE() << "input '" << v->name << "' has no declared rank";
      continue;
    }
    for (size_t i = 0; i < v->shape->size(); ++i) {
      const ir::Dim& d = (*v->shape)[i];
      shape.push_back(d.is_known() ? d.value : (i == 0 ? batch : 16));
    }
    // Integer inputs (token ids, masks) get plan-time-safe contents: zeros.
    keep->emplace_back(static_cast<size_t>(NumElements(shape)) * 2, 0);
    inputs.push_back(TensorView{v->dtype, shape, keep->back().data()});
  }
  return inputs;
}

// DeviceCoverageModels that exist, imported and optimized for CUDA (a failure to is reported);
// none when the built-in repository is not generated.
std::vector<std::pair<std::filesystem::path, std::unique_ptr<ir::Model>>> OptimizedCoverageModels() {
  std::vector<std::pair<std::filesystem::path, std::unique_ptr<ir::Model>>> out;
  const std::filesystem::path source(GPUHIVE_SOURCE_DIR);
  if (!std::filesystem::exists(source / "models" / "repository" / "resnet50" / "1" / "model.onnx")) return out;
  for (const std::filesystem::path& p : DeviceCoverageModels(source)) {
    if (!std::filesystem::exists(p)) continue;
    auto model = ImportOnnxFile(p.string());
    if (!model.ok() || !cuda::OptimizeForCuda(**model).ok()) {
      ADD_FAILURE() << p << ": " << (model.ok() ? "OptimizeForCuda failed" : model.status().ToString());
      continue;
    }
    out.emplace_back(p, std::move(*model));
  }
  return out;
}

TEST(CudaPlanPreview, EveryBuiltInAndBenchmarkModelRunsWholeOnTheDevice) {
  auto models = OptimizedCoverageModels();
  if (models.empty()) GTEST_SKIP() << "the built-in repository is not generated (make models)";
  int checked = 0;
  for (const auto& [p, model] : models) {
    for (int64_t batch : {1, 8}) {
      SCOPED_TRACE(p.string() + " batch " + std::to_string(batch));
      std::deque<std::vector<int64_t>> keep;
      StatusOr<cuda::PlanPreview> plan = cuda::PreviewCudaSteps(*model->graph, PreviewInputs(*model->graph, batch, &keep));
      ASSERT_TRUE(plan.ok()) << plan.status().ToString();
      EXPECT_GT(plan->device_steps, 0u);
      EXPECT_EQ(plan->steps_built, plan->device_steps);
    }
    ++checked;
  }
  EXPECT_GE(checked, 6) << "the six built-in repository models at least";
}

// 16-bit plans (ExecutorOptions::math kFloat16 / kBFloat16): every convolution and matrix product
// of every built-in and benchmark model runs on 16-bit operands, their constant operands are held
// once in 16 bits (ResNet-50 and MobileNetV3: about half of the FP32 plan's constant bytes), and
// activations are converted in the steps' workspaces. ConvTranspose and LSTM keep float32
// operands (TF32).
TEST(CudaPlanPreview, SixteenBitPlansRunEveryConvolutionAndProductOnHalfOperands) {
  auto models = OptimizedCoverageModels();
  if (models.empty()) GTEST_SKIP() << "the built-in repository is not generated (make models)";
  int checked = 0;
  for (const auto& [p, model] : models) {
    SCOPED_TRACE(p.string());
    const ir::Graph& g = *model->graph;
    std::deque<std::vector<int64_t>> keep;
    const std::vector<TensorView> inputs = PreviewInputs(g, 2, &keep);
    StatusOr<cuda::PlanPreview> fp32 = cuda::PreviewCudaSteps(g, inputs, cuda::MathMode::kFloat32);
    StatusOr<cuda::PlanPreview> fp16 = cuda::PreviewCudaSteps(g, inputs, cuda::MathMode::kFloat16);
    StatusOr<cuda::PlanPreview> bf16 = cuda::PreviewCudaSteps(g, inputs, cuda::MathMode::kBFloat16);
    ASSERT_TRUE(fp32.ok()) << fp32.status().ToString();
    ASSERT_TRUE(fp16.ok()) << fp16.status().ToString();
    ASSERT_TRUE(bf16.ok()) << bf16.status().ToString();
    EXPECT_EQ(fp16->steps_built, fp16->device_steps);
    EXPECT_EQ(fp32->steps_16bit, 0u);
    size_t products = 0;
    for (const char* op : {"Conv", "gpuhive.FusedConv", "MatMul", "gpuhive.FusedMatMul", "Gemm", "gpuhive.FusedGemm"}) {
      products += static_cast<size_t>(fp16->device_ops[op]);
    }
    EXPECT_GT(products, 0u);
    EXPECT_EQ(fp16->steps_16bit, products);
    EXPECT_EQ(bf16->steps_16bit, products);
    EXPECT_EQ(bf16->constant_bytes, fp16->constant_bytes);
    EXPECT_LT(fp16->constant_bytes, fp32->constant_bytes);
    EXPECT_GE(fp16->step_workspace_bytes, fp32->step_workspace_bytes);  // conversions (LSTM's gates may be larger)
    const std::string name = p.parent_path().parent_path().filename().string() + "/" + p.stem().string();
    if (name == "repository/resnet50" || name == "generated/resnet50" || name == "generated/mobilenet_v3_large") {
      // Every constant is a convolution's or the classifier's operand.
      EXPECT_NEAR(static_cast<double>(fp16->constant_bytes) / static_cast<double>(fp32->constant_bytes), 0.5, 0.01);
    }
    ++checked;
  }
  EXPECT_GE(checked, 6);
}

// The weights a copy engine places for the executor (ExecutorOptions::defer_weight_copies), in
// first-use order: in FP32 every float32 constant of 1 KiB or more (ResNet-50: all of its weight
// bytes but the small ones), in FP16 none of the convolutions' and products' operands, which the
// executor converts to 16 bits itself (BERT keeps its embedding tables and normalization scales).
TEST(CudaPlanPreview, DeferredWeightsAreTheFloatConstantsInFirstUseOrder) {
  const std::filesystem::path source(GPUHIVE_SOURCE_DIR);
  const std::filesystem::path resnet = source / "models" / "generated" / "resnet50.onnx";
  const std::filesystem::path bert = source / "models" / "generated" / "bert_base.onnx";
  if (!std::filesystem::exists(resnet) || !std::filesystem::exists(bert)) GTEST_SKIP() << "make models";
  for (const auto& p : {resnet, bert}) {
    SCOPED_TRACE(p.string());
    auto model = ImportOnnxFile(p.string());
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    ASSERT_TRUE(cuda::OptimizeForCuda(**model).ok());
    const ir::Graph& g = *(*model)->graph;
    size_t float_bytes = 0, float_count = 0;
    for (const auto& node : g.nodes()) {
      for (const ir::Value* v : node->inputs) {
        if (v != nullptr && v->is_constant() && v->dtype == DataType::kFloat32 &&
            v->constant->bytes() >= cuda::kDeferredWeightMinBytes) {
          float_bytes += v->constant->bytes();
          ++float_count;  // counted once per reading slot; the list holds each value once
        }
      }
    }
    const std::vector<const ir::Value*> fp32 = cuda::DeferredWeights(g, cuda::MathMode::kFloat32);
    const std::vector<const ir::Value*> fp16 = cuda::DeferredWeights(g, cuda::MathMode::kFloat16);
    std::set<const ir::Value*> unique(fp32.begin(), fp32.end());
    EXPECT_EQ(unique.size(), fp32.size());
    EXPECT_LE(fp32.size(), float_count);
    size_t bytes = 0;
    for (const ir::Value* v : fp32) bytes += v->constant->bytes();
    EXPECT_LE(bytes, float_bytes);
    // First-use order: the first deferred weight is read by the first node that reads any.
    for (const auto& node : g.nodes()) {
      auto it = std::find_if(node->inputs.begin(), node->inputs.end(), [&](const ir::Value* v) { return unique.count(v); });
      if (it == node->inputs.end()) continue;
      EXPECT_EQ(*it, fp32.front()) << node->Describe();
      break;
    }
    if (p == resnet) {
      EXPECT_GT(bytes, 95u << 20);  // the 97.5 MiB of weights, less what is under 1 KiB
      EXPECT_TRUE(fp16.empty()) << fp16.size() << " weights left to the copy engine in FP16";
    } else {
      EXPECT_FALSE(fp16.empty());
      EXPECT_LT(fp16.size(), fp32.size());
      size_t bytes16 = 0;
      for (const ir::Value* v : fp16) bytes16 += v->constant->bytes();
      EXPECT_GT(bytes16, 90u << 20);  // the word embedding table, 30522 x 768 floats
      EXPECT_LT(bytes16, bytes / 2);
    }
  }
}

// A float32 constant of `shape` filled with 0.1, added to `g`.
ir::Value* AddFilledConstant(ir::Graph& g, const char* name, Shape shape) {
  ir::Value* v = g.AddValue(name, DataType::kFloat32);
  std::vector<float> data(static_cast<size_t>(NumElements(shape)), 0.1f);
  v->constant = std::make_shared<const Tensor>(Tensor::FromVector<float>(DataType::kFloat32, shape, data).value());
  return v;
}

// One padded convolution: its weights and bias as 16-bit constants, the input and the result
// converted in the workspace (256-byte aligned buffers), exactly.
TEST(CudaPlanPreview, SixteenBitConvolutionConvertsInItsWorkspace) {
  ir::Graph g;
  ir::Value* x = g.AddValue("x", DataType::kFloat32);
  x->shape = std::vector<ir::Dim>{ir::Dim{1, ""}, ir::Dim{3, ""}, ir::Dim{8, ""}, ir::Dim{8, ""}};
  x->is_graph_input = true;
  g.inputs().push_back(x);
  auto constant = [&](const char* name, Shape shape) { return AddFilledConstant(g, name, std::move(shape)); };
  ir::Value* w = constant("w", {4, 3, 3, 3});
  ir::Value* b = constant("b", {4});
  ir::Value* y = g.AddValue("y", DataType::kFloat32);
  ir::Node* conv = g.AddNode("Conv", {x, w, b}, {y});
  conv->opset = 17;
  conv->attrs["pads"] = ir::Attribute(std::vector<int64_t>{1, 1, 1, 1});
  y->is_graph_output = true;
  g.outputs().push_back(y);
  ASSERT_TRUE(g.TopologicalSort().ok());
  std::vector<float> xs(3 * 64, 1.f);
  const std::vector<TensorView> inputs{TensorView{DataType::kFloat32, {1, 3, 8, 8}, xs.data()}};
  StatusOr<cuda::PlanPreview> fp32 = cuda::PreviewCudaSteps(g, inputs, cuda::MathMode::kFloat32);
  StatusOr<cuda::PlanPreview> fp16 = cuda::PreviewCudaSteps(g, inputs, cuda::MathMode::kFloat16);
  ASSERT_TRUE(fp32.ok()) << fp32.status().ToString();
  ASSERT_TRUE(fp16.ok()) << fp16.status().ToString();
  EXPECT_EQ(fp32->constant_bytes, (108u + 4u) * 4u);
  EXPECT_EQ(fp16->constant_bytes, (108u + 4u) * 2u);
  EXPECT_EQ(fp32->step_workspace_bytes, 0u);
  // x: 192 halves (384 B -> 512), y: 4 x 64 halves (512 B).
  EXPECT_EQ(fp16->step_workspace_bytes, 512u + 512u);
  EXPECT_EQ(fp16->steps_16bit, 1u);
}

// The preview sees what the builders refuse, naming the node: an LSTM with an activation the
// device path lacks.
TEST(CudaPlanPreview, NamesTheNodeABuilderRefuses) {
  ir::Graph g;
  ir::Value* x = g.AddValue("x", DataType::kFloat32);
  x->shape = std::vector<ir::Dim>{ir::Dim{2, ""}, ir::Dim{1, ""}, ir::Dim{3, ""}};
  x->is_graph_input = true;
  g.inputs().push_back(x);
  auto constant = [&](const char* name, Shape shape) { return AddFilledConstant(g, name, std::move(shape)); };
  ir::Value* w = constant("w", {1, 16, 3});
  ir::Value* r = constant("r", {1, 16, 4});
  ir::Value* y = g.AddValue("y", DataType::kFloat32);
  ir::Node* lstm = g.AddNode("LSTM", {x, w, r}, {y});
  lstm->name = "the_lstm";
  lstm->opset = 14;
  lstm->attrs["hidden_size"] = ir::Attribute(int64_t{4});
  lstm->attrs["activations"] = ir::Attribute(std::vector<std::string>{"Relu", "Tanh", "Tanh"});
  y->is_graph_output = true;
  g.outputs().push_back(y);
  ASSERT_TRUE(g.TopologicalSort().ok());
  std::vector<float> xs(6, 1.f);
  StatusOr<cuda::PlanPreview> plan = cuda::PreviewCudaSteps(g, {TensorView{DataType::kFloat32, {2, 1, 3}, xs.data()}});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kUnimplemented) << plan.status().ToString();
  EXPECT_NE(plan.status().message().find("the_lstm"), std::string::npos) << plan.status().ToString();
  EXPECT_NE(plan.status().message().find("Relu"), std::string::npos) << plan.status().ToString();
  // With the default activations the same graph builds.
  lstm->attrs.erase("activations");
  plan = cuda::PreviewCudaSteps(g, {TensorView{DataType::kFloat32, {2, 1, 3}, xs.data()}});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->device_ops["LSTM"], 1);
  EXPECT_EQ(plan->steps_built, plan->device_steps);
  // gates for 2 steps [2, 1, 16], recurrent gates [1, 16], three [1, 4] states: 256-byte aligned.
  EXPECT_EQ(plan->step_workspace_bytes, 5u * 256u);
}

TEST(CudaFallback, ExecutorRefusesWithoutADeviceAndTheCpuTakesOver) {
  if (HasGpu()) GTEST_SKIP() << "a GPU is present";
  auto model = SmallModel();
  StatusOr<std::unique_ptr<cuda::CudaExecutor>> ex = cuda::CreateCudaExecutorForModel(std::move(model), {});
  ASSERT_FALSE(ex.ok());
  EXPECT_EQ(ex.status().code(), StatusCode::kUnavailable) << ex.status().ToString();
}
#endif

}  // namespace
}  // namespace gpuhive
