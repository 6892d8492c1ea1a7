// CopyEngine: the "copy stream" of a pipelined swap-in (DESIGN.md "Residency and swapping"). A
// model's weights are copied host tier -> device memory in the order its plan first uses them,
// in chunks, while the request that caused the swap-in already runs: each completed weight
// advances the model's WeightGate, on which execution steps wait.
//
// Every byte moves through the device's copy API (ComputeDevice): one dedicated thread takes jobs in
// submission order and queues each weight's chunks on a low-priority copy stream of the device,
// followed by a host callback that advances the gate once the stream has reached it (the weight is
// in device memory then); the job ends when the stream has drained. On the host device the copies
// happen at once; on the simulated device and a GPU they overlap with execution.
// A chunk hook (ChunkCopy) runs on the copy thread before each chunk is queued so tests can delay
// or fail chunks.
//
// Thread safety: Submit may be called from any thread. Callbacks run on the copy thread with no
// engine lock held.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "gpuhive/compute_device.h"
#include "gpuhive/runtime.h"
#include "gpuhive/status.h"

namespace gpuhive::residency {

// Called before the chunk of `bytes` from host `src` to device `dst` is queued (never dereference
// `dst`: it is device memory). An error fails the job it belongs to; the chunk is not copied.
using ChunkCopy = std::function<Status(void* dst, const void* src, size_t bytes)>;

struct CopyEngineOptions {
  size_t chunk_bytes = 4u << 20;  // weights larger than this are copied in several chunks
  ComputeDevice* device = nullptr;  // whose memory the destinations are; null: the host
  int stream_priority_level = 7;    // the copy stream's level (higher = less urgent than execution)
  ChunkCopy copy;                   // the test hook above; null: none
};

// What one job did: the bytes copied and the time from its first chunk to its last.
struct CopyJobResult {
  Status status;
  uint64_t bytes = 0;
  int64_t copy_ns = 0;
  int64_t queued_ns = 0;  // time it waited behind other jobs
};

class CopyEngine {
 public:
  explicit CopyEngine(CopyEngineOptions options);
  // Cancels jobs not yet started (their gates fail with kCancelled and their callbacks run with
  // that status), finishes nothing else, and joins the copy thread.
  ~CopyEngine();
  CopyEngine(const CopyEngine&) = delete;
  CopyEngine& operator=(const CopyEngine&) = delete;

  // Queues the copies of one model; `gate` is advanced after each weight (WeightCopy::group + 1)
  // and failed on the first chunk error; `done` (may be null) runs once on the copy thread when
  // the job ends. Every destination must stay valid until `done` ran. Background jobs (preloads)
  // queue behind every job that is not: a request waiting for its weights never waits for a
  // prediction's.
  void Submit(std::vector<WeightCopy> copies, std::shared_ptr<WeightGate> gate,
              std::function<void(const CopyJobResult&)> done, bool background = false);
  // Blocks until every job submitted so far has ended.
  void Drain();
  uint64_t bytes_copied() const;

 private:
  struct Job {
    std::vector<WeightCopy> copies;
    std::shared_ptr<WeightGate> gate;
    std::function<void(const CopyJobResult&)> done;
    int64_t submitted_ns = 0;
    bool background = false;
  };
  void Loop();
  CopyJobResult RunJob(Job& job);

  const CopyEngineOptions options_;
  ComputeDevice* const device_;
  std::unique_ptr<DeviceStream> stream_;  // used by the copy thread only
  Status stream_error_;                   // why the stream could not be created
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;     // guarded by mu_
  bool running_job_ = false;  // guarded by mu_
  bool stopping_ = false;     // guarded by mu_
  uint64_t bytes_copied_ = 0; // guarded by mu_
  std::thread thread_;
};

}  // namespace gpuhive::residency
