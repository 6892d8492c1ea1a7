#include "server/routes.h"

#include <nlohmann/json.hpp>

#include <charconv>
#include <climits>

#include "gpuhive/units.h"
#include "server/kserve_json.h"
#include "server/latency_trace.h"
#include "server/request_validation.h"

namespace gpuhive::server {

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists: return 409;
    case StatusCode::kFailedPrecondition: return 400;
    case StatusCode::kUnimplemented: return 501;
    case StatusCode::kResourceExhausted: return 429;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kDeadlineExceeded: return 504;
    case StatusCode::kCancelled: return 499;
    default: return 500;
  }
}

namespace {

using json = nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

HttpResponse Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Splits the path (query dropped) into percent-decoded segments. false on a bad escape.
bool SplitPath(const std::string& target, std::vector<std::string>* parts) {
  std::string path = target.substr(0, target.find('?'));
  std::string cur;
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '/') {
      if (!cur.empty()) parts->push_back(std::move(cur));
      cur.clear();
    } else if (c == '%') {
      if (i + 2 >= path.size()) return false;
      int hi = HexValue(path[i + 1]), lo = HexValue(path[i + 2]);
      if (hi < 0 || lo < 0) return false;
      cur += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) parts->push_back(std::move(cur));
  return true;
}

json DeviceJson(const DeviceStatus& d) {
  json j{{"id", d.id},
         {"budget_bytes", d.budget_bytes},
         {"used_bytes", d.used_bytes},
         {"used_by_kind", d.used_by_kind},
         {"used_by_model", d.used_by_model},
         {"models", d.models},
         {"fragmentation_ratio", d.fragmentation_ratio},
         {"health", d.health}};
  if (d.capacity_bytes > 0) {
    j["capacity_bytes"] = d.capacity_bytes;
    j["free_at_start_bytes"] = d.free_at_start_bytes;
    j["reserved_bytes"] = d.reserved_bytes;
    j["library_reserve_bytes"] = d.library_reserve_bytes;
    j["headroom_bytes"] = d.headroom_bytes;
  }
  return j;
}

json ModelJson(const ModelStatus& m) {
  json profile = json::array();
  for (const auto& p : m.latency_profile)
    profile.push_back({{"batch_size", p.batch_size}, {"latency_seconds", p.latency_seconds}});
  return json{{"name", m.name},
              {"version", m.version},
              {"state", m.state},
              {"tier", m.tier},
              {"device", m.device},
              {"bytes", m.bytes},
              {"executor", m.executor},
              {"host_to_device", {{"bytes", m.h2d_bytes}, {"seconds", m.h2d_seconds}}},
              {"leases", m.leases},
              {"queue_depth", m.queue_depth},
              {"priority", m.priority},
              {"tenant", m.tenant},
              {"memory_limit_bytes", m.memory_limit_bytes},
              {"latency_profile", profile},
              {"batch_limit", m.batch_limit},
              {"one_row_activation_bytes", m.one_row_activation_bytes},
              {"warnings", m.warnings},
              {"precision",
               {{"name", m.precision}, {"note", m.precision_note}, {"rel_l2", m.precision_rel_l2},
                {"top1_agreement", m.precision_top1}}}};
}

json DurationJson(const DurationStat& d) { return json{{"count", d.count}, {"ns", d.ns}}; }

// Triton's statistics extension response.
std::string StatisticsJson(const std::vector<ModelStatistics>& stats) {
  json arr = json::array();
  for (const auto& s : stats) {
    json batches = json::array();
    for (const auto& b : s.batch_stats) {
      batches.push_back({{"batch_size", b.batch_size},
                         {"compute_input", DurationJson(b.compute_input)},
                         {"compute_infer", DurationJson(b.compute_infer)},
                         {"compute_output", DurationJson(b.compute_output)}});
    }
    arr.push_back({{"name", s.name},
                   {"version", s.version},
                   {"last_inference", s.last_inference_ms},
                   {"inference_count", s.inference_count},
                   {"execution_count", s.execution_count},
                   {"inference_stats",
                    {{"success", DurationJson(s.success)},
                     {"fail", DurationJson(s.fail)},
                     {"queue", DurationJson(s.queue)},
                     {"compute_input", DurationJson(s.compute_input)},
                     {"compute_infer", DurationJson(s.compute_infer)},
                     {"compute_output", DurationJson(s.compute_output)},
                     {"cache_hit", DurationJson({})},
                     {"cache_miss", DurationJson({})}}},
                   {"batch_stats", batches}});
  }
  return Dump(json{{"model_stats", arr}});
}

