// gpuhive's INT8 precision (quantize.h): calibration, the QDQ rewrite of a float model, and the
// accuracy comparison that gates it, on a small float convolution network.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>

#include "gpuhive/onnx_import.h"
#include "gpuhive/quantize.h"
#include "graph/onnx_test_util.h"

namespace gpuhive {
namespace {
using namespace gpuhive::testing;  // NOLINT
constexpr int kF = onnx::TensorProto::FLOAT;

std::vector<float> Normal(size_t n, uint32_t seed, float sd) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, sd);
  std::vector<float> v(n);
  for (float& e : v) e = d(rng);
  return v;
}

// x[N,3,12,12] -> Conv(8, 3x3, pad 1) -> Relu -> Conv(16, 3x3, stride 2) -> Relu
//   -> GlobalAveragePool -> Flatten -> Gemm(10) -> logits[N,10]
std::string FloatNet() {
  onnx::ModelProto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "x", kF, {"N", 3, 12, 12});
  AddOutput(g, "logits", kF, {"N", 10});
  AddFloatInit(g, "w1", {8, 3, 3, 3}, Normal(8 * 27, 1, 0.3f));
  AddFloatInit(g, "b1", {8}, Normal(8, 2, 0.1f));
  AddFloatInit(g, "w2", {16, 8, 3, 3}, Normal(16 * 72, 3, 0.15f));
  AddFloatInit(g, "b2", {16}, Normal(16, 4, 0.1f));
  AddFloatInit(g, "fc", {16, 10}, Normal(160, 5, 0.5f));
  AddFloatInit(g, "fcb", {10}, Normal(10, 6, 0.1f));
  AddIntsAttr(AddNode(g, "Conv", {"x", "w1", "b1"}, {"c1"}), "pads", {1, 1, 1, 1});
  AddNode(g, "Relu", {"c1"}, {"r1"});
  AddIntsAttr(AddNode(g, "Conv", {"r1", "w2", "b2"}, {"c2"}), "strides", {2, 2});
  AddNode(g, "Relu", {"c2"}, {"r2"});
  AddNode(g, "GlobalAveragePool", {"r2"}, {"p"});
  AddNode(g, "Flatten", {"p"}, {"f"});
  AddNode(g, "Gemm", {"f", "fc", "fcb"}, {"logits"});
  return Serialize(m);
}

std::vector<Sample> Images(int count, int batch, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<Sample> samples;
  for (int s = 0; s < count; ++s) {
    Tensor t = *Tensor::Allocate(DataType::kFloat32, {batch, 3, 12, 12});
    // Smooth images: a random plane per channel plus a bright square, not noise.
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t c = 0; c < 3; ++c) {
        const float a = u(rng), dx = u(rng) * 0.2f, dy = u(rng) * 0.2f;
        const int64_t x0 = static_cast<int64_t>(std::abs(u(rng)) * 8), y0 = static_cast<int64_t>(std::abs(u(rng)) * 8);
        for (int64_t y = 0; y < 12; ++y) {
          for (int64_t x = 0; x < 12; ++x) {
            const bool in_square = x >= x0 && x < x0 + 4 && y >= y0 && y < y0 + 4;
            t.as<float>()[((b * 3 + c) * 12 + y) * 12 + x] = a + dx * x + dy * y + (in_square ? 1.5f : 0.f);
          }
        }
      }
    }
    Sample sample;
    sample.push_back(std::move(t));
    samples.push_back(std::move(sample));
  }
  return samples;
}

TEST(Int8Precision, CalibratedQuantizationRunsInt8KernelsCloseToFp32) {
  const std::string bytes = FloatNet();
  const std::vector<Sample> calibration = Images(4, 8, 11), validation = Images(8, 8, 12);
  auto fp32 = CompiledModel::Create(*ImportOnnxBytes(bytes), CompileOptions{});
  ASSERT_TRUE(fp32.ok()) << fp32.status().ToString();
  for (CalibrationMethod method : {CalibrationMethod::kMinMax, CalibrationMethod::kPercentile, CalibrationMethod::kEntropy}) {
    SCOPED_TRACE(CalibrationMethodName(method));
    Int8Options o;
    o.method = method;
    auto table = Calibrate(bytes, calibration, o);
    ASSERT_TRUE(table.ok()) << table.status().ToString();
    ASSERT_EQ(table->size(), 3u);  // x and r1, the convolutions' inputs, and f, the Gemm's
    EXPECT_LT(table->at("x").lo, 0.f);
    EXPECT_GE(table->at("r1").lo, 0.f);  // after a Relu
    int quantized = 0;
    auto int8_ir = QuantizeOnnx(bytes, calibration, o, &quantized);
    ASSERT_TRUE(int8_ir.ok()) << int8_ir.status().ToString();
    EXPECT_EQ(quantized, 3);
    auto int8 = CompiledModel::Create(std::move(*int8_ir), CompileOptions{});
    ASSERT_TRUE(int8.ok()) << int8.status().ToString();
    EXPECT_LT((*int8)->weight_bytes(), (*fp32)->weight_bytes());
    ExecutionContext::Options eo;
    eo.profile = true;
    ExecutionContext ctx(eo);
    ASSERT_TRUE((*int8)->Run(ctx, {validation[0][0].view()}).ok());
    int qconvs = 0, qmatmuls = 0;
    for (const auto& st : ctx.step_times()) {
      qconvs += st.op == "gpuhive.QConv";
      qmatmuls += st.op == "gpuhive.QMatMul";
    }
    EXPECT_EQ(qconvs, 2);
    EXPECT_EQ(qmatmuls, 1);
    auto report = CompareOutputs(**fp32, **int8, validation, 1);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    ASSERT_EQ(report->outputs.size(), 1u);
    EXPECT_EQ(report->outputs[0].rows, 64);
    EXPECT_LT(report->worst_rel_l2, 0.03) << report->Summary();
    EXPECT_GE(report->worst_top1, 0.95) << report->Summary();
  }
}

