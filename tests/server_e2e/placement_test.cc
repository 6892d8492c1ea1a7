// Several devices (`--device sim:2`): models are placed over both simulated devices, each device
// keeps its own budget, instance_group pins or refuses, and the CPU fallback is exported.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "../residency/test_util.h"
#include "e2e_support.h"
#include "gpuhive/execution.h"

namespace gpuhive::server::testing {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// A copy of tiny_mlp named `name` whose config ends with `extra` (e.g. an instance_group).
void AddTinyMlpCopy(const std::string& repo, const std::string& name, const std::string& extra) {
  fs::copy(fs::path(repo) / "tiny_mlp", fs::path(repo) / name, fs::copy_options::recursive);
  const std::string path = (fs::path(repo) / name / "config.pbtxt").string();
  std::ifstream in(path);
  std::string cfg((std::istreambuf_iterator<char>(in)), {});
  cfg.replace(cfg.find("\"tiny_mlp\""), 10, "\"" + name + "\"");
  std::ofstream(path) << cfg << extra;
}

json Get(HttpClient& c, const std::string& path) { return json::parse(c.Request("GET", path).body); }

std::map<std::string, json> DevicesById(HttpClient& c) {
  std::map<std::string, json> out;
  for (const auto& d : Get(c, "/v2/gpuhive/devices")) out[d["id"]] = d;
  return out;
}

// Makes `backend` the simulated devices' backend for a test's lifetime.
struct ScopedSimBackend {
  explicit ScopedSimBackend(ExecutionBackend* backend) { RegisterExecutionBackend(DeviceType::kSim, backend); }
  ~ScopedSimBackend() { RegisterExecutionBackend(DeviceType::kSim, nullptr); }
};

std::unique_ptr<RunningServer> StartOnTwoSimDevices(uint64_t budget,
                                                    const std::function<void(const std::string&)>& prepare = {}) {
  EngineOptions o;
  o.device = "sim:2";
  o.sim_memory_bytes = 256ull << 20;
  o.memory_budget_bytes = budget;
  return StartServer(o, "", prepare);
}

TEST(Placement, ModelsSpreadOverBothDevicesEachWithinItsBudget) {
  // Six copies of tiny_mlp (8 KiB resident each), taken in turn twice: by free budget they
  // alternate between the devices. Each device's budget holds two of its three, so each device
  // evicts within its own budget.
  const uint64_t budget = 20ull << 10;
  auto s = StartOnTwoSimDevices(budget, [](const std::string& repo) {
    for (int i = 0; i < 6; ++i) AddTinyMlpCopy(repo, "tiny_" + std::to_string(i), "");
  });
  ASSERT_NE(s, nullptr);
  HttpClient c(s->http->port());
  std::map<std::string, std::set<std::string>> on;  // device -> models
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 6; ++i) {
      const std::string name = "tiny_" + std::to_string(i);
      auto r = c.Request("POST", "/v2/models/" + name + "/infer", TinyMlpJson(2).dump());
      ASSERT_EQ(r.status, 200) << r.body;
      for (const auto& [id, d] : DevicesById(c)) {
        EXPECT_LE(d["used_bytes"].get<uint64_t>(), d["budget_bytes"].get<uint64_t>()) << id;
        EXPECT_EQ(d["budget_bytes"].get<uint64_t>(), budget) << id;  // --memory-budget is per device
      }
      auto st = Get(c, "/v2/gpuhive/models/" + name);
      on[st["device"]].insert(name);
    }
  }
  EXPECT_EQ(on.size(), 2u) << "placed on: " << json(on).dump();
  EXPECT_GE(on["sim:0"].size(), 2u) << json(on).dump();
  EXPECT_GE(on["sim:1"].size(), 2u) << json(on).dump();
  // The devices endpoint lists what is placed where; a model stays on its device.
  auto devices = DevicesById(c);
  for (const std::string id : {"sim:0", "sim:1"}) {
    std::set<std::string> listed;
    for (const auto& m : devices[id]["models"]) listed.insert(m.get<std::string>());
    EXPECT_EQ(listed, on[id]) << id;
  }
  // Every model's weights reached its device through the copy engine, and its account says so
  // (a pipelined copy may still be finishing as the response leaves: wait for it).
  for (int i = 0; i < 6; ++i) {
    const std::string name = "tiny_" + std::to_string(i);
    json st;
    for (int tries = 0; tries < 200; ++tries) {
      st = Get(c, "/v2/gpuhive/models/" + name);
      if (st["host_to_device"]["bytes"].get<uint64_t>() > 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_GT(st["host_to_device"]["bytes"].get<uint64_t>(), 0u) << st.dump();
    EXPECT_GT(st["host_to_device"]["seconds"].get<double>(), 0.0) << st.dump();
  }
  // The placement is a metric label.
  const std::string text = c.Request("GET", "/metrics").body;
  for (const auto& [id, models] : on) {
    for (const auto& m : models) {
      EXPECT_NE(text.find("gpuhive_model_resident{model=\"" + m + "\",device=\"" + id + "\"}"), std::string::npos)
          << m << " on " << id;
    }
  }
  EXPECT_NE(text.find("gpuhive_device_memory_budget_bytes{device=\"sim:1\"}"), std::string::npos);
  EXPECT_NE(text.find("gpuhive_model_host_to_device_bytes_total{model=\"tiny_"), std::string::npos);
  EXPECT_NE(text.find("gpuhive_model_host_to_device_seconds_total{model=\"tiny_"), std::string::npos);
  EXPECT_NE(text.find("gpuhive_model_evictions_total{model=\"tiny_"), std::string::npos) << "no device evicted";
}

TEST(Placement, InstanceGroupPinsAModelOrRefusesItClearly) {
  auto s = StartOnTwoSimDevices(64ull << 20, [](const std::string& repo) {
    AddTinyMlpCopy(repo, "on_gpu1", "instance_group [ { kind: KIND_GPU gpus: [ 1 ] } ]\n");
    AddTinyMlpCopy(repo, "on_gpu5", "instance_group [ { kind: KIND_GPU gpus: [ 5 ] } ]\n");
    AddTinyMlpCopy(repo, "on_cpu", "instance_group [ { kind: KIND_CPU } ]\n");
  });
  ASSERT_NE(s, nullptr);
  HttpClient c(s->http->port());
  // on_gpu1 goes to device 1 though both are empty; tiny_mlp then to device 0 (more free budget).
  for (const std::string name : {"on_gpu1", "on_cpu", "tiny_mlp"}) {
    auto r = c.Request("POST", "/v2/models/" + name + "/infer", TinyMlpJson(1).dump());
    ASSERT_EQ(r.status, 200) << name << ": " << r.body;
  }
  EXPECT_EQ(Get(c, "/v2/gpuhive/models/on_gpu1")["device"], "sim:1");
  EXPECT_EQ(Get(c, "/v2/gpuhive/models/on_cpu")["device"], "cpu");
  EXPECT_EQ(Get(c, "/v2/gpuhive/models/tiny_mlp")["device"], "sim:0");
  EXPECT_GT(DevicesById(c)["sim:1"]["used_by_model"]["on_gpu1"].get<uint64_t>(), 0u);

  // GPU 5 on a server with two: refused with the reason, alone; everything else keeps serving.
  const std::string why = "instance_group asks for GPU 5, but this server has 2 GPU device(s)";
  auto r = c.Request("POST", "/v2/models/on_gpu5/infer", TinyMlpJson(1).dump());
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find(why), std::string::npos) << r.body;
  bool listed = false;
  for (const auto& e : json::parse(c.Request("POST", "/v2/repository/index").body)) {
    if (e["name"] != "on_gpu5") continue;
    listed = true;
    EXPECT_EQ(e["state"], "UNAVAILABLE");
    EXPECT_NE(e["reason"].get<std::string>().find(why), std::string::npos) << e.dump();
  }
  EXPECT_TRUE(listed);
  auto load = c.Request("POST", "/v2/repository/models/on_gpu5/load");
  EXPECT_NE(load.status, 200);
  EXPECT_NE(load.body.find(why), std::string::npos) << load.body;
  EXPECT_EQ(c.Request("POST", "/v2/models/on_gpu1/infer", TinyMlpJson(1).dump()).status, 200);
}

