// `gpuhive bench soak`: the production soak (issue 16). Starts `gpuhive serve` on a copy of a
// model repository and sends N requests (default 1,000,000), alternately over HTTP and gRPC, while
// a chaos thread loads and unloads models at random, changes per-model memory limits, mixes in
// malformed requests, replaces a model file with garbage right before loading it, and the server
// itself fails device allocations at random (--inject-alloc-failures) and, with --fake-nvml, sees
// NVML errors. It samples the server's resident memory and its device budget once per second and
// reports: requests answered by class, crashes, admitted requests lost, RSS over time (the slope
// after warm-up, in MiB per 100,000 requests), budget violations. Exit status 0 only when every
// criterion holds.
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "cli/command.h"
#include "cli/grpc_module.h"
#include "cli/loadgen/runner.h"
#include "cli/loadgen/server_process.h"
#include "cli/loadgen/transport.h"
#include "gpuhive/units.h"

namespace gpuhive::cli {
namespace {

namespace fs = std::filesystem;
using namespace gpuhive::loadgen;
using json = nlohmann::json;

struct Options {
  int64_t requests = 1'000'000;
  std::string repository;
  std::string binary = "/proc/self/exe";
  std::string device = "cpu";
  std::string budget = "32MiB";
  int concurrency = 16;
  double alloc_failures = 0.01;
  std::string fake_nvml;  // path to a fake libnvidia-ml (tests/monitor's fake_nvml_v1)
  int nvml_fail_every = 5;
  int chaos_interval_ms = 20;
  double max_seconds = 3 * 3600;
  double max_slope_mib_per_100k = 1.0;
  uint16_t http_port = 18400;
  uint16_t grpc_port = 18401;
  uint64_t seed = 1;
  std::string json_out;
  bool quiet = false;
};

int64_t ReadRssBytes(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  }
  return -1;
}

// Without reaping (ServerProcess reaps its child): a zombie or a missing process is dead.
bool Alive(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(f, stat)) return false;
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

// Where a response's kind belongs. "lost": no answer at all from a live server.
std::string ClassOf(const std::string& kind) {
  if (kind == "ok") return "ok";
  if (kind == "http_503" || kind == "http_429" || kind == "grpc_14" || kind == "grpc_8") return "refused";
  if (kind.rfind("http_4", 0) == 0 || kind == "grpc_3" || kind == "grpc_5" || kind == "grpc_9") return "client_error";
  if (kind == "client_timeout" || kind == "io_error" || kind == "connect_error" || kind == "client_backlog") return "lost";
  return "server_error";  // http_5xx other than 503, grpc INTERNAL/UNKNOWN/...
}

// Slope of y over x by least squares.
double Slope(const std::vector<std::pair<double, double>>& pts) {
  if (pts.size() < 3) return 0;
  double n = static_cast<double>(pts.size()), sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (auto [x, y] : pts) {
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  double d = n * sxx - sx * sx;
  return d == 0 ? 0 : (n * sxy - sx * sy) / d;
}

// The malformed requests mixed in: each must get a 4xx (or 503 while its model is away), never a
// 5xx other than 503, never a dropped connection.
std::vector<std::pair<std::string, std::string>> MalformedInfers(const std::string& model) {
  const std::string t = "/v2/models/" + model + "/infer";
  return {
      {t, "{"},
      {t, "{\"inputs\": 5}"},
      {t, "{\"inputs\": [{\"name\": \"x\", \"shape\": [1, 4], \"datatype\": \"FP32\", \"data\": [1, 2]}]}"},
      {t, "{\"inputs\": [{\"name\": \"x\", \"shape\": [99999999, 99999999], \"datatype\": \"FP32\", \"data\": []}]}"},
      {t, "{\"inputs\": [{\"name\": \"x\", \"shape\": [1], \"datatype\": \"NOPE\", \"data\": [1]}]}"},
      {t, std::string("{\"inputs\": [{\"name\": \"\xff\xfe\", \"shape\": [1], \"datatype\": \"FP32\", \"data\": [1]}]}")},
      {"/v2/models/..%2F..%2Fetc/infer", "{}"},
      {"/v2/repository/models/a%2Fb/load", ""},
      {"/v2/repository/models/%00x/load", ""},
      {"/v2/gpuhive/models/" + model + "/settings", "{\"priority\": 4294967297}"},
      {"/v2/gpuhive/models/" + model + "/settings", "[]"},
  };
}

struct Counters {
  std::mutex mu;
  std::map<std::string, int64_t> by_class, by_kind;
  std::map<std::string, int64_t> chaos;                   // action -> count
  std::map<std::string, int64_t> malformed_by_status;     // "404", ...
  int64_t malformed_bad = 0;                              // 5xx (not 503) or no answer
  std::vector<std::string> notes;  // the first 20 problems, for the report
  void NoteLocked(std::string s) {
    if (notes.size() < 20) notes.push_back(std::move(s));
  }
};

int RunSoak(const Options& o) {
  if (o.repository.empty() || !fs::is_directory(o.repository)) {
    std::fprintf(stderr, "bench soak: --model-repository DIR is required (e.g. tests/data/repository)\n");
    return 2;
  }
  auto budget = ParseBytes(o.budget);
  if (!budget.ok()) {
    std::fprintf(stderr, "bench soak: --budget: %s\n", budget.status().ToString().c_str());
    return 2;
  }
  // Half the requests go over gRPC: the module must be there before a server is started.
  auto grpc_module = LoadGrpcModule();
  if (!grpc_module.ok()) {
    std::fprintf(stderr, "bench soak: %s\n", grpc_module.status().ToString().c_str());
    return 2;
  }
  // A scratch copy: the soak overwrites a model file.
  char tmpl[] = "/tmp/gpuhive_soak_XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 2;
  const fs::path root = tmpl;
  const fs::path repo = root / "repository";
  fs::create_directories(repo);
  std::vector<std::string> model_dirs;
  for (const auto& e : fs::directory_iterator(o.repository)) {
    if (!e.is_directory()) continue;
    fs::copy(e.path(), repo / e.path().filename(), fs::copy_options::recursive);
    model_dirs.push_back(e.path().filename().string());
  }
  // The model whose file is replaced mid-load: a copy of the smallest single-file model.
  std::string swap_source;
  uintmax_t smallest = UINTMAX_MAX;
  for (const auto& m : model_dirs) {
    fs::path f = repo / m / "1" / "model.onnx";
    std::error_code ec;
    if (fs::is_regular_file(f, ec) && fs::file_size(f, ec) < smallest && m != "broken_model") {
      smallest = fs::file_size(f, ec);
      swap_source = m;
    }
  }
  const std::string swap_model = "soak_swap";
  std::string good_bytes;
  if (!swap_source.empty()) {
    fs::create_directories(repo / swap_model / "1");
    std::ifstream in(repo / swap_source / "1" / "model.onnx", std::ios::binary);
    good_bytes.assign(std::istreambuf_iterator<char>(in), {});
    std::ofstream(repo / swap_model / "1" / "model.onnx", std::ios::binary) << good_bytes;
    if (fs::exists(repo / swap_source / "config.pbtxt")) {
      std::ifstream c(repo / swap_source / "config.pbtxt");
      std::string text((std::istreambuf_iterator<char>(c)), {});
      auto pos = text.find("name:");
      if (pos != std::string::npos) {
        auto end = text.find('\n', pos);
        text.replace(pos, end - pos, "name: \"" + swap_model + "\"");
      }
      std::ofstream(repo / swap_model / "config.pbtxt") << text;
    }
  }

  ServerSpec spec;
  spec.binary = o.binary;
  spec.model_repository = repo.string();
  spec.http_port = o.http_port;
  spec.grpc_port = o.grpc_port;
  spec.memory_budget = o.budget;
  spec.model_control_mode = "explicit";
  spec.load_models = {"*"};
  spec.args = {"--device", o.device, "--log-level", "warning", "--exit-timeout-secs", "30",
               "--inject-alloc-failures", std::to_string(o.alloc_failures), "--sim-device-memory", "1GiB"};
  if (!o.fake_nvml.empty()) {
    fs::create_directories(root / "nvml");
    fs::create_symlink(fs::absolute(o.fake_nvml), root / "nvml" / "libnvidia-ml.so.1");
    const char* old = std::getenv("LD_LIBRARY_PATH");
    setenv("LD_LIBRARY_PATH", ((root / "nvml").string() + (old ? ":" + std::string(old) : "")).c_str(), 1);
    setenv("FAKE_NVML_FAIL_EVERY", std::to_string(o.nvml_fail_every).c_str(), 1);
  }
  auto server = ServerProcess::Start(spec, "gpuhive", (root / "server.log").string());
  if (!server.ok()) {
    std::fprintf(stderr, "bench soak: %s\n", server.status().ToString().c_str());
    return 1;
  }
  const pid_t pid = (*server)->pid();
  Status ready = (*server)->WaitReady("127.0.0.1", o.http_port, 300);
  if (!ready.ok()) {
    std::fprintf(stderr, "bench soak: %s\n", ready.ToString().c_str());
    return 1;
  }
  const auto timeout = std::chrono::milliseconds(10000);

  // One request template per servable model (metadata from the server itself).
  std::vector<std::string> models;
  std::vector<RequestTemplate> templates;
  for (const auto& m : model_dirs) {
    auto md = HttpExchange("127.0.0.1", o.http_port, "GET", "/v2/models/" + m, "", timeout);
    if (!md.ok() || md->status != 200) continue;
    StreamSpec s;
    s.name = s.model = m;
    auto t = BuildRequestTemplate(s, &md->body, o.seed + models.size());
    if (!t.ok()) continue;
    models.push_back(m);
    templates.push_back(std::move(*t));
  }
  if (templates.empty()) {
    std::fprintf(stderr, "bench soak: no servable model in %s\n", o.repository.c_str());
    return 1;
  }

  boost::asio::io_context ioc;
  auto guard = boost::asio::make_work_guard(ioc);
  TransportOptions to;
  to.timeout = std::chrono::milliseconds(60000);
  to.max_connections = o.concurrency;
  auto http = MakeHttpTransport(ioc, "127.0.0.1", o.http_port, to);
  auto grpc = (*grpc_module)->loadgen_client()->MakeTransport(ioc, "127.0.0.1:" + std::to_string(o.grpc_port),
                                                              to);
  for (const auto& t : templates) {
    if (!http->AddStream(t).ok() || !grpc->AddStream(t).ok()) return 1;
  }

  Counters counters;
  std::atomic<int64_t> sent{0}, done{0};
  std::atomic<bool> stop{false};
  std::mt19937_64 pick(o.seed);
  std::function<void()> send_one = [&] {
    int64_t n = sent.fetch_add(1);
    if (n >= o.requests || stop.load()) {
      sent.fetch_sub(1);
      return;
    }
    size_t stream = pick() % templates.size();
    Transport* tr = (n % 2 == 0) ? http.get() : grpc.get();
    tr->Send(stream, [&](const Outcome& out) {
      {
        std::lock_guard<std::mutex> l(counters.mu);
        ++counters.by_kind[out.kind];
        ++counters.by_class[ClassOf(out.kind)];
      }
      done.fetch_add(1);
      send_one();
    });
  };
  boost::asio::post(ioc, [&] {
    for (int i = 0; i < o.concurrency; ++i) send_one();
  });
  std::thread io([&] { ioc.run(); });

  // Chaos: load/unload, memory limits, malformed requests, a model file replaced before its load.
  std::thread chaos([&] {
    std::mt19937_64 rng(o.seed * 7 + 3);
    while (!stop.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(o.chaos_interval_ms));
      const std::string& m = models[rng() % models.size()];
      int action = static_cast<int>(rng() % 10);
      std::string name;
      StatusOr<HttpResult> r = HttpResult{};
      if (action <= 1) {
        name = "unload+load";
        r = HttpExchange("127.0.0.1", o.http_port, "POST", "/v2/repository/models/" + m + "/unload", "", timeout);
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 50));
        r = HttpExchange("127.0.0.1", o.http_port, "POST", "/v2/repository/models/" + m + "/load", "", timeout);
      } else if (action == 2) {
        name = "memory_limit";
        static const char* limits[] = {"\"4MiB\"", "\"64MiB\"", "\"1KiB\"", "\"0\""};
        std::string body = std::string("{\"memory_limit\": ") + limits[rng() % 4] + "}";
        r = HttpExchange("127.0.0.1", o.http_port, "PUT", "/v2/gpuhive/models/" + m + "/settings", body, timeout);
      } else if (action <= 6) {
        name = "malformed";
        auto cases = MalformedInfers(m);
        const auto& [target, body] = cases[rng() % cases.size()];
        const char* method = target.find("/settings") != std::string::npos ? "PUT" : "POST";
        r = HttpExchange("127.0.0.1", o.http_port, method, target, body, timeout);
        std::lock_guard<std::mutex> l(counters.mu);
        if (!r.ok() || (r->status >= 500 && r->status != 503)) {
          ++counters.malformed_bad;
          counters.NoteLocked("malformed " + target + " -> " +
                                   (r.ok() ? std::to_string(r->status) + " " + r->body.substr(0, 200)
                                           : r.status().ToString()));
        } else {
          ++counters.malformed_by_status[std::to_string(r->status)];
        }
      } else if (action == 7 && !good_bytes.empty()) {
        name = "file_replaced_mid_load";
        // Garbage (a truncated copy) lands while the load reads the file; then the good file is back.
        std::thread writer([&] {
          std::ofstream(repo / swap_model / "1" / "model.onnx", std::ios::binary | std::ios::trunc)
              << good_bytes.substr(0, good_bytes.size() / 3);
        });
        r = HttpExchange("127.0.0.1", o.http_port, "POST", "/v2/repository/models/" + swap_model + "/load", "", timeout);
        writer.join();
        std::ofstream(repo / swap_model / "1" / "model.onnx", std::ios::binary | std::ios::trunc) << good_bytes;
        r = HttpExchange("127.0.0.1", o.http_port, "POST", "/v2/repository/models/" + swap_model + "/load", "", timeout);
      } else {
        name = "status";
        r = HttpExchange("127.0.0.1", o.http_port, "GET", "/v2/gpuhive/models", "", timeout);
      }
      const bool unanswered = !r.ok() && Alive(pid);  // reads /proc: outside the lock
      std::lock_guard<std::mutex> l(counters.mu);
      ++counters.chaos[name];
      if (unanswered) counters.NoteLocked(name + ": no answer: " + r.status().ToString());
    }
  });

  // Samples: RSS and the device budget, once per second.
  std::vector<std::pair<double, double>> rss;  // (requests done, MiB)
  int64_t violations = 0, samples = 0;
  int64_t crashed = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (done.load() < o.requests) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!Alive(pid)) {
      crashed = 1;
      break;
    }
    int64_t r = ReadRssBytes(pid);
    if (r > 0) rss.emplace_back(static_cast<double>(done.load()), static_cast<double>(r) / (1 << 20));
    auto dev = HttpExchange("127.0.0.1", o.http_port, "GET", "/v2/gpuhive/devices", "", timeout);
    if (dev.ok() && dev->status == 200) {
      json d = json::parse(dev->body, nullptr, false);
      if (d.is_array()) {
        for (const auto& x : d) {
          ++samples;
          if (x.value("used_bytes", uint64_t{0}) > x.value("budget_bytes", uint64_t{0})) ++violations;
        }
      }
    }
    if (!o.quiet) {
      std::fprintf(stderr, "soak: %.0f s, %lld/%lld answered, rss %.1f MiB\n", elapsed,
                   static_cast<long long>(done.load()), static_cast<long long>(o.requests),
                   rss.empty() ? 0.0 : rss.back().second);
    }
    if (elapsed > o.max_seconds) break;
  }
  stop = true;
  chaos.join();
  // Let the requests in flight finish (they complete on the io thread), then stop.
  for (int i = 0; i < 600 && done.load() < sent.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  guard.reset();
  ioc.stop();
  io.join();
  http->Close();
  grpc->Close();
  const int64_t answered = done.load();
  std::string ended = (*server)->Stop(60);
  // The server says at exit how many allocation failures it injected.
  int64_t injected = -1;
  {
    std::ifstream log(root / "server.log");
    std::string line;
    const std::string key = "injected ";
    while (std::getline(log, line)) {
      auto p = line.find(key);
      if (p != std::string::npos && line.find("allocation failure") != std::string::npos) {
        injected = std::atoll(line.c_str() + p + key.size());
      }
    }
  }

  // After warm-up (the first 10% of requests) the RSS must be flat.
  std::vector<std::pair<double, double>> steady;
  for (auto& p : rss) {
    if (p.first >= 0.1 * static_cast<double>(o.requests)) steady.push_back(p);
  }
  const double slope = Slope(steady) * 100'000;  // MiB per 100k requests
  int64_t lost = counters.by_class["lost"];
  int64_t server_errors = counters.by_class["server_error"];
  const bool completed = answered >= o.requests;
  const bool pass = crashed == 0 && completed && lost == 0 && violations == 0 && server_errors == 0 &&
                    counters.malformed_bad == 0 && slope <= o.max_slope_mib_per_100k &&
                    ended == "exited with status 0";

  json report;
  report["requests"] = o.requests;
  report["answered"] = answered;
  report["seconds"] = elapsed;
  report["requests_per_s"] = elapsed > 0 ? static_cast<double>(answered) / elapsed : 0;
  report["device"] = o.device;
  report["budget"] = o.budget;
  report["models"] = models;
  report["by_class"] = counters.by_class;
  report["by_kind"] = counters.by_kind;
  report["chaos_actions"] = counters.chaos;
  report["malformed_by_status"] = counters.malformed_by_status;
  report["malformed_bad"] = counters.malformed_bad;
  report["injected_alloc_failures"] = injected;
  report["crashes"] = crashed;
  report["lost"] = lost;
  report["budget_samples"] = samples;
  report["budget_violations"] = violations;
  report["rss_mib_first"] = rss.empty() ? 0 : rss.front().second;
  report["rss_mib_last"] = rss.empty() ? 0 : rss.back().second;
  double peak = 0;
  for (auto& p : rss) peak = std::max(peak, p.second);
  report["rss_mib_peak"] = peak;
  report["rss_slope_mib_per_100k_after_warmup"] = slope;
  report["server_exit"] = ended;
  report["notes"] = counters.notes;
  report["pass"] = pass;
  const std::string text = report.dump(2);
  std::printf("%s\n", text.c_str());
  if (!o.json_out.empty()) std::ofstream(o.json_out) << text << "\n";
  if (!pass) std::fprintf(stderr, "bench soak: FAILED (server log: %s)\n", (root / "server.log").c_str());
  std::error_code ec;
  if (pass) fs::remove_all(root, ec);
  return pass ? 0 : 1;
}

