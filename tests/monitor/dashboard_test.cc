// Every metric the Grafana dashboard queries is one gpuhive can export.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <regex>
#include <set>

#include "gpuhive/monitor/metric_names.h"

namespace gpuhive::monitor {
namespace {

void CollectExprs(const nlohmann::json& j, std::vector<std::string>* out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "expr" && it.value().is_string()) out->push_back(it.value().get<std::string>());
      CollectExprs(it.value(), out);
    }
  } else if (j.is_array()) {
    for (const auto& e : j) CollectExprs(e, out);
  }
}

TEST(DashboardTest, EveryQueriedMetricIsExported) {
  std::ifstream f(GPUHIVE_SOURCE_DIR "/monitoring/gpu-dashboard.json");
  ASSERT_TRUE(f.good());
  auto dash = nlohmann::json::parse(f, nullptr, false);
  ASSERT_FALSE(dash.is_discarded()) << "dashboard is not valid JSON";
  std::vector<std::string> exprs;
  CollectExprs(dash, &exprs);
  ASSERT_GE(exprs.size(), 20u);

  Registry r;
  ASSERT_TRUE(RegisterGpuhiveMetrics(&r).ok());
  std::vector<std::string> names = r.SampleNames();
  std::set<std::string> exported(names.begin(), names.end());

  std::regex metric(R"(\b(gpuhive|nv)_[a-zA-Z0-9_:]*)");
  std::set<std::string> used;
  for (const auto& e : exprs) {
    for (auto it = std::sregex_iterator(e.begin(), e.end(), metric); it != std::sregex_iterator(); ++it) {
      used.insert(it->str());
    }
  }
  EXPECT_GE(used.size(), 20u);
  for (const auto& u : used) EXPECT_TRUE(exported.count(u)) << "dashboard queries unknown metric " << u;
  // Latency quantiles come from histograms.
  bool quantile = false;
  for (const auto& e : exprs) quantile |= e.find("histogram_quantile") != std::string::npos;
  EXPECT_TRUE(quantile);
}

// A panel that says it counts inferences counts batch items (inference counts), not requests: a
// batch of 8 is 8 inferences and 1 request.
TEST(DashboardTest, InferencePanelsUseInferenceCounts) {
  std::ifstream f(GPUHIVE_SOURCE_DIR "/monitoring/gpu-dashboard.json");
  auto dash = nlohmann::json::parse(f, nullptr, false);
  ASSERT_FALSE(dash.is_discarded());
  int inference_panels = 0;
  for (const auto& panel : dash["panels"]) {
    std::string title = panel.value("title", "");
    for (char& c : title) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (title.find("inference") == std::string::npos) continue;
    ++inference_panels;
    std::vector<std::string> exprs;
    CollectExprs(panel, &exprs);
    ASSERT_FALSE(exprs.empty()) << title;
    for (const auto& e : exprs) {
      EXPECT_TRUE(e.find("gpuhive_inference_count_total") != std::string::npos ||
                  e.find("nv_inference_count") != std::string::npos)
          << "panel '" << title << "' counts inferences with " << e;
      EXPECT_EQ(e.find("requests_total"), std::string::npos) << title << ": " << e;
      EXPECT_EQ(e.find("nv_inference_request_success"), std::string::npos) << title << ": " << e;
    }
  }
  EXPECT_GE(inference_panels, 1);
}

}  // namespace
}  // namespace gpuhive::monitor
