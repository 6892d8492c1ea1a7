// ModelManager::Run: a leased model's run with the memory-pressure path (evict and retry inside the
// memory stack, split the batch, fall back to the CPU, then refuse with the reason), and RunBatch,
// the one acquire -> run -> release path around it.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "gpuhive/memory/upstreams.h"
#include "gpuhive/onnx_import.h"
#include "gpuhive/residency/manager.h"
#include "gpuhive/units.h"
#include "residency/manager_internal.h"

namespace gpuhive::residency {

namespace {

// Runs `inputs`, splitting dim 0 in halves (recursively, up to `depth` times) while the device
// memory does not suffice. Outputs of the halves are joined in host memory.
StatusOr<std::vector<Tensor>> RunSplitting(Executable& model, ExecutionContext& ctx,
                                           const std::vector<TensorView>& inputs, bool may_split, int depth,
                                           uint64_t* splits, MemoryResource* io, AllocTag io_tag) {
  auto out = model.Run(ctx, inputs);
  if (out.ok() || out.status().code() != StatusCode::kResourceExhausted) return out;
  if (!may_split || depth <= 0 || inputs.empty() || inputs[0].shape.empty() || inputs[0].shape[0] < 2) return out;
  const int64_t n = inputs[0].shape[0];
  for (const auto& v : inputs) {
    if (v.shape.empty() || v.shape[0] != n || v.layout != Layout::kPlain) return out;
  }
  ++*splits;
  ctx.ReleaseArena();  // the full-size arena may be what does not fit
  const int64_t half = n / 2;
  std::vector<std::vector<Tensor>> parts;
  for (int64_t start : {int64_t{0}, half}) {
    const int64_t rows = start == 0 ? half : n - half;
    std::vector<TensorView> sub;
    for (const auto& v : inputs) {
      TensorView s = v;
      size_t row_bytes = v.plain_bytes() / static_cast<size_t>(n);
      s.shape[0] = rows;
      s.data = static_cast<char*>(v.data) + row_bytes * static_cast<size_t>(start);
      sub.push_back(s);
    }
    auto r = RunSplitting(model, ctx, sub, may_split, depth - 1, splits, io, io_tag);
    if (!r.ok()) return r.status();
    // Move the part to host memory so it does not hold device budget while the next part runs.
    std::vector<Tensor> host;
    for (const Tensor& t : *r) {
      ASSIGN_OR_RETURN(Tensor h, t.Clone());
      host.push_back(std::move(h));
    }
    parts.push_back(std::move(host));
  }
  std::vector<Tensor> joined;
  for (size_t i = 0; i < parts[0].size() && i < parts[1].size(); ++i) {
    const Tensor& a = parts[0][i];
    const Tensor& b = parts[1][i];
    if (a.shape().empty() || b.shape().empty() || a.dtype() != b.dtype()) {
      return Internal("output {} cannot be joined after a batch split", i);
    }
    Shape shape = a.shape();
    shape[0] += b.shape()[0];
    ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(a.dtype(), shape, io, io_tag));  // handed back: I/O
    std::memcpy(t.data(), a.data(), a.bytes());
    std::memcpy(static_cast<char*>(t.data()) + a.bytes(), b.data(), b.bytes());
    joined.push_back(std::move(t));
  }
  return joined;
}

}  // namespace

