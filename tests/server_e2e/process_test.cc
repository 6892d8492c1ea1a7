// The real `gpuhive serve` process: start-up line, graceful SIGTERM drain, and Debian's real
// Prometheus server scraping it.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "e2e_support.h"
#include "gpuhive/residency/synthetic_models.h"

extern char** environ;

namespace gpuhive::server::testing {
namespace {

using json = nlohmann::json;

// A child process with its stdout on a pipe.
class Process {
 public:
  explicit Process(std::vector<std::string> args) {
    int fds[2];
    if (pipe(fds) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);  // errors too: tests read their message
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    out_ = fdopen(fds[0], "r");
  }
  ~Process() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      Wait();
    }
    if (out_) fclose(out_);
  }
  bool ok() const { return pid_ > 0 && out_ != nullptr; }
  pid_t pid() const { return pid_; }
  // Reads stdout lines until one starts with `prefix` (or EOF).
  std::string ReadLineStartingWith(const std::string& prefix) {
    char buf[4096];
    while (out_ && fgets(buf, sizeof buf, out_)) {
      std::string line(buf);
      if (line.rfind(prefix, 0) == 0) return line;
    }
    return "";
  }
  // Everything left on stdout and stderr, until the process closes them.
  std::string ReadAll() {
    std::string all;
    char buf[4096];
    while (out_ && fgets(buf, sizeof buf, out_)) all += buf;
    return all;
  }
  void Signal(int sig) { kill(pid_, sig); }
  // Exit code, or -1 when killed by a signal.
  int Wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    exited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  bool exited_ = false;
};

int ParsePort(const std::string& line, const std::string& key) {
  auto p = line.find(key + "=");
  return p == std::string::npos ? 0 : std::atoi(line.c_str() + p + key.size() + 1);
}

// On the CPU and on the simulated device (the device path end to end).
class ServeProcessOn : public ::testing::TestWithParam<std::string> {};

TEST_P(ServeProcessOn, SigtermDrainsAdmittedRequestsAndExitsCleanly) {
  Process p({GPUHIVE_BINARY, "serve", "--model-repository", SourceRepository(), "--http-port", "0", "--grpc-port",
             "0", "--exit-timeout-secs", "20", "--log-level", "error", "--device", GetParam(), "--sim-device-memory",
             "512MiB"});
  ASSERT_TRUE(p.ok());
  std::string ready = p.ReadLineStartingWith("gpuhive ready");
  ASSERT_FALSE(ready.empty());
  uint16_t port = static_cast<uint16_t>(ParsePort(ready, "http_port"));
  ASSERT_GT(port, 0);

  // Several clients keep requests in flight; SIGTERM arrives in the middle.
  std::atomic<int> ok{0}, refused{0}, broken{0}, other{0};
  std::atomic<bool> signalled{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      HttpClient c(port);
      std::string body = TinyMlpJson(4).dump();
      for (int i = 0; i < 400; ++i) {
        auto r = c.Request("POST", "/v2/models/tiny_mlp/infer", body);
        if (r.status == 200) {
          ok++;
        } else if (r.status == 503) {
          refused++;  // answered: "shutting down"
        } else if (r.status == 0) {
          // No answer: allowed only once the server closed after draining (never admitted).
          if (!signalled.load()) broken++;
          break;
        } else {
          other++;
        }
      }
    });
  }
  while (ok.load() < 200) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  signalled = true;
  p.Signal(SIGTERM);
  for (auto& t : clients) t.join();
  EXPECT_EQ(p.Wait(), 0);  // 0: every admitted request was answered before the exit deadline
  EXPECT_GE(ok.load(), 200);
  EXPECT_EQ(broken.load(), 0);
  EXPECT_EQ(other.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Devices, ServeProcessOn, ::testing::Values("cpu", "sim", "sim:2"), [](const auto& info) {
  std::string name = info.param;
  std::replace(name.begin(), name.end(), ':', '_');
  return name;
});

