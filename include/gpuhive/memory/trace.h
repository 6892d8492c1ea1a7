// Allocation traces: a text format, a recorder adaptor that writes it, a replayer, and a workload
// generator that mimics the executor's allocation pattern.
//
// Format (one event per line, '#' starts a comment line):
//   # gpuhive-memory-trace v1
//   a <id> <bytes> <owner> <kind> <stream>     allocation
//   f <id> <bytes> <owner> <kind> <stream>     free of allocation <id>
// kind is weights|activations|workspace|io|other; stream is a small integer (0: the default or
// CPU stream; the recorder numbers other streams in order of appearance). ids are unique among
// live allocations.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gpuhive/memory_resource.h"

namespace gpuhive {

enum class TraceOp : uint8_t { kAlloc, kFree };

struct TraceEvent {
  TraceOp op = TraceOp::kAlloc;
  uint64_t id = 0;
  uint64_t bytes = 0;
  uint32_t owner = 0;
  MemoryKind kind = MemoryKind::kOther;
  uint32_t stream = 0;
  friend bool operator==(const TraceEvent&, const TraceEvent&) = default;
};

struct Trace {
  std::string description;  // the first comment lines after the header, joined
  std::vector<TraceEvent> events;
};

struct TraceSummary {
  uint64_t num_allocations = 0;
  uint64_t num_frees = 0;
  uint64_t peak_live_bytes = 0;
  uint64_t total_bytes = 0;
  uint64_t min_bytes = 0;
  uint64_t max_bytes = 0;
  uint32_t num_owners = 0;
};

std::string FormatTraceEvent(const TraceEvent& e);
std::string FormatTrace(const Trace& trace);
// kInvalidArgument naming the line for malformed input; also checks that every free names a live
// allocation with the same bytes and that no live id is reused.
StatusOr<Trace> ParseTrace(std::string_view text);
StatusOr<Trace> ReadTraceFile(const std::string& path);
Status WriteTraceFile(const Trace& trace, const std::string& path);
TraceSummary SummarizeTrace(const Trace& trace);

// Records every allocation and free passing through it. Keeps the events in memory (Snapshot) and,
// when a path is given, also appends each event to that file as it happens.
class RecorderResource final : public MemoryResource {
 public:
  // kInvalidArgument / kNotFound when `path` cannot be opened for writing.
  static StatusOr<std::unique_ptr<RecorderResource>> Create(MemoryResource* upstream, std::string path = "",
                                                            std::string description = "");
  ~RecorderResource() override;

  Trace Snapshot() const;

  DeviceId device() const override { return upstream_->device(); }
  std::string name() const override { return "recorder(" + upstream_->name() + ")"; }

 private:
  RecorderResource(MemoryResource* upstream, std::FILE* file, std::string description);
  StatusOr<void*> DoAllocate(size_t bytes, AllocTag tag, StreamView stream) override;
  void DoDeallocate(void* ptr, size_t bytes, AllocTag tag, StreamView stream) noexcept override;
  uint32_t StreamIdLocked(void* native);
  void AppendLocked(const TraceEvent& e);

  MemoryResource* const upstream_;
  std::FILE* const file_;
  mutable std::mutex mu_;
  Trace trace_;
  uint64_t next_id_ = 1;
  std::unordered_map<void*, uint64_t> ids_;
  std::unordered_map<void*, uint32_t> streams_;
};

struct ReplayOptions {
  // Stream ids map to these views (id 0 and ids past the end use the default StreamView).
  std::vector<StreamView> streams;
  // A failure counts in failures_under_budget when the trace's live bytes, including the failed
  // request, are at most this.
  uint64_t budget_bytes = UINT64_MAX;
  // Called after every `sample_every` events (never when 0), e.g. to sample fragmentation.
  size_t sample_every = 0;
  std::function<void()> on_sample;
};

struct ReplayResult {
  uint64_t allocations = 0;
  uint64_t failures = 0;
  uint64_t failures_under_budget = 0;
  uint64_t peak_requested_bytes = 0;  // peak of bytes live through the resource
  int64_t elapsed_ns = 0;
  std::string first_error;
};

// Replays the trace through `mr`. Allocations that fail are counted and their frees skipped; all
// memory still live at the end (from a truncated trace) is freed. kInvalidArgument for a trace
// that frees an id that was never allocated.
StatusOr<ReplayResult> ReplayTrace(const Trace& trace, MemoryResource* mr, const ReplayOptions& options = {});

// Synthetic executor workload (what gpuhive's CPU executor allocates, see runtime.h): per model,
// weight tensors allocated at load and freed at unload (kWeights); per request, an activation
// arena sized by the batch size (kActivations), input/output buffers (kIO) and per-node
// workspaces (kWorkspace) freed as the request goes; several workers with overlapping requests;
// models loaded and unloaded while traffic changes.
struct ExecutorWorkloadOptions {
  uint64_t seed = 1;
  int num_model_types = 6;      // distinct models (weights and activation sizes)
  int max_resident = 3;         // models loaded at once
  int num_workers = 2;          // requests in flight at once (one stream each)
  int num_requests = 3000;
  int requests_per_phase = 150;  // a model is unloaded and another loaded between phases
  uint64_t min_model_bytes = 64ull << 20;
  uint64_t max_model_bytes = 768ull << 20;
  uint64_t min_sample_activation_bytes = 4ull << 20;  // activation arena per batch item
  uint64_t max_sample_activation_bytes = 40ull << 20;
};
Trace GenerateExecutorTrace(const ExecutorWorkloadOptions& options);

}  // namespace gpuhive
