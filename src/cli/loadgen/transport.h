// How the load generator talks to a server: KServe v2 inference over HTTP/1.1 keep-alive with
// the binary tensor extension (Boost.Beast, asynchronous on the caller's io_context) or over gRPC
// (async CompletionQueue, completions handed back to the io_context). Either way every callback
// runs on the io_context's thread, so the runner needs no locks.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gpuhive/status.h"
#include "gpuhive/tensor.h"

namespace gpuhive::loadgen {

struct PreparedInput {
  std::string name;
  std::string datatype;  // KServe name
  Shape shape;
  std::string bytes;  // raw little-endian tensor data
};

// One stream's request, built once and sent many times.
struct RequestTemplate {
  std::string model;
  std::string version;
  std::vector<PreparedInput> inputs;
  std::optional<int64_t> triton_priority;  // Triton "priority" parameter (1 = most urgent)
  std::string tenant;                      // "tenant" parameter when non-empty
  int64_t timeout_us = 0;                  // Triton "timeout" parameter when > 0
};

// The result of one request. `kind` is "ok" or why it failed: "http_<status>", "grpc_<code>",
// "connect_error", "client_timeout", "io_error", "client_backlog" (never sent: every allowed
// connection stayed busy until the run ended).
struct Outcome {
  bool ok = false;
  std::string kind;
};
using Done = std::function<void(const Outcome&)>;

class Transport {
 public:
  virtual ~Transport() = default;
  // Registers a request template; streams are numbered in the order added.
  virtual Status AddStream(const RequestTemplate& request) = 0;
  // Sends one request of `stream`; `done` runs exactly once on the io_context thread.
  // Must be called on the io_context thread.
  virtual void Send(size_t stream, Done done) = 0;
  // Requests sent or queued and not yet completed.
  virtual size_t in_flight() const = 0;
  // Completes every queued (not yet sent) request with "client_backlog". io_context thread.
  virtual void DropBacklog() = 0;
  // Closes connections / stops the completion thread. Call after the io_context stopped running.
  virtual void Close() = 0;
};

struct TransportOptions {
  std::chrono::milliseconds timeout{30000};  // per request, client side
  int max_connections = 256;                 // HTTP only
};

std::unique_ptr<Transport> MakeHttpTransport(boost::asio::io_context& ioc, const std::string& host,
                                             uint16_t port, const TransportOptions& options);

// The gRPC side of the load generator. An interface because the gpuhive binary does not link
// gRPC: it takes this from the gRPC module (libgpuhive_grpc.so, loaded on first use; see
// cli/grpc_module.h), while tests link the implementation and call GrpcTransportClient().
class GrpcClient {
 public:
  // A transport over gRPC to `target` ("host:port").
  virtual std::unique_ptr<Transport> MakeTransport(boost::asio::io_context& ioc, const std::string& target,
                                                   const TransportOptions& options) = 0;
  // Model metadata in the KServe v2 JSON form ({"name":..,"inputs":[{"name","datatype","shape"}]}),
  // blocking (its own channel; any thread). Errors: kNotFound (no such model), kUnavailable.
  virtual StatusOr<std::string> ModelMetadataJson(const std::string& target, const std::string& model,
                                                  const std::string& version, std::chrono::milliseconds timeout) = 0;

 protected:
  ~GrpcClient() = default;  // lives as long as the process
};

// The implementation (grpc_transport.cc). Only what links the gRPC code may call it: the module
// and the tests, never the gpuhive binary (which does not link it).
GrpcClient* GrpcTransportClient();

// Blocking helpers for setup and sampling (their own sockets; any thread).
struct HttpResult {
  int status = 0;
  std::string body;
};
// GET (or POST with `body`) `target` on host:port with a timeout. Errors: kUnavailable when the
// connection or the exchange fails.
StatusOr<HttpResult> HttpExchange(const std::string& host, uint16_t port, const std::string& method,
                                  const std::string& target, const std::string& body,
                                  std::chrono::milliseconds timeout);

// Percent-encodes a path segment.
std::string EncodePathSegment(const std::string& s);
// The JSON header and body of an HTTP binary-extension infer request (exposed for tests).
std::string InferHeaderJson(const RequestTemplate& request);

}  // namespace gpuhive::loadgen