// Without a GPU and without --device, the CPU fallback is said once at start-up (and exported as
// gpuhive_cpu_fallback: Placement.CpuFallbackIsAMetric).
TEST(ServeProcess, CpuFallbackIsSaidOnce) {
  if (access("/dev/nvidia0", F_OK) == 0) GTEST_SKIP() << "a GPU is present";
  Process p({GPUHIVE_BINARY, "serve", "--model-repository", SourceRepository(), "--http-port", "0", "--grpc-port",
             "0", "--load-model", "*"});
  ASSERT_TRUE(p.ok());
  std::string log;
  std::string ready;
  while (ready.empty()) {
    std::string line = p.ReadLineStartingWith("");
    if (line.empty()) break;
    if (line.rfind("gpuhive ready", 0) == 0) ready = line;
    log += line;
  }
  ASSERT_FALSE(ready.empty()) << log;
  size_t said = 0;
  for (size_t at = log.find("models run on the CPU"); at != std::string::npos;
       at = log.find("models run on the CPU", at + 1)) {
    ++said;
  }
  EXPECT_EQ(said, 1u) << log;
  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(), 0);
}

TEST(ServeProcess, DeviceChoicesAreClearErrors) {
  struct Case {
    std::vector<std::string> flags;
    std::string says;
  };
  std::vector<Case> cases = {
      {{"--device", "tpu"}, "expected cpu, gpu (or cuda), sim or sim:N"},
      {{"--device", "sim:0"}, "sim:N takes N from 1 to 16"},
      {{"--device", "sim", "--sim-device-memory", "64MiB", "--memory-budget", "1GiB"}, "exceeds sim:0's"},
      {{"--device", "cpu", "--strict-gpu"}, "--strict-gpu contradicts --device cpu"},
  };
  // Without a GPU, --strict-gpu refuses to start on the CPU, and so does --device gpu.
  if (access("/dev/nvidia0", F_OK) != 0) {
    cases.push_back({{"--strict-gpu"}, "--strict-gpu: no usable GPU"});
    cases.push_back({{"--device", "gpu"}, "--device gpu: no usable GPU"});
  }
  for (const Case& c : cases) {
    std::vector<std::string> args = {GPUHIVE_BINARY, "serve", "--model-repository", SourceRepository(), "--http-port",
                                     "0", "--grpc-port", "0"};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    Process p(args);
    ASSERT_TRUE(p.ok());
    std::string out = p.ReadAll();
    EXPECT_EQ(p.Wait(), 1) << c.says;
    EXPECT_NE(out.find(c.says), std::string::npos) << out;
  }
}

// The binary's dynamic section (readelf -d), where its load-time dependencies are NEEDED lines.
std::string DynamicSection() {
  std::string cmd = std::string("readelf -d '") + GPUHIVE_BINARY + "' 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) return "";
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, f)) out += buf;
  return pclose(f) == 0 ? out : "";
}

// The binary starts without any CUDA library on the machine: none is a load-time dependency
// (cudart is linked statically, the driver and NVML are opened at run time when present).
TEST(ServeProcess, NeedsNoCudaLibraryToStart) {
  std::string out = DynamicSection();
  ASSERT_NE(out.find("NEEDED"), std::string::npos) << out;
  for (const char* lib : {"libcuda.", "libcudart", "libcublas", "libcudnn", "libnvidia-ml"}) {
    EXPECT_EQ(out.find(lib), std::string::npos) << lib << " is a load-time dependency:\n" << out;
  }
}

// Nor gRPC and what it brings (OpenSSL, abseil, re2, c-ares): they come with the gRPC module,
// libgpuhive_grpc.so, loaded only when a gRPC listener is asked for, so offline commands never
// map them.
TEST(ServeProcess, NeedsNoGrpcLibraryToStart) {
  std::string out = DynamicSection();
  ASSERT_NE(out.find("NEEDED"), std::string::npos) << out;
  for (const char* lib : {"libgrpc", "libgpr", "libssl", "libcrypto", "libabsl", "libre2", "libupb", "libcares"}) {
    EXPECT_EQ(out.find(lib), std::string::npos) << lib << " is a load-time dependency:\n" << out;
  }
}

// Sets an environment variable for the processes started in its scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) { setenv(name, value.c_str(), 1); }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

bool MapsContain(pid_t pid, const std::string& what) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(f, line)) {
    if (line.find(what) != std::string::npos) return true;
  }
  return false;
}