TEST(Int8Precision, TheComparisonSeesABadQuantization) {
  const std::string bytes = FloatNet();
  const std::vector<Sample> calibration = Images(2, 8, 21), validation = Images(4, 8, 22);
  auto fp32 = CompiledModel::Create(*ImportOnnxBytes(bytes), CompileOptions{});
  ASSERT_TRUE(fp32.ok());
  Int8Options bad;
  bad.weight_bits = 2;  // weights in {-1, 0, 1} times a scale
  auto int8_ir = QuantizeOnnx(bytes, calibration, bad);
  ASSERT_TRUE(int8_ir.ok()) << int8_ir.status().ToString();
  auto int8 = CompiledModel::Create(std::move(*int8_ir), CompileOptions{});
  ASSERT_TRUE(int8.ok());
  auto report = CompareOutputs(**fp32, **int8, validation, 1);
  ASSERT_TRUE(report.ok());
  EXPECT_GT(report->worst_rel_l2, 0.2) << report->Summary();
  EXPECT_NE(report->Summary().find("top-1"), std::string::npos) << report->Summary();
}

// ids[N,5] -> Gather(table f32 [4096, 64], 1 MiB) -> ReduceMean over the ids -> y[N,64]: the table is
// stored as int8 rows with a scale per row.
TEST(Int8Precision, EmbeddingTablesAreHeldAsInt8Rows) {
  onnx::ModelProto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "ids", onnx::TensorProto::INT64, {"N", 5});
  AddOutput(g, "y", kF, {"N", 64});
  AddFloatInit(g, "table", {4096, 64}, Normal(4096 * 64, 7, 1.f));
  AddNode(g, "Gather", {"table", "ids"}, {"rows"});
  AddIntsAttr(AddNode(g, "ReduceMean", {"rows"}, {"y"}), "axes", {1});
  AddIntAttr(g->mutable_node(1), "keepdims", 0);
  const std::string bytes = Serialize(m);
  std::vector<Sample> samples;
  for (int s = 0; s < 2; ++s) {
    Tensor ids = *Tensor::Allocate(DataType::kInt64, {3, 5});
    for (int64_t i = 0; i < 15; ++i) ids.as<int64_t>()[i] = (i * 977 + s * 131) % 4096;
    Sample sample;
    sample.push_back(std::move(ids));
    samples.push_back(std::move(sample));
  }
  int quantized = 0;
  auto int8_ir = QuantizeOnnx(bytes, samples, Int8Options{}, &quantized);
  ASSERT_TRUE(int8_ir.ok()) << int8_ir.status().ToString();
  EXPECT_EQ(quantized, 1);
  auto fp32 = CompiledModel::Create(*ImportOnnxBytes(bytes), CompileOptions{});
  auto int8 = CompiledModel::Create(std::move(*int8_ir), CompileOptions{});
  ASSERT_TRUE(fp32.ok() && int8.ok());
  EXPECT_LT((*int8)->weight_bytes(), (*fp32)->weight_bytes() * 3 / 10)
      << (*int8)->weight_bytes() << " vs " << (*fp32)->weight_bytes();
  auto report = CompareOutputs(**fp32, **int8, samples, 1);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_GT(report->worst_rel_l2, 0);
  EXPECT_LT(report->worst_rel_l2, 0.01) << report->Summary();
}

TEST(Int8Precision, SamplesAreReadFromTestDataFolders) {
  const std::string dir = ::testing::TempDir() + "/gpuhive_int8_samples";
  std::filesystem::remove_all(dir);
  std::vector<TensorInfo> inputs{{"x", DataType::kFloat32, {-1, 3, 12, 12}}};
  EXPECT_EQ(ReadSamples(dir, inputs).status().code(), StatusCode::kNotFound);
  std::vector<Sample> images = Images(3, 2, 5);
  for (int i = 0; i < 3; ++i) {
    std::filesystem::create_directories(dir + "/set_" + std::to_string(i));
    ASSERT_TRUE(WriteTensorProtoFile(dir + "/set_" + std::to_string(i) + "/x.pb", "x", images[i][0]).ok());
  }
  auto samples = ReadSamples(dir, inputs);
  ASSERT_TRUE(samples.ok()) << samples.status().ToString();
  ASSERT_EQ(samples->size(), 3u);
  EXPECT_EQ((*samples)[2][0].shape(), (Shape{2, 3, 12, 12}));
  EXPECT_EQ((*samples)[1][0].as<float>()[7], images[1][0].as<float>()[7]);
  // A tensor for an input the model does not have is refused by name.
  ASSERT_TRUE(WriteTensorProtoFile(dir + "/set_0/y.pb", "y", images[0][0]).ok());
  auto wrong = ReadSamples(dir, inputs);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().ToString().find("'y'"), std::string::npos) << wrong.status().ToString();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gpuhive
