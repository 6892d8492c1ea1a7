// A model whose config asks for precision int8 (manager_precision.cc): calibrated on its samples at
// load, checked against FP32 by the accuracy gate, and run quantized; a gate it fails makes it run
// FP32 and say why, or refuses the load when the config says so.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>

#include <unistd.h>

#include "gpuhive/execution.h"
#include "gpuhive/kernel.h"
#include "gpuhive/onnx_import.h"
#include "gpuhive/quantize.h"
#include "gpuhive/residency/manager.h"
#include "gpuhive/residency/repository.h"
#include "gpuhive/residency/synthetic_models.h"
#include "gpuhive/sim_device.h"
#include "test_util.h"

namespace gpuhive::residency {
namespace {

using namespace testing;  // NOLINT
constexpr int kDim = 64;

// Smooth rows (not noise): sums of two slow sines per row.
Tensor Rows(int64_t rows, uint32_t seed) {
  Tensor t = *Tensor::Allocate(DataType::kFloat32, {rows, kDim});
  for (int64_t r = 0; r < rows; ++r) {
    const double f1 = 0.05 + 0.01 * ((r + seed) % 7), f2 = 0.2 + 0.03 * ((r * 3 + seed) % 5);
    for (int64_t c = 0; c < kDim; ++c) t.as<float>()[r * kDim + c] = static_cast<float>(std::sin(f1 * c) + 0.5 * std::cos(f2 * c + r));
  }
  return t;
}

class Precision : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/gpuhive_precision_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    for (int s = 0; s < 3; ++s) {
      const std::string d = dir_ + "/calibration/set_" + std::to_string(s);
      std::filesystem::create_directories(d);
      ASSERT_TRUE(WriteTensorProtoFile(d + "/x.pb", "x", Rows(16, static_cast<uint32_t>(s))).ok());
    }
    bytes_ = MakeMatMulChainOnnx({.dim = kDim, .layers = 3, .seed = 5, .scale = 0.2f, .bias = true});
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  ModelConfig Int8Config(const std::string& name, std::map<std::string, std::string> params) {
    ModelConfig c = ChainConfig(name, kDim);
    c.precision = "int8";
    c.parameters = std::move(params);
    if (!c.parameters.count("calibration")) c.parameters["calibration"] = dir_ + "/calibration";
    return c;
  }
  // Runs `x` through model `reference` and model `other`; the relative L2 difference of output 0
  // (-1 when a run failed, which is reported).
  double RunBothDiff(ModelManager& m, const std::string& reference, const std::string& other, const Tensor& x) {
    std::vector<Tensor> outs;
    for (const std::string& name : {reference, other}) {
      auto lease = m.Acquire(name);
      EXPECT_TRUE(lease.ok()) << lease.status().ToString();
      if (!lease.ok()) return -1;
      ExecutionContext ctx({.num_threads = 1, .memory = m.memory()});
      auto out = m.Run(*lease, ctx, {x.view()});
      EXPECT_TRUE(out.ok()) << out.status().ToString();
      if (!out.ok()) return -1;
      outs.push_back(std::move((*out)[0]));
    }
    double diff = 0, norm = 0;
    for (int64_t i = 0; i < outs[0].num_elements(); ++i) {
      diff += std::pow(outs[0].as<float>()[i] - outs[1].as<float>()[i], 2);
      norm += std::pow(outs[0].as<float>()[i], 2);
    }
    return std::sqrt(diff / norm);
  }
  ModelStatus StatusOf(ModelManager& m, const std::string& name) {
    for (const auto& st : m.ListModels()) {
      if (st.name == name) return st;
    }
    ADD_FAILURE() << "no model " << name;
    return {};
  }

