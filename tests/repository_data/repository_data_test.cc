// The committed test repository (tests/data/repository, written by scripts/make-repository.py
// --tiny): every config parses and validates, every model imports, compiles and computes what
// tests/data/repository/README.md says with the shapes its config declares, broken_model fails
// with a clear error for itself only, and regenerating the repository gives the same bytes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gpuhive/onnx_import.h"
#include "gpuhive/residency/manager.h"
#include "gpuhive/residency/model_config.h"
#include "gpuhive/residency/repository.h"
#include "gpuhive/runtime.h"

namespace gpuhive::residency {
namespace {

namespace fs = std::filesystem;

const std::string kRepo = std::string(GPUHIVE_SOURCE_DIR) + "/tests/data/repository";
const std::set<std::string> kModels = {"add_sub", "broken_model", "identity_fp32", "no_batch", "tiny_mlp",
                                       "two_versions"};

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Deterministic input values; integers stay small so sums and differences are exact.
Tensor MakeInput(DataType dtype, const Shape& shape, int salt) {
  auto t = Tensor::Allocate(dtype, shape);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  const int64_t n = t->num_elements();
  for (int64_t i = 0; i < n; ++i) {
    if (dtype == DataType::kFloat32) {
      t->as<float>()[i] = static_cast<float>((i * (salt + 3)) % 13) * 0.25f - 1.5f;
    } else if (dtype == DataType::kInt32) {
      t->as<int32_t>()[i] = static_cast<int32_t>((i * (salt + 5)) % 17) - 8;
    } else {
      ADD_FAILURE() << "test inputs of dtype " << static_cast<int>(dtype) << " are not generated";
    }
  }
  return std::move(t).value();
}

struct RunResult {
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;
};

// Compiles one version, checks its inputs/outputs against the config, and runs it once with the
// config's shapes (batch `batch` prepended when the model batches; other -1 dims become 2).
RunResult CompileAndRun(const RepositoryModel& m, const ModelVersionFile& v, int64_t batch) {
  RunResult r;
  SCOPED_TRACE(m.name + " version " + std::to_string(v.version));
  auto imported = ImportOnnxFile(v.path);
  EXPECT_TRUE(imported.ok()) << imported.status().ToString();
  if (!imported.ok()) return r;
  auto compiled = CompiledModel::Create(std::move(imported).value(), CompileOptions{});
  EXPECT_TRUE(compiled.ok()) << compiled.status().ToString();
  if (!compiled.ok()) return r;
  CompiledModel& model = **compiled;
  const ModelConfig& c = m.config;
  const bool batched = c.max_batch_size > 0;
  if (batched) {
    EXPECT_LE(batch, c.max_batch_size);
  }

  auto check_io = [&](const std::vector<TensorInfo>& infos, const std::vector<TensorConfig>& configs,
                      const char* what) {
    ASSERT_EQ(infos.size(), configs.size()) << what;
    for (size_t i = 0; i < infos.size(); ++i) {
      EXPECT_EQ(infos[i].name, configs[i].name) << what << " " << i;
      EXPECT_EQ(infos[i].dtype, configs[i].dtype) << what << " " << configs[i].name;
      std::vector<int64_t> want = configs[i].dims;
      if (batched) want.insert(want.begin(), -1);
      ASSERT_EQ(infos[i].shape.size(), want.size()) << what << " " << configs[i].name;
      for (size_t d = 0; d < want.size(); ++d) {
        if (want[d] >= 0) {
          EXPECT_EQ(infos[i].shape[d], want[d]) << what << " " << configs[i].name << " dim " << d;
        }
      }
      if (batched) {
        EXPECT_EQ(infos[i].shape[0], -1) << what << " " << configs[i].name << ": batch dim not dynamic";
      }
    }
  };
  check_io(model.inputs(), c.inputs, "input");
  check_io(model.outputs(), c.outputs, "output");

  std::vector<TensorView> views;
  int salt = 0;
  for (const auto& in : c.inputs) {
    Shape shape;
    if (batched) shape.push_back(batch);
    for (int64_t d : in.dims) shape.push_back(d < 0 ? 2 : d);
    r.inputs.push_back(MakeInput(in.dtype, shape, salt++));
  }
  for (const auto& t : r.inputs) views.push_back(t.view());
  ExecutionContext ctx(ExecutionContext::Options{});
  auto out = model.Run(ctx, views);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  if (!out.ok()) return r;
  r.outputs = std::move(out).value();
  EXPECT_EQ(r.outputs.size(), c.outputs.size());
  for (size_t i = 0; i < r.outputs.size() && i < c.outputs.size(); ++i) {
    EXPECT_EQ(r.outputs[i].dtype(), c.outputs[i].dtype);
    Shape want;
    if (batched) want.push_back(batch);
    for (int64_t d : c.outputs[i].dims) want.push_back(d < 0 ? 2 : d);
    EXPECT_EQ(r.outputs[i].shape(), want) << c.outputs[i].name;
  }
  return r;
}

ScanResult ScanRepo() {
  auto repo = ModelRepository::Open(kRepo);
  EXPECT_TRUE(repo.ok()) << repo.status().ToString();
  if (!repo.ok()) return {};
  return (*repo)->Scan();
}

TEST(RepositoryDataTest, EveryConfigParsesAndValidates) {
  std::set<std::string> dirs;
  int configs = 0;
  for (const auto& e : fs::directory_iterator(kRepo)) {
    if (!e.is_directory()) continue;
    const std::string name = e.path().filename().string();
    dirs.insert(name);
    fs::path cfg = e.path() / "config.pbtxt";
    if (!fs::exists(cfg)) {
      EXPECT_EQ(name, "identity_fp32") << "only identity_fp32 derives its config";
      continue;
    }
    ++configs;
    auto c = ParseModelConfig(ReadFile(cfg), cfg.string());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_TRUE(ValidateModelConfig(*c).ok()) << name;
    EXPECT_EQ(c->name, name);
    EXPECT_TRUE(c->skipped_fields.empty()) << name << ": " << c->skipped_fields.front();
    EXPECT_FALSE(c->inputs.empty()) << name;
    EXPECT_FALSE(c->outputs.empty()) << name;
  }
  EXPECT_EQ(dirs, kModels);
  EXPECT_EQ(configs, 5);
}

TEST(RepositoryDataTest, ScanFindsEveryModelWithItsSettings) {
  ScanResult scan = ScanRepo();
  EXPECT_TRUE(scan.errors.empty()) << scan.errors.begin()->first << ": " << scan.errors.begin()->second.ToString();
  std::set<std::string> names;
  for (const auto& [name, m] : scan.models) names.insert(name);
  EXPECT_EQ(names, kModels);
  ASSERT_EQ(scan.models.size(), kModels.size());

  const ModelConfig& mlp = scan.models.at("tiny_mlp").config;
  EXPECT_EQ(mlp.max_batch_size, 8);
  EXPECT_TRUE(mlp.dynamic_batching);
  EXPECT_EQ(mlp.preferred_batch_sizes, (std::vector<int>{4, 8}));
  EXPECT_EQ(mlp.max_queue_delay_us, 500);
  EXPECT_EQ(mlp.tenant, "interactive");
  EXPECT_EQ(mlp.priority, 1);  // Triton numbering: 1 is the highest
  EXPECT_EQ(mlp.keep_alive_us, std::optional<int64_t>(kKeepAliveForever));

  const ModelConfig& add_sub = scan.models.at("add_sub").config;
  EXPECT_EQ(add_sub.tenant, "batch");
  EXPECT_EQ(add_sub.priority, 3);
  EXPECT_EQ(add_sub.keep_alive_us, std::optional<int64_t>(30'000'000));
  ASSERT_EQ(add_sub.instance_groups.size(), 1u);
  EXPECT_EQ(add_sub.instance_groups[0].kind, InstanceKind::kCpu);

  const ModelConfig& identity = scan.models.at("identity_fp32").config;
  EXPECT_TRUE(identity.derived);
  EXPECT_EQ(identity.max_batch_size, 0);
  ASSERT_EQ(identity.inputs.size(), 1u);
  EXPECT_EQ(identity.inputs[0].name, "INPUT0");
  EXPECT_EQ(identity.inputs[0].dims, (std::vector<int64_t>{-1, 8}));

  EXPECT_EQ(scan.models.at("no_batch").config.max_batch_size, 0);
  EXPECT_FALSE(scan.models.at("no_batch").config.dynamic_batching);

  const RepositoryModel& two = scan.models.at("two_versions");
  EXPECT_EQ(two.config.version_policy, VersionPolicyKind::kAll);
  ASSERT_EQ(two.versions.size(), 2u);
  EXPECT_EQ(two.versions[0].version, 1);
  EXPECT_EQ(two.versions[1].version, 2);

  // broken_model's config is fine: the scan finds it; only loading its ONNX file fails.
  EXPECT_EQ(scan.models.at("broken_model").versions.size(), 1u);

  for (const auto& [name, m] : scan.models) {
    for (const auto& v : m.versions) EXPECT_LT(v.file_bytes, 100u * 1024) << name << ": test models stay tiny";
  }
}

TEST(RepositoryDataTest, EveryModelRunsWithItsConfigShapes) {
  ScanResult scan = ScanRepo();
  int runs = 0;
  for (const auto& [name, m] : scan.models) {
    if (name == "broken_model") continue;
    for (const auto& v : m.versions) {
      for (int64_t batch : {int64_t{1}, int64_t{3}}) {
        RunResult r = CompileAndRun(m, v, batch);
        EXPECT_EQ(r.outputs.size(), m.config.outputs.size()) << name;
        ++runs;
      }
    }
  }
  EXPECT_EQ(runs, 12);  // 5 models, two_versions twice, 2 batch sizes
}

TEST(RepositoryDataTest, ModelsComputeWhatTheReadmeSays) {
  ScanResult scan = ScanRepo();
  ASSERT_EQ(scan.models.count("tiny_mlp"), 1u);

  {  // tiny_mlp: relu(x W1 + b1) W2 + b2 with the README's weight formulas.
    const auto& m = scan.models.at("tiny_mlp");
    RunResult r = CompileAndRun(m, m.versions.back(), 3);
    ASSERT_EQ(r.outputs.size(), 1u);
    const float* x = r.inputs[0].as<float>();
    const float* y = r.outputs[0].as<float>();
    for (int b = 0; b < 3; ++b) {
      float h[8];
      for (int j = 0; j < 8; ++j) {
        float s = static_cast<float>(j % 3 - 1) / 4;
        for (int i = 0; i < 16; ++i) s += x[b * 16 + i] * static_cast<float>((i * 8 + j) % 7 - 3) / 8;
        h[j] = s > 0 ? s : 0;
      }
      for (int j = 0; j < 4; ++j) {
        float s = static_cast<float>(j) / 4;
        for (int i = 0; i < 8; ++i) s += h[i] * static_cast<float>((i * 4 + j) % 5 - 2) / 4;
        EXPECT_NEAR(y[b * 4 + j], s, 1e-4f) << "row " << b << " col " << j;
      }
    }
  }
  {  // add_sub: Triton's "simple".
    const auto& m = scan.models.at("add_sub");
    RunResult r = CompileAndRun(m, m.versions.back(), 2);
    ASSERT_EQ(r.outputs.size(), 2u);
    const int32_t* a = r.inputs[0].as<int32_t>();
    const int32_t* b = r.inputs[1].as<int32_t>();
    for (int i = 0; i < 32; ++i) {
      EXPECT_EQ(r.outputs[0].as<int32_t>()[i], a[i] + b[i]) << i;
      EXPECT_EQ(r.outputs[1].as<int32_t>()[i], a[i] - b[i]) << i;
    }
  }
  {  // identity_fp32 (derived config: the batch dim is part of dims).
    const auto& m = scan.models.at("identity_fp32");
    RunResult r = CompileAndRun(m, m.versions.back(), 0);
    ASSERT_EQ(r.outputs.size(), 1u);
    for (int64_t i = 0; i < r.inputs[0].num_elements(); ++i) {
      EXPECT_EQ(r.outputs[0].as<float>()[i], r.inputs[0].as<float>()[i]) << i;
    }
  }
  {  // no_batch: row sums of a [3,4] input.
    const auto& m = scan.models.at("no_batch");
    RunResult r = CompileAndRun(m, m.versions.back(), 0);
    ASSERT_EQ(r.outputs.size(), 1u);
    for (int row = 0; row < 3; ++row) {
      float s = 0;
      for (int c = 0; c < 4; ++c) s += r.inputs[0].as<float>()[row * 4 + c];
      EXPECT_FLOAT_EQ(r.outputs[0].as<float>()[row], s) << row;
    }
  }
  {  // two_versions: version v adds v.
    const auto& m = scan.models.at("two_versions");
    ASSERT_EQ(m.versions.size(), 2u);
    for (const auto& v : m.versions) {
      RunResult r = CompileAndRun(m, v, 2);
      ASSERT_EQ(r.outputs.size(), 1u);
      for (int i = 0; i < 8; ++i) {
        EXPECT_EQ(r.outputs[0].as<float>()[i], r.inputs[0].as<float>()[i] + static_cast<float>(v.version))
            << "version " << v.version << " element " << i;
      }
    }
  }
}

TEST(RepositoryDataTest, BrokenModelFailsClearlyAndAlone) {
  const std::string path = kRepo + "/broken_model/1/model.onnx";
  auto imported = ImportOnnxFile(path);
  ASSERT_FALSE(imported.ok());
  EXPECT_EQ(imported.status().code(), StatusCode::kDataLoss) << imported.status().ToString();
  EXPECT_NE(imported.status().message().find("broken_model"), std::string::npos) << imported.status().ToString();

  // Through the model manager: the failure belongs to broken_model; the others still serve.
  auto repo = ModelRepository::Open(kRepo);
  ASSERT_TRUE(repo.ok()) << repo.status().ToString();
  ManagerOptions o;
  o.budget_bytes = 64ull << 20;
  o.housekeeping_interval_us = 0;
  o.bandwidth_probe_bytes = 1 << 20;
  o.enable_preloading = false;
  auto manager = ModelManager::Create(o, repo->get());
  ASSERT_TRUE(manager.ok()) << manager.status().ToString();
  auto broken = (*manager)->Acquire("broken_model");
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.status().code(), StatusCode::kDataLoss) << broken.status().ToString();
  bool reported = false;
  for (const auto& s : (*manager)->ListModels()) {
    if (s.name == "broken_model") {
      EXPECT_EQ(s.state, ModelState::kFailed);
      EXPECT_EQ(s.last_error.code(), StatusCode::kDataLoss);
      reported = true;
    }
  }
  EXPECT_TRUE(reported);

