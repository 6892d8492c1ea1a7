// Winograd convolutions across a model's plans (conv.cc, KernelOptions::conv_algorithm): every
// batch size's plan keeps the weights in the format oneDNN picks at batch 1, so the plans share
// one transformed copy, and a batch whose primitive does not take that format runs it row by row.
// Checked by the implementation each step ran and the model's weight bytes, never by timing.
#include <gtest/gtest.h>
#include <omp.h>

#include <random>
#include <string>

#include "gpuhive/kernel.h"
#include "gpuhive/runtime.h"
#include "support/kernel_harness.h"

namespace gpuhive {
namespace {

// x:f32[N,C,S,S] -> Conv(W [C,C,3,3], B, pads 1) -> Relu -> y
std::unique_ptr<ir::Model> BuildConvRelu(int64_t channels = 32, int64_t size = 16) {
  const int64_t c = channels;
  auto m = std::make_unique<ir::Model>();
  m->graph = std::make_shared<ir::Graph>();
  m->opsets[""] = 13;
  ir::Graph& g = *m->graph;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-0.2f, 0.2f);
  std::vector<float> w(static_cast<size_t>(c * c * 9)), b(static_cast<size_t>(c));
  for (float& v : w) v = u(rng);
  for (float& v : b) v = u(rng);
  ir::Value* x = g.AddValue("x", DataType::kFloat32);
  x->shape = std::vector<ir::Dim>{ir::Dim{-1, "N"}, ir::Dim{c, ""}, ir::Dim{size, ""}, ir::Dim{size, ""}};
  x->is_graph_input = true;
  g.inputs().push_back(x);
  ir::Value* wv = g.AddValue("w", DataType::kFloat32);
  wv->constant = std::make_shared<const Tensor>(Tensor::FromVector<float>(DataType::kFloat32, {c, c, 3, 3}, w).value());
  ir::Value* bv = g.AddValue("b", DataType::kFloat32);
  bv->constant = std::make_shared<const Tensor>(Tensor::FromVector<float>(DataType::kFloat32, {c}, b).value());
  ir::Value* conv_out = g.AddValue("c", DataType::kFloat32);
  ir::Value* y = g.AddValue("y", DataType::kFloat32);
  ir::Node* conv = g.AddNode("Conv", {x, wv, bv}, {conv_out}, "conv");
  conv->opset = 13;
  conv->attrs["pads"] = ir::Attribute(std::vector<int64_t>{1, 1, 1, 1});
  g.AddNode("Relu", {conv_out}, {y}, "relu")->opset = 13;
  y->is_graph_output = true;
  g.outputs().push_back(y);
  return m;
}

struct Result {
  Tensor y;
  std::string conv_implementation;
};

Result RunRows(CompiledModel& model, int64_t rows) {
  auto x = Tensor::Allocate(DataType::kFloat32, {rows, 32, 16, 16});
  EXPECT_TRUE(x.ok());
  std::mt19937 rng(static_cast<uint32_t>(rows));
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t i = 0; i < x->num_elements(); ++i) x->as<float>()[i] = u(rng);
  ExecutionContext::Options eo;
  eo.profile = true;
  ExecutionContext ctx(eo);
  auto out = model.Run(ctx, {x->view()});
  if (!out.ok()) {
    ADD_FAILURE() << out.status().ToString();
    return {};
  }
  Result r{std::move((*out)[0]), ""};
  for (const auto& step : ctx.step_times()) {
    if (step.op.find("Conv") != std::string::npos) r.conv_implementation = step.implementation;
  }
  return r;
}

TEST(ConvAlgorithm, PlansOfEveryBatchShareOneWinogradCopyAndMatchDirect) {
  CompileOptions wino_options, direct_options;
  direct_options.conv_algorithm = ConvAlgorithm::kDirect;
  auto wino = CompiledModel::Create(BuildConvRelu(), wino_options);
  auto direct = CompiledModel::Create(BuildConvRelu(), direct_options);
  ASSERT_TRUE(wino.ok()) << wino.status().ToString();
  ASSERT_TRUE(direct.ok()) << direct.status().ToString();

  Result one = RunRows(**wino, 1);
  const size_t bytes_after_one = (*wino)->weight_bytes();
  Result three = RunRows(**wino, 3);  // a second plan: batch 3 cannot take every batch-1 format
  Result eight = RunRows(**wino, 8);
  const bool expect_winograd = CpuHasWinogradConv();
  for (const Result* r : {&one, &three, &eight}) {
    EXPECT_EQ(r->conv_implementation.find("wino") != std::string::npos, expect_winograd) << r->conv_implementation;
  }
  // One transformed copy for all three plans: no plan added weight bytes.
  EXPECT_EQ((*wino)->weight_bytes(), bytes_after_one);

  Result d1 = RunRows(**direct, 1), d3 = RunRows(**direct, 3), d8 = RunRows(**direct, 8);
  EXPECT_EQ(d3.conv_implementation.find("wino"), std::string::npos) << d3.conv_implementation;
  EXPECT_LT(testing::RelativeL2(one.y, d1.y), 1e-5);
  EXPECT_LT(testing::RelativeL2(three.y, d3.y), 1e-5);
  EXPECT_LT(testing::RelativeL2(eight.y, d8.y), 1e-5);
  // The Winograd-domain weights are larger than the plain ones (F(2,3): 16/9 of them).
  if (expect_winograd) {
    EXPECT_GT((*wino)->weight_bytes(), (*direct)->weight_bytes());
  }
}

