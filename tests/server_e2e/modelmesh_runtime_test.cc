// ModelMeshRuntime over a real Engine (explicit mode, an empty scratch repository) and the
// committed test models: loads, sizes, unloads, runtimeStatus, bad ids and paths, concurrency.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <thread>

#include "gpuhive/engine/engine.h"
#include "gpuhive/residency/synthetic_models.h"
#include "gpuhive/server/modelmesh.h"
#include "gpuhive/units.h"

namespace gpuhive::server {
namespace {

namespace fs = std::filesystem;
using engine::Engine;
using engine::EngineOptions;

std::string DataDir() { return std::string(GPUHIVE_SOURCE_DIR) + "/tests/data/repository"; }

fs::path TempDir(const std::string& tag) {
  std::random_device rd;
  fs::path dir = fs::temp_directory_path() / ("gpuhive_mm_" + tag + "_" + std::to_string(rd()));
  fs::create_directories(dir);
  return dir;
}

size_t CountEntries(const fs::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

class ModelMeshRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(64 * MiB); }
  void TearDown() override {
    runtime_.reset();
    core_.reset();
    std::error_code ec;
    fs::remove_all(repo_, ec);
    fs::remove_all(models_, ec);
  }
  void Start(uint64_t budget, const std::string& model_root = "") {
    runtime_.reset();
    core_.reset();
    if (repo_.empty()) {
      repo_ = TempDir("repo");
      models_ = TempDir("models");
    }
    EngineOptions co;
    co.model_repository = repo_.string();
    co.control_mode = residency::ControlMode::kExplicit;
    co.memory_budget_bytes = budget;
    co.cpu_workers = 1;
    co.threads_per_worker = 1;
    co.enable_preloading = false;
    auto core = Engine::Create(co);
    ASSERT_TRUE(core.ok()) << core.status().ToString();
    core_ = std::move(*core);
    ModelMeshOptions mo;
    mo.repository_root = repo_.string();
    mo.model_root = model_root;
    mo.load_timeout_ms = 12345;
    mo.default_model_size_bytes = 7 * MiB;
    auto rt = ModelMeshRuntime::Create(core_.get(), mo);
    ASSERT_TRUE(rt.ok()) << rt.status().ToString();
    runtime_ = std::move(*rt);
  }
  ModelMeshModelRequest Req(const std::string& id, const std::string& path) { return {id, "onnx", path, "{}"}; }
  // Bytes the manager holds for `name` on the device (0 when not resident).
  uint64_t DeviceBytes(const std::string& name) {
    auto d = core_->Devices();
    auto it = d[0].used_by_model.find(name);
    return it == d[0].used_by_model.end() ? 0 : it->second;
  }
  std::string WriteSynthetic(const std::string& file, uint64_t bytes) {
    std::string onnx = residency::MakeMatMulChainOnnx(residency::SpecForBytes(bytes, 3, 512));
    fs::path p = models_ / file;
    std::ofstream(p, std::ios::binary) << onnx;
    return p.string();
  }
  // Runs tiny_mlp-shaped input (1 row of 16 floats) through `name`.
  Status InferTinyMlp(const std::string& name) {
    auto req = std::make_unique<InferenceRequest>();
    req->model_name = name;
    auto t = Tensor::Allocate(DataType::kFloat32, {1, 16});
    if (!t.ok()) return t.status();
    for (int i = 0; i < 16; ++i) t->as<float>()[i] = static_cast<float>(i) * 0.25f;
    req->inputs.push_back({"INPUT0", std::move(*t)});
    std::promise<Status> done;
    req->on_complete = [&done](InferenceResponse r) {
      if (r.status.ok() && (r.outputs.size() != 1 || r.outputs[0].tensor.shape() != Shape{1, 4}))
        r.status = Internal("unexpected outputs");
      done.set_value(r.status);
    };
    core_->Infer(std::move(req));
    return done.get_future().get();
  }

