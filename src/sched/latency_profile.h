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
  // As Record, except that the first run at each batch size is taken as a warm-up and dropped: it
  // prepares the size's plan (shapes, packed weights, arena), which later runs do not pay.
  void RecordAfterWarmup(int batch_size, int64_t ns);
  // Measured value when known; else linear interpolation between the nearest measured sizes, or
  // extrapolation by the per-row cost of the nearest one; `fallback` when nothing is measured.
  int64_t Estimate(int batch_size, int64_t fallback) const;
  std::vector<LatencyPoint> Points() const;
  // The moving average measured at exactly `batch_size` rows; 0 when not measured.
  double Measured(int batch_size) const {
    return batch_size >= 1 && static_cast<size_t>(batch_size) < ns_.size() ? ns_[static_cast<size_t>(batch_size)] : 0;
  }
  bool empty() const { return measured_ == 0; }

 private:
  double alpha_;
  std::vector<double> ns_;  // index: batch size; 0 = not measured
  std::vector<bool> warm_;  // index: batch size; a run was seen (RecordAfterWarmup)
  int measured_ = 0;
};

// The most rows a batch should take under SchedulerOptions::batch_min_gain, from `prof` (null or
// empty: nothing measured, 1): doubling from 1 up to `max_rows`, a size not yet measured is
// allowed (so it gets measured), a measured one is kept while its time per row is at least
// `min_gain` below the limit's so far.
int64_t BatchLimitFor(const LatencyProfile* prof, int64_t max_rows, double min_gain);

}  // namespace gpuhive::sched::detail
