// The load generator against the real HTTP and gRPC frontends over the FakeService, for about
// two seconds each: request counts add up (client and server side), errors are counted by kind
// without stopping the run, and the report carries what it promises.
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/loadgen/report.h"
#include "cli/loadgen/runner.h"
#include "cli/loadgen/scenario.h"
#include "gpuhive/server/fake_service.h"
#include "gpuhive/server/grpc_server.h"
#include "gpuhive/server/http_server.h"

namespace gpuhive::loadgen {
namespace {

using server::FakeService;

// Four streams: an open-loop and a closed-loop stream on models that answer, an unknown model,
// and the `delay` model asked to wait 8 s with a 3 s client timeout (generous: the machine
// running the tests may be loaded).
std::string ScenarioText(uint16_t http_port, uint16_t grpc_port, const char* protocol) {
  return fmt::format(R"({{
    "name": "e2e", "protocol": "{}", "url": "http://127.0.0.1:{}", "grpc_target": "127.0.0.1:{}",
    "duration_s": 2.0, "warmup_s": 0.5, "client_timeout_ms": 3000, "seed": 3,
    "streams": [
      {{"name": "open", "model": "add_sub_fp32", "rate": 300, "priority": 1, "tenant": "interactive"}},
      {{"name": "closed", "model": "identity_any", "mode": "closed", "concurrency": 4,
        "inputs": [{{"shape": [2, 8]}}]}},
      {{"name": "unknown", "model": "no_such_model", "rate": 40}},
      {{"name": "slow", "model": "delay", "rate": 10, "start_s": 0.6, "inputs": [{{"range": [8000, 8000]}}]}}
    ]}})",
                     protocol, http_port, grpc_port);
}

const StreamRun& Stream(const RunResult& r, const std::string& name) {
  for (const auto& s : r.streams)
    if (s.spec.name == name) return s;
  static StreamRun none;
  ADD_FAILURE() << "no stream " << name;
  return none;
}

int64_t ErrorSum(const StreamRun& s) {
  int64_t n = 0;
  for (const auto& [k, v] : s.errors) n += v;
  return n;
}

class LoadgenEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    server::HttpServerOptions ho;
    ho.port = 0;
    auto http = server::HttpServer::Start(&service_, ho);
    ASSERT_TRUE(http.ok()) << http.status().ToString();
    http_ = std::move(*http);
    server::GrpcServerOptions go;
    go.port = 0;
    auto grpc = server::GrpcServer::Start(&service_, go);
    ASSERT_TRUE(grpc.ok()) << grpc.status().ToString();
    grpc_ = std::move(*grpc);
  }

  RunResult Run(const char* protocol, const std::string& unknown_kind) {
    auto sc = ParseScenario(ScenarioText(http_->port(), grpc_->port(), protocol));
    EXPECT_TRUE(sc.ok()) << sc.status().ToString();
    Target t;
    t.protocol = sc->protocol;
    t.http_port = http_->port();
    t.grpc_target = "127.0.0.1:" + std::to_string(grpc_->port());
    t.grpc_client = GrpcTransportClient();
    RunOptions o;
    o.mode = protocol;
    o.progress = false;
    auto r = RunScenario(*sc, t, o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};

    int64_t ok_total = 0;
    for (const auto& s : r->streams) {
      // Every request sent is accounted for exactly once.
      EXPECT_EQ(s.sent, s.ok + ErrorSum(s)) << s.spec.name;
      EXPECT_EQ(static_cast<int64_t>(s.samples.size()), s.sent) << s.spec.name;
      ok_total += s.ok;
    }
    const StreamRun& open = Stream(*r, "open");
    // ~600 Poisson arrivals in 2 s; the seeded count is fixed, the bounds only guard the rate.
    EXPECT_GT(open.sent, 450);
    EXPECT_LT(open.sent, 750);
    EXPECT_EQ(open.ok, open.sent) << ::testing::PrintToString(open.errors);
    const StreamRun& closed = Stream(*r, "closed");
    EXPECT_GT(closed.ok, 100);
    EXPECT_EQ(ErrorSum(closed), 0) << ::testing::PrintToString(closed.errors);
    const StreamRun& unknown = Stream(*r, "unknown");
    EXPECT_GT(unknown.sent, 40);
    EXPECT_EQ(unknown.ok, 0);
    EXPECT_EQ(unknown.errors.count(unknown_kind) ? unknown.errors.at(unknown_kind) : 0, unknown.sent)
        << ::testing::PrintToString(unknown.errors);
    EXPECT_FALSE(unknown.note.empty());  // metadata could not be fetched
    const StreamRun& slow = Stream(*r, "slow");
    EXPECT_GT(slow.sent, 0);
    EXPECT_EQ(slow.ok, 0);
    EXPECT_EQ(slow.errors.count("client_timeout") ? slow.errors.at("client_timeout") : 0, slow.sent)
        << ::testing::PrintToString(slow.errors);
    for (const auto& x : slow.samples) EXPECT_GE(x.t_s, 0.6f);  // started late as asked
    // Server side: every ok answer was an Infer call that completed (the slow ones complete too,
    // possibly after the client gave up).
    EXPECT_GE(service_.completed(), ok_total);
    // Management sampling ran about once per second against the FakeService's device.
    EXPECT_GE(r->sample_attempts, 2);
    EXPECT_EQ(r->sample_failures, 0) << r->last_sample_error;
    EXPECT_FALSE(r->devices.empty());
    return std::move(*r);
  }

  FakeService service_;
  std::unique_ptr<server::HttpServer> http_;
  std::unique_ptr<server::GrpcServer> grpc_;
};

