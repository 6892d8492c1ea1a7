#include "gpuhive/monitor/metrics.h"

#include <gtest/gtest.h>

#include <limits>
#include <thread>

#include "gpuhive/monitor/host_metrics.h"
#include "gpuhive/monitor/metric_names.h"

namespace gpuhive::monitor {
namespace {

TEST(MetricsTest, CounterAndGaugeExposition) {
  Registry r;
  auto c = r.AddCounter("gpuhive_things_total", "Things.\nSecond line \\ here", {"model"});
  ASSERT_TRUE(c.ok());
  (*c)->Labels({"a\"b\\c\nd"})->Inc(2);
  (*c)->Labels({"plain"})->Inc();
  (*c)->Labels({"plain"})->Inc(-5);  // ignored
  auto g = r.AddGauge("gpuhive_level", "Level.");
  ASSERT_TRUE(g.ok());
  (*g)->Labels({})->Set(1.5);
  std::string text = r.Expose();
  EXPECT_NE(text.find("# HELP gpuhive_things_total Things.\\nSecond line \\\\ here\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE gpuhive_things_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("gpuhive_things_total{model=\"a\\\"b\\\\c\\nd\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("gpuhive_things_total{model=\"plain\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE gpuhive_level gauge\ngpuhive_level 1.5\n"), std::string::npos) << text;
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  Registry r;
  auto h = r.AddHistogram("gpuhive_lat_seconds", "Latency.", {"model"}, {0.1, 1.0});
  ASSERT_TRUE(h.ok());
  Histogram* child = (*h)->Labels({"m"});
  child->Observe(0.05);
  child->Observe(0.1);  // le is inclusive
  child->Observe(0.5);
  child->Observe(7);
  std::string text = r.Expose();
  EXPECT_NE(text.find("gpuhive_lat_seconds_bucket{model=\"m\",le=\"0.1\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("gpuhive_lat_seconds_bucket{model=\"m\",le=\"1\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("gpuhive_lat_seconds_bucket{model=\"m\",le=\"+Inf\"} 4\n"), std::string::npos) << text;
  EXPECT_NE(text.find("gpuhive_lat_seconds_sum{model=\"m\"} 7.65\n"), std::string::npos) << text;
  EXPECT_NE(text.find("gpuhive_lat_seconds_count{model=\"m\"} 4\n"), std::string::npos) << text;
}

TEST(MetricsTest, RegistrationValidation) {
  Registry r;
  EXPECT_FALSE(r.AddCounter("bad name", "x").ok());
  EXPECT_FALSE(r.AddCounter("gpuhive_x_total", "x", {"__reserved"}).ok());
  EXPECT_FALSE(r.AddHistogram("gpuhive_h", "x", {"le"}, {1}).ok());
  EXPECT_FALSE(r.AddHistogram("gpuhive_h", "x", {}, {2, 1}).ok());
  auto a = r.AddCounter("gpuhive_x_total", "x", {"a"});
  auto b = r.AddCounter("gpuhive_x_total", "x", {"a"});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  auto c = r.AddGauge("gpuhive_x_total", "x", {"a"});
  EXPECT_EQ(c.status().code(), StatusCode::kAlreadyExists);
}

TEST(MetricsTest, WrongLabelCountGoesToHiddenSink) {
  Registry r;
  auto c = r.AddCounter("gpuhive_y_total", "y", {"a", "b"});
  ASSERT_TRUE(c.ok());
  (*c)->Labels({"only-one"})->Inc();
  EXPECT_EQ(r.Expose(), "");
}

TEST(MetricsTest, RemoveHidesChildButKeepsPointerValid) {
  Registry r;
  auto g = r.AddGauge("gpuhive_g", "g", {"gpu"});
  ASSERT_TRUE(g.ok());
  Gauge* held = (*g)->Labels({"0"});
  held->Set(3);
  (*g)->Remove({"0"});
  held->Set(4);  // still valid
  EXPECT_EQ(r.Expose().find("gpuhive_g{"), std::string::npos);
  (*g)->Labels({"0"})->Set(5);
  EXPECT_NE(r.Expose().find("gpuhive_g{gpu=\"0\"} 5"), std::string::npos);
}

TEST(MetricsTest, ConcurrentIncrementsAreNotLost) {
  Registry r;
  auto c = r.AddCounter("gpuhive_z_total", "z", {"t"});
  auto h = r.AddHistogram("gpuhive_zh", "z", {}, {0.5});
  ASSERT_TRUE(c.ok() && h.ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        (*c)->Labels({"x"})->Inc();
        (*h)->Labels({})->Observe(1.0);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ((*c)->Labels({"x"})->Value(), 80000);
  auto snap = (*h)->Labels({})->Collect();
  EXPECT_EQ(snap.count, 80000u);
  EXPECT_EQ(snap.cumulative[0], 0u);
  EXPECT_DOUBLE_EQ(snap.sum, 80000.0);
}

TEST(MetricsTest, FormatValues) {
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(FormatMetricValue(42), "42");
  EXPECT_EQ(FormatMetricValue(0.25), "0.25");
}

TEST(MetricNamesTest, AllFamiliesRegisterAndFollowConventions) {
  Registry r;
  auto m = RegisterGpuhiveMetrics(&r);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE(RegisterGpuhiveMetrics(&r).ok());  // idempotent
  EXPECT_EQ(r.FamilyNames().size(), AllMetricDefs().size());
  int triton = 0;
  for (const MetricDef& d : AllMetricDefs()) {
    std::string n = d.name;
    if (n.starts_with("nv_")) {
      // Triton's names (its conventions, not Prometheus's): counters without _total, microseconds.
      ++triton;
      EXPECT_NE(d.type, MetricType::kHistogram) << n;
      continue;
    }
    EXPECT_TRUE(n.starts_with("gpuhive_")) << n;
    bool total = n.ends_with("_total");
    EXPECT_EQ(total, d.type == MetricType::kCounter) << n;
    if (d.type == MetricType::kHistogram && n != "gpuhive_batch_size") {
      EXPECT_TRUE(n.ends_with("_seconds")) << n;
    }
  }
  EXPECT_EQ(triton, 19);
  m->inference_requests_total->Labels({"add_sub", "1", "success"})->Inc();
  EXPECT_NE(r.Expose().find("gpuhive_inference_requests_total{model=\"add_sub\",version=\"1\","
                            "outcome=\"success\"} 1"),
            std::string::npos);
}

TEST(HostMetricsTest, ReadsProcAndExportsOnScrape) {
  HostSample s = ReadHostSample();
  ASSERT_TRUE(s.process_rss_bytes.has_value());
  EXPECT_GT(*s.process_rss_bytes, 1024u * 1024u);
  ASSERT_TRUE(s.host_memory_total_bytes.has_value());
  ASSERT_TRUE(s.host_memory_available_bytes.has_value());
  EXPECT_LE(*s.host_memory_available_bytes, *s.host_memory_total_bytes);
  Registry r;
  auto m = RegisterGpuhiveMetrics(&r);
  ASSERT_TRUE(m.ok());
  InstallHostMetrics(&r, *m);
  std::string text = r.Expose();
  EXPECT_NE(text.find("gpuhive_process_resident_memory_bytes "), std::string::npos);
  EXPECT_NE(text.find("gpuhive_host_memory_total_bytes "), std::string::npos);
  EXPECT_NE(text.find("gpuhive_process_cpu_seconds_total "), std::string::npos);
}

}  // namespace
}  // namespace gpuhive::monitor
