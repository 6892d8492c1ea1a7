// ModelManager's eviction: choosing and evicting idle models, answering allocation failures (evict
// and retry), what a lease's end or a budget change owes, and the host tier's budget.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "gpuhive/residency/manager.h"
#include "residency/manager_internal.h"

namespace gpuhive::residency {

void ModelManager::EvictLocked(Entry& e, std::unique_ptr<Executable>* out) {
  *out = std::move(e.compiled);
  e.gate.reset();
  e.copy_error = Status::OK();
  {
    std::lock_guard<std::mutex> g(e.fallback_mu);
    e.cpu_model.reset();
  }
  if (e.preloaded_unused) ++stats_.preload_wasted;
  e.preloaded_unused = false;
  ++stats_.evictions;
  // Without a host copy (dropped for the host budget) the model comes from disk next time.
  const bool in_host = e.host_model != nullptr || e.host_copy.data() != nullptr;
  SetStateLocked(e, in_host ? ModelState::kInHost : ModelState::kOnDisk);
}

bool ModelManager::EvictOne(const Entry* except, double below_probability) {
  std::unique_ptr<Executable> victim;
  {
    std::unique_lock<std::mutex> lock(mu_);
    std::vector<EvictionCandidate> cands;
    std::vector<Entry*> entries;
    const std::string last = predictor_.last();
    // Idle models whose weight copy is still running (a preload): evictable once it ends.
    std::shared_ptr<Entry> copying;
    for (auto& [name, versions] : models_) {
      for (auto& [v, e] : versions) {
        if (e.get() == except || e->state != ModelState::kResident || e->leases > 0) continue;
        if (e->copy_in_flight) {
          copying = e;
          continue;
        }
        EvictionCandidate c;
        c.name = e->name;
        c.priority = std::max(0, e->config.priority - 1);  // Triton numbering: 0 and 1 most important
        c.last_use_ns = e->last_use_ns;
        c.bytes = e->device_bytes;
        c.reload_ns = e->last_swap_ns > 0 ? e->last_swap_ns
                                          : static_cast<int64_t>(double(e->device_bytes) / h2d_bytes_per_s_ * 1e9);
        c.next_use_probability = last.empty() ? 0 : predictor_.Probability(last, e->name);
        c.use_count = e->use_count;
        c.decayed_uses = DecayedUses(*e, Now());
        if (below_probability <= 1.0 && (c.next_use_probability >= below_probability || e->name == last)) continue;
        cands.push_back(std::move(c));
        entries.push_back(e.get());
      }
    }
    if (cands.empty() && copying) {
      cv_.wait(lock, [&] { return !copying->copy_in_flight; });
      lock.unlock();
      return EvictOne(except, below_probability);
    }
    if (cands.empty()) return false;
    auto order = options_.policy->Order(cands, Now());
    if (order.empty() || order[0] >= entries.size()) return false;
    EvictLocked(*entries[order[0]], &victim);
  }
  victim.reset();  // frees its memory outside the lock
  return true;
}

bool ModelManager::EvictFor(uint64_t needed, const Entry* except, double below_probability) {
  for (;;) {
    uint64_t budget = budget_->budget.load();
    if (UsedBytes() + needed <= budget) return true;
    if (!EvictOne(except, below_probability)) return UsedBytes() + needed <= budget;
  }
}

bool ModelManager::FailedAllocationCanNeverFit(const Entry& e, uint64_t held_bytes) const {
  const detail::FailedAllocation f = detail::t_failed;
  if (f.bytes == 0) return false;
  const uint64_t needed = held_bytes + f.bytes;
  if (needed > budget_->budget.load()) return true;
  return f.owner == e.owner && e.config.memory_limit_bytes > 0 && needed > e.config.memory_limit_bytes;
}

bool ModelManager::OnAllocationFailure(size_t bytes, AllocTag tag, int) {
  detail::t_failed = {tag.owner, bytes};
  const Entry* except = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, versions] : models_) {
      for (auto& [v, e] : versions) {
        if (e->owner == tag.owner) except = e.get();
      }
    }
    // A preload is compiling this model: it must not evict for a prediction (CompileForDevice).
    if (except != nullptr && except->no_evict) return false;
  }
  bool evicted = EvictOne(except, 2.0);
  if (evicted) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.pressure_retries;
  }
  return evicted;
}