TEST(Placement, AModelNoAllowedDeviceCanHoldIsRefused) {
  // Every device's budget is smaller than tiny_mlp's file: the placement says so, by device.
  auto s = StartOnTwoSimDevices(512);
  ASSERT_NE(s, nullptr);
  HttpClient c(s->http->port());
  auto r = c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(1).dump());
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("fits on none of the devices it may use: sim:0 (budget 512 B), sim:1 (budget 512 B)"), std::string::npos)
      << r.body;
}

// No GPU and no --device: the CPU fallback is exported (and said once at start-up: see
// ServeProcess.CpuFallbackIsSaidOnce); the CPU chosen on purpose or a simulated device is none.
TEST(Placement, CpuFallbackIsAMetric) {
  if (access("/dev/nvidia0", F_OK) == 0) GTEST_SKIP() << "a GPU is present";
  for (const auto& [device, want] : std::vector<std::pair<std::string, std::string>>{
           {"", "gpuhive_cpu_fallback 1"}, {"cpu", "gpuhive_cpu_fallback 0"}, {"sim:2", "gpuhive_cpu_fallback 0"}}) {
    EngineOptions o;
    o.device = device;
    o.sim_memory_bytes = 256ull << 20;
    auto s = StartServer(o);
    ASSERT_NE(s, nullptr);
    HttpClient c(s->http->port());
    const std::string text = c.Request("GET", "/metrics").body;
    EXPECT_NE(text.find("\n" + want + "\n"), std::string::npos) << "--device '" << device << "'";
  }
}

