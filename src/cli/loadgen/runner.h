// Runs one scenario's load against one server: fetches model metadata, builds each stream's
// request once (random inputs, seeded), drives open- and closed-loop streams from one io_context
// thread, prints progress once per second, and samples the management API once per second.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/loadgen/scenario.h"
#include "cli/loadgen/transport.h"
#include "gpuhive/status.h"

namespace gpuhive::loadgen {

struct Target {
  Protocol protocol = Protocol::kHttp;
  std::string http_host = "127.0.0.1";
  uint16_t http_port = 8000;
  std::string grpc_target = "127.0.0.1:8001";
  // Protocol::kGrpc: how to speak gRPC (the gRPC module's client in the binary, the linked
  // GrpcTransportClient() in tests). Must outlive the run.
  GrpcClient* grpc_client = nullptr;
};

// One request: when it was due (seconds since the run started; open loop: its Poisson arrival
// time, closed loop: when it was sent) and how long until its answer.
struct Sample {
  float t_s = 0;
  float latency_ms = 0;
  uint16_t kind = 0;  // index into StreamRun::kinds; 0 is "ok"
};

struct StreamRun {
  StreamSpec spec;
  int64_t sent = 0;  // requests issued (including queued ones)
  int64_t ok = 0;
  std::map<std::string, int64_t> errors;  // by Outcome::kind
  std::vector<Sample> samples;            // every completed request, warm-up included
  std::vector<std::string> kinds = {"ok"};  // outcome kinds seen, for Sample::kind
  std::string note;                       // setup remarks (e.g. metadata unavailable)
};

struct DeviceSample {
  double t_s = 0;
  std::string id;
  uint64_t used_bytes = 0;
  uint64_t budget_bytes = 0;
  std::map<std::string, uint64_t> used_by_model;
};

struct ModelSample {
  double t_s = 0;
  std::string name;
  std::string state;
  std::string tier;
  uint64_t bytes = 0;
  int queue_depth = 0;
};

struct RunResult {
  std::string mode;  // server mode label ("naive", "gpuhive", or "target")
  double duration_s = 0;
  double warmup_s = 0;
  double wall_s = 0;  // including the drain after the last request was issued
  std::vector<StreamRun> streams;
  std::vector<DeviceSample> devices;
  std::vector<ModelSample> models;
  int64_t sample_attempts = 0;
  int64_t sample_failures = 0;
  std::string last_sample_error;
};

struct RunOptions {
  std::string mode = "target";
  bool progress = true;  // a line on stderr once per second
  bool sample_management = true;
};

// Errors: kInvalidArgument when a stream's inputs cannot be built from the scenario and the
// metadata (e.g. a dynamic dim without a shape), kFailedPrecondition for gRPC without a
// target.grpc_client. Failed requests are results, not errors.
StatusOr<RunResult> RunScenario(const Scenario& scenario, const Target& target, const RunOptions& options);

// Builds a stream's request from the scenario and the model's KServe metadata JSON (nullptr when
// the server did not give metadata: then the scenario must name every input's name, datatype
// and shape, or the request is sent without inputs and the server's answer is what gets counted).
StatusOr<RequestTemplate> BuildRequestTemplate(const StreamSpec& stream, const std::string* metadata_json,
                                               uint64_t seed);

}  // namespace gpuhive::loadgen