TEST_F(LoadgenEndToEnd, HttpCountsAddUpAndErrorsAreCountedByKind) {
  RunResult r = Run("http", "http_404");
  auto sc = ParseScenario(ScenarioText(1, 2, "http"));
  ASSERT_TRUE(sc.ok());
  nlohmann::json report = BuildReport(*sc, {r});
  const auto& run = report["runs"][0];
  EXPECT_EQ(run["mode"], "http");
  const auto& m = run["models"]["add_sub_fp32"];
  EXPECT_GT(m["throughput_rps"].get<double>(), 200);
  EXPECT_GT(m["latency_ms"]["p99"].get<double>(), 0);
  EXPECT_GE(m["latency_ms"]["p99"].get<double>(), m["latency_ms"]["p50"].get<double>());
  EXPECT_GE(m["latency_ms"]["max"].get<double>(), m["latency_ms"]["p99"].get<double>());
  EXPECT_GT(run["models"]["no_such_model"]["errors"]["http_404"].get<int64_t>(), 0);
  EXPECT_EQ(run["models"]["no_such_model"]["ok"].get<int64_t>(), 0);
  EXPECT_TRUE(run["models"]["delay"]["errors"].contains("client_timeout"));
  EXPECT_EQ(run["devices"]["cpu"]["budget_bytes"].get<uint64_t>(), 1ull << 30);
  EXPECT_GT(run["devices"]["cpu"]["peak_bytes"].get<uint64_t>(), 0u);
  EXPECT_EQ(run["totals"]["sent"].get<int64_t>(),
            run["totals"]["ok"].get<int64_t>() + run["totals"]["errors"].get<int64_t>());
  // Only the measured window is in the per-model figures: fewer than all sent.
  EXPECT_LT(m["sent"].get<int64_t>(), Stream(r, "open").sent);
  EXPECT_FALSE(report.contains("comparison"));
  // The priority-1 stream is its own level; the rest are "default".
  EXPECT_EQ(run["priorities"]["1"]["sent"].get<int64_t>(), m["sent"].get<int64_t>());
  EXPECT_EQ(run["priorities"]["default"]["streams"].get<int>(), 3);

  // Two "modes" make a comparison section; the report directory gets its files.
  RunResult r2 = r;
  r2.mode = "again";
  nlohmann::json both = BuildReport(*sc, {r, r2});
  ASSERT_TRUE(both.contains("comparison"));
  EXPECT_EQ(both["comparison"]["baseline"], "http");
  EXPECT_DOUBLE_EQ(both["comparison"]["modes"][0]["models"]["add_sub_fp32"]["throughput_ratio"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(both["comparison"]["modes"][0]["models"]["add_sub_fp32"]["p99_ratio"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(both["comparison"]["modes"][0]["priorities"]["1"]["p99_ratio"].get<double>(), 1.0);
  std::string dir = ::testing::TempDir() + "/loadgen_report_" + std::to_string(getpid());
  Status st = WriteReportDir(*sc, {r, r2}, both, dir);
  ASSERT_TRUE(st.ok()) << st.ToString();
  std::ifstream md(dir + "/report.md");
  std::stringstream text;
  text << md.rdbuf();
  EXPECT_NE(text.str().find("## Comparison"), std::string::npos);
  EXPECT_NE(text.str().find("add_sub_fp32"), std::string::npos);
  EXPECT_NE(text.str().find("http_404"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(dir + "/data/http-model-add_sub_fp32.dat"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/data/http-memory-cpu.dat"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/data/http-queue-add_sub_fp32.dat"));
  EXPECT_FALSE(run["models"]["add_sub_fp32"]["queue_depth_timeline"].empty());
  if (text.str().find("gnuplot was not found") == std::string::npos &&
      text.str().find("gnuplot failed") == std::string::npos) {
    EXPECT_GT(std::filesystem::file_size(dir + "/latency-http.png"), 1000u);
    EXPECT_GT(std::filesystem::file_size(dir + "/memory-again-cpu.png"), 1000u);
  }
  std::filesystem::remove_all(dir);
}

TEST_F(LoadgenEndToEnd, GrpcCountsAddUpAndErrorsAreCountedByKind) {
  Run("grpc", "grpc_5");  // NOT_FOUND
}

TEST(LoadgenNoServer, ConnectionErrorsAreCountedNotFatal) {
  // A port that was free a moment ago: bound to an ephemeral port, then closed again.
  uint16_t port = 0;
  {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor acceptor(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = acceptor.local_endpoint().port();
  }
  auto sc = ParseScenario(fmt::format(R"({{"url": "http://127.0.0.1:{}", "duration_s": 0.5, "warmup_s": 0,
                              "streams": [{{"model": "m", "rate": 50}}]}})", port));
  ASSERT_TRUE(sc.ok());
  Target t;
  t.http_port = port;
  RunOptions o;
  o.progress = false;
  auto r = RunScenario(*sc, t, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const StreamRun& s = r->streams[0];
  EXPECT_GT(s.sent, 5);
  EXPECT_EQ(s.ok, 0);
  EXPECT_EQ(s.errors.count("connect_error") ? s.errors.at("connect_error") : 0, s.sent)
      << ::testing::PrintToString(s.errors);
  EXPECT_EQ(r->sample_failures, r->sample_attempts);
}

}  // namespace
}  // namespace gpuhive::loadgen
