// KServe v2 REST frontend (Boost.Beast, asynchronous, a small thread pool).
// Keep-alive; requests on one connection are answered in order (pipelining safe); limits on
// header and body size (413 for a body over max_body_bytes); a connection that does not deliver a
// complete request within idle_timeout_ms (slow or half-closed clients) is closed.
// Memory is bounded across connections too: the bodies being received or waiting for their answer
// may hold at most max_buffered_body_bytes together (a request whose declared length, or
// max_body_bytes for a chunked one, does not fit is answered 503 with Retry-After before its body
// is read), and at most max_connections connections are open (more are answered 503 and closed).
// Each refusal counts in gpuhive_http_refusals_total{reason}.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "gpuhive/monitor/metric_names.h"
#include "gpuhive/server/service.h"
#include "gpuhive/units.h"

namespace gpuhive::server {

class SharedMemoryRegistry;

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8000;  // 0: an ephemeral port (see HttpServer::port())
  int threads = 2;
  uint64_t max_body_bytes = 64 * MiB;
  uint64_t max_buffered_body_bytes = 512 * MiB;
  int max_connections = 1024;
  uint32_t max_header_bytes = 16 * 1024;
  int64_t idle_timeout_ms = 30000;
  std::string auth_token;  // non-empty: mutating management calls need a bearer token
  int retry_after_seconds = 1;
  const monitor::GpuhiveMetrics* metrics = nullptr;  // gpuhive_http_requests_total when set
  // Serve only GET /metrics (Triton's --metrics-port listener); every other path is 404.
  bool metrics_only = false;
  // Triton's system shared memory extension; nullptr: its endpoints answer 501. Must outlive the server.
  SharedMemoryRegistry* shm = nullptr;
};

class HttpServer {
 public:
  // Binds and starts serving. `service` must outlive the server.
  // Errors: kInvalidArgument for bad options, kUnavailable when the address cannot be bound.
  static StatusOr<std::unique_ptr<HttpServer>> Start(InferenceService* service,
                                                     const HttpServerOptions& options);
  // Stops accepting, waits (up to 10 s) for in-flight inferences to be answered, then closes
  // every connection.
  ~HttpServer();
  uint16_t port() const;
  void Stop();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gpuhive::server
