// `gpuhive bench scenario FILE [--json OUT] [--out DIR]`: the load generator (issue 8). Sends a
// scenario's streams (open loop Poisson or closed loop, several models at once, with priorities,
// tenants and timeouts) to a KServe v2 server over HTTP or gRPC. When the scenario has a "server"
// object it starts `gpuhive serve` itself, once per mode in "compare", and reports the modes side
// by side. See src/cli/loadgen/scenario.h for the file format and bench/scenarios/ for examples.
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/grpc_module.h"
#include "cli/loadgen/report.h"
#include "cli/loadgen/runner.h"
#include "cli/loadgen/scenario.h"
#include "cli/loadgen/server_process.h"

namespace gpuhive::cli {
namespace {

using namespace gpuhive::loadgen;

struct Options {
  std::string file;
  std::string json_out;
  std::string out_dir;
  std::string url, grpc_target, protocol;
  double duration_s = 0, warmup_s = -1;
  std::vector<std::string> compare;
  std::string binary;
  std::string model_repository;
  std::vector<std::string> server_args;
  bool quiet = false;
  bool no_server = false;
};

int RunBenchScenario(const Options& o) {
  auto loaded = LoadScenarioFile(o.file);
  if (!loaded.ok()) {
    std::fprintf(stderr, "error: %s\n", loaded.status().message().c_str());
    return 2;
  }
  Scenario sc = std::move(*loaded);
  if (!o.url.empty()) sc.url = o.url;
  if (!o.grpc_target.empty()) sc.grpc_target = o.grpc_target;
  if (!o.protocol.empty()) sc.protocol = o.protocol == "grpc" ? Protocol::kGrpc : Protocol::kHttp;
  if (o.duration_s > 0) sc.duration_s = o.duration_s;
  if (o.warmup_s >= 0) sc.warmup_s = o.warmup_s;
  if (sc.warmup_s >= sc.duration_s) sc.warmup_s = sc.duration_s / 5;
  if (!o.compare.empty()) sc.compare = o.compare;
  if (!o.binary.empty()) sc.server.binary = o.binary;
  if (!o.model_repository.empty()) {
    sc.server.managed = true;
    sc.server.model_repository = o.model_repository;
  }
  sc.server.args.insert(sc.server.args.end(), o.server_args.begin(), o.server_args.end());
  if (o.no_server) {
    sc.server.managed = false;
    sc.compare.clear();
  }
  if (!sc.compare.empty() && !sc.server.managed) {
    std::fprintf(stderr, "error: --compare needs a \"server\" object in the scenario\n");
    return 2;
  }
  auto http = ParseHttpUrl(sc.url);
  auto grpc = ParseHostPort(sc.grpc_target);
  if (!http.ok() || !grpc.ok()) {
    std::fprintf(stderr, "error: %s\n", (!http.ok() ? http.status() : grpc.status()).message().c_str());
    return 2;
  }
  GrpcClient* grpc_client = nullptr;
  if (sc.protocol == Protocol::kGrpc) {
    auto m = LoadGrpcModule();
    if (!m.ok()) {
      std::fprintf(stderr, "error: %s\n", m.status().message().c_str());
      return 2;
    }
    grpc_client = (*m)->loadgen_client();
  }
  std::vector<std::string> modes = sc.compare;
  if (modes.empty()) modes.push_back(sc.server.managed ? "gpuhive" : "target");
  if (!o.out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.out_dir, ec);
  }

