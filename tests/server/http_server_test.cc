// The REST frontend against FakeService on 127.0.0.1 with an ephemeral port.
#include "gpuhive/server/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include "gpuhive/server/fake_service.h"
#include "http_client.h"

namespace gpuhive::server {
namespace {

using json = nlohmann::json;
using testing::ClientResponse;
using testing::HttpClient;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServerOptions o;
    o.port = 0;
    o.max_body_bytes = 1 * MiB;
    o.idle_timeout_ms = 400;
    o.auth_token = "s3cret";
    o.metrics = &service_.metrics();
    auto s = HttpServer::Start(&service_, o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
  }
  void TearDown() override { server_.reset(); }

  uint16_t port() const { return server_->port(); }

  FakeService service_;
  std::unique_ptr<HttpServer> server_;
};

std::string AddSubJson(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  json j;
  j["inputs"] = json::array({{{"name", "INPUT0"}, {"datatype", "INT32"}, {"shape", {1, 16}}, {"data", a}},
                             {{"name", "INPUT1"}, {"datatype", "INT32"}, {"shape", {1, 16}}, {"data", b}}});
  return j.dump();
}

std::vector<int32_t> Iota(int32_t start) {
  std::vector<int32_t> v(16);
  for (int i = 0; i < 16; ++i) v[i] = start + i * 7;
  return v;
}

// A service whose completion callbacks outlive their answers: each is kept (with the connection
// it holds) until the test lets go, as a scheduler worker's copy of a callback may be dropped only
// after the frontend has stopped.
class LingeringService final : public InferenceService {
 public:
  ServerMetadata GetServerMetadata() override { return fake_.GetServerMetadata(); }
  bool IsLive() override { return fake_.IsLive(); }
  bool IsReady() override { return fake_.IsReady(); }
  StatusOr<bool> ModelReady(const std::string& n, const std::string& v) override { return fake_.ModelReady(n, v); }
  StatusOr<ModelMetadata> GetModelMetadata(const std::string& n, const std::string& v) override {
    return fake_.GetModelMetadata(n, v);
  }
  void Infer(std::unique_ptr<InferenceRequest> request) override {
    auto callback = std::make_shared<ResponseCallback>(std::move(request->on_complete));
    {
      std::lock_guard lock(mu_);
      kept_.push_back(callback);
    }
    request->on_complete = [callback](InferenceResponse r) { (*callback)(std::move(r)); };
    fake_.Infer(std::move(request));
  }
  StatusOr<std::vector<RepositoryEntry>> RepositoryIndex(bool ready_only) override {
    return fake_.RepositoryIndex(ready_only);
  }
  Status LoadModel(const std::string& n) override { return fake_.LoadModel(n); }
  Status UnloadModel(const std::string& n) override { return fake_.UnloadModel(n); }
  std::vector<DeviceStatus> Devices() override { return fake_.Devices(); }
  std::vector<ModelStatus> Models() override { return fake_.Models(); }
  StatusOr<ModelStatus> GetModelStatus(const std::string& n) override { return fake_.GetModelStatus(n); }
  Status UpdateModelSettings(const std::string& n, const ModelSettings& s) override {
    return fake_.UpdateModelSettings(n, s);
  }
  std::string MetricsText() override { return fake_.MetricsText(); }
  void LetGo() {
    std::lock_guard lock(mu_);
    kept_.clear();
  }