// Several rows run the batch-1 Winograd primitive row by row, so its scratchpad does not grow with
// the batch (oneDNN's F(4,3) at batch 8 would take 2.2x the workspace of batch 1 at ResNet-50's
// 128-channel layer): the workspace grows from batch 1 to 8 exactly as the direct plan's does (the
// input's reorder to the blocked layout), however much larger it starts. ResNet-50's 128-channel
// 28x28 layer: oneDNN picks F(4,3) at batch 1 and its batch-8 primitive would take that format.
TEST(ConvAlgorithm, WinogradWorkspaceDoesNotGrowWithTheBatch) {
  CompileOptions wino_options, direct_options;
  wino_options.conv_algorithm = ConvAlgorithm::kWinograd;  // auto leaves F(4,3) layers direct
  direct_options.conv_algorithm = ConvAlgorithm::kDirect;
  auto wino = CompiledModel::Create(BuildConvRelu(128, 28), wino_options);
  auto direct = CompiledModel::Create(BuildConvRelu(128, 28), direct_options);
  ASSERT_TRUE(wino.ok()) << wino.status().ToString();
  ASSERT_TRUE(direct.ok()) << direct.status().ToString();
  size_t ws[2][2] = {};  // [winograd?][batch 8?]
  for (int b = 0; b < 2; ++b) {
    const Shape shape = {b == 0 ? 1 : 8, 128, 28, 28};
    auto w = (*wino)->Prepare({shape});
    auto d = (*direct)->Prepare({shape});
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    ws[1][b] = w->step_workspace_bytes;
    ws[0][b] = d->step_workspace_bytes;
  }
  EXPECT_EQ(ws[1][1] - ws[1][0], ws[0][1] - ws[0][0])
      << "winograd " << ws[1][0] << " -> " << ws[1][1] << ", direct " << ws[0][0] << " -> " << ws[0][1];
  if (CpuHasWinogradConv()) {
    EXPECT_GT(ws[1][0], ws[0][0]);  // the Winograd scratchpad
  }
}

// oneDNN sizes its Winograd weight blocking by the OpenMP thread count it sees when a primitive is
// made. A server prepares a model's plans on whichever thread first needs them (the loader for the
// warm-up, a worker for a new batch size), each with its own count: ResNet-50 under scenario 1 then
// failed every batch of 3-5 rows after batch 1 ("has neither plain storage nor a packed copy": the
// batch-1 plan had freed the plain weights, and the new plan asked for another blocking). Kernels
// prepare with the model's thread count whatever the calling thread's.
TEST(ConvAlgorithm, PlansPreparedUnderOtherThreadCountsShareTheWinogradCopy) {
  if (!CpuHasWinogradConv()) GTEST_SKIP() << "no Winograd convolutions on this CPU";
  CompileOptions options;
  options.num_threads = 2;
  options.conv_algorithm = ConvAlgorithm::kWinograd;  // auto leaves a copy this costly direct
  auto model = CompiledModel::Create(BuildConvRelu(256, 14), options);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const int before = omp_get_max_threads();
  size_t bytes = 0;
  int64_t rows = 1;
  for (int threads : {1, 2, 8, 3}) {
    omp_set_num_threads(threads);  // the preparing thread's count, as a server worker's may be
    auto plan = (*model)->Prepare({{rows, 256, 14, 14}});
    ASSERT_TRUE(plan.ok()) << "batch " << rows << " prepared under " << threads << " threads: " << plan.status().ToString();
    if (rows == 1) bytes = (*model)->weight_bytes();
    EXPECT_EQ((*model)->weight_bytes(), bytes) << "batch " << rows;
    rows += 2;
  }
  omp_set_num_threads(before);
}

}  // namespace
}  // namespace gpuhive