// Serving HTTP only never loads the gRPC module (a module that cannot be found does not matter);
// a gRPC port loads it, from the binary's folder.
TEST(ServeProcess, TheGrpcModuleIsLoadedOnlyForGrpc) {
  // Starts `serve` with `flags`, reads its ready line, and answers whether it maps the module.
  auto serve = [](const std::vector<std::string>& flags, bool grpc) {
    std::vector<std::string> args = {GPUHIVE_BINARY, "serve", "--model-repository", SourceRepository(), "--http-port",
                                     "0", "--log-level", "warning"};
    args.insert(args.end(), flags.begin(), flags.end());
    Process p(args);
    EXPECT_TRUE(p.ok());
    std::string ready = p.ReadLineStartingWith("gpuhive ready");
    EXPECT_EQ(ParsePort(ready, "grpc_port") > 0, grpc) << ready;
    bool mapped = MapsContain(p.pid(), "/libgpuhive_grpc.so");
    EXPECT_EQ(MapsContain(p.pid(), "/libgrpc"), mapped);
    p.Signal(SIGTERM);
    EXPECT_EQ(p.Wait(), 0);
    return mapped;
  };
  {
    ScopedEnv env("GPUHIVE_GRPC_MODULE", "/nonexistent/libgpuhive_grpc.so");
    EXPECT_FALSE(serve({"--allow-grpc", "false"}, false));
  }
  EXPECT_TRUE(serve({"--grpc-port", "0"}, true));
}

// A gRPC module that is missing or is not one stops the start with the path and the reason.
TEST(ServeProcess, GrpcModuleProblemsAreClearErrors) {
  struct Case {
    std::string module;
    std::vector<std::string> flags;
    std::vector<std::string> says;
  };
  const std::string not_elf = std::string(GPUHIVE_SOURCE_DIR) + "/README.md";
  std::vector<Case> cases = {
      {"/nonexistent/libgpuhive_grpc.so",
       {"--grpc-port", "0"},
       {"gRPC: the gRPC module libgpuhive_grpc.so was not found (looked at: /nonexistent/libgpuhive_grpc.so; set "
        "GPUHIVE_GRPC_MODULE to its path)"}},
      {not_elf, {"--grpc-port", "0"}, {"cannot load the gRPC module " + not_elf + ": ", "invalid ELF header"}},
      // The ModelMesh runtime API is gRPC too, even with the KServe gRPC port off.
      {"/nonexistent/libgpuhive_grpc.so",
       {"--allow-grpc", "false", "--modelmesh-port", "0"},
       {"ModelMesh: the gRPC module libgpuhive_grpc.so was not found"}},
  };
  for (const Case& c : cases) {
    ScopedEnv env("GPUHIVE_GRPC_MODULE", c.module);
    std::vector<std::string> args = {GPUHIVE_BINARY, "serve", "--model-repository", SourceRepository(), "--http-port",
                                     "0"};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    Process p(args);
    ASSERT_TRUE(p.ok());
    std::string out = p.ReadAll();
    EXPECT_EQ(p.Wait(), 1) << out;
    for (const std::string& says : c.says) EXPECT_NE(out.find(says), std::string::npos) << says << "\n" << out;
  }
}

int64_t RssBytes(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  }
  return -1;
}