// A device executor that lacks every operator, as the CUDA executor lacks a few.
class RefusingBackend final : public ExecutionBackend {
 public:
  std::string_view name() const override { return "refusing"; }
  StatusOr<std::unique_ptr<Executable>> Compile(std::unique_ptr<ir::Model>, const CompileOptions&,
                                                ComputeDevice&) override {
    return Unimplemented("the test executor lacks operator(s): Gemm");
  }
};

// A device backend whose libraries take device memory when loaded (as cuDNN's and cuBLASLt's
// kernels do on a GPU): it holds kLibraryBytes of each device from LoadLibraries on, and runs
// models as the CPU executor does.
class LibraryLoadingBackend final : public ExecutionBackend {
 public:
  static constexpr uint64_t kLibraryBytes = 24ull << 20;
  std::string_view name() const override { return "library-loading"; }
  bool runs_host_kernels() const override { return true; }
  StatusOr<std::unique_ptr<Executable>> Compile(std::unique_ptr<ir::Model> model, const CompileOptions& options,
                                                ComputeDevice& device) override {
    return CpuExecutionBackend()->Compile(std::move(model), options, device);
  }
  Status LoadLibraries(ComputeDevice& device) override {
    std::lock_guard<std::mutex> lock(mu);
    ASSIGN_OR_RETURN(Buffer b, Buffer::Allocate(device.memory(), kLibraryBytes, AllocTag{}));
    held.push_back(std::move(b));
    loads.push_back(device.id().ToString());
    return Status::OK();
  }
  std::mutex mu;
  std::vector<Buffer> held;
  std::vector<std::string> loads;
};

// The default budget of a device leaves out what its backend's libraries took when the engine
// loaded them, measured as the drop in the device's free memory, and /v2/gpuhive/devices says so.
TEST(Placement, TheDefaultBudgetLeavesOutTheMeasuredLibraryReserve) {
  LibraryLoadingBackend backend;
  ScopedSimBackend scoped(&backend);
  {
    auto s = StartOnTwoSimDevices(0);  // no --memory-budget: the default
    ASSERT_NE(s, nullptr);
    HttpClient c(s->http->port());
    for (const auto& [id, d] : DevicesById(c)) {
      if (id == "cpu") continue;
      const uint64_t reserve = d["library_reserve_bytes"], headroom = d["headroom_bytes"];
      EXPECT_GE(reserve, LibraryLoadingBackend::kLibraryBytes) << d.dump();
      EXPECT_LT(reserve, LibraryLoadingBackend::kLibraryBytes + (1ull << 20)) << d.dump();  // the pool's rounding
      EXPECT_EQ(d["free_at_start_bytes"].get<uint64_t>(), 256ull << 20) << d.dump();
      EXPECT_EQ(d["budget_bytes"].get<uint64_t>(), (256ull << 20) - reserve - headroom) << d.dump();
    }
    EXPECT_EQ(backend.loads, (std::vector<std::string>{"sim:0", "sim:1"}));
    // Models still run there within the smaller budget.
    auto r = c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(2).dump());
    EXPECT_EQ(r.status, 200) << r.body;
    std::lock_guard<std::mutex> lock(backend.mu);
    backend.held.clear();  // back to the devices before the server closes them
  }
}

// A request to a model the device cannot compile is answered from the CPU, where the model then
// stays (device "cpu" in its status); one whose config asks for a GPU is refused naming the
// operator.
TEST(Placement, AModelTheDeviceCannotCompileIsServedFromTheCpu) {
  RefusingBackend refusing;
  ScopedSimBackend scoped(&refusing);
  {
    auto s = StartOnTwoSimDevices(64ull << 20, [](const std::string& repo) {
      AddTinyMlpCopy(repo, "gpu_only", "instance_group [ { kind: KIND_GPU } ]\n");
    });
    ASSERT_NE(s, nullptr);
    HttpClient c(s->http->port());
    auto r = c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(2).dump());
    EXPECT_EQ(r.status, 200) << r.body;
    auto st = Get(c, "/v2/gpuhive/models/tiny_mlp");
    EXPECT_EQ(st["device"], "cpu") << st.dump();
    EXPECT_EQ(st["executor"], "cpu") << st.dump();
    r = c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(3).dump());
    EXPECT_EQ(r.status, 200) << r.body;
    auto refused = c.Request("POST", "/v2/models/gpu_only/infer", TinyMlpJson(2).dump());
    EXPECT_NE(refused.status, 200);
    EXPECT_NE(refused.body.find("lacks operator(s): Gemm"), std::string::npos) << refused.body;
  }
}

