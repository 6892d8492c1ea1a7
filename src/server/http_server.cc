#include "gpuhive/server/http_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <thread>

#include "gpuhive/logging.h"
#include "gpuhive/units.h"
#include "server/kserve_json.h"
#include "server/latency_trace.h"
#include "server/routes.h"

namespace gpuhive::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

class Session;

// State shared by the listener and every session; owned by HttpServer::Impl.
struct Shared {
  HttpServerOptions options;
  Router router;
  std::atomic<int64_t> in_flight{0};  // requests handed to the router and not answered
  std::atomic<uint64_t> body_bytes{0};  // reserved by requests being received or answered
  std::atomic<int> connections{0};

  // Reserves `n` bytes of the global body budget; false (nothing reserved) when they do not fit.
  bool ReserveBody(uint64_t n) {
    uint64_t cur = body_bytes.load(std::memory_order_relaxed);
    do {
      if (cur + n > options.max_buffered_body_bytes) return false;
    } while (!body_bytes.compare_exchange_weak(cur, cur + n, std::memory_order_acq_rel));
    return true;
  }
  void ReleaseBody(uint64_t n) { body_bytes.fetch_sub(n, std::memory_order_acq_rel); }
  void CountRefusal(const char* reason) {
    if (options.metrics != nullptr && options.metrics->http_refusals_total != nullptr) {
      options.metrics->http_refusals_total->Labels({reason})->Inc();
    }
  }
  std::mutex mu;                      // only for waking Stop()
  std::condition_variable cv;

  // Every session accepted, for Stop() to close what is still open: a session holds its I/O
  // context (see Session::context_) and a queued handler holds the session, so without closing
  // them the pair would keep each other alive after the server is gone (LeakSanitizer found one
  // in LoadgenEndToEnd, a write queued when the contexts stopped).
  std::mutex sessions_mu;
  std::vector<std::weak_ptr<Session>> sessions;
  void Register(const std::shared_ptr<Session>& s) {
    std::lock_guard lock(sessions_mu);
    if (sessions.size() >= 64 && (sessions.size() & (sessions.size() - 1)) == 0) {
      std::erase_if(sessions, [](const std::weak_ptr<Session>& w) { return w.expired(); });
    }
    sessions.push_back(s);
  }

  void Finished() {
    if (in_flight.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard lock(mu);
      cv.notify_all();
    }
  }