// Issue 16: resident memory stays within device budget + host tier budget + the fixed overhead
// docs/server.md states (96 MiB: libraries, threads, connection buffers), while sixteen 8 MiB models
// take turns in a 40 MiB device budget. Before the host tier had a default budget every model's
// host copy stayed (16 x 8 MiB on top of the device's), which broke the bound.
TEST(ServeProcess, ResidentMemoryStaysWithinTheBudgetsPlusTheOverhead) {
  namespace fs = std::filesystem;
  fs::path repo = fs::temp_directory_path() / ("gpuhive_rss_" + std::to_string(getpid()));
  fs::remove_all(repo);
  const int kModels = 16, kDim = 1024;
  for (int i = 0; i < kModels; ++i) {
    fs::create_directories(repo / ("m" + std::to_string(i)) / "1");
    residency::SyntheticModelSpec spec;
    spec.dim = kDim;
    spec.layers = 2;  // 2 x 4 MiB
    spec.seed = static_cast<uint32_t>(i + 1);
    std::ofstream(repo / ("m" + std::to_string(i)) / "1" / "model.onnx", std::ios::binary)
        << residency::MakeMatMulChainOnnx(spec);
  }
  const int64_t MiB = 1 << 20, device = 40 * MiB, host = 40 * MiB, overhead = 96 * MiB;
  Process p({GPUHIVE_BINARY, "serve", "--model-repository", repo.string(), "--http-port", "0", "--grpc-port", "0",
             "--memory-budget", "40MiB", "--cpu-workers", "1", "--threads-per-worker", "1", "--no-preload",
             "--log-level", "error"});
  ASSERT_TRUE(p.ok());
  std::string ready = p.ReadLineStartingWith("gpuhive ready");
  ASSERT_FALSE(ready.empty());
  uint16_t port = static_cast<uint16_t>(ParsePort(ready, "http_port"));
  json body = {{"inputs", {{{"name", "x"}, {"shape", {2, kDim}}, {"datatype", "FP32"},
                            {"data", std::vector<float>(2 * kDim, 0.25f)}}}}};
  const std::string b = body.dump();
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> clients;
  for (int first = 0; first < 4; ++first) {
    clients.emplace_back([&, first] {
      int m = first;
      HttpClient c(port);
      while (!stop.load()) {
        auto r = c.Request("POST", "/v2/models/m" + std::to_string(m) + "/infer", b);
        (r.status == 200 ? ok : refused)++;
        if (r.status != 200 && refused.load() < 3) std::printf("%d %s\n", r.status, r.body.c_str());
        m = (m + 4) % kModels;
      }
    });
  }
  int64_t peak = 0;
  // At least 4 s, and until every model has had its turn twice (a machine loaded by other tests
  // may need longer: 22 turns in 4 s were seen beside a build), at most 60 s.
  for (int i = 0; i < 1200 && (i < 80 || ok.load() <= kModels * 2); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    peak = std::max(peak, RssBytes(p.pid()));
  }
  stop = true;
  for (auto& t : clients) t.join();
  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(), 0);
  fs::remove_all(repo);
  EXPECT_GT(ok.load(), kModels * 2);  // the models took turns
  EXPECT_EQ(refused.load(), 0);
  EXPECT_LE(peak, device + host + overhead) << "peak RSS " << peak / MiB << " MiB";
  std::printf("peak RSS %lld MiB (bound %lld MiB), %d ok, %d refused\n", static_cast<long long>(peak / MiB),
              static_cast<long long>((device + host + overhead) / MiB), ok.load(), refused.load());
}

// Issue 16: with a short --exit-timeout-secs the log said 16 requests were answered 503 and the
// exit code was 1 while every client got 200 (running batches were counted as refused). Now the
// log, the exit code and what the clients saw agree.
TEST(ServeProcess, ExitDeadlineReportsWhatClientsSaw) {
  namespace fs = std::filesystem;
  fs::path repo = fs::temp_directory_path() / ("gpuhive_exit_" + std::to_string(getpid()));
  fs::remove_all(repo);
  fs::create_directories(repo / "slow" / "1");
  residency::SyntheticModelSpec spec;
  spec.dim = 2048;
  spec.layers = 8;  // ~4 GFLOP per request: 32 of them outlast a 1 s deadline on one thread
  std::ofstream(repo / "slow" / "1" / "model.onnx", std::ios::binary) << residency::MakeMatMulChainOnnx(spec);
  Process p({GPUHIVE_BINARY, "serve", "--model-repository", repo.string(), "--http-port", "0", "--grpc-port", "0",
             "--cpu-workers", "1", "--threads-per-worker", "1", "--exit-timeout-secs", "1", "--log-level",
             "warning"});
  ASSERT_TRUE(p.ok());
  std::string ready = p.ReadLineStartingWith("gpuhive ready");
  ASSERT_FALSE(ready.empty());
  uint16_t port = static_cast<uint16_t>(ParsePort(ready, "http_port"));
  json body = {{"inputs", {{{"name", "x"}, {"shape", {64, 2048}}, {"datatype", "FP32"},
                            {"data", std::vector<float>(64 * 2048, 0.5f)}}}}};
  const std::string b = body.dump();
  {
    HttpClient warm(port);
    ASSERT_EQ(warm.Request("POST", "/v2/models/slow/infer", b).status, 200);
  }
  // refused: admitted, then answered 503 at the deadline; not_admitted: arrived after SIGTERM, and
  // answered 503 "shutting down", or still being sent when the process exited (on a loaded
  // machine most of the 32 ~600 KB JSON bodies are: no answer, which only after SIGTERM is right).
  std::atomic<int> ok{0}, refused{0}, not_admitted{0}, other{0}, started{0};
  std::atomic<bool> terminated{false};
  std::vector<std::thread> clients;
  for (int i = 0; i < 32; ++i) {
    clients.emplace_back([&] {
      HttpClient c(port);
      started++;
      auto r = c.Request("POST", "/v2/models/slow/infer", b);
      if (r.status == 200) {
        ok++;
      } else if (r.status == 503 && r.body.find("shutting down") != std::string::npos) {
        not_admitted++;
      } else if (r.status == 503) {
        refused++;
      } else if (r.status == 0 && terminated.load()) {
        not_admitted++;
      } else {
        other++;
      }
    });
  }
  while (started.load() < 32) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  terminated = true;
  p.Signal(SIGTERM);
  for (auto& t : clients) t.join();
  std::string log = p.ReadAll();
  int code = p.Wait();
  fs::remove_all(repo);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(ok.load() + refused.load() + not_admitted.load(), 32);
  EXPECT_EQ(code, refused.load() > 0 ? 1 : 0) << log;
  if (refused.load() > 0) {
    EXPECT_NE(log.find("answered " + std::to_string(refused.load()) + " queued request(s) with 503"), std::string::npos)
        << refused.load() << " refused; log:\n" << log;
  } else {
    EXPECT_EQ(log.find("with 503"), std::string::npos) << log;
  }
  std::printf("%d ok, %d refused at the deadline, %d not admitted, exit %d\n", ok.load(), refused.load(),
              not_admitted.load(), code);
}

