// Private to ModelManager (manager*.cc): the per-model-version entry, the budget resource and the
// helpers the manager's units share. Nothing outside src/residency includes it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "gpuhive/quantize.h"
#include "gpuhive/residency/manager.h"
#include "gpuhive/units.h"

namespace gpuhive::residency {

namespace detail {

// The last allocation through the budget that failed on this thread (OnAllocationFailure): its
// owner and size. A load or run that failed for memory compares it with the budget to tell "can
// never fit" from "not now" (FailedAllocationCanNeverFit), whoever else held memory.
struct FailedAllocation {
  uint32_t owner = 0;
  uint64_t bytes = 0;
};
extern thread_local FailedAllocation t_failed;

// Why `needed` bytes can never be resident under `budget` and `limit` (0: none); OK when they may.
Status SizeFits(const std::string& name, uint64_t needed, uint64_t budget, uint64_t limit);

// The graph a swap-in compiles: a clone of the host-tier graph, or a fresh import of the bytes.
StatusOr<std::unique_ptr<ir::Model>> HostTierGraph(const ir::Model* host_model, const Buffer& host_copy,
                                                   size_t host_bytes);

// A model's precision as its config asks (ModelConfig::precision; manager_precision.cc). For
// "int8": calibrated on the samples the config names, checked against FP32 (the accuracy gate),
// quantized; the table and the gate's verdict are kept so a later import only re-quantizes.
struct PrecisionState {
  std::string precision = "fp32";  // what the model runs in
  std::string note;                // the gate's measurement, or why it runs FP32
  double rel_l2 = -1, top1 = -1;   // INT8 / BF16 against FP32 at load (-1: not measured)
  std::shared_ptr<const CalibrationTable> table;  // null until calibrated
  std::set<std::string> dynamic_activations;      // int8_keep_float's per-run quantized inputs
  bool decided = false;            // the gate ran (precision says its verdict)
};
// The graph to keep for `config` (precision fp32 / fp16 / bf16: `imported` as it is, bf16 after its
// accuracy gate, whose verdict the compile reads from state->precision; int8: its quantization, or
// `imported` when the gate failed and the config allows FP32). Errors: the gate's samples cannot be
// read, or the gate failed and the config says "refuse".
//
// `device` compiles a model for the manager's device with a device math (precisions tf32 / fp16 /
// bf16 on a GPU: their gate compares the device's FP32 with the device's reduced precision); null
// when the manager's backend is the CPU executor (then tf32 and fp16 run FP32, bf16 is the CPU's).
using DeviceCompiler = std::function<StatusOr<std::unique_ptr<Executable>>(std::unique_ptr<ir::Model>, DeviceMath)>;
StatusOr<std::unique_ptr<ir::Model>> ApplyPrecision(const ModelConfig& config, const std::string& model_path,
                                                    std::string_view onnx_bytes, std::unique_ptr<ir::Model> imported,
                                                    int threads, bool optimize, PrecisionState* state,
                                                    const DeviceCompiler* device = nullptr);
// The device math a precision verdict (PrecisionState::precision) compiles with.
DeviceMath DeviceMathOf(const std::string& precision);

}  // namespace detail

struct ModelLease::Entry {
  std::string name;
  int64_t version = 0;
  uint32_t owner = 0;
  ModelConfig config;
  std::string path;           // the .onnx file; empty for models added from memory
  bool from_repository = false;
  int64_t mtime_ns = 0;       // of the file registered (poll mode compares it)
  uint64_t file_bytes = 0;
  ModelState state = ModelState::kOnDisk;
  Status last_error;
  // Host tier: the imported graph (constants in host memory), so a swap-in only clones the graph
  // structure and copies the weights; or, for graphs with subgraphs, the ONNX bytes (re-imported
  // on each swap-in).
  std::unique_ptr<ir::Model> host_model;
  Buffer host_copy;
  size_t host_bytes = 0;
  std::unique_ptr<Executable> compiled;  // device tier (its device's backend)
  // CPU fallback copy compiled into host memory outside the budget, made on first need; dropped
  // with the device copy. Guarded by fallback_mu (only lease holders touch it).
  std::mutex fallback_mu;
  std::unique_ptr<CompiledModel> cpu_model;
  uint64_t device_bytes = 0;
  uint64_t estimated_bytes = 0;  // weights estimate before the first load (the file size)
  int leases = 0;
  uint64_t use_count = 0;
  double decayed_uses = 0;  // as of decayed_at_ns
  int64_t decayed_at_ns = 0;
  int64_t last_use_ns = 0;
  int64_t last_swap_ns = 0;
  int64_t last_copy_ns = 0;
  // Host -> device weight copies of all its swap-ins while registered: bytes and time copying.
  uint64_t h2d_bytes = 0;
  int64_t h2d_ns = 0;
  // Pipelined swap-in: the gate of the device copy's weights, whether the copy engine still writes
  // into it (never evicted meanwhile), and its failure (the copy is dropped when idle).
  std::shared_ptr<WeightGate> gate;
  bool copy_in_flight = false;
  Status copy_error;
  bool preloaded_unused = false;
  // A load, or a one-row request, failed for memory that this budget or this memory limit (0:
  // unlimited) can never give it (FailedAllocationCanNeverFit); never_fits_budget 0: no such
  // failure. `never_fits` mirrors never_fits_budget != 0 for Run's lock-free check.
  uint64_t never_fits_budget = 0;
  uint64_t never_fits_limit = 0;
  std::atomic<bool> never_fits{false};
  // Set while a preload compiles this model (guarded by the manager's lock): an allocation failure
  // tagged with its owner must not evict for a prediction (OnAllocationFailure tells the model by
  // AllocTag::owner; every allocation a compile makes through the budget carries it).
  bool no_evict = false;
  bool unload_requested = false;
  bool removed = false;
  detail::PrecisionState precision;  // guarded by the manager's lock once the load publishes it
};

// Total device budget, changeable at run time (LimitResource's total is fixed at construction).
struct ModelManager::BudgetResource final : public MemoryResource {
  BudgetResource(MemoryResource* up, uint64_t budget) : upstream(up), budget(budget) {}
  DeviceId device() const override { return upstream->device(); }
  std::string name() const override { return "budget(" + upstream->name() + ")"; }
  uint64_t used() const { return used_bytes.load(std::memory_order_relaxed); }

