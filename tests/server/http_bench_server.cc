// Throughput comparison of HTTP server options over the same Router and FakeService:
//   server_http_bench beast|httplib PORT THREADS SECONDS
// Drive it with wrk (see the report of the change that added it for the commands).
#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>

#include "gpuhive/server/fake_service.h"
#include "gpuhive/server/http_server.h"
#include "server/routes.h"

#ifdef GPUHIVE_HAVE_HTTPLIB
#include <httplib.h>
#endif

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s beast|httplib PORT THREADS SECONDS\n", argv[0]);
    return 2;
  }
  std::string kind = argv[1];
  int port = std::atoi(argv[2]);
  int threads = std::atoi(argv[3]);
  int seconds = std::atoi(argv[4]);
  gpuhive::server::FakeService service;
  if (kind == "beast") {
    gpuhive::server::HttpServerOptions o;
    o.port = static_cast<uint16_t>(port);
    o.threads = threads;
    auto s = gpuhive::server::HttpServer::Start(&service, o);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.status().ToString().c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    return 0;
  }
#ifdef GPUHIVE_HAVE_HTTPLIB
  if (kind == "httplib") {
    gpuhive::server::Router router(&service, {});
    httplib::Server svr;
    svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    auto handler = [&](const httplib::Request& req, httplib::Response& res) {
      gpuhive::server::HttpRequest hr;
      hr.method = req.method;
      hr.target = req.target;
      for (const auto& [k, v] : req.headers) {
        std::string name = k;
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        hr.headers[name] = v;
      }
      hr.body = req.body;
      std::promise<gpuhive::server::HttpResponse> done;
      auto fut = done.get_future();
      router.Handle(std::move(hr), [&](gpuhive::server::HttpResponse r) { done.set_value(std::move(r)); });
      auto r = fut.get();
      res.status = r.status;
      for (auto& [k, v] : r.headers) res.set_header(k, v);
      res.set_content(std::move(r.body), r.content_type);
    };
    svr.set_tcp_nodelay(true);  // as the Beast server does; without it Nagle caps it near 500 req/s
    svr.Get(".*", handler);
    svr.Post(".*", handler);
    std::thread t([&] { svr.listen("127.0.0.1", port); });
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    svr.stop();
    t.join();
    return 0;
  }
#endif
  std::fprintf(stderr, "unknown or unavailable server kind '%s'\n", kind.c_str());
  return 2;
}