// The body of a repository load: empty, or {"parameters": {"config": "<the config as JSON>"}}
// (Triton's override). Returns the config JSON, empty when there is none.
StatusOr<std::string> ParseLoadConfig(const std::string& body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return std::string();
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("the load request body must be a JSON object");
  if (!j.contains("parameters")) return std::string();
  const json& params = j["parameters"];
  if (!params.is_object()) return InvalidArgument("'parameters' must be an object");
  std::string config;
  for (auto it = params.begin(); it != params.end(); ++it) {
    if (it.key() != "config") {
      return InvalidArgument("load parameter '{}' is not supported (only 'config', the model config as JSON)",
                             it.key());
    }
    if (!it.value().is_string()) return InvalidArgument("parameter 'config' must be a string holding JSON");
    config = it.value().get<std::string>();
    if (config.empty()) return InvalidArgument("parameter 'config' is empty");
  }
  return config;
}

StatusOr<ModelSettings> ParseSettings(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("settings must be a JSON object");
  ModelSettings s;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    if (k == "priority") {
      // Checked before narrowing: get<int>() would wrap 4294967297 to 1.
      if (!v.is_number_integer()) return InvalidArgument("'priority' must be an integer");
      const bool in_range = v.is_number_unsigned() ? v.get<uint64_t>() <= INT_MAX
                                                   : v.get<int64_t>() >= INT_MIN && v.get<int64_t>() <= INT_MAX;
      if (!in_range) return InvalidArgument("'priority' {} is out of range", v.dump());
      s.priority = v.get<int>();
    } else if (k == "tenant") {
      if (!v.is_string()) return InvalidArgument("'tenant' must be a string");
      s.tenant = v.get<std::string>();
    } else if (k == "memory_limit_bytes") {
      if (!v.is_number_unsigned()) return InvalidArgument("'memory_limit_bytes' must be an unsigned integer");
      s.memory_limit_bytes = v.get<uint64_t>();
    } else if (k == "memory_limit") {
      if (!v.is_string()) return InvalidArgument("'memory_limit' must be a string like \"2GiB\"");
      ASSIGN_OR_RETURN(s.memory_limit_bytes, ParseBytes(v.get<std::string>()));
    } else {
      return InvalidArgument("unknown setting '{}' (known: priority, tenant, memory_limit_bytes, "
                             "memory_limit)", k);
    }
  }
  return s;
}

}  // namespace

HttpResponse Router::Error(const Status& status) const {
  HttpResponse r = Json(HttpStatusFor(status.code()), ErrorJson(status.message()));
  if (r.status == 429) r.headers.emplace_back("Retry-After", std::to_string(options_.retry_after_seconds));
  return r;
}

bool Router::Authorized(const HttpRequest& req) const {
  if (options_.auth_token.empty()) return true;
  auto it = req.headers.find("authorization");
  return it != req.headers.end() && BearerTokenMatches(it->second, options_.auth_token);
}

