// Latency profile of one model on one device: device time by batch size, from measurements at load
// and an exponentially weighted moving average of every batch run since. Not thread safe (the
// scheduler guards it with its lock).
#pragma once

#include <cstdint>
#include <vector>

#include "gpuhive/scheduler.h"

namespace gpuhive::sched::detail {

class LatencyProfile {
 public:
  LatencyProfile(int max_batch_size, double alpha);

  // Adds one measurement; the first for a batch size sets it, later ones move the average.
  void Record(int batch_size, int64_t ns);
  // Measured value when known; else linear interpolation between the nearest measured sizes, or
  // extrapolation by the per-row cost of the nearest one; `fallback` when nothing is measured.
  int64_t Estimate(int batch_size, int64_t fallback) const;
  std::vector<LatencyPoint> Points() const;
  bool empty() const { return measured_ == 0; }

 private:
  double alpha_;
  std::vector<double> ns_;  // index: batch size; 0 = not measured
  int measured_ = 0;
};

}  // namespace gpuhive::sched::detail