  Shared(InferenceService* s, const HttpServerOptions& o)
      : options(o),
        router(s, RouterOptions{o.auth_token, o.retry_after_seconds, o.metrics, o.metrics_only, o.shm}) {}
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<Shared> shared, std::shared_ptr<net::io_context> context)
      : context_(std::move(context)), shared_(std::move(shared)), stream_(std::move(socket)) {
    shared_->connections.fetch_add(1, std::memory_order_relaxed);
  }
  ~Session() {
    ReleaseReservation();
    shared_->connections.fetch_sub(1, std::memory_order_relaxed);
  }

  void Run() {
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::Read, shared_from_this()));
  }

  // Stop(): closes the socket and cancels the deadline timer, so every operation still queued
  // completes (aborted) when the stopped context is drained.
  void Abort() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(shared_->options.max_body_bytes);
    parser_->header_limit(shared_->options.max_header_bytes);
    // One deadline for the whole request: a slow or half-closed client cannot hold the connection.
    stream_.expires_after(std::chrono::milliseconds(shared_->options.idle_timeout_ms));
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  // The body's bytes are reserved from the server-wide budget before they are read: the declared
  // length, or the per-request limit for a chunked body (its length is unknown until the end).
  void OnHeader(beast::error_code ec, size_t n) {
    if (ec) {
      OnRead(ec, n);
      return;
    }
    const auto declared = parser_->content_length();
    const bool chunked = parser_->chunked();
    if (declared && *declared > shared_->options.max_body_bytes) {
      OnRead(http::error::body_limit, n);
      return;
    }
    const uint64_t want = declared ? *declared : (chunked ? shared_->options.max_body_bytes : 0);
    if (want > 0) {
      if (!shared_->ReserveBody(want)) {
        shared_->CountRefusal("body_bytes");
        HttpResponse r;
        r.status = 503;
        r.headers.emplace_back("Retry-After", std::to_string(shared_->options.retry_after_seconds));
        r.body = ErrorJson(fmt::format("the server is receiving {} bytes of request bodies already (limit {}); retry",
                                       shared_->body_bytes.load(), shared_->options.max_buffered_body_bytes));
        version_ = 11;
        Write(std::move(r), true);
        return;
      }
      reserved_ = want;
    }
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void ReleaseReservation() {
    if (reserved_ > 0) shared_->ReleaseBody(reserved_);
    reserved_ = 0;
  }

  void OnRead(beast::error_code ec, size_t) {
    read_ns_ = trace::Enabled() ? NowNs() : 0;
    reply_ns_ = 0;
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::eof || ec == net::error::connection_reset ||
        ec == http::error::partial_message || ec == net::error::operation_aborted) {
      Close();
      return;
    }
    if (ec == http::error::body_limit) {
      SendError(413, fmt::format("request body exceeds the limit of {} bytes",
                                 shared_->options.max_body_bytes));
      return;
    }
    if (ec == http::error::header_limit) {
      SendError(431, "request header fields too large");
      return;
    }
    if (ec) {
      if (ec.category() == http::make_error_code(http::error::body_limit).category() ||
          ec == http::error::bad_content_length) {
        SendError(400, "malformed HTTP request: " + ec.message());
      } else {
        Close();
      }
      return;
    }
    http::request<http::string_body> req = parser_->release();
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    head_ = req.method() == http::verb::head;
    HttpRequest hr;
    hr.method = std::string(req.method_string());
    hr.target = std::string(req.target());
    for (const auto& f : req) {
      std::string name(f.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      hr.headers[std::move(name)] = std::string(f.value());
    }
    hr.body = std::move(req.body());
    stream_.expires_never();  // the inference may take long; the write sets a new deadline
    shared_->in_flight.fetch_add(1, std::memory_order_relaxed);
    auto self = shared_from_this();
    if (read_ns_ != 0) trace::Add(trace::kHeaders, NowNs() - read_ns_);
    // An answer produced synchronously is written at once (dispatch runs it inline here). One from
    // another thread (an inference completion) is queued onto the connection's I/O thread, unless
    // the router marks it write_on_caller: while a request is being answered the connection has no
    // operation outstanding and its I/O thread does not touch it (no read is started, the deadline
    // is off), so that thread may start the write itself; the bytes leave at once instead of after
    // a hop (~15-25 us on a loaded machine), and only the write's completion runs on the I/O thread.
    shared_->router.Handle(std::move(hr), [self](HttpResponse r) {
      if (self->read_ns_ != 0) self->reply_ns_ = NowNs();
      if (r.write_on_caller) {
        self->Write(std::move(r), false);
        self->shared_->Finished();
        return;
      }
      net::dispatch(self->stream_.get_executor(), [self, r = std::move(r)]() mutable {
        self->Write(std::move(r), false);
        self->shared_->Finished();
      });
    });
  }

  void SendError(int status, const std::string& message) {
    HttpResponse r;
    r.status = status;
    r.body = ErrorJson(message);
    version_ = 11;
    Write(std::move(r), true);
  }

  void Write(HttpResponse r, bool close) {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(version_);
    res->result(static_cast<unsigned>(r.status));
    res->set(http::field::server, "gpuhive");
    res->set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) res->set(k, v);
    size_t size = r.body.size();
    if (!head_) res->body() = std::move(r.body);
    res->content_length(size);
    bool keep = keep_alive_ && !close;
    res->keep_alive(keep);
    stream_.expires_after(std::chrono::milliseconds(shared_->options.idle_timeout_ms));
    const int64_t write_ns = read_ns_ != 0 ? NowNs() : 0;
    if (write_ns != 0 && reply_ns_ != 0) trace::Add(trace::kHandoff, write_ns - reply_ns_);
    http::async_write(stream_, *res, [self = shared_from_this(), res, keep, write_ns](beast::error_code ec, size_t) {
      self->ReleaseReservation();  // the request's body is answered (or was never read)
      if (write_ns != 0) {
        const int64_t now = NowNs();
        trace::Add(trace::kWrite, now - write_ns);
        trace::Add(trace::kTotal, now - self->read_ns_);
      }
      if (ec) {
        self->Close();
      } else if (!keep) {
        self->Linger();
      } else {
        self->Read();
      }
    });
  }

  // Half-closes and discards what the client still sends (bounded in time), so the answer is not
  // lost to a TCP reset caused by unread data (e.g. after 413/431 on a request we did not read).
  void Linger() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::milliseconds(std::min<int64_t>(shared_->options.idle_timeout_ms, 2000)));
    Drain();
  }
  void Drain() {
    stream_.async_read_some(net::buffer(drain_), [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) {
        self->Close();
        return;
      }
      self->Drain();
    });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  // A completion on a scheduler worker may drop the last reference to a session after
  // HttpServer::Stop() has joined the I/O threads (Stop waits for in-flight answers, not for the
  // workers to let go of their copies of the callback): the session keeps its I/O context and the
  // shared state alive, so destroying it then closes its socket on a stopped context instead of a
  // destroyed one (TritonExt.TritonMetricsScrape crashed 1 in 54 runs in teardown). Declared before
  // stream_, so destroyed after it.
  std::shared_ptr<net::io_context> context_;
  std::shared_ptr<Shared> shared_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  int64_t read_ns_ = 0;  // when Beast handed over the current request; 0 when not tracing
  int64_t reply_ns_ = 0;  // when the router answered it; 0 when not tracing
  bool keep_alive_ = true;
  bool head_ = false;
  unsigned version_ = 11;
  std::array<char, 4096> drain_;
  uint64_t reserved_ = 0;  // body bytes this connection holds of Shared::body_bytes
};

}  // namespace