  std::vector<RunResult> runs;
  int rc = 0;
  for (const auto& mode : modes) {
    Target target;
    target.protocol = sc.protocol;
    target.http_host = http->host;
    target.http_port = http->port;
    target.grpc_target = sc.grpc_target;
    target.grpc_client = grpc_client;
    std::unique_ptr<ServerProcess> server;
    if (sc.server.managed) {
      target.http_host = "127.0.0.1";
      target.http_port = sc.server.http_port;
      target.grpc_target = "127.0.0.1:" + std::to_string(sc.server.grpc_port);
      std::string log = (o.out_dir.empty() ? std::string("/tmp/gpuhive-bench-") + std::to_string(getpid()) + "-"
                                           : o.out_dir + "/server-") + mode + ".log";
      std::string cmd;
      for (const auto& a : ServerProcess::CommandLine(sc.server, mode)) cmd += a + " ";
      if (!o.quiet) std::fprintf(stderr, "[%s] starting: %s(log %s)\n", mode.c_str(), cmd.c_str(), log.c_str());
      auto started = ServerProcess::Start(sc.server, mode, log);
      if (!started.ok()) {
        std::fprintf(stderr, "[%s] error: %s\n", mode.c_str(), started.status().message().c_str());
        rc = 1;
        continue;
      }
      server = std::move(*started);
      Status ready = server->WaitReady(target.http_host, target.http_port, sc.server.ready_timeout_s);
      if (!ready.ok()) {
        std::fprintf(stderr, "[%s] error: %s\n", mode.c_str(), ready.message().c_str());
        server->Stop();
        rc = 1;
        continue;
      }
    }
    RunOptions ro;
    ro.mode = mode;
    ro.progress = !o.quiet;
    auto run = RunScenario(sc, target, ro);
    if (server) {
      std::string how = server->Stop();
      if (!o.quiet) std::fprintf(stderr, "[%s] server stopped: %s\n", mode.c_str(), how.c_str());
    }
    if (!run.ok()) {
      std::fprintf(stderr, "[%s] error: %s\n", mode.c_str(), run.status().message().c_str());
      rc = 1;
      continue;
    }
    runs.push_back(std::move(*run));
  }
  if (runs.empty()) return rc ? rc : 1;

  nlohmann::json report = BuildReport(sc, runs);
  std::printf("%s", ReportText(report).c_str());
  if (!o.json_out.empty()) {
    if (o.json_out == "-") {
      std::printf("%s\n", report.dump(2).c_str());
    } else {
      std::ofstream out(o.json_out);
      out << report.dump(2) << "\n";
      if (!out) {
        std::fprintf(stderr, "error: cannot write '%s'\n", o.json_out.c_str());
        rc = 1;
      }
    }
  }
  if (!o.out_dir.empty()) {
    Status st = WriteReportDir(sc, runs, report, o.out_dir);
    if (!st.ok()) {
      std::fprintf(stderr, "error: %s\n", st.message().c_str());
      rc = 1;
    } else {
      std::printf("report: %s/report.md\n", o.out_dir.c_str());
    }
  }
  return rc;
}

CommandRegistration kReg(
    "bench", "scenario", "Load generator: run a scenario file against a KServe v2 server (HTTP or gRPC)",
    [](CLI::App& app) {
      auto o = std::make_shared<Options>();
      app.add_option("file", o->file, "scenario JSON (see bench/scenarios/)")->required();
      app.add_option("--json", o->json_out, "write the JSON report to this file ('-': stdout)");
      app.add_option("--out", o->out_dir, "write report.md, data files and PNG plots into this directory");
      app.add_option("--url", o->url, "HTTP target, overrides the scenario's url");
      app.add_option("--grpc-target", o->grpc_target, "gRPC host:port, overrides the scenario's");
      app.add_option("--protocol", o->protocol, "http or grpc, overrides the scenario's")
          ->check(CLI::IsMember({"http", "grpc"}));
      app.add_option("--duration", o->duration_s, "seconds per mode, overrides the scenario's");
      app.add_option("--warmup", o->warmup_s, "warm-up seconds, overrides the scenario's");
      app.add_option("--compare", o->compare, "server modes to compare, overrides the scenario's");
      app.add_option("--server-binary", o->binary, "binary to start as the server (default: this one)");
      app.add_option("--model-repository", o->model_repository,
                     "start `serve` on this repository per mode (overrides the scenario's server repository)");
      app.add_option("--server-arg", o->server_args, "extra argument for the started server (repeatable)")
          ->allow_extra_args(false);
      app.add_flag("--no-server", o->no_server, "do not start servers: run once against --url/--grpc-target");
      app.add_flag("--quiet", o->quiet, "no progress lines");
      return [o] { return RunBenchScenario(*o); };
    });

}  // namespace
}  // namespace gpuhive::cli