  fs::path repo_, models_;
  std::unique_ptr<Engine> core_;
  std::unique_ptr<ModelMeshRuntime> runtime_;
};

TEST_F(ModelMeshRuntimeTest, LoadReportsMeasuredSizeServesAndUnloadFreesEverything) {
  auto r = runtime_->LoadModel(Req("mlp-isvc__abc", DataDir() + "/tiny_mlp"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const uint64_t device = DeviceBytes("mlp-isvc__abc");
  EXPECT_GT(device, 0u);
  // Weights held on the device plus the planned activations: at least the device bytes.
  EXPECT_GE(r->size_bytes, device);
  EXPECT_EQ(r->max_concurrency, 0u);
  auto size = runtime_->ModelSize("mlp-isvc__abc");
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(*size, r->size_bytes);
  // The directory's config.pbtxt is used (batching: the batch dim is -1, then 16).
  auto meta = core_->GetModelMetadata("mlp-isvc__abc", "");
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(meta->inputs.at(0).shape, (Shape{-1, 16}));
  EXPECT_TRUE(InferTinyMlp("mlp-isvc__abc").ok());
  EXPECT_EQ(runtime_->LoadedIds(), std::vector<std::string>{"mlp-isvc__abc"});

  ASSERT_TRUE(runtime_->UnloadModel("mlp-isvc__abc").ok());
  EXPECT_EQ(DeviceBytes("mlp-isvc__abc"), 0u);
  EXPECT_TRUE(core_->Models().empty());
  auto index = core_->RepositoryIndex(false);
  ASSERT_TRUE(index.ok());
  EXPECT_TRUE(index->empty()) << index->front().name << " " << index->front().reason;
  EXPECT_EQ(CountEntries(repo_), 0u);
  EXPECT_EQ(runtime_->ModelSize("mlp-isvc__abc").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(InferTinyMlp("mlp-isvc__abc").code(), StatusCode::kNotFound);
  EXPECT_TRUE(runtime_->LoadedIds().empty());
}

TEST_F(ModelMeshRuntimeTest, ModelFilePathsAndVersionDirectoriesLoad) {
  // A plain .onnx file, a Triton layout without config, and a directory with model.onnx.
  fs::create_directories(models_ / "flat");
  fs::copy_file(DataDir() + "/identity_fp32/1/model.onnx", models_ / "flat" / "model.onnx");
  for (const auto& [id, path] : std::vector<std::pair<std::string, std::string>>{
           {"file", DataDir() + "/add_sub/1/model.onnx"},
           {"triton", DataDir() + "/identity_fp32"},
           {"flat", (models_ / "flat").string()}}) {
    auto r = runtime_->LoadModel(Req(id, path));
    ASSERT_TRUE(r.ok()) << id << ": " << r.status().ToString();
    EXPECT_GT(r->size_bytes, 0u);
    auto ready = core_->ModelReady(id, "");
    EXPECT_TRUE(ready.ok() && *ready) << id;
  }
  for (const char* id : {"file", "triton", "flat"}) EXPECT_TRUE(runtime_->UnloadModel(id).ok());
  EXPECT_TRUE(core_->Models().empty());
  EXPECT_EQ(CountEntries(repo_), 0u);
}

TEST_F(ModelMeshRuntimeTest, IdsThatAreNoModelNamesAreMappedAndRouted) {
  EXPECT_EQ(*ModelNameForModelMeshId("plain-id_1"), "plain-id_1");
  for (const std::string& id : std::vector<std::string>{"a/b", "../../etc", ".hidden", std::string(300, 'x'),
                                                        "back\\slash"}) {
    auto name = ModelNameForModelMeshId(id);
    ASSERT_TRUE(name.ok()) << id;
    EXPECT_EQ(name->rfind("mm-", 0), 0u) << id << " -> " << *name;
    EXPECT_EQ(name->size(), 19u);
    EXPECT_EQ(name->find('/'), std::string::npos);
  }
  EXPECT_NE(*ModelNameForModelMeshId("a/b"), *ModelNameForModelMeshId("a/c"));
  auto r = runtime_->LoadModel(Req("../../escape/me", DataDir() + "/tiny_mlp"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const std::string name = runtime_->ResolveModelName("../../escape/me");
  EXPECT_EQ(name, *ModelNameForModelMeshId("../../escape/me"));
  EXPECT_TRUE(fs::is_directory(repo_ / name));
  EXPECT_FALSE(fs::exists(repo_.parent_path() / "escape"));
  EXPECT_TRUE(InferTinyMlp(name).ok());
  EXPECT_EQ(runtime_->ResolveModelName("not-loaded"), "not-loaded");
  EXPECT_TRUE(runtime_->UnloadModel("../../escape/me").ok());
  EXPECT_EQ(CountEntries(repo_), 0u);
}

TEST_F(ModelMeshRuntimeTest, BadIdsAreRefusedWithoutALoad) {
  const std::string path = DataDir() + "/tiny_mlp";
  for (const std::string& id : {std::string(), std::string("ctl\x01id"), std::string("bad\xff\xfe"),
                               std::string(5000, 'a'), std::string("nul\0id", 6)}) {
    auto r = runtime_->LoadModel(Req(id, path));
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
    EXPECT_EQ(runtime_->PredictModelSize(Req(id, path)).status().code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(runtime_->UnloadModel(id).ok());  // never loadable: nothing to unload
  }
  EXPECT_EQ(CountEntries(repo_), 0u);
  EXPECT_TRUE(core_->Models().empty());
}

TEST_F(ModelMeshRuntimeTest, BadPathsAreRefusedAndLeaveNothing) {
  Start(64 * MiB, models_.string());  // paths must lie under models_
  fs::create_directories(models_ / "empty");
  fs::create_directories(models_ / "m");
  fs::copy_file(DataDir() + "/tiny_mlp/1/model.onnx", models_ / "m" / "model.onnx");
  fs::create_directory_symlink(DataDir() + "/tiny_mlp", models_ / "escape");  // points outside the root
  for (const std::string& path : {std::string(), std::string("relative/model.onnx"),
                                 (models_ / "m" / ".." / "m").string(), (models_ / "missing.onnx").string(),
                                 (models_ / "empty").string(), DataDir() + "/tiny_mlp",
                                 (models_ / "escape").string(), std::string("/etc/passwd")}) {
    auto r = runtime_->LoadModel(Req("bad", path));
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << "'" << path << "': " << r.status().ToString();
    EXPECT_FALSE(runtime_->PredictModelSize(Req("bad", path)).ok()) << path;
  }
  EXPECT_EQ(CountEntries(repo_), 0u);
  auto ok = runtime_->LoadModel(Req("good", (models_ / "m").string()));
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE(runtime_->UnloadModel("good").ok());
}

TEST_F(ModelMeshRuntimeTest, FailedLoadLeavesNoTraceAndNoMemory) {
  auto r = runtime_->LoadModel(Req("broken", DataDir() + "/broken_model"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(CountEntries(repo_), 0u);
  EXPECT_TRUE(core_->Models().empty());
  auto index = core_->RepositoryIndex(false);
  ASSERT_TRUE(index.ok());
  EXPECT_TRUE(index->empty());
  EXPECT_EQ(core_->Devices()[0].used_by_model.size(), 0u);
  EXPECT_EQ(runtime_->ModelSize("broken").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(runtime_->UnloadModel("broken").ok());
}

TEST_F(ModelMeshRuntimeTest, ModelLargerThanTheBudgetIsResourceExhaustedAndFreed) {
  Start(4 * MiB);
  const std::string big = WriteSynthetic("big.onnx", 8 * MiB);
  auto r = runtime_->LoadModel(Req("big", big));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().code() == StatusCode::kResourceExhausted || r.status().code() == StatusCode::kUnavailable)
      << r.status().ToString();
  EXPECT_EQ(CountEntries(repo_), 0u);
  EXPECT_TRUE(core_->Models().empty());
  // A model that fits still loads afterwards.
  const std::string small = WriteSynthetic("small.onnx", 256 * 1024);
  auto s = runtime_->LoadModel(Req("small", small));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_GE(s->size_bytes, 256u * 1024);
  EXPECT_LE(s->size_bytes, 4 * MiB);
  EXPECT_TRUE(runtime_->UnloadModel("small").ok());
}

TEST_F(ModelMeshRuntimeTest, PredictModelSizeIsConservativeAndLoadsNothing) {
  const std::string file = WriteSynthetic("p.onnx", 1 * MiB);
  auto predicted = runtime_->PredictModelSize(Req("p", file));
  ASSERT_TRUE(predicted.ok()) << predicted.status().ToString();
  EXPECT_TRUE(core_->Models().empty());
  EXPECT_EQ(CountEntries(repo_), 0u);
  auto loaded = runtime_->LoadModel(Req("p", file));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_GE(*predicted, fs::file_size(file));
  EXPECT_GE(*predicted, loaded->size_bytes);
  EXPECT_TRUE(runtime_->UnloadModel("p").ok());
}

TEST_F(ModelMeshRuntimeTest, ReloadOfALoadedIdIsIdempotentAndAnotherPathIsRefused) {
  auto a = runtime_->LoadModel(Req("m", DataDir() + "/tiny_mlp"));
  ASSERT_TRUE(a.ok());
  auto b = runtime_->LoadModel(Req("m", DataDir() + "/tiny_mlp"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->size_bytes, b->size_bytes);
  auto c = runtime_->LoadModel(Req("m", DataDir() + "/add_sub"));
  EXPECT_EQ(c.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(InferTinyMlp("m").ok());  // still the first model
  EXPECT_TRUE(runtime_->UnloadModel("m").ok());
  EXPECT_TRUE(runtime_->UnloadModel("m").ok());  // again: not loaded, OK
}

TEST_F(ModelMeshRuntimeTest, UnloadOfUnknownIdIsOk) {
  EXPECT_TRUE(runtime_->UnloadModel("never-loaded").ok());
  EXPECT_TRUE(runtime_->UnloadModel("x/../../y").ok());
  EXPECT_EQ(runtime_->ModelSize("never-loaded").status().code(), StatusCode::kNotFound);
}

TEST_F(ModelMeshRuntimeTest, RuntimeStatusPurgesEarlierModelsAndReportsTheBudget) {
  // What a previous ModelMesh instance left: a marked directory loaded in the core, and a model
  // loaded outside ModelMesh.
  fs::create_directories(repo_ / "stale" / "1");
  fs::copy_file(DataDir() + "/tiny_mlp/1/model.onnx", repo_ / "stale" / "1" / "model.onnx");
  std::ofstream(repo_ / "stale" / ".modelmesh-id") << "stale";
  ASSERT_TRUE(core_->LoadModel("stale").ok());
  fs::create_directories(repo_ / "static" / "1");
  fs::copy_file(DataDir() + "/identity_fp32/1/model.onnx", repo_ / "static" / "1" / "model.onnx");
  ASSERT_TRUE(core_->LoadModel("static").ok());
  ASSERT_EQ(core_->Models().size(), 2u);

  ModelMeshStatus st = runtime_->RuntimeStatus();
  EXPECT_TRUE(st.ready);
  EXPECT_EQ(st.capacity_bytes, 64 * MiB);
  EXPECT_EQ(st.capacity_bytes, core_->Devices()[0].budget_bytes);
  EXPECT_EQ(st.max_loading_concurrency, 1u);
  EXPECT_EQ(st.model_loading_timeout_ms, 12345u);
  EXPECT_EQ(st.default_model_size_bytes, 7 * MiB);
  EXPECT_FALSE(st.limit_model_concurrency);
  EXPECT_EQ(st.runtime_version.rfind("gpuhive", 0), 0u);
  ASSERT_TRUE(st.method_infos.count("inference.GRPCInferenceService/ModelInfer"));
  EXPECT_EQ(st.method_infos["inference.GRPCInferenceService/ModelInfer"], std::vector<uint32_t>{1});
  EXPECT_TRUE(core_->Models().empty());
  EXPECT_FALSE(fs::exists(repo_ / "stale"));
  EXPECT_TRUE(fs::exists(repo_ / "static"));  // not ModelMesh's directory: unloaded, kept

  // Later calls do not purge again.
  ASSERT_TRUE(runtime_->LoadModel(Req("after", DataDir() + "/tiny_mlp")).ok());
  runtime_->RuntimeStatus();
  EXPECT_EQ(runtime_->LoadedIds(), std::vector<std::string>{"after"});
  EXPECT_TRUE(runtime_->UnloadModel("after").ok());
}

TEST_F(ModelMeshRuntimeTest, ConcurrentLoadsAndUnloadsLeaveAConsistentState) {
  const std::vector<std::string> paths = {DataDir() + "/tiny_mlp", DataDir() + "/add_sub",
                                          DataDir() + "/identity_fp32/1/model.onnx"};
  std::atomic<int> unexpected{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 6; ++i) {
        // Two threads share each id: loads and unloads of one id race.
        const std::string id = "c" + std::to_string(t % 2) + "-" + std::to_string(i % 3);
        auto r = runtime_->LoadModel(Req(id, paths[static_cast<size_t>(i % 3)]));
        if (!r.ok() || r->size_bytes == 0) ++unexpected;
        if (!runtime_->UnloadModel(id).ok()) ++unexpected;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_TRUE(runtime_->LoadedIds().empty());
  EXPECT_TRUE(core_->Models().empty());
  EXPECT_EQ(CountEntries(repo_), 0u);
  EXPECT_TRUE(core_->Devices()[0].used_by_model.empty());
}

}  // namespace
}  // namespace gpuhive::server