void Router::Handle(HttpRequest req, HttpReply reply) {
  std::vector<std::string> p;
  auto send = [&](HttpResponse r, const std::string& route_name) {
    if (options_.metrics)
      options_.metrics->http_requests_total->Labels({req.method, route_name, std::to_string(r.status)})->Inc();
    reply(std::move(r));
  };
  if (!SplitPath(req.target, &p)) {
    send(Error(InvalidArgument("malformed percent-escape in path")), "other");
    return;
  }
  const std::string& m = req.method;
  const bool get = m == "GET" || m == "HEAD";
  if (p.size() == 1 && p[0] == "metrics" && get) {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = service_->MetricsText();
    send(std::move(r), "/metrics");
    return;
  }
  if (options_.metrics_only || p.empty() || p[0] != "v2") {
    send(Error(NotFound("no route for {} {}", m, req.target)), "other");
    return;
  }
  if (p.size() == 1 && get) {
    ServerMetadata md = service_->GetServerMetadata();
    send(Json(200, EncodeServerMetadata(md)), "/v2");
    return;
  }
  if (p.size() == 3 && p[1] == "health" && get) {
    bool ok = p[2] == "live" ? service_->IsLive() : p[2] == "ready" ? service_->IsReady() : false;
    if (p[2] != "live" && p[2] != "ready") {
      send(Error(NotFound("no route for {}", req.target)), "other");
      return;
    }
    // Kubernetes probes read the status code; the body is for people.
    send(Json(ok ? 200 : 503, ok ? "{}" : ErrorJson(p[2] == "live" ? "not live" : "not ready")),
         "/v2/health/" + p[2]);
    return;
  }
  if (p.size() == 3 && p[1] == "models" && p[2] == "stats" && get) {
    auto stats = service_->GetModelStatistics("", "");
    send(stats.ok() ? Json(200, StatisticsJson(*stats)) : Error(stats.status()), "/v2/models/stats");
    return;
  }
  if (p.size() >= 3 && p[1] == "models") {
    const std::string& model = p[2];
    std::string version;
    size_t rest = 3;
    if (p.size() >= 5 && p[3] == "versions") {
      version = p[4];
      rest = 5;
    }
    std::string action = p.size() == rest ? "" : p.size() == rest + 1 ? p[rest] : "?";
    std::string route_name = "/v2/models/{model}" + std::string(version.empty() ? "" : "/versions/{version}") +
                             (action.empty() ? "" : "/" + action);
    if (action.empty() && get) {
      auto md = service_->GetModelMetadata(model, version);
      send(md.ok() ? Json(200, EncodeModelMetadata(*md)) : Error(md.status()), route_name);
      return;
    }
    if (action == "ready" && get) {
      auto ready = service_->ModelReady(model, version);
      if (!ready.ok()) {
        send(Error(ready.status()), route_name);
      } else {
        send(Json(*ready ? 200 : 503, *ready ? "{}" : ErrorJson("model '" + model + "' is not ready")),
             route_name);
      }
      return;
    }
    if (action == "stats" && get) {
      auto stats = service_->GetModelStatistics(model, version);
      send(stats.ok() ? Json(200, StatisticsJson(*stats)) : Error(stats.status()), route_name);
      return;
    }
    if (action == "config" && get) {
      auto config = service_->GetModelConfig(model, version);
      send(config.ok() ? Json(200, config->json) : Error(config.status()), route_name);
      return;
    }
    if (action == "infer" && m == "POST") {
      auto counted = [this, reply, method = req.method, route_name](HttpResponse r) {
        if (options_.metrics)
          options_.metrics->http_requests_total->Labels({method, route_name, std::to_string(r.status)})->Inc();
        reply(std::move(r));
      };
      HandleInfer(req, model, version, std::move(counted));
      return;
    }
    if (action == "infer" || action.empty() || action == "ready" || action == "stats" || action == "config") {
      HttpResponse r = Json(405, ErrorJson("method " + m + " not allowed on " + req.target));
      r.headers.emplace_back("Allow", action == "infer" ? "POST" : "GET, HEAD");
      send(std::move(r), route_name);
      return;
    }
  }
  if (p.size() >= 3 && p[1] == "repository" && m == "POST") {
    if (p.size() == 3 && p[2] == "index") {
      auto ready_only = ParseRepositoryIndexRequest(req.body);
      if (!ready_only.ok()) {
        send(Error(ready_only.status()), "/v2/repository/index");
        return;
      }
      auto idx = service_->RepositoryIndex(*ready_only);
      send(idx.ok() ? Json(200, EncodeRepositoryIndex(*idx)) : Error(idx.status()), "/v2/repository/index");
      return;
    }
    if (p.size() == 5 && p[2] == "models" && (p[4] == "load" || p[4] == "unload")) {
      std::string route_name = "/v2/repository/models/{model}/" + p[4];
      if (!Authorized(req)) {
        send(Json(401, ErrorJson("missing or wrong bearer token")), route_name);
        return;
      }
      Status st;
      if (p[4] == "load") {
        auto config = ParseLoadConfig(req.body);
        st = config.ok() ? service_->LoadModelWithConfig(p[3], *config) : config.status();
      } else {
        st = service_->UnloadModel(p[3]);
      }
      send(st.ok() ? Json(200, "{}") : Error(st), route_name);
      return;
    }
  }
  if (p.size() >= 3 && p[1] == "systemsharedmemory") {
    HandleSharedMemory(req, p, [&](HttpResponse r) { send(std::move(r), "/v2/systemsharedmemory"); });
    return;
  }
  if (p.size() >= 3 && p[1] == "gpuhive") {
    HandleManagement(req, p, [&](HttpResponse r) { send(std::move(r), "/v2/gpuhive/" + p[2]); });
    return;
  }
  send(Error(NotFound("no route for {} {}", m, req.target)), "other");
}