  std::string dir_, bytes_;
};

TEST_F(Precision, Int8PassesTheGateAndRunsQuantized) {
  ManagerOptions o = SmallOptions(64 << 20);
  o.optimize = true;
  auto m = *ModelManager::Create(o);
  ASSERT_TRUE(m->AddModel(ChainConfig("fp32", kDim), bytes_).ok());
  ASSERT_TRUE(m->AddModel(Int8Config("int8", {}), bytes_).ok());
  const double diff = RunBothDiff(*m, "fp32", "int8", Rows(5, 9));
  const ModelStatus fp32 = StatusOf(*m, "fp32"), int8 = StatusOf(*m, "int8");
  EXPECT_EQ(fp32.precision, "fp32");
  EXPECT_EQ(fp32.precision_rel_l2, -1);
  EXPECT_EQ(int8.precision, "int8") << int8.precision_note;
  EXPECT_GT(int8.precision_rel_l2, 0);
  EXPECT_LT(int8.precision_rel_l2, 0.05) << int8.precision_note;
  EXPECT_NE(int8.precision_note.find("rel L2"), std::string::npos) << int8.precision_note;
  // Quantized weights: the int8 model holds well under the fp32 one's bytes.
  EXPECT_LT(int8.device_bytes * 2, fp32.device_bytes) << int8.device_bytes << " vs " << fp32.device_bytes;
  EXPECT_GT(diff, 0);  // really quantized
  EXPECT_LT(diff, 0.05);
}

TEST_F(Precision, AFailedGateRunsFp32OrRefusesAsTheConfigSays) {
  ManagerOptions o = SmallOptions(64 << 20);
  o.optimize = true;
  auto m = *ModelManager::Create(o);
  ASSERT_TRUE(m->AddModel(Int8Config("fallback", {{"int8_max_rel_l2", "0.0000001"}}), bytes_).ok());
  ASSERT_TRUE(m->AddModel(Int8Config("strict", {{"int8_max_rel_l2", "0.0000001"}, {"int8_on_failure", "refuse"}}), bytes_).ok());
  ASSERT_TRUE(m->AddModel(Int8Config("nosamples", {{"calibration", dir_ + "/missing"}}), bytes_).ok());
  ASSERT_TRUE(m->Acquire("fallback").ok());
  const ModelStatus fallback = StatusOf(*m, "fallback");
  EXPECT_EQ(fallback.precision, "fp32");
  EXPECT_EQ(fallback.precision_note.rfind("runs fp32: ", 0), 0u) << fallback.precision_note;
  EXPECT_GT(fallback.precision_rel_l2, 0);  // what the gate measured
  auto strict = m->Acquire("strict");
  ASSERT_FALSE(strict.ok());
  EXPECT_NE(strict.status().ToString().find("accuracy gate refused"), std::string::npos) << strict.status().ToString();
  auto missing = m->Acquire("nosamples");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().ToString().find("calibration"), std::string::npos) << missing.status().ToString();
}

