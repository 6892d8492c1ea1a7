// Scenario files for `gpuhive bench scenario`: what load to send, to which server, for how long.
//
// A scenario is a JSON object (see bench/scenarios/*.json for complete examples):
//   {
//     "name": "visual_analysis", "description": "...",
//     "protocol": "http" | "grpc",              // default http
//     "url": "http://127.0.0.1:8000",           // HTTP target (also used for health and sampling)
//     "grpc_target": "127.0.0.1:8001",          // gRPC target when protocol is grpc
//     "duration_s": 30, "warmup_s": 5,          // warm-up requests are sent but not reported
//     "client_timeout_ms": 30000,               // a response later than this is a client timeout
//     "max_connections": 256,                   // HTTP: open-loop connection cap (then queued)
//     "seed": 1,
//     "compare": ["naive", "gpuhive"],          // run the same load once per server mode
//     "server": {                               // optional: start `gpuhive serve` per mode
//       "binary": "/proc/self/exe", "model_repository": "models/repository",
//       "http_port": 18000, "grpc_port": 18001, "memory_budget": "2GiB",
//       "model_control_mode": "none", "load_models": ["resnet50"],
//       "args": ["--log-format", "json"], "ready_timeout_s": 180
//     },
//     "streams": [{
//       "name": "camera0", "model": "resnet50", "version": "1",
//       "mode": "open", "rate": 15,             // Poisson arrivals, requests/s
//       "mode": "closed", "concurrency": 4,     // N requests in flight, back to back
//       "priority": 1,                          // Triton's request "priority" parameter, sent as
//                                               // is: 1 is the highest level, 0 the model's default
//       "tenant": "interactive",                // request parameter "tenant"
//       "timeout_us": 100000,                   // Triton's "timeout" request parameter
//       "start_s": 10, "stop_s": 20,            // active window inside the run (default: all of it)
//       "batch": 1,                             // fills a variable leading (batch) dim
//       "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3, 224, 224],
//                   "range": [0, 1]}]           // optional; names/dtypes come from the server's
//     }]                                        // model metadata when left out
//   }
// Unknown keys are errors (a typo must not silently change the load).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gpuhive/status.h"
#include "gpuhive/tensor.h"

namespace gpuhive::loadgen {

enum class Protocol { kHttp, kGrpc };
enum class LoadMode { kOpen, kClosed };

struct InputSpec {
  std::string name;      // empty: the model's only input
  std::string datatype;  // KServe name; empty: from metadata
  Shape shape;           // empty: from metadata (variable leading dim = batch)
  std::optional<double> range_lo, range_hi;  // random values in [lo, hi]; default [0,1]
};

struct StreamSpec {
  std::string name;  // unique label; default "<model>" or "<model>#<index>"
  std::string model;
  std::string version;
  LoadMode mode = LoadMode::kOpen;
  double rate_rps = 0;  // open loop
  int concurrency = 0;  // closed loop
  std::optional<int> priority;  // Triton's priority (1 highest, 0 default); unset: not sent
  std::string tenant;
  int64_t timeout_us = 0;  // 0: not sent
  double start_s = 0;
  double stop_s = -1;  // < 0: until the end
  int batch = 1;
  std::vector<InputSpec> inputs;
};

struct ServerSpec {
  bool managed = false;  // true when the scenario has a "server" object
  std::string binary = "/proc/self/exe";
  std::string model_repository;
  uint16_t http_port = 18000;
  uint16_t grpc_port = 18001;
  std::string memory_budget;
  std::string model_control_mode;
  std::vector<std::string> load_models;
  std::vector<std::string> args;
  double ready_timeout_s = 180;
};

struct Scenario {
  std::string name;
  std::string description;
  Protocol protocol = Protocol::kHttp;
  std::string url = "http://127.0.0.1:8000";
  std::string grpc_target = "127.0.0.1:8001";
  double duration_s = 30;
  double warmup_s = 5;
  double client_timeout_s = 30;
  int max_connections = 256;
  uint32_t seed = 1;
  std::vector<std::string> compare;  // server modes; empty: one run against the target as is
  ServerSpec server;
  std::vector<StreamSpec> streams;
};

// Parses and validates a scenario. Errors (kInvalidArgument) name the line and column for JSON
// syntax errors and the field path (e.g. "streams[2].rate") for bad values. `origin` (a file
// name) prefixes messages.
StatusOr<Scenario> ParseScenario(std::string_view text, std::string_view origin = "scenario");
// Reads and parses a file. Relative "model_repository" paths stay relative to the working dir.
StatusOr<Scenario> LoadScenarioFile(const std::string& path);

// "http://host:port[/]" -> host, port. kInvalidArgument for anything else (https is refused).
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
StatusOr<HostPort> ParseHttpUrl(std::string_view url);
StatusOr<HostPort> ParseHostPort(std::string_view target);

}  // namespace gpuhive::loadgen