TEST(ServeProcess, BadFlagsAreClearErrors) {
  Process p({GPUHIVE_BINARY, "serve", "--model-repository", SourceRepository(), "--model-control-mode", "sometimes"});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.Wait(), 1);
  Process q({GPUHIVE_BINARY, "serve", "--model-repository", "/nonexistent/repo"});
  ASSERT_TRUE(q.ok());
  EXPECT_NE(q.Wait(), 0);
}

// Debian's prometheus scrapes the running server; the metric is read back through its query API.
TEST(ServeProcess, RealPrometheusScrapesGpuhive) {
  const char* prom = "/usr/bin/prometheus";
  if (access(prom, X_OK) != 0) GTEST_SKIP() << "prometheus is not installed (scripts/install-deps.sh installs it)";
  Process p({GPUHIVE_BINARY, "serve", "--model-repository", SourceRepository(), "--http-port", "0", "--allow-grpc",
             "false", "--log-level", "warning"});
  ASSERT_TRUE(p.ok());
  std::string ready = p.ReadLineStartingWith("gpuhive ready");
  uint16_t port = static_cast<uint16_t>(ParsePort(ready, "http_port"));
  ASSERT_GT(port, 0);
  HttpClient c(port);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(1).dump()).status, 200);

  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("gpuhive_prom_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "prometheus.yml") << "global:\n  scrape_interval: 1s\nscrape_configs:\n"
                                        << "  - job_name: gpuhive\n    static_configs:\n      - targets: ['127.0.0.1:"
                                        << port << "']\n";
  // An ephemeral port for prometheus itself: bind, read, release.
  int prom_port = 19090 + (getpid() % 500);
  Process prometheus({prom, "--config.file=" + (dir / "prometheus.yml").string(),
                      "--storage.tsdb.path=" + (dir / "data").string(),
                      "--web.listen-address=127.0.0.1:" + std::to_string(prom_port), "--log.level=error"});
  ASSERT_TRUE(prometheus.ok());
  double value = -1;
  for (int i = 0; i < 120 && value < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    HttpClient pc(static_cast<uint16_t>(prom_port));
    auto r = pc.Request("GET",
                        "/api/v1/query?query=gpuhive_inference_requests_total%7Bmodel%3D%22tiny_mlp%22%2Coutcome%3D%22success%22%7D");
    if (r.status != 200) continue;
    auto j = json::parse(r.body, nullptr, false);
    if (j.is_discarded() || j["data"]["result"].empty()) continue;
    value = std::stod(j["data"]["result"][0]["value"][1].get<std::string>());
  }
  EXPECT_EQ(value, 3);
  prometheus.Signal(SIGTERM);
  prometheus.Wait();
  p.Signal(SIGTERM);
  EXPECT_EQ(p.Wait(), 0);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace gpuhive::server::testing