  MemoryResource* const upstream;
  std::atomic<uint64_t> budget;
  std::atomic<uint64_t> used_bytes{0};
  std::atomic<uint64_t> peak{0};

 private:
  StatusOr<void*> DoAllocate(size_t bytes, AllocTag tag, StreamView stream) override {
    uint64_t cur = used_bytes.load(std::memory_order_relaxed);
    do {
      uint64_t b = budget.load(std::memory_order_relaxed);
      if (cur + bytes > b) {
        return ResourceExhausted("device budget: {} requested with {} of {} in use", FormatBytes(bytes),
                                 FormatBytes(cur), FormatBytes(b));
      }
    } while (!used_bytes.compare_exchange_weak(cur, cur + bytes, std::memory_order_relaxed));
    auto p = upstream->Allocate(bytes, tag, stream);
    if (!p.ok()) {
      used_bytes.fetch_sub(bytes, std::memory_order_relaxed);
      return p.status();
    }
    uint64_t now = cur + bytes, pk = peak.load(std::memory_order_relaxed);
    while (now > pk && !peak.compare_exchange_weak(pk, now, std::memory_order_relaxed)) {
    }
    return p;
  }
  void DoDeallocate(void* ptr, size_t bytes, AllocTag tag, StreamView stream) noexcept override {
    upstream->Deallocate(ptr, bytes, tag, stream);
    used_bytes.fetch_sub(bytes, std::memory_order_relaxed);
  }
};

}  // namespace gpuhive::residency