// Triton's system shared memory extension:
//   GET  /v2/systemsharedmemory[/region/{name}]/status
//   POST /v2/systemsharedmemory/region/{name}/register   {"key": "/shm_key", "offset": 0, "byte_size": N}
//   POST /v2/systemsharedmemory[/region/{name}]/unregister
void Router::HandleSharedMemory(const HttpRequest& req, const std::vector<std::string>& p, HttpReply reply) {
  if (options_.shm == nullptr) {
    reply(Error(Unimplemented("the system shared memory extension is not enabled")));
    return;
  }
  std::string region;
  std::string action = p.back();
  if (p.size() == 5 && p[2] == "region") {
    region = p[3];
  } else if (p.size() != 3) {
    reply(Error(NotFound("no route for {} {}", req.method, req.target)));
    return;
  }
  const bool get = req.method == "GET" || req.method == "HEAD";
  if (action == "status" && get) {
    auto list = options_.shm->List(region);
    if (!list.ok()) {
      reply(Error(list.status()));
      return;
    }
    json arr = json::array();
    for (const auto& r : *list) {
      arr.push_back({{"name", r.name}, {"key", r.key}, {"offset", r.offset}, {"byte_size", r.byte_size}});
    }
    reply(Json(200, Dump(arr)));
    return;
  }
  if ((action == "register" && !region.empty()) || action == "unregister") {
    if (req.method != "POST") {
      reply(Json(405, ErrorJson("method " + req.method + " not allowed on " + req.target)));
      return;
    }
    if (!Authorized(req)) {
      reply(Json(401, ErrorJson("missing or wrong bearer token")));
      return;
    }
    if (action == "unregister") {
      Status s = options_.shm->Unregister(region);
      reply(s.ok() ? Json(200, "{}") : Error(s));
      return;
    }
    json j = json::parse(req.body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("key") || !j["key"].is_string() ||
        !j.contains("byte_size") || !j["byte_size"].is_number_unsigned() ||
        (j.contains("offset") && !j["offset"].is_number_unsigned())) {
      reply(Error(InvalidArgument("register needs a JSON object with 'key' (string), 'byte_size' and optionally "
                                  "'offset' (unsigned integers)")));
      return;
    }
    SharedMemoryRegionInfo info{region, j["key"].get<std::string>(), j.value("offset", uint64_t{0}),
                                j["byte_size"].get<uint64_t>()};
    Status s = options_.shm->Register(info);
    reply(s.ok() ? Json(200, "{}") : Error(s));
    return;
  }
  reply(Error(NotFound("no route for {} {}", req.method, req.target)));
}

