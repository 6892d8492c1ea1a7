// Issue 16's probes of `gpuhive serve` that need the real core service: requests a fair but
// hostile client sends, answered with a clear 4xx and without growing or corrupting state.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>

#include "e2e_support.h"

namespace gpuhive::server::testing {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// The repository index as a strict parser reads it (nlohmann refuses invalid UTF-8).
json Index(HttpClient& c) {
  auto r = c.Request("POST", "/v2/repository/index");
  EXPECT_EQ(r.status, 200) << r.body;
  return json::parse(r.body);
}

std::set<std::string> Names(const json& index) {
  std::set<std::string> names;
  for (const auto& e : index) names.insert(e["name"].get<std::string>());
  return names;
}

// Loads of names that are not models (path tricks, NUL bytes, nothing there) are refused and leave
// nothing behind: before the fix each refused name stayed in the index (20,000 calls: 10 MB).
void ExpectFailedLoadsLeaveNoTrace(ServeMode mode, residency::ControlMode control) {
  CoreOptions o;
  o.mode = mode;
  o.control_mode = control;
  auto s = StartServer(o);
  ASSERT_NE(s, nullptr);
  HttpClient c(s->http->port());
  const json before = Index(c);
  const size_t models_before = json::parse(c.Request("GET", "/v2/gpuhive/models").body).size();
  const std::vector<std::string> bad = {
      "..%2Fx", "a%2Fb", "tiny_mlp%00x", "identity_fp32%00x", "%00", "..", "%2E%2E", ".hidden", "x%0Ay", "ghost",
      "%FF%FE",
  };
  for (int round = 0; round < 50; ++round) {
    for (const auto& name : bad) {
      std::string n = name + (round % 2 ? std::to_string(round) : "");
      auto r = c.Request("POST", "/v2/repository/models/" + n + "/load");
      EXPECT_TRUE(r.status == 400 || r.status == 404) << n << " -> " << r.status << " " << r.body;
    }
  }
  const json after = Index(c);
  EXPECT_EQ(after.size(), before.size());
  EXPECT_TRUE(Names(after) == Names(before));
  EXPECT_EQ(json::parse(c.Request("GET", "/v2/gpuhive/models").body).size(), models_before);
  // A real model still loads.
  EXPECT_EQ(c.Request("POST", "/v2/repository/models/tiny_mlp/load").status, 200);
  EXPECT_EQ(c.Request("POST", "/v2/models/tiny_mlp/infer", TinyMlpJson(1).dump()).status, 200);
}

TEST(HostileProbe, FailedLoadsDoNotGrowTheIndex) {
  ExpectFailedLoadsLeaveNoTrace(ServeMode::kGpuhive, residency::ControlMode::kExplicit);
}

TEST(HostileProbe, FailedLoadsDoNotGrowTheIndexInNoneMode) {
  ExpectFailedLoadsLeaveNoTrace(ServeMode::kGpuhive, residency::ControlMode::kNone);
}

TEST(HostileProbe, FailedLoadsDoNotGrowTheIndexInNaiveMode) {
  ExpectFailedLoadsLeaveNoTrace(ServeMode::kNaive, residency::ControlMode::kExplicit);
}

}  // namespace
}  // namespace gpuhive::server::testing