// int8_keep_float: the activations whose quantization alone moves the outputs most stay float.
// With a limit between full INT8's error and the error with the most sensitive one kept float,
// "auto" keeps exactly one float and runs INT8, "0" fails the gate (FP32), "1" runs INT8 with one
// kept float whatever the limit, and anything else is refused.
TEST_F(Precision, Int8KeepsTheMostSensitiveActivationsFloatAsTheConfigSays) {
  auto reference_ir = ImportOnnxBytes(bytes_);
  ASSERT_TRUE(reference_ir.ok());
  CompileOptions co;
  co.num_threads = 1;
  auto reference = CompiledModel::Create(std::move(*reference_ir), co);
  ASSERT_TRUE(reference.ok());
  auto samples = ReadSamples(dir_ + "/calibration", (*reference)->inputs());
  ASSERT_TRUE(samples.ok()) << samples.status().ToString();
  auto error_keeping = [&](int keep) {
    Int8Options io;
    io.keep_float = keep;
    int quantized = 0;
    auto model = QuantizeOnnx(bytes_, *samples, io, &quantized);
    EXPECT_TRUE(model.ok()) << model.status().ToString();
    EXPECT_EQ(quantized, 3 - keep);
    auto compiled = CompiledModel::Create(std::move(*model), co);
    EXPECT_TRUE(compiled.ok());
    auto report = CompareOutputs(**reference, **compiled, *samples, 1);
    EXPECT_TRUE(report.ok());
    return report->worst_rel_l2;
  };
  const double all = error_keeping(0), one_float = error_keeping(1);
  ASSERT_LT(one_float, all);
  auto ranked = RankInt8Sensitivity(bytes_, *Calibrate(bytes_, *samples, Int8Options{}), *samples, Int8Options{});
  ASSERT_TRUE(ranked.ok()) << ranked.status().ToString();
  ASSERT_EQ(ranked->size(), 3u);
  EXPECT_GE((*ranked)[0].rel_l2, (*ranked)[1].rel_l2);
  EXPECT_GE((*ranked)[1].rel_l2, (*ranked)[2].rel_l2);

  ManagerOptions o = SmallOptions(64 << 20);
  o.optimize = true;
  auto m = *ModelManager::Create(o);
  const std::string limit = std::to_string((all + one_float) / 2);
  // The gate on relative L2 only (this chain's 48 rows flip a top-1 or two either way).
  ASSERT_TRUE(m->AddModel(Int8Config("auto", {{"int8_max_rel_l2", limit}, {"int8_min_top1", "0"}, {"int8_keep_float", "auto"}}),
                          bytes_).ok());
  ASSERT_TRUE(m->AddModel(Int8Config("none", {{"int8_max_rel_l2", limit}, {"int8_min_top1", "0"}, {"int8_keep_float", "0"}}),
                          bytes_).ok());
  ASSERT_TRUE(m->AddModel(Int8Config("one", {{"int8_min_top1", "0"}, {"int8_keep_float", "1"}}), bytes_).ok());
  ASSERT_TRUE(m->AddModel(Int8Config("bad", {{"int8_keep_float", "1.5"}}), bytes_).ok());
  for (const char* name : {"auto", "none", "one"}) ASSERT_TRUE(m->Acquire(name).ok()) << name;
  const ModelStatus automatic = StatusOf(*m, "auto"), none = StatusOf(*m, "none"), one = StatusOf(*m, "one");
  EXPECT_EQ(automatic.precision, "int8") << automatic.precision_note;
  EXPECT_NE(automatic.precision_note.find("2 operators, 1 kept float"), std::string::npos) << automatic.precision_note;
  EXPECT_NEAR(automatic.precision_rel_l2, one_float, one_float * 1e-3);
  EXPECT_EQ(none.precision, "fp32") << none.precision_note;
  EXPECT_NEAR(none.precision_rel_l2, all, all * 1e-3);
  EXPECT_EQ(one.precision, "int8") << one.precision_note;
  EXPECT_NE(one.precision_note.find("1 kept float"), std::string::npos) << one.precision_note;
  auto bad = m->Acquire("bad");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().ToString().find("int8_keep_float"), std::string::npos) << bad.status().ToString();
}