void Router::HandleManagement(const HttpRequest& req, const std::vector<std::string>& p,
                              HttpReply reply) {
  const bool get = req.method == "GET" || req.method == "HEAD";
  if (p.size() == 3 && p[2] == "devices" && get) {
    json arr = json::array();
    for (const auto& d : service_->Devices()) arr.push_back(DeviceJson(d));
    reply(Json(200, Dump(arr)));
    return;
  }
  if (p.size() == 3 && p[2] == "models" && get) {
    json arr = json::array();
    for (const auto& mm : service_->Models()) arr.push_back(ModelJson(mm));
    reply(Json(200, Dump(arr)));
    return;
  }
  if (p.size() == 4 && p[2] == "models" && get) {
    auto st = service_->GetModelStatus(p[3]);
    reply(st.ok() ? Json(200, Dump(ModelJson(*st))) : Error(st.status()));
    return;
  }
  if (p.size() == 5 && p[2] == "models" && p[4] == "settings" &&
      (req.method == "PUT" || req.method == "POST")) {
    if (!Authorized(req)) {
      reply(Json(401, ErrorJson("missing or wrong bearer token")));
      return;
    }
    auto settings = ParseSettings(req.body);
    if (!settings.ok()) {
      reply(Error(settings.status()));
      return;
    }
    Status st = service_->UpdateModelSettings(p[3], *settings);
    if (!st.ok()) {
      reply(Error(st));
      return;
    }
    auto now = service_->GetModelStatus(p[3]);
    reply(now.ok() ? Json(200, Dump(ModelJson(*now))) : Error(now.status()));
    return;
  }
  reply(Error(NotFound("no management route for {} {}", req.method, req.target)));
}

void Router::HandleInfer(const HttpRequest& req, const std::string& model,
                         const std::string& version, HttpReply reply) {
  const bool traced = trace::Enabled();
  const int64_t parse_start = traced ? NowNs() : 0;
  auto md = service_->GetModelMetadata(model, version);
  if (!md.ok()) {
    reply(Error(md.status()));
    return;
  }
  std::optional<size_t> header_length;
  auto it = req.headers.find("inference-header-content-length");
  if (it != req.headers.end()) {
    size_t v = 0;
    auto [ptr, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
    if (ec != std::errc() || ptr != it->second.data() + it->second.size()) {
      reply(Error(InvalidArgument("Inference-Header-Content-Length '{}' is not a number", it->second)));
      return;
    }
    header_length = v;
  }
  auto parsed = ParseInferRequest(req.body, header_length, *md, options_.shm);
  if (!parsed.ok()) {
    reply(Error(parsed.status()));
    return;
  }
  std::unique_ptr<InferenceRequest> request = std::move(parsed->request);
  request->model_version = version;
  const int64_t submit = traced ? NowNs() : 0;
  if (traced) trace::Add(trace::kParse, submit - parse_start);
  request->on_complete = [this, reply = std::move(reply), outputs = std::move(parsed->outputs),
                          binary_default = parsed->binary_output_default, submit](InferenceResponse r) {
    if (!r.status.ok()) {
      reply(Error(r.status));
      return;
    }
    const int64_t encode_start = submit != 0 ? NowNs() : 0;
    if (submit != 0) {
      trace::Add(trace::kOverhead, encode_start - submit - r.queue_ns - r.compute_ns);
      trace::Add(trace::kQueue, r.queue_ns);
      trace::Add(trace::kCompute, r.compute_ns);
    }
    EncodedInferResponse enc = EncodeInferResponse(r, outputs, binary_default);
    if (!enc.status.ok()) {
      reply(Error(enc.status));
      return;
    }
    if (submit != 0) trace::Add(trace::kEncode, NowNs() - encode_start);
    HttpResponse resp;
    resp.write_on_caller = r.batch_size <= 1;
    resp.body = std::move(enc.body);
    if (enc.header_length) {
      resp.content_type = "application/octet-stream";
      resp.headers.emplace_back("Inference-Header-Content-Length", std::to_string(*enc.header_length));
    }
    reply(std::move(resp));
  };
  service_->Infer(std::move(request));
}

}  // namespace gpuhive::server