StatusOr<std::vector<Tensor>> ModelManager::Run(const ModelLease& lease, ExecutionContext& ctx,
                                                const std::vector<TensorView>& inputs, ExecutionContext* fallback) {
  if (!lease) return FailedPrecondition("Run: empty lease");
  const auto& cfg = lease.config();
  uint64_t splits = 0;
  detail::t_failed = {};
  auto out = RunSplitting(lease.model(), ctx, inputs, cfg.max_batch_size > 0, 6, &splits, io_.get(),
                          AllocTag{lease.owner_tag(), MemoryKind::kIO});
  if (splits > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.batch_splits += splits;
  }
  Entry& entry = *lease.entry_;
  if (out.ok() && entry.never_fits.load(std::memory_order_relaxed)) {
    std::lock_guard<std::mutex> lock(mu_);  // it ran after all (a smaller input): it fits
    SetNeverFitsLocked(entry, false);
  }
  if (out.ok() || out.status().code() != StatusCode::kResourceExhausted) return out;
  Status first = out.status();
  ctx.ReleaseArena();
  if (!options_.strict_device) {
    // CPU fallback: a copy of the model compiled into host memory outside the device budget,
    // run with a host context (the caller's, or a temporary one).
    Entry& e = *lease.entry_;
    Executable* cpu = nullptr;
    {
      std::lock_guard<std::mutex> g(e.fallback_mu);
      if (!e.cpu_model) {
        CompileOptions co;
        co.num_threads = options_.compile_threads;
        co.optimize = options_.optimize;
        co.memory = DefaultHostResource();
        co.output_memory = io_.get();
        co.owner_tag = e.owner;
        // The host tier, or the file when the host copy was dropped for the host budget (a leased
        // model's host copy is never dropped meanwhile).
        StatusOr<std::unique_ptr<ir::Model>> model = InvalidArgument("no host copy");
        if (e.host_model != nullptr || e.host_copy.data() != nullptr) {
          model = detail::HostTierGraph(e.host_model.get(), e.host_copy, e.host_bytes);
        } else if (!e.path.empty()) {
          auto file = ReadModelFile(e.path);
          ImportOptions io;
          io.base_dir = std::filesystem::path(e.path).parent_path().string();
          model = file.ok() ? ImportOnnxBytes(*file, io) : StatusOr<std::unique_ptr<ir::Model>>(file.status());
        }
        if (model.ok()) {
          auto compiled = CompiledModel::Create(std::move(*model), co);
          if (compiled.ok()) e.cpu_model = std::move(*compiled);
        }
      }
      cpu = e.cpu_model.get();
    }
    if (cpu != nullptr) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.cpu_fallbacks;
      }
      std::unique_ptr<ExecutionContext> temp;
      if (fallback == nullptr) {
        temp = std::make_unique<ExecutionContext>(ExecutionContext::Options{.num_threads = ctx.options().num_threads});
        fallback = temp.get();
      }
      auto r = cpu->Run(*fallback, inputs);
      if (r.ok() || r.status().code() != StatusCode::kResourceExhausted) return r;
    }
  }
  // A single row (the smallest request) that can never fit: no request of this model can run
  // under this budget and limit, so it is not ready (ModelStatus::fits) and nobody should wait.
  // The proof: the model's own weights (held whenever it runs) plus the allocation that failed
  // exceed the budget. Only that lower bound: what the model holds in all also counts its other
  // batches' activations and the packed weight copies of its other batch plans, which are
  // transient or droppable (counting them marked a model that merely waited for its own sibling
  // batch "never fits").
  const bool one_row =
      cfg.max_batch_size == 0 || inputs.empty() || inputs[0].shape.empty() || inputs[0].shape[0] <= 1;
  if (FailedAllocationCanNeverFit(entry, lease.model().weight_bytes())) {
    if (one_row) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        SetNeverFitsLocked(entry, true);
      }
      return ResourceExhausted("model '{}' can never run: one request needs more than the whole device budget of {}{}: "
                               "{}",
                               lease.name(), FormatBytes(budget_->budget.load()),
                               options_.strict_device ? " (strict device mode: no CPU fallback)" : "", first.message()).WithShortage(MemoryShortage::kNeverFits);
    }
    // A batch whose smallest split failed the same proof: this request can never run (a smaller
    // one might, so the model stays ready); nobody should wait for memory on its behalf.
    return ResourceExhausted("model '{}': this request can never run: its smallest split needs more than the whole "
                             "device budget of {}{}: {}",
                             lease.name(), FormatBytes(budget_->budget.load()),
                             options_.strict_device ? " (strict device mode: no CPU fallback)" : "", first.message()).WithShortage(MemoryShortage::kNeverFits);
  }
  return ResourceExhausted("model '{}': the request does not fit the device budget ({} of {} in use) after evicting "
                           "every idle model{}{}: {}",
                           lease.name(), FormatBytes(UsedBytes()), FormatBytes(budget_->budget.load()),
                           cfg.max_batch_size > 0 ? " and splitting the batch" : "",
                           options_.strict_device ? " (strict device mode: no CPU fallback)" : "", first.message()).WithShortage(MemoryShortage::kContended);
}