 private:
  FakeService fake_;
  std::mutex mu_;
  std::vector<std::shared_ptr<ResponseCallback>> kept_;
};

// The last reference to a connection may go after the server has stopped and been destroyed: its
// socket must then close without touching freed I/O state (it crashed 1 in 54 runs of the Triton
// e2e teardown; a use-after-free that ASan reports at once).
TEST(HttpServerTeardown, AConnectionReleasedAfterTheServerIsGoneClosesCleanly) {
  LingeringService service;
  HttpServerOptions o;
  o.port = 0;
  auto server = HttpServer::Start(&service, o);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  {
    HttpClient c((*server)->port());
    EXPECT_EQ(c.Request("POST", "/v2/models/add_sub/infer", AddSubJson(Iota(1), Iota(2))).status, 200);
  }
  server->reset();  // stops and destroys the server while a callback still holds the connection
  service.LetGo();  // the connection's last reference goes now
  SUCCEED();
}

TEST_F(HttpServerTest, HealthAndMetadataEndpoints) {
  HttpClient c(port());
  EXPECT_EQ(c.Request("GET", "/v2/health/live").status, 200);
  EXPECT_EQ(c.Request("GET", "/v2/health/ready").status, 200);
  service_.SetReady(false);
  EXPECT_EQ(c.Request("GET", "/v2/health/ready").status, 503);
  EXPECT_EQ(c.Request("GET", "/v2/health/live").status, 200);
  service_.SetReady(true);
  auto md = c.Request("GET", "/v2");
  ASSERT_EQ(md.status, 200);
  EXPECT_EQ(json::parse(md.body)["name"], "gpuhive");
  auto m = c.Request("GET", "/v2/models/add_sub");
  ASSERT_EQ(m.status, 200) << m.body;
  json mj = json::parse(m.body);
  EXPECT_EQ(mj["inputs"][0]["datatype"], "INT32");
  EXPECT_EQ(mj["inputs"][0]["shape"], json::array({-1, 16}));
  EXPECT_EQ(c.Request("GET", "/v2/models/add_sub/versions/1").status, 200);
  EXPECT_EQ(c.Request("GET", "/v2/models/add_sub/versions/7").status, 404);
  EXPECT_EQ(c.Request("GET", "/v2/models/nope").status, 404);
  EXPECT_EQ(c.Request("GET", "/v2/models/add_sub/ready").status, 200);
  EXPECT_EQ(c.Request("GET", "/v2/models/add_sub/versions/1/ready").status, 200);
  EXPECT_EQ(c.Request("GET", "/v2/models/unloaded/ready").status, 503);
  EXPECT_EQ(c.Request("GET", "/v2/models/nope/ready").status, 404);
  EXPECT_EQ(c.Request("GET", "/v3/whatever").status, 404);
  auto wrong = c.Request("GET", "/v2/models/add_sub/infer");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.headers["allow"], "POST");
  auto err = c.Request("GET", "/v2/models/nope");
  EXPECT_NE(json::parse(err.body)["error"].get<std::string>().find("nope"), std::string::npos);
}

TEST_F(HttpServerTest, InferJsonComputesAddSub) {
  HttpClient c(port());
  auto a = Iota(-50), b = Iota(3);
  auto r = c.Request("POST", "/v2/models/add_sub/infer", AddSubJson(a, b));
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["model_name"], "add_sub");
  for (const auto& o : j["outputs"]) {
    auto data = o["data"].get<std::vector<int32_t>>();
    ASSERT_EQ(data.size(), 16u);
    for (int i = 0; i < 16; ++i)
      EXPECT_EQ(data[i], o["name"] == "OUTPUT0" ? a[i] + b[i] : a[i] - b[i]);
  }
  // Versioned route and keep-alive on the same connection.
  EXPECT_EQ(c.Request("POST", "/v2/models/add_sub/versions/1/infer", AddSubJson(a, b)).status, 200);
}

TEST_F(HttpServerTest, JsonAndBinaryInferAgreeBitForBit) {
  HttpClient c(port());
  std::vector<float> a(16), b(16);
  for (int i = 0; i < 16; ++i) {
    a[i] = 0.1f * i - 0.7f;
    b[i] = 1.0f / (i + 3);
  }
  json jreq;
  jreq["inputs"] = json::array({{{"name", "INPUT0"}, {"datatype", "FP32"}, {"shape", {1, 16}}, {"data", a}},
                                {{"name", "INPUT1"}, {"datatype", "FP32"}, {"shape", {1, 16}}, {"data", b}}});
  auto jr = c.Request("POST", "/v2/models/add_sub_fp32/infer", jreq.dump());
  ASSERT_EQ(jr.status, 200) << jr.body;

  json breq;
  breq["inputs"] = json::array(
      {{{"name", "INPUT0"}, {"datatype", "FP32"}, {"shape", {1, 16}}, {"parameters", {{"binary_data_size", 64}}}},
       {{"name", "INPUT1"}, {"datatype", "FP32"}, {"shape", {1, 16}}, {"parameters", {{"binary_data_size", 64}}}}});
  breq["parameters"] = {{"binary_data_output", true}};
  std::string header = breq.dump();
  std::string body = header;
  body.append(reinterpret_cast<const char*>(a.data()), 64);
  body.append(reinterpret_cast<const char*>(b.data()), 64);
  auto br = c.Request("POST", "/v2/models/add_sub_fp32/infer", body,
                      {{"Inference-Header-Content-Length", std::to_string(header.size())},
                       {"Content-Type", "application/octet-stream"}});
  ASSERT_EQ(br.status, 200) << br.body;
  ASSERT_TRUE(br.headers.count("inference-header-content-length"));
  size_t hl = std::stoul(br.headers["inference-header-content-length"]);
  json bh = json::parse(br.body.substr(0, hl));
  json jj = json::parse(jr.body);
  size_t offset = hl;
  for (size_t k = 0; k < 2; ++k) {
    ASSERT_EQ(bh["outputs"][k]["name"], jj["outputs"][k]["name"]);
    size_t n = bh["outputs"][k]["parameters"]["binary_data_size"];
    ASSERT_EQ(n, 64u);
    for (int i = 0; i < 16; ++i) {
      float from_json = jj["outputs"][k]["data"][i].get<float>();
      float from_bin;
      std::memcpy(&from_bin, br.body.data() + offset + 4 * i, 4);
      float expect = k == 0 ? a[i] + b[i] : a[i] - b[i];
      EXPECT_EQ(std::memcmp(&from_json, &from_bin, 4), 0) << k << "," << i;
      EXPECT_EQ(std::memcmp(&expect, &from_bin, 4), 0) << k << "," << i;
    }
    offset += n;
  }
  EXPECT_EQ(offset, br.body.size());
}

