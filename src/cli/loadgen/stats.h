// Statistics for the load generator: exact percentiles over all samples (sorted vector, nearest
// rank) and Poisson arrivals for open-loop streams.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace gpuhive::loadgen {

// Nearest-rank percentile of ascending `sorted` values: the smallest value such that at least
// p percent of the values are <= it. p in [0, 100]; 0 for an empty vector.
double PercentileOfSorted(const std::vector<double>& sorted, double p);

struct LatencySummary {
  size_t count = 0;
  double min = 0, mean = 0, p50 = 0, p90 = 0, p95 = 0, p99 = 0, max = 0;
};
// Sorts `values` (taken by value) and summarizes them exactly.
LatencySummary Summarize(std::vector<double> values);

// Inter-arrival gaps of a Poisson process (exponentially distributed, mean 1/rate). Seeded, so a
// scenario sends the same arrival pattern to every compared server mode.
class PoissonArrivals {
 public:
  PoissonArrivals(double rate_per_s, uint64_t seed) : rng_(seed), gap_(rate_per_s) {}
  double NextGapSeconds() { return gap_(rng_); }

 private:
  std::mt19937_64 rng_;
  std::exponential_distribution<double> gap_;
};

}  // namespace gpuhive::loadgen
