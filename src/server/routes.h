// Transport-independent HTTP routing for the KServe v2 REST API, the repository extension,
// /metrics and gpuhive's management API. The Beast server (http_server.cc) feeds it parsed requests.
//   GET  /v2/health/live | /v2/health/ready          200 or 503
//   GET  /v2                                          server metadata
//   GET  /v2/models/{m}[/versions/{v}]                model metadata
//   GET  /v2/models/{m}[/versions/{v}]/ready          200 or 503
//   GET  /v2/models[/{m}[/versions/{v}]]/stats        Triton's statistics extension
//   GET  /v2/models/{m}[/versions/{v}]/config         Triton's model configuration (JSON)
//   POST /v2/models/{m}[/versions/{v}]/infer          JSON or binary tensor extension
//   POST /v2/repository/index                         {"ready": bool}
//   POST /v2/repository/models/{m}/load | unload      bearer token when configured
//   GET  /metrics                                     Prometheus text 0.0.4
//   GET  /v2/gpuhive/devices | /v2/gpuhive/models[/{m}]
//   PUT|POST /v2/gpuhive/models/{m}/settings          {"priority", "tenant", "memory_limit_bytes" |
//                                                     "memory_limit": "2GiB"}; bearer token
// Errors are {"error": "..."} with the status from HttpStatusFor().
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gpuhive/monitor/metric_names.h"
#include "gpuhive/server/service.h"
#include "gpuhive/server/shared_memory.h"

namespace gpuhive::server {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // The thread that produced the answer may write it to the connection itself instead of handing
  // it to the connection's I/O thread: set for an inference that ran alone, where the hop would
  // cost more than the write (a batch's responses go through the I/O threads, which keeps the
  // worker free for the next batch).
  bool write_on_caller = false;
};

// Called exactly once per request, possibly on another thread (an inference completion).
using HttpReply = std::function<void(HttpResponse)>;

struct RouterOptions {
  std::string auth_token;        // non-empty: mutating calls need "Authorization: Bearer <token>"
  int retry_after_seconds = 1;   // Retry-After on 429
  const monitor::GpuhiveMetrics* metrics = nullptr;  // http_requests_total when set
  bool metrics_only = false;     // only GET /metrics is served (a separate metrics port)
  SharedMemoryRegistry* shm = nullptr;  // Triton's system shared memory extension when set
};

// HTTP status for a Status code (see service.h for the convention).
int HttpStatusFor(StatusCode code);

class Router {
 public:
  Router(InferenceService* service, RouterOptions options)
      : service_(service), options_(std::move(options)) {}
  // Thread safe.
  void Handle(HttpRequest request, HttpReply reply);

 private:
  void HandleInfer(const HttpRequest& req, const std::string& model, const std::string& version,
                   HttpReply reply);
  void HandleSharedMemory(const HttpRequest& req, const std::vector<std::string>& parts, HttpReply reply);
  void HandleManagement(const HttpRequest& req, const std::vector<std::string>& parts,
                        HttpReply reply);
  bool Authorized(const HttpRequest& req) const;
  HttpResponse Error(const Status& status) const;

  InferenceService* service_;
  RouterOptions options_;
};

}  // namespace gpuhive::server