  auto lease = (*manager)->Acquire("tiny_mlp");
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  Tensor x = MakeInput(DataType::kFloat32, {2, 16}, 0);
  ExecutionContext::Options eo;
  eo.memory = (*manager)->memory();
  ExecutionContext ctx(eo);
  auto y = (*manager)->Run(*lease, ctx, {x.view()});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ((*y)[0].shape(), (Shape{2, 4}));
}

// Files under `root` (relative path -> bytes).
std::map<std::string, std::string> Tree(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) files[fs::relative(e.path(), root).string()] = ReadFile(e.path());
  }
  return files;
}

TEST(RepositoryDataTest, RegeneratingGivesTheSameBytes) {
  const std::string python = "/usr/bin/python3";
  if (std::system((python + " -c 'import onnx, numpy' >/dev/null 2>&1").c_str()) != 0) {
    GTEST_SKIP() << python << " with onnx and numpy is not available";
  }
  fs::path tmp = fs::temp_directory_path() / ("gpuhive_repository_data_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  const std::string cmd = python + " " + GPUHIVE_SOURCE_DIR + "/scripts/make-repository.py --tiny " + tmp.string() +
                          " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto fresh = Tree(tmp);
  auto committed = Tree(kRepo);
  fs::remove_all(tmp);
  std::set<std::string> fresh_names, committed_names;
  for (const auto& [n, b] : fresh) fresh_names.insert(n);
  for (const auto& [n, b] : committed) committed_names.insert(n);
  EXPECT_EQ(fresh_names, committed_names);
  for (const auto& [n, bytes] : fresh) {
    auto it = committed.find(n);
    if (it != committed.end()) {
      EXPECT_TRUE(it->second == bytes) << n << " differs from the committed file";
    }
  }
}

}  // namespace
}  // namespace gpuhive::residency