void ModelManager::ReleaseLease(Entry& e) {
  std::unique_ptr<Executable> victim;
  Buffer host;
  std::unique_ptr<ir::Model> host_model;
  {
    std::unique_lock<std::mutex> lock(mu_);
    --e.leases;
    e.last_use_ns = Now();
    // The last lease ended before the weights were all in (the request did not need them all, or
    // never ran): settle once the copy is done, so what a release implies has happened on return.
    if (e.leases == 0 && e.copy_in_flight) cv_.wait(lock, [&] { return !e.copy_in_flight || e.leases > 0; });
    SettleIdleLocked(e, &victim, &host, &host_model, /*lease_ended=*/true);
  }
  victim.reset();
  host.Reset();
  if (UsedBytes() > budget_->budget.load()) EvictFor(0, nullptr, 2.0);
}

void ModelManager::SettleIdleLocked(Entry& e, std::unique_ptr<Executable>* victim, Buffer* host,
                                    std::unique_ptr<ir::Model>* host_model, bool lease_ended) {
  if (e.leases > 0 || e.state != ModelState::kResident || e.copy_in_flight) return;
  if (e.unload_requested || e.removed) {
    *victim = std::move(e.compiled);
    e.gate.reset();
    e.copy_error = Status::OK();
    {
      std::lock_guard<std::mutex> g(e.fallback_mu);
      e.cpu_model.reset();
    }
    ++stats_.evictions;
    if (e.from_repository) {
      *host = std::move(e.host_copy);
      *host_model = std::move(e.host_model);
      e.host_bytes = 0;
      SetStateLocked(e, ModelState::kOnDisk);
    } else {
      SetStateLocked(e, ModelState::kInHost);
    }
    e.unload_requested = false;
  } else if (!e.copy_error.ok()) {
    // Its weights never all arrived: drop the device copy; the next Acquire loads it again.
    EvictLocked(e, victim);
  } else if (lease_ended && KeepAliveUs(e) == 0) {
    EvictLocked(e, victim);
    ++stats_.idle_unloads;
  }
}

void ModelManager::SetHostBudget(uint64_t host_budget_bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    options_.host_budget_bytes = host_budget_bytes;
  }
  EnforceHostBudget(nullptr);
}

void ModelManager::EnforceHostBudget(const Entry* except) {
  std::vector<Buffer> hosts;
  std::vector<std::unique_ptr<ir::Model>> host_models;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t budget = options_.host_budget_bytes;
    if (budget == 0) return;
    uint64_t used = 0;
    std::vector<EvictionCandidate> cands;
    std::vector<Entry*> entries;
    const std::string last = predictor_.last();
    const int64_t now = Now();
    for (auto& [name, versions] : models_) {
      for (auto& [v, e] : versions) {
        if (e->host_model == nullptr && e->host_copy.data() == nullptr) continue;
        used += e->host_bytes;
        // Droppable: it can come from disk again, and nobody reads the host copy now (loads read
        // it without the lock; the CPU fallback of a leased model compiles from it).
        const bool busy = e->leases > 0 || e->state == ModelState::kLoadingHost ||
                          e->state == ModelState::kLoadingDevice;
        if (e.get() == except || !e->from_repository || busy) continue;
        EvictionCandidate c;
        c.name = e->name;
        c.priority = std::max(0, e->config.priority - 1);  // Triton numbering: 0 and 1 most important
        c.last_use_ns = e->last_use_ns;
        c.bytes = e->host_bytes;
        c.reload_ns = e->last_swap_ns;
        c.next_use_probability = last.empty() ? 0 : predictor_.Probability(last, e->name);
        c.use_count = e->use_count;
        c.decayed_uses = DecayedUses(*e, now);
        cands.push_back(std::move(c));
        entries.push_back(e.get());
      }
    }
    if (used <= budget || cands.empty()) return;
    for (size_t i : options_.policy->Order(cands, now)) {
      if (used <= budget) break;
      if (i >= entries.size()) continue;
      Entry& e = *entries[i];
      used -= std::min<uint64_t>(used, e.host_bytes);
      hosts.push_back(std::move(e.host_copy));
      host_models.push_back(std::move(e.host_model));
      e.host_bytes = 0;
      ++stats_.host_drops;
      if (e.state == ModelState::kInHost) SetStateLocked(e, ModelState::kOnDisk);
      // A resident model keeps its device copy; it goes to disk when evicted (EvictLocked).
    }
  }
  // Freed outside the lock.
}

Status ModelManager::SetBudget(uint64_t budget_bytes) {
  if (budget_bytes == 0) return InvalidArgument("residency: budget must be > 0");
  budget_->budget.store(budget_bytes);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.budget_bytes = budget_bytes;
  }
  EvictFor(0, nullptr, 2.0);
  pool_->Trim();
  return Status::OK();
}

}  // namespace gpuhive::residency