// A product whose input is quantized per run (Int8Options::dynamic_activations) keeps its weights
// int8 ([K, N]) and runs as DynamicQuantizeLinear -> MatMulInteger, close to FP32; the others stay
// static QDQ. KeepMostSensitive sends a sensitive product with large weights (>= 256 KiB) there and
// keeps a small one float.
TEST_F(Precision, SensitiveProductsWithLargeWeightsAreQuantizedPerRun) {
  auto samples = ReadSamples(dir_ + "/calibration", {TensorInfo{"x", DataType::kFloat32, {-1, kDim}}});
  ASSERT_TRUE(samples.ok()) << samples.status().ToString();
  auto table = Calibrate(bytes_, *samples, Int8Options{});
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  auto model = ImportOnnxBytes(bytes_);
  ASSERT_TRUE(model.ok());
  const std::vector<std::string> activations = QuantizableActivations(**model);
  ASSERT_EQ(activations.size(), 3u);
  Int8Options dynamic;
  dynamic.dynamic_activations = {activations[1]};
  auto quantized = QuantizeModel(**model, *table, dynamic);
  ASSERT_TRUE(quantized.ok()) << quantized.status().ToString();
  EXPECT_EQ(*quantized, 3);
  std::map<std::string, int> ops;
  for (const auto& n : (*model)->graph->nodes()) ++ops[n->op_type];
  EXPECT_EQ(ops["DynamicQuantizeLinear"], 1);
  EXPECT_EQ(ops["MatMulInteger"], 1);
  EXPECT_EQ(ops["QuantizeLinear"], 2);
  EXPECT_EQ(ops["MatMul"], 2);  // the static ones, on DequantizeLinear inputs (fused when compiled)
  CompileOptions co;
  auto fp32 = CompiledModel::Create(*ImportOnnxBytes(bytes_), co);
  auto int8 = CompiledModel::Create(std::move(*model), co);
  ASSERT_TRUE(fp32.ok() && int8.ok()) << int8.status().ToString();
  EXPECT_LT((*int8)->weight_bytes() * 2, (*fp32)->weight_bytes());
  auto report = CompareOutputs(**fp32, **int8, *samples, 1);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_GT(report->worst_rel_l2, 0);
  EXPECT_LT(report->worst_rel_l2, 0.05);

  // The ranking marks which inputs feed large weights (the chain's 64 x 64 MatMuls: 16 KiB; 256 x
  // 256: 256 KiB); KeepMostSensitive keeps a small one float and quantizes a large one per run.
  for (int dim : {kDim, 256}) {
    SCOPED_TRACE(dim);
    const std::string onnx = MakeMatMulChainOnnx({.dim = dim, .layers = 3, .seed = 5, .scale = 0.2f, .bias = true});
    Tensor rows = *Tensor::Allocate(DataType::kFloat32, {4, dim});
    for (int64_t i = 0; i < rows.num_elements(); ++i) rows.as<float>()[i] = static_cast<float>(std::sin(0.1 * i));
    std::vector<Sample> dim_samples;
    dim_samples.push_back({});
    dim_samples[0].push_back(std::move(rows));
    auto t = Calibrate(onnx, dim_samples, Int8Options{});
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    auto ranked = RankInt8Sensitivity(onnx, *t, dim_samples, Int8Options{});
    ASSERT_TRUE(ranked.ok()) << ranked.status().ToString();
    ASSERT_EQ(ranked->size(), 3u);
    for (const Int8Sensitivity& r : *ranked) EXPECT_EQ(r.large_weights, dim == 256) << r.activation;
    const std::string first = (*ranked)[0].activation;
    Int8Options o;
    std::vector<std::string> kept;
    KeepMostSensitive(*ranked, 1, &*t, &o, &kept);
    ASSERT_EQ(kept.size(), 1u);
    if (dim == kDim) {  // 16 KiB of weights: float
      EXPECT_EQ(t->count(first), 0u);
      EXPECT_TRUE(o.dynamic_activations.empty());
      EXPECT_EQ(kept[0], first);
    } else {  // 256 KiB: per-run INT8
      EXPECT_EQ(t->count(first), 1u);
      EXPECT_EQ(o.dynamic_activations, std::set<std::string>{first});
      EXPECT_EQ(kept[0], first + " (per-run INT8)");
    }
  }
}

