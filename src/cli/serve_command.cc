// `gpuhive serve`: the inference server. Flag names follow tritonserver's where the meaning is the
// same (--model-repository, --http-port, --grpc-port, --model-control-mode, --load-model,
// --repository-poll-secs, --exit-timeout-secs, --strict-readiness is implied), so users can
// switch without relearning. Every flag can also come from a TOML/INI file given with --config.
//
// Shutdown: SIGTERM or SIGINT stops admitting requests (readiness turns false, new requests get
// 503), waits up to --exit-timeout-secs for every admitted request to be answered, then closes
// the frontends and exits 0 (1 when admitted requests had to be refused at the deadline).
#include <algorithm>
#include <signal.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/grpc_module.h"
#include "gpuhive/logging.h"
#include "gpuhive/engine/engine.h"
#include "gpuhive/server/grpc_server.h"
#include "gpuhive/server/http_server.h"
#include "gpuhive/server/modelmesh.h"
#include "gpuhive/server/shared_memory.h"
#include "gpuhive/units.h"

namespace gpuhive::cli {
namespace {

struct Options {
  std::string model_repository;
  std::string http_address = "127.0.0.1";
  std::string grpc_address = "127.0.0.1";
  int http_port = 8000;
  int grpc_port = 8001;
  bool allow_http = true;
  bool allow_grpc = true;
  int http_threads = 2;
  std::string max_body = "64MiB";
  std::string max_buffered_bodies = "512MiB";
  int max_connections = 1024;
  int64_t idle_timeout_ms = 30000;
  std::string model_control_mode = "none";
  std::vector<std::string> load_models;
  double repository_poll_secs = 1.0;
  std::string mode = "gpuhive";
  std::string memory_budget;  // empty: automatic
  std::string host_memory_budget;  // empty: as large as the device budget; "0": unlimited
  bool strict_gpu = false;
  std::string device = "auto";
  std::string sim_device_memory = "4GiB";
  std::string sim_copy_bandwidth = "16GB";  // per second
  double inject_alloc_failures = 0;
  int cpu_workers = 0;
  int threads_per_worker = 0;
  int priority_levels = 4;
  int max_queue_size = 1024;
  double batch_min_gain = 0.1;
  std::string batch_memory = "auto";
  std::string critical_worker = "on";
  std::vector<std::string> tenant_weights;  // name=weight
  std::vector<std::string> tenants;         // declared tenants
  double keep_alive_secs = 300;
  bool no_preload = false;
  bool no_optimize = false;
  bool no_pipelined_swap = false;
  int max_concurrent_loads = 2;
  std::string auth_token;
  double exit_timeout_secs = 30;
  std::string log_format = "text";
  std::string log_level = "info";
  // ModelMesh model-runtime service (off unless a port or a socket is given).
  int modelmesh_port = -1;
  std::string modelmesh_socket;
  std::string modelmesh_address = "127.0.0.1";
  double modelmesh_load_timeout_secs = 90;
  std::string modelmesh_default_model_size = "256MiB";
  std::string modelmesh_model_root;
  // Triton's flags.
  int metrics_port = -1;  // -1: /metrics on the HTTP port only
  std::string metrics_address;  // empty: the HTTP address
  int log_verbose = 0;    // > 0: debug logging
  bool strict_model_config = false;
  std::string config_file;
};

// The effective options, one line of JSON (logged at start: what a --config file or flag set).
std::string Describe(const Options& o) {
  auto str = [](const std::string& v) {
    std::string out = "\"";
    for (char c : v) {
      if (c == '"' || c == '\\') out += '\\';
      if (static_cast<unsigned char>(c) >= 0x20) out += c;
    }
    return out + "\"";
  };
  auto list = [&](const std::vector<std::string>& v) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + str(v[i]);
    return out + "]";
  };
  auto b = [](bool v) { return v ? "true" : "false"; };
  return fmt::format(
      "{{\"model-repository\":{},\"http-address\":{},\"http-port\":{},\"grpc-address\":{},\"grpc-port\":{},"
      "\"allow-http\":{},\"allow-grpc\":{},\"http-thread-count\":{},\"max-body-size\":{},"
      "\"max-buffered-bodies\":{},\"max-connections\":{},\"idle-timeout-ms\":{},\"model-control-mode\":{},"
      "\"load-model\":{},\"repository-poll-secs\":{},\"mode\":{},\"memory-budget\":{},\"strict-gpu\":{},"
      "\"cpu-workers\":{},\"threads-per-worker\":{},\"priority-levels\":{},\"max-queue-size\":{},"
      "\"tenant-weight\":{},\"tenant\":{},\"keep-alive-secs\":{},\"no-preload\":{},\"no-optimize\":{},"
      "\"no-pipelined-swap\":{},\"max-concurrent-loads\":{},\"auth-token-set\":{},\"exit-timeout-secs\":{},"
      "\"log-format\":{},\"log-level\":{},\"metrics-port\":{},\"metrics-address\":{},\"log-verbose\":{},"
      "\"strict-model-config\":{},\"device\":{},\"sim-device-memory\":{},\"sim-copy-bandwidth\":{},"
      "\"host-memory-budget\":{},\"inject-alloc-failures\":{},\"modelmesh-port\":{},\"modelmesh-socket\":{},"
      "\"batch-min-gain\":{},\"batch-memory\":{},\"critical-worker\":{}}}",
      str(o.model_repository), str(o.http_address), o.http_port, str(o.grpc_address), o.grpc_port, b(o.allow_http),
      b(o.allow_grpc), o.http_threads, str(o.max_body), str(o.max_buffered_bodies), o.max_connections,
      o.idle_timeout_ms, str(o.model_control_mode), list(o.load_models), o.repository_poll_secs, str(o.mode),
      str(o.memory_budget), b(o.strict_gpu), o.cpu_workers, o.threads_per_worker, o.priority_levels,
      o.max_queue_size, list(o.tenant_weights), list(o.tenants), o.keep_alive_secs, b(o.no_preload),
      b(o.no_optimize), b(o.no_pipelined_swap), o.max_concurrent_loads, b(!o.auth_token.empty()),
      o.exit_timeout_secs, str(o.log_format), str(o.log_level), o.metrics_port, str(o.metrics_address),
      o.log_verbose, b(o.strict_model_config), str(o.device), str(o.sim_device_memory), str(o.sim_copy_bandwidth),
      str(o.host_memory_budget), o.inject_alloc_failures, o.modelmesh_port, str(o.modelmesh_socket),
      o.batch_min_gain, str(o.batch_memory), str(o.critical_worker));
}

// Applies a --config file (TOML or INI; keys are the long flag names, '-' or '_', optionally under a
// [serve] section) to every option the command line did not set: the command line wins. Each value
// goes through the same conversion and checks as on the command line.
Status ApplyConfigFile(CLI::App& app, const std::string& path) {
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_file(path);
  } catch (const CLI::Error& e) {
    return InvalidArgument("--config {}: {}", path, e.what());
  }
  for (const CLI::ConfigItem& item : items) {
    if (item.name == "++" || item.name == "--") continue;  // section markers
    if (!item.parents.empty() && !(item.parents.size() == 1 && item.parents[0] == "serve")) {
      return InvalidArgument("--config {}: section [{}] is not known (use top-level keys or [serve])", path,
                             item.parents[0]);
    }
    std::string key = item.name;
    std::replace(key.begin(), key.end(), '_', '-');
    if (key == "config") return InvalidArgument("--config {}: a config file cannot name another", path);
    CLI::Option* opt = app.get_option_no_throw("--" + key);
    if (opt == nullptr) return InvalidArgument("--config {}: unknown key '{}' (keys are serve's long flag names)", path, item.name);
    if (opt->count() > 0) continue;  // given on the command line
    try {
      opt->add_result(item.inputs);
      opt->run_callback();
    } catch (const CLI::Error& e) {
      return InvalidArgument("--config {}: key '{}': {}", path, item.name, e.what());
    }
  }
  return Status::OK();
}