CommandRegistration kReg(
    "bench", "soak",
    "Soak: N requests over HTTP and gRPC with load/unload, limit changes, malformed requests and injected faults",
    [](CLI::App& app) {
      auto o = std::make_shared<Options>();
      app.add_option("--requests", o->requests, "requests to answer")->capture_default_str();
      app.add_option("--model-repository", o->repository, "repository to copy and serve")->required();
      app.add_option("--server-binary", o->binary, "binary to start as the server (default: this one)");
      app.add_option("--device", o->device, "serve --device (cpu or sim)")->capture_default_str();
      app.add_option("--budget", o->budget, "serve --memory-budget")->capture_default_str();
      app.add_option("--concurrency", o->concurrency, "requests in flight")->capture_default_str();
      app.add_option("--inject-alloc-failures", o->alloc_failures, "probability per device allocation")
          ->capture_default_str();
      app.add_option("--fake-nvml", o->fake_nvml, "a fake libnvidia-ml to inject NVML errors through");
      app.add_option("--nvml-fail-every", o->nvml_fail_every, "with --fake-nvml: every Nth memory query fails");
      app.add_option("--chaos-interval-ms", o->chaos_interval_ms, "pause between chaos actions")->capture_default_str();
      app.add_option("--max-seconds", o->max_seconds, "give up after this long")->capture_default_str();
      app.add_option("--max-slope", o->max_slope_mib_per_100k, "allowed RSS growth, MiB per 100k requests")
          ->capture_default_str();
      app.add_option("--http-port", o->http_port, "server HTTP port")->capture_default_str();
      app.add_option("--grpc-port", o->grpc_port, "server gRPC port")->capture_default_str();
      app.add_option("--seed", o->seed, "random seed")->capture_default_str();
      app.add_option("--json", o->json_out, "also write the report here");
      app.add_flag("--quiet", o->quiet, "no progress lines");
      return [o] { return RunSoak(*o); };
    });

}  // namespace
}  // namespace gpuhive::cli