// precision bf16: checked against FP32 at load like int8, then compiled for BF16 compute (weights
// packed in bfloat16); a gate it fails makes it run FP32 or refuses it; a CPU without BF16 dot
// products runs FP32 and says why.
TEST_F(Precision, Bf16PassesItsGateAndHalvesTheWeights) {
  ManagerOptions o = SmallOptions(64 << 20);
  o.optimize = true;
  auto m = *ModelManager::Create(o);
  auto bf16_config = [&](const std::string& name, std::map<std::string, std::string> params) {
    ModelConfig c = Int8Config(name, std::move(params));
    c.precision = "bf16";
    return c;
  };
  ASSERT_TRUE(m->AddModel(ChainConfig("fp32", kDim), bytes_).ok());
  ASSERT_TRUE(m->AddModel(bf16_config("bf16", {}), bytes_).ok());
  ASSERT_TRUE(m->AddModel(bf16_config("strict", {{"bf16_max_rel_l2", "0.0000001"}, {"bf16_on_failure", "refuse"}}), bytes_).ok());
  ASSERT_TRUE(m->AddModel(bf16_config("fallback", {{"bf16_max_rel_l2", "0.0000001"}}), bytes_).ok());
  const double diff = RunBothDiff(*m, "fp32", "bf16", Rows(5, 9));
  const ModelStatus fp32 = StatusOf(*m, "fp32"), bf16 = StatusOf(*m, "bf16");
  if (!CpuHasBf16Compute()) {
    EXPECT_EQ(bf16.precision, "fp32");
    EXPECT_NE(bf16.precision_note.find("no BF16 dot product"), std::string::npos) << bf16.precision_note;
    return;
  }
  EXPECT_EQ(bf16.precision, "bf16") << bf16.precision_note;
  EXPECT_GT(bf16.precision_rel_l2, 0);
  EXPECT_LT(bf16.precision_rel_l2, 0.02) << bf16.precision_note;
  EXPECT_NE(bf16.precision_note.find("3 validation sample(s)"), std::string::npos) << bf16.precision_note;
  // Weights packed in bfloat16: three 64x64 float matrices (48 KiB) become 24 KiB.
  EXPECT_LT(bf16.device_bytes, fp32.device_bytes) << bf16.device_bytes << " vs " << fp32.device_bytes;
  EXPECT_LE(fp32.device_bytes - bf16.device_bytes, 24u << 10) << bf16.device_bytes << " vs " << fp32.device_bytes;
  EXPECT_GE(fp32.device_bytes - bf16.device_bytes, 20u << 10) << bf16.device_bytes << " vs " << fp32.device_bytes;
  EXPECT_GT(diff, 0);  // really BF16
  EXPECT_LT(diff, 0.02);
  auto strict = m->Acquire("strict");
  ASSERT_FALSE(strict.ok());
  EXPECT_NE(strict.status().ToString().find("bf16 accuracy gate refused"), std::string::npos) << strict.status().ToString();
  ASSERT_TRUE(m->Acquire("fallback").ok());
  const ModelStatus fallback = StatusOf(*m, "fallback");
  EXPECT_EQ(fallback.precision, "fp32");
  EXPECT_EQ(fallback.precision_note.rfind("runs fp32: bf16", 0), 0u) << fallback.precision_note;
}

// Calibration from the model's own warm-up samples (issue 17): a repository model with no
// calibration folder whose model_warmup entries read their inputs from files calibrates on them;
// warm-ups of zeros or random data cannot calibrate and the load says so; "model_warmup" names
// them explicitly.
TEST_F(Precision, Int8CalibratesOnTheModelsWarmupFiles) {
  const std::filesystem::path root = dir_ + "/repo";
  auto write_model = [&](const std::string& name, const std::string& warmups, const std::string& params) {
    std::filesystem::create_directories(root / name / "1");
    std::filesystem::create_directories(root / name / "warmup");
    std::ofstream(root / name / "1" / "model.onnx", std::ios::binary) << bytes_;
    std::ofstream(root / name / "config.pbtxt")
        << "name: \"" << name << "\"\nplatform: \"onnxruntime_onnx\"\nmax_batch_size: 16\n"
        << "input [ { name: \"x\" data_type: TYPE_FP32 dims: [ " << kDim << " ] } ]\n"
        << "output [ { name: \"y\" data_type: TYPE_FP32 dims: [ " << kDim << " ] } ]\n"
        << "gpuhive { precision: \"int8\" }\n" << params << warmups;
    for (int s = 0; s < 3; ++s) {
      const Tensor t = Rows(16, static_cast<uint32_t>(s));
      std::ofstream(root / name / "warmup" / ("x" + std::to_string(s) + ".bin"), std::ios::binary)
          .write(static_cast<const char*>(t.data()), static_cast<std::streamsize>(t.bytes()));
    }
  };
  std::string from_files = "model_warmup [\n";
  for (int s = 0; s < 3; ++s) {
    from_files += "  { name: \"w" + std::to_string(s) + "\" batch_size: 16 inputs { key: \"x\" value { data_type: TYPE_FP32 dims: [ " +
                  std::to_string(kDim) + " ] input_data_file: \"x" + std::to_string(s) + ".bin\" } } },\n";
  }
  from_files.replace(from_files.size() - 2, 1, "");  // no comma after the last entry
  from_files += "]\n";
  const std::string random_only = "model_warmup [ { name: \"r\" batch_size: 2 inputs { key: \"x\" value { data_type: "
                                  "TYPE_FP32 dims: [ " + std::to_string(kDim) + " ] random_data: true } } } ]\n";
  write_model("implicit", from_files, "");
  write_model("explicit", from_files,
              "parameters { key: \"calibration\" value { string_value: \"model_warmup\" } }\n");
  write_model("random", random_only, "");
  auto repo = ModelRepository::Open(root.string());
  ASSERT_TRUE(repo.ok()) << repo.status().ToString();
  for (const char* name : {"implicit", "explicit", "random"}) {
    auto scanned = (*repo)->ScanModel(name);
    ASSERT_TRUE(scanned.ok()) << scanned.status().ToString();
    ASSERT_EQ(scanned->config.precision, "int8") << name;
  }
  ManagerOptions o = SmallOptions(64 << 20);
  o.optimize = true;
  auto m = ModelManager::Create(o, repo->get());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  for (const char* name : {"implicit", "explicit"}) {
    SCOPED_TRACE(name);
    auto lease = (*m)->Acquire(name);
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    const ModelStatus st = StatusOf(**m, name);
    EXPECT_EQ(st.precision, "int8") << st.precision_note;
    EXPECT_NE(st.precision_note.find("3 sample(s) from model_warmup"), std::string::npos) << st.precision_note;
    EXPECT_LT(st.precision_rel_l2, 0.05) << st.precision_note;
  }
  auto random = (*m)->Acquire("random");
  ASSERT_FALSE(random.ok());
  EXPECT_NE(random.status().ToString().find("cannot calibrate"), std::string::npos) << random.status().ToString();
}

