// HTTP/1.1 keep-alive client on one io_context: a pool of connections shared by all streams,
// pre-serialized requests (headers + binary tensors built once per stream), at most
// max_connections sockets; requests beyond that wait in a FIFO (their latency still counts from
// when they were due, so a saturated client shows up as latency, not as a lower offered rate).
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <deque>

#include "cli/loadgen/transport.h"

namespace gpuhive::loadgen {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string EncodePathSegment(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string InferHeaderJson(const RequestTemplate& r) {
  nlohmann::json j;
  j["inputs"] = nlohmann::json::array();
  for (const auto& in : r.inputs) {
    j["inputs"].push_back({{"name", in.name},
                           {"datatype", in.datatype},
                           {"shape", in.shape},
                           {"parameters", {{"binary_data_size", in.bytes.size()}}}});
  }
  nlohmann::json params = {{"binary_data_output", true}};
  if (r.triton_priority) params["priority"] = *r.triton_priority;
  if (!r.tenant.empty()) params["tenant"] = r.tenant;
  if (r.timeout_us > 0) params["timeout"] = r.timeout_us;
  j["parameters"] = params;
  return j.dump();
}

namespace {

std::string InferTarget(const RequestTemplate& r) {
  std::string t = "/v2/models/" + EncodePathSegment(r.model);
  if (!r.version.empty()) t += "/versions/" + EncodePathSegment(r.version);
  return t + "/infer";
}

class HttpTransport final : public Transport {
 public:
  HttpTransport(net::io_context& ioc, std::string host, uint16_t port, TransportOptions o)
      : ioc_(ioc), host_(std::move(host)), port_(port), options_(o) {}

  Status AddStream(const RequestTemplate& r) override {
    std::string header = InferHeaderJson(r);
    size_t body_len = header.size();
    for (const auto& in : r.inputs) body_len += in.bytes.size();
    auto wire = std::make_shared<std::string>();
    *wire = "POST " + InferTarget(r) + " HTTP/1.1\r\nHost: " + host_ + ":" + std::to_string(port_) +
            "\r\nContent-Type: application/octet-stream\r\nInference-Header-Content-Length: " +
            std::to_string(header.size()) + "\r\nContent-Length: " + std::to_string(body_len) + "\r\n\r\n";
    wire->reserve(wire->size() + body_len);
    *wire += header;
    for (const auto& in : r.inputs) *wire += in.bytes;
    wires_.push_back(std::move(wire));
    return Status::OK();
  }

  void Send(size_t stream, Done done) override {
    ++in_flight_;
    // A connection idle for long may have been closed by the server (its idle timeout): the
    // request would fail as an io_error that says nothing about the server. Open a fresh one.
    while (!idle_.empty() && std::chrono::steady_clock::now() - idle_.back()->idle_since > kMaxIdle) {
      auto stale = std::move(idle_.back());
      idle_.pop_back();
      Discard(std::move(stale));
    }
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      Start(std::move(c), stream, std::move(done));
    } else if (open_ < options_.max_connections) {
      ++open_;
      Start(std::make_shared<Conn>(ioc_), stream, std::move(done));
    } else {
      backlog_.emplace_back(stream, std::move(done));
    }
  }

  size_t in_flight() const override { return in_flight_; }

  void DropBacklog() override {
    auto q = std::move(backlog_);
    backlog_.clear();
    for (auto& [stream, done] : q) Finish(done, Outcome{false, "client_backlog"});
  }

  void Close() override {
    for (auto& c : idle_) {
      beast::error_code ec;
      c->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
      c->stream.close();
    }
    idle_.clear();
  }

 private:
  struct Conn {
    explicit Conn(net::io_context& ioc) : stream(ioc) {}
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    std::optional<http::response_parser<http::string_body>> parser;
    bool connected = false;
    std::chrono::steady_clock::time_point idle_since;
  };
  static constexpr std::chrono::seconds kMaxIdle{4};
  using ConnPtr = std::shared_ptr<Conn>;

  void Finish(Done& done, const Outcome& o) {
    --in_flight_;
    done(o);
  }

  void Start(ConnPtr c, size_t stream, Done done) {
    if (!c->connected) {
      if (endpoints_.empty()) {
        beast::error_code ec;
        tcp::resolver resolver(ioc_);
        auto results = resolver.resolve(host_, std::to_string(port_), ec);
        if (ec || results.empty()) {
          Fail(std::move(c), done, "connect_error");
          return;
        }
        for (const auto& e : results) endpoints_.push_back(e.endpoint());
      }
      c->stream.expires_after(options_.timeout);
      c->stream.async_connect(endpoints_, [this, c, stream, done = std::move(done)](
                                                  beast::error_code ec, const tcp::endpoint&) mutable {
        if (ec) {
          Fail(std::move(c), done, ec == beast::error::timeout ? "client_timeout" : "connect_error");
          return;
        }
        c->stream.socket().set_option(tcp::no_delay(true), ec);
        c->connected = true;
        Write(std::move(c), stream, std::move(done));
      });
      return;
    }
    Write(std::move(c), stream, std::move(done));
  }

  void Write(ConnPtr c, size_t stream, Done done) {
    c->stream.expires_after(options_.timeout);
    const std::string& wire = *wires_[stream];
    net::async_write(c->stream, net::buffer(wire),
                     [this, c, stream, keep = wires_[stream], done = std::move(done)](
                         beast::error_code ec, size_t) mutable {
                       if (ec) {
                         Fail(std::move(c), done, ec == beast::error::timeout ? "client_timeout" : "io_error");
                         return;
                       }
                       Read(std::move(c), std::move(done));
                     });
  }

  void Read(ConnPtr c, Done done) {
    c->parser.emplace();
    c->parser->body_limit(uint64_t{1} << 32);
    c->parser->header_limit(64 * 1024);
    http::async_read(c->stream, c->buffer, *c->parser,
                     [this, c, done = std::move(done)](beast::error_code ec, size_t) mutable {
                       if (ec) {
                         Fail(std::move(c), done, ec == beast::error::timeout ? "client_timeout" : "io_error");
                         return;
                       }
                       int status = static_cast<int>(c->parser->get().result_int());
                       bool keep_alive = c->parser->get().keep_alive();
                       c->parser.reset();
                       Outcome o{status == 200, status == 200 ? "ok" : "http_" + std::to_string(status)};
                       if (keep_alive) {
                         Release(std::move(c));
                       } else {
                         Discard(std::move(c));
                       }
                       Finish(done, o);
                     });
  }

  void Fail(ConnPtr c, Done& done, const char* kind) {
    Discard(std::move(c));
    Finish(done, Outcome{false, kind});
  }

  void Discard(ConnPtr c) {
    beast::error_code ec;
    c->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    c->stream.close();
    --open_;
    // A freed slot lets a queued request open a fresh connection.
    if (!backlog_.empty() && open_ < options_.max_connections) {
      auto [stream, done] = std::move(backlog_.front());
      backlog_.pop_front();
      ++open_;
      Start(std::make_shared<Conn>(ioc_), stream, std::move(done));
    }
  }

  void Release(ConnPtr c) {
    if (!backlog_.empty()) {
      auto [stream, done] = std::move(backlog_.front());
      backlog_.pop_front();
      Start(std::move(c), stream, std::move(done));
      return;
    }
    c->stream.expires_never();
    c->idle_since = std::chrono::steady_clock::now();
    idle_.push_back(std::move(c));
  }

  net::io_context& ioc_;
  std::string host_;
  uint16_t port_;
  TransportOptions options_;
  std::vector<tcp::endpoint> endpoints_;
  std::vector<std::shared_ptr<const std::string>> wires_;
  std::vector<ConnPtr> idle_;
  std::deque<std::pair<size_t, Done>> backlog_;
  int open_ = 0;
  size_t in_flight_ = 0;
};

}  // namespace

std::unique_ptr<Transport> MakeHttpTransport(net::io_context& ioc, const std::string& host, uint16_t port,
                                             const TransportOptions& options) {
  return std::make_unique<HttpTransport>(ioc, host, port, options);
}

StatusOr<HttpResult> HttpExchange(const std::string& host, uint16_t port, const std::string& method,
                                  const std::string& target, const std::string& body,
                                  std::chrono::milliseconds timeout) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(host, std::to_string(port), ec);
  if (ec) return Unavailable("resolve {}: {}", host, ec.message());
  stream.expires_after(timeout);
  stream.connect(results, ec);
  if (ec) return Unavailable("connect {}:{}: {}", host, port, ec.message());
  http::request<http::string_body> req{method == "POST" ? http::verb::post : http::verb::get, target, 11};
  req.set(http::field::host, host + ":" + std::to_string(port));
  req.set(http::field::connection, "close");
  if (method == "POST") {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
  }
  // Synchronous operations ignore tcp_stream's expiry: run async ones on this private context.
  HttpResult result;
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(uint64_t{1} << 30);
  http::async_write(stream, req, [&](beast::error_code e, size_t) {
    if (e) {
      ec = e;
      return;
    }
    stream.expires_after(timeout);
    http::async_read(stream, buffer, parser, [&](beast::error_code e2, size_t) { ec = e2; });
  });
  ioc.run();
  if (ec) return Unavailable("{} {} on {}:{}: {}", method, target, host, port, ec.message());
  result.status = static_cast<int>(parser.get().result_int());
  result.body = std::move(parser.get().body());
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  return result;
}

}  // namespace gpuhive::loadgen
