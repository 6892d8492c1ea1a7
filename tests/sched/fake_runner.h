// Test doubles for the scheduler: a runner that doubles its input (so outputs can be checked per
// request), records every batch it runs, can be held at a gate, and sleeps a set service time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gpuhive/scheduler.h"

namespace gpuhive::sched::testing {

// A gate that holds every runner that reaches it until Open().
class Gate {
 public:
  void Open();
  // Blocks until open. Returns false after 10 s (a test bug, not a hang).
  bool Wait();
  // Blocks until `n` runners wait at the gate (or 10 s pass); returns whether they did.
  bool WaitForWaiters(int n);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int waiters_ = 0;
};

struct BatchRecord {
  int64_t rows = 0;
  std::vector<float> first_values;  // x[r, 0] of every row, in order
  int device_index = 0;
  int worker_index = 0;
  int64_t start_ns = 0, end_ns = 0;  // when the run began (before the gate and the sleep) and ended
};

class FakeRunner : public ModelRunner {
 public:
  struct Options {
    int64_t service_us = 0;                  // sleep per batch
    int64_t service_us_per_row = 0;          // and per row of the batch
    std::function<int64_t(int device)> service_us_by_device;  // overrides service_us when set
    std::shared_ptr<Gate> gate;              // held here before running when set
    std::function<void()> on_run;            // called at the start of every batch
    uint64_t row_bytes = 0;                  // OneRowActivationBytes: known from the start
    bool row_bytes_after_first_run = false;  // or only once a batch has run (as a lazy model)
    bool pads_to_powers_of_two = false;      // ExecutedRows: the next power of two (as the engine)
  };
  explicit FakeRunner(Options options) : options_(std::move(options)) {}

  // y = 2 * x, same shape. Input "x", output "y".
  StatusOr<std::vector<Tensor>> RunBatch(const std::vector<TensorView>& inputs, const WorkerContext& worker) override;
  std::vector<std::string> input_names() const override { return {"x"}; }
  std::vector<std::string> output_names() const override { return {"y"}; }
  uint64_t OneRowActivationBytes() const override {
    return !options_.row_bytes_after_first_run || ran_.load() ? options_.row_bytes : 0;
  }

  int64_t ExecutedRows(int64_t rows) const override {
    int64_t executed = 1;
    while (options_.pads_to_powers_of_two && executed < rows) executed *= 2;
    return options_.pads_to_powers_of_two ? executed : rows;
  }

  std::vector<BatchRecord> batches() const;
  // first_values of every batch, concatenated in execution order.
  std::vector<float> order() const;

 private:
  Options options_;
  mutable std::mutex mu_;
  std::vector<BatchRecord> batches_;
  std::atomic<bool> ran_{false};
};

// Collects responses by request id; thread safe.
class Collector {
 public:
  ResponseCallback Callback();
  // Waits until `n` responses arrived (10 s at most); returns whether they did.
  bool WaitFor(size_t n);
  std::vector<InferenceResponse> responses() const;
  InferenceResponse Get(const std::string& id) const;  // empty response if none
  size_t count(const std::string& id) const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<InferenceResponse> responses_;
};

// A request for `model` whose input x has `rows` rows of `cols` values, x[r, c] = value + r.
std::unique_ptr<InferenceRequest> MakeRequest(const std::string& model, float value, int64_t rows, int64_t cols,
                                              ResponseCallback cb, int priority = -1, const std::string& tenant = "");

}  // namespace gpuhive::sched::testing