// A device backend whose reduced precisions are off by a known amount: the CPU executor's results
// scaled by (1 + error) whenever CompileOptions::device_math is not FP32 (relative L2 = error,
// top-1 unchanged). It records the device math of every compile.
class LossyExecutable final : public ForwardingExecutable {
 public:
  LossyExecutable(std::unique_ptr<Executable> inner, float scale) : ForwardingExecutable(std::move(inner)), scale_(scale) {}
  std::string_view backend() const override { return "lossy"; }
  StatusOr<std::vector<Tensor>> Run(ExecutionContext& ctx, const std::vector<TensorView>& inputs) override {
    ASSIGN_OR_RETURN(std::vector<Tensor> out, inner_->Run(ctx, inputs));
    for (Tensor& t : out) {
      for (int64_t i = 0; i < t.num_elements(); ++i) t.as<float>()[i] *= scale_;
    }
    return out;
  }

 private:
  float scale_;
};

class LossyBackend final : public ExecutionBackend {
 public:
  explicit LossyBackend(float error) : error_(error) {}
  std::string_view name() const override { return "lossy"; }
  bool runs_host_kernels() const override { return true; }  // it wraps the CPU executor
  StatusOr<std::unique_ptr<Executable>> Compile(std::unique_ptr<ir::Model> model, const CompileOptions& options,
                                                ComputeDevice& device) override {
    {
      std::lock_guard<std::mutex> lock(mu);
      maths.push_back(options.device_math);
    }
    ASSIGN_OR_RETURN(auto inner, CpuExecutionBackend()->Compile(std::move(model), options, device));
    const float scale = options.device_math == DeviceMath::kFloat32 ? 1.f : 1.f + error_;
    return std::unique_ptr<Executable>(std::make_unique<LossyExecutable>(std::move(inner), scale));
  }
  std::mutex mu;
  std::vector<DeviceMath> maths;

 private:
  float error_;
};