// A device backend that records, for every run, the worker and stream priority its
// ExecutionContext names (the CUDA backend gives each pair its own stream).
class LaneRecordingExecutable final : public residency::testing::ForwardingExecutable {
 public:
  LaneRecordingExecutable(std::unique_ptr<Executable> inner, std::mutex* mu, std::vector<std::pair<int, int>>* runs)
      : ForwardingExecutable(std::move(inner)), mu_(mu), runs_(runs) {}
  std::string_view backend() const override { return "lanes"; }
  StatusOr<std::vector<Tensor>> Run(ExecutionContext& ctx, const std::vector<TensorView>& inputs) override {
    {
      std::lock_guard<std::mutex> lock(*mu_);
      runs_->emplace_back(ctx.options().worker, ctx.options().stream_priority);
    }
    return inner_->Run(ctx, inputs);
  }

 private:
  std::mutex* mu_;
  std::vector<std::pair<int, int>>* runs_;
};

class LaneRecordingBackend final : public ExecutionBackend {
 public:
  std::string_view name() const override { return "lanes"; }
  bool runs_host_kernels() const override { return true; }
  StatusOr<std::unique_ptr<Executable>> Compile(std::unique_ptr<ir::Model> model, const CompileOptions& options,
                                                ComputeDevice& device) override {
    ASSIGN_OR_RETURN(auto inner, CpuExecutionBackend()->Compile(std::move(model), options, device));
    return std::unique_ptr<Executable>(std::make_unique<LaneRecordingExecutable>(std::move(inner), &mu, &runs));
  }
  std::mutex mu;
  std::vector<std::pair<int, int>> runs;  // (worker, stream priority) per run
};

// Issue 13: a device backend learns which worker runs a batch and at which stream priority, so
// the CUDA backend can give each worker and priority level its own stream: the general workers'
// batches come with priority 1 and their own indices, a critical request's (priority 1 in
// Triton's numbering) with the reserved worker's priority 0.
TEST(Placement, DeviceRunsNameTheirWorkerAndStreamPriority) {
  LaneRecordingBackend lanes;
  ScopedSimBackend scoped(&lanes);
  EngineOptions o;
  o.device = "sim:1";
  o.sim_memory_bytes = 256ull << 20;
  o.cpu_workers = 2;
  auto s = StartServer(o);
  ASSERT_NE(s, nullptr);
  HttpClient c(s->http->port());
  // Until the model is resident on the device its requests are answered from the host tier, which
  // names no device lane: send until the device has run one of each kind (10 s at most).
  auto recorded = [&](int priority) {
    std::lock_guard<std::mutex> lock(lanes.mu);
    return std::any_of(lanes.runs.begin(), lanes.runs.end(), [&](const std::pair<int, int>& run) {
      return run.second == priority && (priority == 0 ? run.first == 2 : run.first >= 0 && run.first <= 1);
    });
  };
  json critical = TinyMlpJson(1);
  critical["parameters"] = {{"priority", 1}};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (int i = 0; !(recorded(1) && recorded(0)) && std::chrono::steady_clock::now() < deadline; ++i) {
    auto r = c.Request("POST", "/v2/models/tiny_mlp/infer", (i % 2 == 0 ? TinyMlpJson(1 + i % 3) : critical).dump());
    ASSERT_EQ(r.status, 200) << r.body;
  }
  std::string all;
  {
    std::lock_guard<std::mutex> lock(lanes.mu);
    for (const auto& [worker, priority] : std::set<std::pair<int, int>>(lanes.runs.begin(), lanes.runs.end())) {
      all += " (" + std::to_string(worker) + "," + std::to_string(priority) + ")";
      EXPECT_LE(worker, 2) << "two general workers and the reserved one";
    }
  }
  EXPECT_TRUE(recorded(1)) << "no general worker's run at priority 1 was recorded:" << all;
  EXPECT_TRUE(recorded(0)) << "no critical request ran on the reserved worker's priority-0 stream:" << all;
}

}  // namespace
}  // namespace gpuhive::server::testing
