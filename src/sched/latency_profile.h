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

// Batch sizes under SchedulerOptions::batch_min_gain, from `prof` (null or empty: nothing
// measured). Doubling from 1 up to `max_rows`, a measured size is kept while its time per row is
// at least `min_gain` below the kept one's: `proven` is the largest kept (at least 1). `trial` is
// the next size when it is not measured yet (so a batch of it may run to measure it), else 0.
// `next` is the next size when it was measured and did not pay (worth measuring again now and
// then: one measurement may have been unlucky), else 0.
struct BatchLimits {
  int64_t proven = 1;
  int64_t trial = 0;
  int64_t next = 0;
};
BatchLimits BatchLimitsFor(const LatencyProfile* prof, int64_t max_rows, double min_gain);
// The most rows allowed: the trial size when there is one, else the proven one.
inline int64_t BatchLimitFor(const LatencyProfile* prof, int64_t max_rows, double min_gain) {
  BatchLimits l = BatchLimitsFor(prof, max_rows, min_gain);
  return l.trial > 0 ? l.trial : l.proven;
}

}  // namespace gpuhive::sched::detail