// precision fp16 / bf16 / tf32 on a device with its own backend (the CUDA plugin's place): the
// gate compiles the model on the device in FP32 and in the precision and compares them on the
// validation samples; within the limit the model is compiled with that device math, over it runs
// FP32 or is refused as the config says. The CPU executor runs fp16 / tf32 in FP32 and says so.
TEST_F(Precision, GpuPrecisionsAreGatedOnTheDeviceAgainstItsFp32) {
  for (float error : {0.004f, 0.03f}) {
    SCOPED_TRACE(error);
    LossyBackend lossy(error);
    RegisterExecutionBackend(DeviceType::kSim, &lossy);
    SimDeviceOptions so;
    so.memory_bytes = 64 << 20;
    auto sim = SimDevice::Create(so);
    ASSERT_TRUE(sim.ok());
    ManagerOptions o = SmallOptions(32 << 20);
    o.device = sim->get();
    auto m = ModelManager::Create(std::move(o), nullptr);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    auto config = [&](const std::string& name, const std::string& precision, std::map<std::string, std::string> params) {
      ModelConfig c = Int8Config(name, std::move(params));
      c.precision = precision;
      return c;
    };
    ASSERT_TRUE((*m)->AddModel(config("fp16", "fp16", {}), bytes_).ok());
    ASSERT_TRUE((*m)->AddModel(config("bf16", "bf16", {}), bytes_).ok());
    ASSERT_TRUE((*m)->AddModel(config("tf32", "tf32", {}), bytes_).ok());
    ASSERT_TRUE((*m)->AddModel(config("strict", "fp16", {{"fp16_on_failure", "refuse"}}), bytes_).ok());
    for (const char* name : {"fp16", "bf16", "tf32"}) {
      SCOPED_TRACE(name);
      std::vector<DeviceMath> seen;
      {
        std::lock_guard<std::mutex> lock(lossy.mu);
        lossy.maths.clear();
      }
      ASSERT_TRUE((*m)->Acquire(name).ok());
      {
        std::lock_guard<std::mutex> lock(lossy.mu);
        seen = lossy.maths;
      }
      const ModelStatus st = StatusOf(**m, name);
      EXPECT_NEAR(st.precision_rel_l2, error, error * 1e-3) << st.precision_note;
      const DeviceMath math = std::string(name) == "fp16" ? DeviceMath::kFloat16
                              : std::string(name) == "bf16" ? DeviceMath::kBFloat16 : DeviceMath::kTF32;
      // Limits: tf32 0.005, fp16 0.01, bf16 0.02.
      const bool passes = std::string(name) == "tf32" ? error <= 0.005 : error <= 0.01;
      ASSERT_EQ(seen.size(), 3u);  // the gate's FP32 and candidate compiles, then the served one
      EXPECT_EQ(seen[0], DeviceMath::kFloat32);
      EXPECT_EQ(seen[1], math);
      if (passes) {
        EXPECT_EQ(st.precision, name) << st.precision_note;
        EXPECT_NE(st.precision_note.find("against the device's FP32"), std::string::npos) << st.precision_note;
        EXPECT_EQ(seen[2], math);
      } else {
        EXPECT_EQ(st.precision, "fp32") << st.precision_note;
        EXPECT_EQ(st.precision_note.rfind("runs fp32: ", 0), 0u) << st.precision_note;
        EXPECT_EQ(seen[2], DeviceMath::kFloat32);
      }
    }
    {
      auto strict = (*m)->Acquire("strict");  // released before the manager goes
      if (error <= 0.01) {
        EXPECT_TRUE(strict.ok()) << strict.status().ToString();
      } else {
        ASSERT_FALSE(strict.ok());
        EXPECT_NE(strict.status().ToString().find("fp16 accuracy gate refused"), std::string::npos)
            << strict.status().ToString();
      }
    }
    m->reset();
    RegisterExecutionBackend(DeviceType::kSim, nullptr);
  }
  // On the host CPU: fp16 and tf32 run FP32 and say why.
  ManagerOptions o = SmallOptions(64 << 20);
  auto m = *ModelManager::Create(o);
  ModelConfig c = Int8Config("fp16", {});
  c.precision = "fp16";
  ASSERT_TRUE(m->AddModel(c, bytes_).ok());
  ASSERT_TRUE(m->Acquire("fp16").ok());
  const ModelStatus st = StatusOf(*m, "fp16");
  EXPECT_EQ(st.precision, "fp32");
  EXPECT_NE(st.precision_note.find("GPU backend's"), std::string::npos) << st.precision_note;
}

}  // namespace
}  // namespace gpuhive::residency