// One io_context per thread (no reactor shared between threads); each connection lives on one
// context, so its handlers never run concurrently and need no strand. The one thing another thread
// may do to a connection is start the write of an answer while nothing else is outstanding on it.
struct HttpServer::Impl {
  using Guard = net::executor_work_guard<net::io_context::executor_type>;
  std::shared_ptr<Shared> shared;
  std::vector<std::shared_ptr<net::io_context>> contexts;
  std::vector<Guard> guards;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  size_t next = 0;  // round-robin over contexts; used only on contexts[0]'s thread
  uint16_t port = 0;
  bool stopped = false;

  void Accept() {
    std::shared_ptr<net::io_context> target = contexts[next++ % contexts.size()];
    acceptor->async_accept(*target, [this, target](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
      if (!ec && shared->connections.load(std::memory_order_relaxed) >= shared->options.max_connections) {
        // Over the connection limit: a short answer written at once (it fits the socket buffer),
        // then closed, so a client learns why instead of seeing a reset.
        shared->CountRefusal("connections");
        static constexpr char kBusy[] =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
            "Connection: close\r\nContent-Length: 40\r\n\r\n{\"error\":\"too many connections; retry\"}\n";
        beast::error_code ignored;
        socket.non_blocking(true, ignored);
        socket.write_some(net::buffer(kBusy, sizeof(kBusy) - 1), ignored);
        socket.shutdown(tcp::socket::shutdown_both, ignored);
        socket.close(ignored);
      } else if (!ec) {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        auto session = std::make_shared<Session>(std::move(socket), shared, target);
        shared->Register(session);
        session->Run();
      }
      Accept();
    });
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(InferenceService* service,
                                                        const HttpServerOptions& options) {
  if (!service) return InvalidArgument("HttpServer needs a service");
  if (options.threads < 1 || options.threads > 256)
    return InvalidArgument("HTTP threads must be between 1 and 256, got {}", options.threads);
  if (options.idle_timeout_ms <= 0) return InvalidArgument("HTTP idle timeout must be positive");
  if (options.max_body_bytes == 0) return InvalidArgument("HTTP max body bytes must be positive");
  if (options.max_buffered_body_bytes < options.max_body_bytes) {
    return InvalidArgument("HTTP max buffered body bytes ({}) must be at least the max body bytes ({})",
                           options.max_buffered_body_bytes, options.max_body_bytes);
  }
  if (options.max_connections < 1) return InvalidArgument("HTTP max connections must be positive");
  auto impl = std::make_unique<Impl>();
  impl->shared = std::make_shared<Shared>(service, options);
  for (int i = 0; i < options.threads; ++i) {
    impl->contexts.push_back(std::make_shared<net::io_context>(1));
    impl->guards.push_back(net::make_work_guard(*impl->contexts.back()));
  }
  impl->acceptor = std::make_unique<tcp::acceptor>(*impl->contexts[0]);
  beast::error_code ec;
  auto addr = net::ip::make_address(options.address, ec);
  if (ec) return InvalidArgument("bad HTTP address '{}': {}", options.address, ec.message());
  tcp::endpoint ep(addr, options.port);
  impl->acceptor->open(ep.protocol(), ec);
  if (!ec) impl->acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor->bind(ep, ec);
  if (!ec) impl->acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return Unavailable("cannot listen on {}:{}: {}", options.address, options.port, ec.message());
  impl->port = impl->acceptor->local_endpoint().port();
  impl->Accept();
  for (auto& ctx : impl->contexts) impl->threads.emplace_back([io = ctx.get()] { io->run(); });
  GH_LOG_INFO("http", "listening on {}:{}", options.address, impl->port);
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

uint16_t HttpServer::port() const { return impl_->port; }

void HttpServer::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  net::post(*impl_->contexts[0], [this] {
    beast::error_code ec;
    impl_->acceptor->close(ec);
  });
  {
    std::unique_lock lock(impl_->shared->mu);
    if (!impl_->shared->cv.wait_for(lock, std::chrono::seconds(10),
                                    [&] { return impl_->shared->in_flight.load() == 0; })) {
      GH_LOG_WARN("http", "stopping with {} inferences still unanswered", impl_->shared->in_flight.load());
    }
  }
  impl_->guards.clear();
  for (auto& ctx : impl_->contexts) ctx->stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  // Close what is still open and let the aborted handlers run (on this thread: the I/O threads
  // are gone), so they release their sessions and the sessions their contexts.
  std::vector<std::shared_ptr<Session>> open;
  {
    std::lock_guard lock(impl_->shared->sessions_mu);
    for (auto& w : impl_->shared->sessions) {
      if (auto s = w.lock()) open.push_back(std::move(s));
    }
    impl_->shared->sessions.clear();
  }
  for (auto& s : open) s->Abort();
  open.clear();
  for (auto& ctx : impl_->contexts) {
    ctx->restart();
    ctx->run_for(std::chrono::seconds(2));
  }
  if (trace::Enabled()) std::fprintf(stderr, "%s\n", trace::Report().c_str());
}

HttpServer::~HttpServer() { Stop(); }

}  // namespace gpuhive::server
