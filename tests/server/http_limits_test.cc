// Server-wide memory bounds of the REST frontend (issue 16): request bodies in flight are capped
// across connections (40 connections each sending 60 MiB of an unfinished body once took the
// process from 146 MiB to 2.5 GiB), and so is the number of open connections. Every refusal is
// a 503 with Retry-After and counts in gpuhive_http_refusals_total{reason}.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gpuhive/server/fake_service.h"
#include "gpuhive/server/http_server.h"
#include "http_client.h"

namespace gpuhive::server {
namespace {

// A raw connection that sends exactly what it is given (e.g. headers and half a body).
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv{2, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }
  void Send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }
  // What the server answered within the receive timeout ("" when nothing came).
  std::string Receive() {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd_, buf, sizeof buf, 0)) > 0) {
      out.append(buf, static_cast<size_t>(n));
      if (out.find("\r\n\r\n") != std::string::npos && out.find('}') != std::string::npos) break;
    }
    return out;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::string InferHeader(size_t body_bytes) {
  return "POST /v2/models/add_sub/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Content-Length: " + std::to_string(body_bytes) + "\r\n\r\n";
}

std::unique_ptr<HttpServer> Start(FakeService& service, HttpServerOptions o) {
  o.port = 0;
  o.idle_timeout_ms = 3000;
  o.metrics = &service.metrics();
  auto server = HttpServer::Start(&service, o);
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return server.ok() ? std::move(*server) : nullptr;
}

double Refusals(const FakeService& s, const char* reason) {
  return s.metrics().http_refusals_total->Labels({reason})->Value();
}

TEST(HttpLimits, UnfinishedBodiesAreCappedAcrossConnections) {
  FakeService service;
  HttpServerOptions o;
  o.max_body_bytes = 1 * MiB;
  o.max_buffered_body_bytes = 2 * MiB;
  auto server = Start(service, o);
  ASSERT_NE(server, nullptr);
  const size_t body = 900 * 1024;  // two fit in 2 MiB, the third does not
  std::vector<std::unique_ptr<RawConnection>> holders;
  for (int i = 0; i < 2; ++i) {
    holders.push_back(std::make_unique<RawConnection>(server->port()));
    ASSERT_TRUE(holders.back()->connected());
    holders.back()->Send(InferHeader(body) + std::string(1000, ' '));  // a small part of the body
  }
  usleep(200 * 1000);  // both headers read and their bytes reserved
  RawConnection third(server->port());
  third.Send(InferHeader(body));
  std::string answer = third.Receive();
  EXPECT_NE(answer.find(" 503 "), std::string::npos) << answer;
  EXPECT_NE(answer.find("Retry-After: 1"), std::string::npos) << answer;
  EXPECT_EQ(Refusals(service, "body_bytes"), 1.0);
  // A small request still fits beside them; once a holder goes away its bytes are free again.
  testing::HttpClient small(server->port());
  EXPECT_EQ(small.Request("GET", "/v2/health/ready").status, 200);
  holders.pop_back();
  usleep(200 * 1000);
  RawConnection fourth(server->port());
  fourth.Send(InferHeader(body) + std::string(1000, ' '));
  usleep(200 * 1000);
  RawConnection fifth(server->port());
  fifth.Send(InferHeader(body));
  EXPECT_NE(fifth.Receive().find(" 503 "), std::string::npos);
  EXPECT_EQ(Refusals(service, "body_bytes"), 2.0);
}

TEST(HttpLimits, ConnectionsAboveTheLimitGet503) {
  FakeService service;
  HttpServerOptions o;
  o.max_connections = 2;
  auto server = Start(service, o);
  ASSERT_NE(server, nullptr);
  testing::HttpClient a(server->port()), b(server->port());
  ASSERT_EQ(a.Request("GET", "/v2/health/live").status, 200);
  ASSERT_EQ(b.Request("GET", "/v2/health/live").status, 200);
  RawConnection c(server->port());
  std::string answer = c.Receive();
  EXPECT_NE(answer.find(" 503 "), std::string::npos) << answer;
  EXPECT_EQ(Refusals(service, "connections"), 1.0);
  EXPECT_EQ(a.Request("GET", "/v2/health/live").status, 200);  // the others are unaffected
}

TEST(HttpLimits, OptionsAreChecked) {
  FakeService service;
  HttpServerOptions o;
  o.port = 0;
  o.max_body_bytes = 4 * MiB;
  o.max_buffered_body_bytes = 1 * MiB;
  EXPECT_EQ(HttpServer::Start(&service, o).status().code(), StatusCode::kInvalidArgument);
  o.max_buffered_body_bytes = 8 * MiB;
  o.max_connections = 0;
  EXPECT_EQ(HttpServer::Start(&service, o).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gpuhive::server