int Fail(const Status& s) {
  std::fprintf(stderr, "gpuhive serve: %s\n", s.ToString().c_str());
  return 1;
}

int RunServe(const Options& o) {
  SetLogJson(o.log_format == "json");
  LogLevel level;
  if (!ParseLogLevel(o.log_level, &level)) return Fail(InvalidArgument("--log-level '{}'", o.log_level));
  if (o.log_verbose > 0) level = LogLevel::kDebug;  // Triton's --log-verbose N
  SetLogLevel(level);
  if (o.model_repository.empty()) {
    return Fail(InvalidArgument("--model-repository (or --model-store, or model-repository in --config) is required"));
  }
  GH_LOG_INFO("serve", "options: {}", Describe(o));

  engine::EngineOptions co;
  co.model_repository = o.model_repository;
  co.strict_model_config = o.strict_model_config;
  auto control = engine::ParseControlMode(o.model_control_mode);
  if (!control.ok()) return Fail(control.status());
  co.control_mode = *control;
  auto mode = engine::ParseServeMode(o.mode);
  if (!mode.ok()) return Fail(mode.status());
  co.mode = *mode;
  const bool modelmesh = o.modelmesh_port >= 0 || !o.modelmesh_socket.empty();
  server::ModelMeshOptions mo;
  if (modelmesh) {
    // ModelMesh decides which models this pod holds: the repository is its scratch directory,
    // filled only through loadModel.
    if (co.control_mode == residency::ControlMode::kPoll)
      return Fail(InvalidArgument("--modelmesh-port/--modelmesh-socket need --model-control-mode explicit (or none)"));
    co.control_mode = residency::ControlMode::kExplicit;
    if (co.mode != engine::ServeMode::kGpuhive) return Fail(InvalidArgument("ModelMesh serving needs --mode gpuhive"));
    if (!o.load_models.empty())
      GH_LOG_WARN("serve", "--load-model with ModelMesh: ModelMesh's first runtimeStatus unloads every model");
    if (!(o.modelmesh_load_timeout_secs > 0) || o.modelmesh_load_timeout_secs > 4'000'000)
      return Fail(InvalidArgument("--modelmesh-load-timeout-secs must be in (0, 4000000]"));
    auto size = ParseBytes(o.modelmesh_default_model_size);
    if (!size.ok()) return Fail(size.status().WithContext("--modelmesh-default-model-size"));
    mo.repository_root = o.model_repository;
    mo.model_root = o.modelmesh_model_root;
    mo.load_timeout_ms = static_cast<int64_t>(o.modelmesh_load_timeout_secs * 1000);
    mo.default_model_size_bytes = *size;
  }
  co.load_models = o.load_models;
  if (!o.memory_budget.empty()) {
    auto b = ParseBytes(o.memory_budget);
    if (!b.ok()) return Fail(b.status().WithContext("--memory-budget"));
    if (*b == 0) return Fail(InvalidArgument("--memory-budget must be > 0"));
    co.memory_budget_bytes = *b;
  }
  if (!o.host_memory_budget.empty()) {
    auto b = ParseBytes(o.host_memory_budget);
    if (!b.ok()) return Fail(b.status().WithContext("--host-memory-budget"));
    co.host_memory_budget_bytes = static_cast<int64_t>(*b);
  }
  co.strict_gpu = o.strict_gpu;
  co.device = o.device;
  if (o.inject_alloc_failures < 0 || o.inject_alloc_failures > 1) {
    return Fail(InvalidArgument("--inject-alloc-failures {}: expected a probability in [0, 1]", o.inject_alloc_failures));
  }
  co.inject_alloc_failure_probability = o.inject_alloc_failures;
  {
    auto m = ParseBytes(o.sim_device_memory);
    if (!m.ok() || *m == 0) return Fail(InvalidArgument("--sim-device-memory '{}': expected a size such as 4GiB", o.sim_device_memory));
    co.sim_memory_bytes = *m;
    auto bw = ParseBytes(o.sim_copy_bandwidth);
    if (!bw.ok()) return Fail(InvalidArgument("--sim-copy-bandwidth '{}': expected bytes per second such as 16GB", o.sim_copy_bandwidth));
    co.sim_copy_bytes_per_s = static_cast<double>(*bw);
  }
  co.cpu_workers = o.cpu_workers;
  co.threads_per_worker = o.threads_per_worker;
  co.priority_levels = o.priority_levels;
  co.max_queue_size = o.max_queue_size;
  co.batch_min_gain = o.batch_min_gain;
  co.reserve_critical_worker = o.critical_worker != "off";
  if (o.batch_memory == "unbounded") {
    co.batch_memory_bytes = 0;
  } else if (o.batch_memory != "auto") {
    auto b = ParseBytes(o.batch_memory);
    if (!b.ok()) return Fail(b.status().WithContext("--batch-memory (auto, unbounded or a size such as 64MiB)"));
    if (*b == 0) return Fail(InvalidArgument("--batch-memory must be > 0 (or unbounded)"));
    co.batch_memory_bytes = static_cast<int64_t>(*b);
  }
  for (const std::string& tw : o.tenant_weights) {
    auto eq = tw.find('=');
    double w = 0;
    if (eq == std::string::npos || eq == 0) return Fail(InvalidArgument("--tenant-weight '{}': expected NAME=WEIGHT", tw));
    try {
      w = std::stod(tw.substr(eq + 1));
    } catch (...) {
      return Fail(InvalidArgument("--tenant-weight '{}': weight is not a number", tw));
    }
    if (!(w > 0)) return Fail(InvalidArgument("--tenant-weight '{}': weight must be > 0", tw));
    co.tenant_weights[tw.substr(0, eq)] = w;
  }
  co.tenants = o.tenants;
  co.default_keep_alive_us = o.keep_alive_secs < 0 ? residency::kKeepAliveForever
                                                   : static_cast<int64_t>(o.keep_alive_secs * 1e6);
  co.enable_preloading = !o.no_preload;
  co.optimize = !o.no_optimize;
  co.pipelined_swap = !o.no_pipelined_swap;
  co.max_concurrent_loads = o.max_concurrent_loads;
  co.poll_interval_us = static_cast<int64_t>(o.repository_poll_secs * 1e6);
  if (!o.allow_http && !o.allow_grpc) return Fail(InvalidArgument("both --allow-http and --allow-grpc are off"));
  auto max_body = ParseBytes(o.max_body);
  if (!max_body.ok()) return Fail(max_body.status().WithContext("--max-body-size"));
  auto max_buffered = ParseBytes(o.max_buffered_bodies);
  if (!max_buffered.ok()) return Fail(max_buffered.status().WithContext("--max-buffered-bodies"));

  // Signals are taken synchronously by this thread; every thread started from here inherits the
  // blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // gRPC lives in a module loaded only when a gRPC listener is asked for (HTTP-only serving never
  // maps it); loaded before the models, so a missing module fails the start at once.
  GrpcModule* grpc_module = nullptr;
  if (o.allow_grpc || modelmesh) {
    auto m = LoadGrpcModule();
    if (!m.ok()) return Fail(m.status().WithContext(o.allow_grpc ? "gRPC" : "ModelMesh"));
    grpc_module = *m;
  }

  auto core = engine::Engine::Create(co);
  if (!core.ok()) return Fail(core.status());

  server::SharedMemoryRegistry shm;  // Triton's system shared memory extension, both frontends
  std::unique_ptr<server::HttpServer> http;
  std::unique_ptr<GrpcListener> grpc;
  std::unique_ptr<server::ModelMeshRuntime> mm_runtime;
  std::unique_ptr<GrpcListener> mm_server;
  if (modelmesh) {
    auto r = server::ModelMeshRuntime::Create(core->get(), mo);
    if (!r.ok()) return Fail(r.status().WithContext("ModelMesh"));
    mm_runtime = std::move(*r);
  }
  if (o.allow_http) {
    server::HttpServerOptions ho;
    ho.address = o.http_address;
    ho.port = static_cast<uint16_t>(o.http_port);
    ho.threads = o.http_threads;
    ho.max_body_bytes = *max_body;
    ho.max_buffered_body_bytes = std::max<uint64_t>(*max_buffered, *max_body);
    ho.max_connections = o.max_connections;
    ho.idle_timeout_ms = o.idle_timeout_ms;
    ho.auth_token = o.auth_token;
    ho.metrics = &(*core)->metrics();
    ho.shm = &shm;
    auto h = server::HttpServer::Start(core->get(), ho);
    if (!h.ok()) return Fail(h.status().WithContext("HTTP"));
    http = std::move(*h);
  }
  if (o.allow_grpc) {
    server::GrpcServerOptions go;
    go.address = o.grpc_address;
    go.port = static_cast<uint16_t>(o.grpc_port);
    go.max_message_bytes = *max_body;
    go.auth_token = o.auth_token;
    go.metrics = &(*core)->metrics();
    if (mm_runtime) {
      server::ModelMeshRuntime* runtime = mm_runtime.get();
      go.model_name_for_id = [runtime](const std::string& id) { return runtime->ResolveModelName(id); };
    }
    go.shm = &shm;
    auto g = grpc_module->StartKServe(core->get(), go);
    if (!g.ok()) return Fail(g.status().WithContext("gRPC"));
    grpc = std::move(*g);
  }
  if (mm_runtime) {
    server::ModelMeshServerOptions mso;
    mso.address = o.modelmesh_address;
    mso.port = o.modelmesh_port;
    mso.unix_socket = o.modelmesh_socket;
    auto m = grpc_module->StartModelMesh(mm_runtime.get(), mso);
    if (!m.ok()) return Fail(m.status().WithContext("ModelMesh"));
    mm_server = std::move(*m);
  }
  if (http) {
    std::string base = fmt::format("http://{}:{}", o.http_address, http->port());
    GH_LOG_INFO("serve", "KServe v2 HTTP    {}/v2  (health: {}/v2/health/ready)", base, base);
    GH_LOG_INFO("serve", "metrics           {}/metrics", base);
    GH_LOG_INFO("serve", "management        {}/v2/gpuhive/devices, {}/v2/gpuhive/models", base, base);
  }
  if (grpc) GH_LOG_INFO("serve", "KServe v2 gRPC    {}:{}", o.grpc_address, grpc->port());
  std::unique_ptr<server::HttpServer> metrics_http;  // Triton's --metrics-port: /metrics only
  if (o.metrics_port >= 0 && !(http && o.metrics_port == http->port())) {
    server::HttpServerOptions mo;
    mo.address = o.metrics_address.empty() ? o.http_address : o.metrics_address;
    mo.port = static_cast<uint16_t>(o.metrics_port);
    mo.threads = 1;
    mo.metrics_only = true;
    auto m = server::HttpServer::Start(core->get(), mo);
    if (!m.ok()) return Fail(m.status().WithContext("metrics"));
    metrics_http = std::move(*m);
    GH_LOG_INFO("serve", "metrics           http://{}:{}/metrics", mo.address, metrics_http->port());
  }
  // One machine-readable line on stdout for scripts and tests (ports may have been ephemeral).
  std::printf("gpuhive ready http_port=%d grpc_port=%d metrics_port=%d modelmesh_port=%d\n", http ? http->port() : 0,
              grpc ? grpc->port() : 0, metrics_http ? metrics_http->port() : (http ? http->port() : 0),
              mm_server ? mm_server->port() : 0);
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  GH_LOG_INFO("serve", "{} received: draining (up to {} s)", sig == SIGTERM ? "SIGTERM" : "SIGINT", o.exit_timeout_secs);
  int64_t left = (*core)->Drain(static_cast<int64_t>(o.exit_timeout_secs * 1000));
  // Whatever is still queued is answered 503 now; running batches finish and are answered normally,
  // so only the queued ones count as unanswered (the log once counted running ones too).
  const size_t refused = left > 0 ? (*core)->CancelQueued() : 0;
  if (refused > 0) GH_LOG_WARN("serve", "exit deadline: answered {} queued request(s) with 503", refused);
  if (mm_server) mm_server->Stop();
  if (http) http->Stop();
  if (grpc) grpc->Stop();
  mm_server.reset();
  mm_runtime.reset();
  if (metrics_http) metrics_http->Stop();
  core->reset();
  if (refused > 0) {
    GH_LOG_WARN("serve", "{} admitted request(s) were refused at the exit deadline", refused);
    return 1;
  }
  GH_LOG_INFO("serve", "drained; exiting");
  return 0;
}

