// Percentiles against an independent brute-force reference; Poisson arrivals against the
// statistics of a Poisson process (seeded, so deterministic).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "cli/loadgen/stats.h"

namespace gpuhive::loadgen {
namespace {

// Reference from the definition: the smallest sample v with #{x <= v} >= p/100 * n.
double ReferencePercentile(const std::vector<double>& values, double p) {
  double best = INFINITY;
  for (double v : values) {
    size_t at_most = 0;
    for (double x : values) at_most += x <= v;
    if (static_cast<double>(at_most) >= p / 100.0 * static_cast<double>(values.size()) && v < best) best = v;
  }
  return best;
}

TEST(PercentileTest, MatchesBruteForceDefinition) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(1.0, 0.8);
  for (size_t n : {1u, 2u, 7u, 100u, 1001u}) {
    std::vector<double> v(n);
    for (auto& x : v) x = std::round(dist(rng) * 100) / 100;  // ties included
    LatencySummary s = Summarize(v);
    EXPECT_EQ(s.count, n);
    EXPECT_DOUBLE_EQ(s.p50, ReferencePercentile(v, 50)) << n;
    EXPECT_DOUBLE_EQ(s.p90, ReferencePercentile(v, 90)) << n;
    EXPECT_DOUBLE_EQ(s.p95, ReferencePercentile(v, 95)) << n;
    EXPECT_DOUBLE_EQ(s.p99, ReferencePercentile(v, 99)) << n;
    EXPECT_DOUBLE_EQ(s.max, *std::max_element(v.begin(), v.end()));
    EXPECT_DOUBLE_EQ(s.min, *std::min_element(v.begin(), v.end()));
    double sum = 0;
    for (double x : v) sum += x;
    EXPECT_NEAR(s.mean, sum / static_cast<double>(n), 1e-9);
  }
}

TEST(PercentileTest, SmallKnownCases) {
  std::vector<double> v = {5, 1, 4, 2, 3};  // sorted 1..5
  LatencySummary s = Summarize(v);
  EXPECT_DOUBLE_EQ(s.p50, 3);
  EXPECT_DOUBLE_EQ(s.p99, 5);
  std::vector<double> hundred(100);
  for (int i = 0; i < 100; ++i) hundred[static_cast<size_t>(i)] = 100 - i;  // 1..100, reversed
  s = Summarize(hundred);
  EXPECT_DOUBLE_EQ(s.p50, 50);
  EXPECT_DOUBLE_EQ(s.p95, 95);
  EXPECT_DOUBLE_EQ(s.p99, 99);
  EXPECT_EQ(Summarize({}).count, 0u);
  EXPECT_DOUBLE_EQ(Summarize({}).p99, 0);
}

TEST(PoissonArrivalsTest, RateAndDispersionMatchAPoissonProcess) {
  const double rate = 250;
  PoissonArrivals arrivals(rate, 7);
  const int n = 200000;
  double t = 0, sum = 0, sum_sq = 0;
  std::vector<int> per_second(static_cast<size_t>(n / rate * 1.2) + 2, 0);
  for (int i = 0; i < n; ++i) {
    double g = arrivals.NextGapSeconds();
    ASSERT_GT(g, 0);
    sum += g;
    sum_sq += g * g;
    t += g;
    ++per_second[static_cast<size_t>(t)];
  }
  double mean = sum / n;
  double var = sum_sq / n - mean * mean;
  EXPECT_NEAR(mean, 1 / rate, 0.01 / rate);                // 1% (std error ~0.22%)
  EXPECT_NEAR(var, 1 / (rate * rate), 0.03 / (rate * rate));  // exponential: variance = mean^2
  // Counts per whole second: mean = variance = rate (index of dispersion 1).
  int seconds = static_cast<int>(t);
  double cm = 0, cv = 0;
  for (int s = 0; s < seconds; ++s) cm += per_second[static_cast<size_t>(s)];
  cm /= seconds;
  for (int s = 0; s < seconds; ++s) cv += std::pow(per_second[static_cast<size_t>(s)] - cm, 2);
  cv /= seconds - 1;
  EXPECT_NEAR(cm, rate, 0.02 * rate);
  EXPECT_NEAR(cv / cm, 1.0, 0.25);
}

TEST(PoissonArrivalsTest, SeedDeterminesTheSequence) {
  PoissonArrivals a(10, 3), b(10, 3), c(10, 4);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    double x = a.NextGapSeconds();
    EXPECT_EQ(x, b.NextGapSeconds());
    differs = differs || x != c.NextGapSeconds();
  }
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace gpuhive::loadgen
