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

  std::regex metric(R"(\bgpuhive_[a-zA-Z0-9_:]*)");
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

}  // namespace
}  // namespace gpuhive::monitor