CommandRegistration kServe("", "serve", "Serve a model repository over KServe v2 HTTP and gRPC", [](CLI::App& app) {
  auto o = std::make_shared<Options>();
  app.add_option("--config", o->config_file,
                 "Read options from a TOML/INI file (keys are the long flag names; the command line wins)")
      ->check(CLI::ExistingFile);
  app.add_option("--model-repository,--model-store", o->model_repository,
                 "Model repository directory (Triton layout); required here or in --config")
      ->check(CLI::ExistingDirectory);
  app.add_option("--http-address", o->http_address, "Address the HTTP frontend binds")->capture_default_str();
  app.add_option("--http-port", o->http_port, "HTTP port (0: an ephemeral port)")->capture_default_str()->check(CLI::Range(0, 65535));
  app.add_option("--grpc-address", o->grpc_address, "Address the gRPC frontend binds")->capture_default_str();
  app.add_option("--grpc-port", o->grpc_port, "gRPC port (0: an ephemeral port)")->capture_default_str()->check(CLI::Range(0, 65535));
  app.add_option("--allow-http", o->allow_http, "Serve HTTP")->capture_default_str();
  app.add_option("--allow-grpc", o->allow_grpc, "Serve gRPC")->capture_default_str();
  app.add_option("--http-thread-count", o->http_threads, "HTTP frontend threads")->capture_default_str()->check(CLI::Range(1, 256));
  app.add_option("--max-body-size", o->max_body, "Largest request body / gRPC message")->capture_default_str();
  app.add_option("--max-buffered-bodies", o->max_buffered_bodies,
                 "HTTP request bodies held at once, all connections together (503 beyond)")->capture_default_str();
  app.add_option("--max-connections", o->max_connections, "Open HTTP connections (503 beyond)")->capture_default_str();
  app.add_option("--idle-timeout-ms", o->idle_timeout_ms, "Close HTTP connections idle this long")->capture_default_str();
  app.add_option("--model-control-mode", o->model_control_mode, "none | poll | explicit")->capture_default_str();
  app.add_option("--load-model", o->load_models, "Load this model at start-up (repeatable; '*' for all)");
  app.add_option("--repository-poll-secs", o->repository_poll_secs, "Rescan interval in poll mode")->capture_default_str();
  app.add_option("--mode", o->mode, "gpuhive | naive (the before-baseline: no batching, no budget, FIFO)")->capture_default_str();
  app.add_option("--host-memory-budget", o->host_memory_budget,
                 "Host tier budget for models kept in host memory for fast swap-in (default: as large as the device "
                 "budget; 0: unlimited)");
  app.add_option("--memory-budget", o->memory_budget,
                 "Device byte budget, e.g. 6GiB (default: a GPU's free memory at start less its libraries' "
                 "measured reserve and a 2 % headroom (256 MiB .. 10 %), or half the free host memory)");
  app.add_flag("--strict-gpu", o->strict_gpu, "Refuse to start without a GPU; never fall back to the CPU under pressure");
  app.add_option("--device", o->device,
                 "Where models run: auto (the GPUs when usable, else the CPU), cpu, gpu (the GPUs; refuses to "
                 "start without a usable one), or sim / sim:N (simulated devices: a testing aid that behaves like "
                 "a GPU, never a default)");
  app.add_option("--inject-alloc-failures", o->inject_alloc_failures,
                 "Testing aid: fail each device memory allocation with this probability (default 0)");
  app.add_option("--sim-device-memory", o->sim_device_memory, "Memory of the simulated device (default 4GiB)");
  app.add_option("--sim-copy-bandwidth", o->sim_copy_bandwidth,
                 "Host<->device copy bandwidth of the simulated device per second, each way (default 16GB; 0: unthrottled)");
  app.add_option("--cpu-workers", o->cpu_workers, "Worker threads executing batches (0: from the core count)")->capture_default_str();
  app.add_option("--threads-per-worker", o->threads_per_worker, "Compute threads per worker (0: cores / workers)")->capture_default_str();
  app.add_option("--priority-levels", o->priority_levels, "Priority levels: 1..N, 1 the most urgent (Triton's numbering)")->capture_default_str()->check(CLI::Range(1, 16));
  app.add_option("--max-queue-size", o->max_queue_size, "Queued requests per model and level before 429")->capture_default_str();
  app.add_option("--batch-min-gain", o->batch_min_gain,
                 "A batch grows past N rows only if 2N rows were measured to cut the time per row by this fraction "
                 "(0: batches grow to max_batch_size)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.99));
  app.add_option("--critical-worker", o->critical_worker,
                 "A worker kept free for priority level 1 besides --cpu-workers: on or off")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  app.add_option("--batch-memory", o->batch_memory,
                 "Activation bytes one worker's batches may hold: auto (on the CPU the largest one-row batch of "
                 "the served models, so batching never holds more than unbatched execution; unbounded on GPUs), "
                 "unbounded, or a size such as 64MiB")
      ->capture_default_str();
  app.add_option("--tenant-weight", o->tenant_weights, "Fair-share weight, NAME=WEIGHT (repeatable)");
  app.add_option("--tenant", o->tenants,
                 "Declare a tenant a request may name (repeatable); undeclared ones count as 'other'");
  app.add_option("--keep-alive-secs", o->keep_alive_secs, "Idle time before a model is unloaded (-1: never)")->capture_default_str();
  app.add_flag("--no-preload", o->no_preload, "Disable predictive preloading");
  app.add_flag("--no-optimize", o->no_optimize, "Run graphs as imported (no folding or fusion)");
  app.add_flag("--no-pipelined-swap", o->no_pipelined_swap, "Copy all weights before a swapped-in model runs");
  app.add_option("--max-concurrent-loads", o->max_concurrent_loads, "Model loads running at once")->capture_default_str();
  app.add_option("--auth-token", o->auth_token, "Bearer token required by mutating management calls")->envname("GPUHIVE_AUTH_TOKEN");
  app.add_option("--exit-timeout-secs", o->exit_timeout_secs, "Drain deadline after SIGTERM")->capture_default_str();
  app.add_option("--log-format", o->log_format, "text | json")->capture_default_str()->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-level", o->log_level, "debug | info | warning | error")->capture_default_str();
  app.add_option("--modelmesh-port", o->modelmesh_port,
                 "Serve ModelMesh's model-runtime API (mmesh.ModelRuntime) on this port (ModelMesh's default: 8085; "
                 "0: ephemeral; implies --model-control-mode explicit)")->check(CLI::Range(0, 65535));
  app.add_option("--modelmesh-socket", o->modelmesh_socket, "Serve the ModelMesh runtime API on this unix socket too");
  app.add_option("--modelmesh-address", o->modelmesh_address, "Address the ModelMesh runtime API binds")->capture_default_str();
  app.add_option("--modelmesh-load-timeout-secs", o->modelmesh_load_timeout_secs,
                 "Model load timeout reported to ModelMesh")->capture_default_str();
  app.add_option("--modelmesh-default-model-size", o->modelmesh_default_model_size,
                 "Size ModelMesh assumes for a model before it is loaded")->capture_default_str();
  app.add_option("--modelmesh-model-root", o->modelmesh_model_root,
                 "Refuse ModelMesh model paths outside this directory (default: any absolute path)");
  app.add_option("--metrics-port", o->metrics_port,
                 "Also serve /metrics alone on this port, as Triton does (-1: only on the HTTP port)")
      ->capture_default_str()
      ->check(CLI::Range(-1, 65535));
  app.add_option("--metrics-address", o->metrics_address, "Address of the --metrics-port listener (default: the HTTP address)");
  app.add_option("--log-verbose", o->log_verbose, "Triton's verbose logging level (> 0: debug)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--strict-model-config", o->strict_model_config,
                 "true: every model needs a complete config.pbtxt (Triton's flag); false: derived from the ONNX file")
      ->capture_default_str();
  CLI::App* self = &app;
  return [o, self] {
    if (!o->config_file.empty()) {
      Status s = ApplyConfigFile(*self, o->config_file);
      if (!s.ok()) return Fail(s);
    }
    return RunServe(*o);
  };
});

}  // namespace
}  // namespace gpuhive::cli
