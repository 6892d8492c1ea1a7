#include "sched/latency_profile.h"

#include <algorithm>

namespace gpuhive::sched::detail {

LatencyProfile::LatencyProfile(int max_batch_size, double alpha)
    : alpha_(alpha), ns_(static_cast<size_t>(std::max(1, max_batch_size)) + 1, 0.0) {}

void LatencyProfile::Record(int batch_size, int64_t ns) {
  if (batch_size < 1 || ns <= 0) return;
  if (static_cast<size_t>(batch_size) >= ns_.size()) ns_.resize(static_cast<size_t>(batch_size) + 1, 0.0);
  double& v = ns_[static_cast<size_t>(batch_size)];
  if (v == 0.0) {
    v = static_cast<double>(ns);
    ++measured_;
  } else {
    v = (1.0 - alpha_) * v + alpha_ * static_cast<double>(ns);
  }
}

void LatencyProfile::RecordAfterWarmup(int batch_size, int64_t ns) {
  if (batch_size < 1 || ns <= 0) return;
  if (static_cast<size_t>(batch_size) >= warm_.size()) warm_.resize(static_cast<size_t>(batch_size) + 1, false);
  if (!warm_[static_cast<size_t>(batch_size)]) {
    warm_[static_cast<size_t>(batch_size)] = true;
    return;
  }
  Record(batch_size, ns);
}

int64_t LatencyProfile::Estimate(int batch_size, int64_t fallback) const {
  if (measured_ == 0) return fallback;
  int b = std::max(1, batch_size);
  int n = static_cast<int>(ns_.size());
  if (b < n && ns_[static_cast<size_t>(b)] > 0.0) return static_cast<int64_t>(ns_[static_cast<size_t>(b)]);
  int lo = std::min(b, n) - 1;
  while (lo >= 1 && ns_[static_cast<size_t>(lo)] == 0.0) --lo;
  int hi = b + 1;
  while (hi < n && ns_[static_cast<size_t>(hi)] == 0.0) ++hi;
  if (lo >= 1 && hi < n) {
    double a = ns_[static_cast<size_t>(lo)], c = ns_[static_cast<size_t>(hi)];
    return static_cast<int64_t>(a + (c - a) * (b - lo) / static_cast<double>(hi - lo));
  }
  if (lo >= 1) return static_cast<int64_t>(ns_[static_cast<size_t>(lo)] * b / lo);
  // Only larger sizes are known: a smaller batch costs at most as much.
  return static_cast<int64_t>(ns_[static_cast<size_t>(hi)]);
}

std::vector<LatencyPoint> LatencyProfile::Points() const {
  std::vector<LatencyPoint> points;
  for (size_t b = 1; b < ns_.size(); ++b) {
    if (ns_[b] > 0.0) points.push_back({static_cast<int>(b), static_cast<int64_t>(ns_[b])});
  }
  return points;
}

BatchLimits BatchLimitsFor(const LatencyProfile* prof, int64_t max_rows, double min_gain) {
  BatchLimits l;
  if (prof == nullptr || prof->Measured(1) <= 0) return l;  // one row first, then grow as sizes prove out
  double proven_per_row = prof->Measured(1);
  for (int64_t b = 2; l.proven < max_rows; b *= 2) {
    const int64_t size = std::min(b, max_rows);
    const double ns = prof->Measured(static_cast<int>(size));
    if (ns <= 0) {
      l.trial = size;  // not measured yet: a batch of it may run, so that it gets measured
      break;
    }
    const double per_row = ns / static_cast<double>(size);
    if (per_row > proven_per_row * (1.0 - min_gain)) {
      l.next = size;
      break;
    }
    l.proven = size;
    proven_per_row = per_row;
  }
  return l;
}

}  // namespace gpuhive::sched::detail