TEST_F(HttpServerTest, StatusCodeMapping) {
  HttpClient c(port());
  std::vector<float> z(16, 1.0f);
  json req;
  req["inputs"] = json::array({{{"name", "INPUT0"}, {"datatype", "FP32"}, {"shape", {1, 16}}, {"data", z}},
                               {{"name", "INPUT1"}, {"datatype", "FP32"}, {"shape", {1, 16}}, {"data", z}}});
  auto busy = c.Request("POST", "/v2/models/busy/infer", req.dump());
  EXPECT_EQ(busy.status, 429);
  EXPECT_EQ(busy.headers["retry-after"], "1");
  EXPECT_EQ(c.Request("POST", "/v2/models/nofit/infer", req.dump()).status, 503);
  EXPECT_EQ(c.Request("POST", "/v2/models/nope/infer", req.dump()).status, 404);
  json delay;
  delay["parameters"] = {{"timeout", 20000}};  // 20 ms, the model takes 2 s
  delay["inputs"] = json::array({{{"name", "INPUT0"}, {"datatype", "FP32"}, {"shape", {1, 1}}, {"data", {2000}}}});
  auto t0 = std::chrono::steady_clock::now();
  auto d = c.Request("POST", "/v2/models/delay/infer", delay.dump());
  EXPECT_EQ(d.status, 504) << d.body;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  delay["parameters"] = {{"timeout", 5000000}};
  delay["inputs"][0]["data"] = {10};
  EXPECT_EQ(c.Request("POST", "/v2/models/delay/infer", delay.dump()).status, 200);
  auto bytes = c.Request("POST", "/v2/models/add_sub/infer",
                         R"({"inputs":[{"name":"INPUT0","datatype":"BYTES","shape":[1],"data":["x"]}]})");
  EXPECT_EQ(bytes.status, 501);
  EXPECT_NE(bytes.body.find("BYTES"), std::string::npos);
}

TEST_F(HttpServerTest, RepositoryExtension) {
  HttpClient c(port());
  auto idx = c.Request("POST", "/v2/repository/index", "");
  ASSERT_EQ(idx.status, 200);
  json all = json::parse(idx.body);
  auto ready = json::parse(c.Request("POST", "/v2/repository/index", R"({"ready":true})").body);
  EXPECT_EQ(all.size(), ready.size() + 1);  // "unloaded" is not ready
  const std::map<std::string, std::string> auth = {{"Authorization", "Bearer s3cret"}};
  EXPECT_EQ(c.Request("POST", "/v2/repository/models/unloaded/load").status, 401);
  EXPECT_EQ(c.Request("POST", "/v2/repository/models/unloaded/load", "", auth).status, 200);
  EXPECT_EQ(c.Request("GET", "/v2/models/unloaded/ready").status, 200);
  EXPECT_EQ(c.Request("POST", "/v2/repository/models/unloaded/unload", "", auth).status, 200);
  EXPECT_EQ(c.Request("GET", "/v2/models/unloaded/ready").status, 503);
  EXPECT_EQ(c.Request("POST", "/v2/repository/models/nope/load", "", auth).status, 404);
}