namespace {

// The one-row plan's activation bytes for `inputs`' other dims (BatchOptions::one_row_bytes). A
// plan that cannot be prepared ahead (data-dependent shapes) leaves it unknown.
void RecordOneRowBytes(ModelLease& lease, const std::vector<TensorView>& inputs, std::atomic<uint64_t>* out) {
  std::vector<Shape> shapes;
  for (const TensorView& t : inputs) {
    Shape s = t.shape;
    if (lease.config().max_batch_size > 0 && !s.empty()) s[0] = 1;
    shapes.push_back(std::move(s));
  }
  auto plan = lease.model().Prepare(shapes);
  if (plan.ok()) out->store(std::max<uint64_t>(1, plan->arena_bytes + plan->workspace_bytes));
}

// A memory shortage that may pass once running batches release their models: everything else was
// leased, or the request did not fit next to them. Not: a model larger than the budget or its
// limit. Decided by the shortage attached to the status, never by message text.
bool TransientShortage(const Status& s) {
  if (s.code() == StatusCode::kUnavailable) return s.shortage() == MemoryShortage::kContended;
  if (s.code() != StatusCode::kResourceExhausted) return false;
  // An untyped allocation failure (the budget or a per-owner limit refused one allocation) is
  // contention too: the manager proves "never" itself and says so.
  return s.shortage() != MemoryShortage::kNeverFits && s.shortage() != MemoryShortage::kOverLimit;
}

}  // namespace

StatusOr<std::vector<Tensor>> ModelManager::RunBatch(const std::string& name, ExecutionContext& ctx,
                                                     const std::vector<TensorView>& inputs,
                                                     ExecutionContext* fallback, const BatchOptions& options) {
  const int64_t give_up = NowNs() + options.pressure_wait_ms * 1'000'000;
  int64_t backoff_us = 500;
  // Lease failures seen while nothing at all was resident: the other batch may have just finished
  // (retry once), but twice means the model alone cannot be loaded and waiting cannot help. A run
  // that fails is not judged by such a snapshot (another model may be evicted and reloaded between
  // the failure and the look, which made a contended request look alone): Run proves "can never
  // run" from the failed allocation itself, and anything else waits up to pressure_wait_ms.
  int alone_failures = 0;
  for (;;) {
    Status failure;
    {
      auto lease = Acquire(name, options.version);
      if (lease.ok()) {
        auto out = Run(*lease, ctx, inputs, fallback);
        ctx.ReleaseArena();
        if (out.ok() && options.one_row_bytes != nullptr && options.one_row_bytes->load() == 0) {
          RecordOneRowBytes(*lease, inputs, options.one_row_bytes);
        }
        if (out.ok() || !TransientShortage(out.status())) {
          if (!out.ok() && out.status().code() == StatusCode::kResourceExhausted) {
            return Unavailable("{}", out.status().message()).WithShortage(out.status().shortage());
          }
          return out;
        }
        failure = out.status();
      } else if (lease.status().code() == StatusCode::kNotFound) {
        return lease.status();
      } else if (!TransientShortage(lease.status()) || (Stats().used_bytes == 0 && ++alone_failures >= 2)) {
        // The request was fine; the model cannot be made resident (too large, or its load failed).
        return Unavailable("model '{}' version {} cannot be made resident: {}", name, options.version,
                           lease.status().message())
            .WithShortage(lease.status().shortage());
      } else {
        failure = lease.status();
      }
    }  // the lease (if any) is released before waiting
    if (NowNs() + backoff_us * 1000 > give_up) {
      if (options.pressure_wait_ms == 0) {
        return Unavailable("{}", failure.message()).WithShortage(MemoryShortage::kContended);
      }
      return Unavailable("{} (waited {} ms for memory held by running batches)", failure.message(),
                         options.pressure_wait_ms)
          .WithShortage(MemoryShortage::kContended);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(backoff_us));
    backoff_us = std::min<int64_t>(backoff_us * 2, 50'000);
  }
}

}  // namespace gpuhive::residency