TEST_F(HttpServerTest, ManagementApi) {
  HttpClient c(port());
  auto d = c.Request("GET", "/v2/gpuhive/devices");
  ASSERT_EQ(d.status, 200);
  json dj = json::parse(d.body);
  EXPECT_EQ(dj[0]["id"], "cpu");
  EXPECT_GT(dj[0]["used_by_model"]["add_sub"].get<uint64_t>(), 0u);
  auto ms = c.Request("GET", "/v2/gpuhive/models");
  ASSERT_EQ(ms.status, 200);
  EXPECT_GE(json::parse(ms.body).size(), 5u);
  EXPECT_EQ(c.Request("GET", "/v2/gpuhive/models/nope").status, 404);
  const std::string settings = R"({"priority":2,"tenant":"batch","memory_limit":"2GiB"})";
  EXPECT_EQ(c.Request("PUT", "/v2/gpuhive/models/add_sub/settings", settings).status, 401);
  EXPECT_EQ(c.Request("PUT", "/v2/gpuhive/models/add_sub/settings", settings,
                      {{"Authorization", "Bearer wrong"}}).status, 401);
  auto ok = c.Request("PUT", "/v2/gpuhive/models/add_sub/settings", settings,
                      {{"Authorization", "Bearer s3cret"}});
  ASSERT_EQ(ok.status, 200) << ok.body;
  json mj = json::parse(c.Request("GET", "/v2/gpuhive/models/add_sub").body);
  EXPECT_EQ(mj["priority"], 2);
  EXPECT_EQ(mj["tenant"], "batch");
  EXPECT_EQ(mj["memory_limit_bytes"], 2ull << 30);
  EXPECT_EQ(mj["precision"]["name"], "int8");
  EXPECT_DOUBLE_EQ(mj["precision"]["rel_l2"].get<double>(), 0.0123);
  EXPECT_EQ(mj["precision"]["top1_agreement"].get<double>(), -1);
  EXPECT_NE(mj["precision"]["note"].get<std::string>().find("rel L2"), std::string::npos);
  auto bad = c.Request("POST", "/v2/gpuhive/models/add_sub/settings", R"({"colour":"red"})",
                       {{"Authorization", "Bearer s3cret"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("colour"), std::string::npos);
}

// Issue 16: 4294967297 was read as an int and stored as priority 1.
TEST_F(HttpServerTest, SettingsRefuseIntegersOutOfRange) {
  HttpClient c(port());
  const std::map<std::string, std::string> auth = {{"Authorization", "Bearer s3cret"}};
  const int before = json::parse(c.Request("GET", "/v2/gpuhive/models/add_sub").body)["priority"].get<int>();
  for (const char* body : {R"({"priority":4294967297})", R"({"priority":-4294967295})",
                           R"({"priority":18446744073709551615})", R"({"priority":2147483648})"}) {
    auto r = c.Request("PUT", "/v2/gpuhive/models/add_sub/settings", body, auth);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
    EXPECT_NE(r.body.find("priority"), std::string::npos) << r.body;
  }
  EXPECT_EQ(json::parse(c.Request("GET", "/v2/gpuhive/models/add_sub").body)["priority"].get<int>(), before);
  EXPECT_EQ(c.Request("PUT", "/v2/gpuhive/models/add_sub/settings", R"({"priority":1})", auth).status, 200);
}

// RFC 7235: the auth scheme is case-insensitive ("bearer", "BEARER"); the token is not.
TEST_F(HttpServerTest, BearerSchemeIsCaseInsensitive) {
  HttpClient c(port());
  for (const char* value : {"Bearer s3cret", "bearer s3cret", "BEARER s3cret", "bEaReR s3cret"}) {
    auto r = c.Request("POST", "/v2/repository/models/unloaded/load", "", {{"Authorization", value}});
    EXPECT_EQ(r.status, 200) << value << " -> " << r.body;
  }
  for (const char* value : {"bearer S3CRET", "bearers3cret", "Basic s3cret", "bearer", "s3cret"}) {
    auto r = c.Request("POST", "/v2/repository/models/unloaded/load", "", {{"Authorization", value}});
    EXPECT_EQ(r.status, 401) << value;
  }
}

TEST_F(HttpServerTest, MetricsEndpoint) {
  HttpClient c(port());
  ASSERT_EQ(c.Request("POST", "/v2/models/add_sub/infer", AddSubJson(Iota(0), Iota(1))).status, 200);
  auto m = c.Request("GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.headers["content-type"].find("version=0.0.4"), std::string::npos);
  EXPECT_NE(m.body.find("gpuhive_inference_requests_total{model=\"add_sub\",version=\"1\",outcome=\"success\"} 1"),
            std::string::npos) << m.body;
  EXPECT_NE(m.body.find("gpuhive_http_requests_total{method=\"POST\",route=\"/v2/models/{model}/infer\",code=\"200\"} 1"),
            std::string::npos) << m.body;
}

TEST_F(HttpServerTest, MetricsPassPromtool) {
  if (std::system("which promtool > /dev/null 2>&1") != 0) GTEST_SKIP() << "promtool not installed";
  HttpClient c(port());
  ASSERT_EQ(c.Request("POST", "/v2/models/add_sub/infer", AddSubJson(Iota(0), Iota(1))).status, 200);
  auto m = c.Request("GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  std::string path = ::testing::TempDir() + "/gpuhive_metrics.txt";
  {
    std::ofstream f(path);
    f << m.body;
  }
  std::string cmd = "promtool check metrics < " + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof(buf), p)) out += buf;
  int rc = pclose(p);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << out;
}

// Raw socket helpers for misbehaving clients.
int Connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads until the peer closes or timeout; returns what was read and whether it closed.
std::pair<std::string, bool> ReadUntilClose(int fd, int timeout_ms) {
  std::string out;
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    end - std::chrono::steady_clock::now()).count());
    if (poll(&p, 1, std::max(left, 1)) <= 0) continue;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return {out, true};
    out.append(buf, static_cast<size_t>(n));
  }
  return {out, false};
}

void SendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

TEST_F(HttpServerTest, BadInputsAnsweredWhileLoadSucceeds) {
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> load;
  for (int t = 0; t < 2; ++t) {
    load.emplace_back([&, t] {
      HttpClient c(port());
      while (!stop) {
        auto a = Iota(t), b = Iota(100);
        auto r = c.Request("POST", "/v2/models/add_sub/infer", AddSubJson(a, b));
        bool good = r.status == 200 &&
                    json::parse(r.body)["outputs"][0]["data"][5].get<int32_t>() == a[5] + b[5];
        (good ? ok : failed)++;
      }
    });
  }
  HttpClient c(port());
  const std::string in1 = R"({"name":"INPUT1","datatype":"INT32","shape":[1,16],"data":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]})";
  struct Case {
    std::string target, body;
    int status;
    std::map<std::string, std::string> headers;
  };
  std::vector<Case> cases = {
      {"/v2/models/add_sub/infer", "{not json", 400, {}},
      {"/v2/models/add_sub/infer", R"({"inputs":[{"name":"X","datatype":"INT32","shape":[1,16],"data":[]}]})", 400, {}},
      {"/v2/models/add_sub/infer", R"({"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1,16],"data":[]},)" + in1 + "]}", 400, {}},
      {"/v2/models/add_sub/infer", R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[2,8],"data":[1]},)" + in1 + "]}", 400, {}},
      {"/v2/models/add_sub/infer", R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1,16],"data":[1,2]},)" + in1 + "]}", 400, {}},
      {"/v2/models/add_sub/infer", R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1,16],"parameters":{"binary_data_size":60}},)" + in1 + "]}" + std::string(60, 'x'), 400, {}},
      {"/v2/models/add_sub/versions/9/infer", AddSubJson(Iota(0), Iota(0)), 404, {}},
      {"/v2/models/ghost/infer", AddSubJson(Iota(0), Iota(0)), 404, {}},
      {"/v2/models/add_sub/infer", AddSubJson(Iota(0), Iota(0)), 400, {{"Inference-Header-Content-Length", "abc"}}},
  };
  // The binary case needs its header length.
  cases[5].headers["Inference-Header-Content-Length"] =
      std::to_string(cases[5].body.size() - 60);
  for (const auto& k : cases) {
    auto r = c.Request("POST", k.target, k.body, k.headers);
    EXPECT_EQ(r.status, k.status) << k.target << " " << k.body << " -> " << r.body;
    if (r.status >= 400) {
      auto j = json::parse(r.body, nullptr, false);
      EXPECT_TRUE(j.is_object() && j.contains("error")) << r.body;
    }
  }
  // Oversized body: 413, and the server says so before reading it all.
  {
    int fd = Connect(port());
    ASSERT_GE(fd, 0);
    SendAll(fd, "POST /v2/models/add_sub/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n");
    auto [text, closed] = ReadUntilClose(fd, 3000);
    EXPECT_NE(text.find("413"), std::string::npos) << text;
    EXPECT_NE(text.find("exceeds the limit"), std::string::npos) << text;
    close(fd);
  }
  // Slow client: sends half a header and stalls; closed after the idle timeout (400 ms).
  {
    int fd = Connect(port());
    ASSERT_GE(fd, 0);
    SendAll(fd, "POST /v2/models/add_sub/infer HTTP/1.1\r\nHost: x\r\n");
    auto t0 = std::chrono::steady_clock::now();
    auto [text, closed] = ReadUntilClose(fd, 5000);
    EXPECT_TRUE(closed);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
    close(fd);
  }
  // Half-closed client: a partial request then shutdown(SHUT_WR).
  {
    int fd = Connect(port());
    ASSERT_GE(fd, 0);
    SendAll(fd, "POST /v2/models/add_sub/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"in");
    shutdown(fd, SHUT_WR);
    auto [text, closed] = ReadUntilClose(fd, 3000);
    EXPECT_TRUE(closed);
    close(fd);
  }
  // Garbage that is not HTTP at all.
  {
    int fd = Connect(port());
    ASSERT_GE(fd, 0);
    SendAll(fd, "\x01\x02 NOT HTTP\r\n\r\n");
    auto [text, closed] = ReadUntilClose(fd, 3000);
    EXPECT_TRUE(closed);
    close(fd);
  }
  // Oversized header.
  {
    int fd = Connect(port());
    ASSERT_GE(fd, 0);
    SendAll(fd, "GET /v2 HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(40000, 'a') + "\r\n\r\n");
    auto [text, closed] = ReadUntilClose(fd, 3000);
    EXPECT_NE(text.find("431"), std::string::npos) << text.substr(0, 200);
    close(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  stop = true;
  for (auto& t : load) t.join();
  EXPECT_GT(ok.load(), 10);
  EXPECT_EQ(failed.load(), 0);
}

TEST_F(HttpServerTest, PipelinedRequestsAnsweredInOrder) {
  int fd = Connect(port());
  ASSERT_GE(fd, 0);
  std::string a = AddSubJson(Iota(1), Iota(2));
  std::string req;
  // A slow inference first, then fast ones: answers must still come back in request order.
  std::string delay = R"({"id":"slow","inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1,1],"data":[50]}]})";
  req += "POST /v2/models/delay/infer HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(delay.size()) + "\r\n\r\n" + delay;
  req += "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n";
  req += "POST /v2/models/add_sub/infer HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
         std::to_string(a.size()) + "\r\n\r\n" + a;
  SendAll(fd, req);
  auto [text, closed] = ReadUntilClose(fd, 5000);
  close(fd);
  EXPECT_TRUE(closed);
  size_t slow = text.find("\"id\":\"slow\"");
  size_t live = text.find("{}");
  size_t add = text.find("\"model_name\":\"add_sub\"");
  ASSERT_NE(slow, std::string::npos) << text;
  ASSERT_NE(live, std::string::npos) << text;
  ASSERT_NE(add, std::string::npos) << text;
  EXPECT_LT(slow, live);
  EXPECT_LT(live, add);
}

TEST(HttpServerOptionsTest, RejectsBadOptionsAndBusyPort) {
  FakeService svc;
  HttpServerOptions o;
  o.port = 0;
  o.threads = 0;
  EXPECT_EQ(HttpServer::Start(&svc, o).status().code(), StatusCode::kInvalidArgument);
  o.threads = 1;
  o.address = "not-an-ip";
  EXPECT_EQ(HttpServer::Start(&svc, o).status().code(), StatusCode::kInvalidArgument);
  o.address = "127.0.0.1";
  auto first = HttpServer::Start(&svc, o);
  ASSERT_TRUE(first.ok());
  o.port = (*first)->port();
  // SO_REUSEADDR does not allow two listeners on one port.
  EXPECT_EQ(HttpServer::Start(&svc, o).status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace gpuhive::server
