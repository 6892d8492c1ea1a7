// ModelManager's background work: predictive preloading, keep-alive unloads and repository
// polling (the housekeeping thread, or Housekeep called directly).
#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gpuhive/logging.h"
#include "gpuhive/residency/manager.h"
#include "residency/manager_internal.h"

namespace gpuhive::residency {

void ModelManager::SchedulePreloads(const std::string& from) {
  auto predicted = predictor_.Predict(from, options_.preload_candidates);
  if (predicted.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  for (auto& [name, p] : predicted) {
    if (p < options_.preload_min_probability) continue;
    auto e = FindLocked(name, 0);
    if (!e || e->state == ModelState::kResident || e->state == ModelState::kLoadingDevice ||
        e->state == ModelState::kLoadingHost || e->state == ModelState::kFailed || !MayPreload(name)) {
      continue;
    }
    bool queued = std::any_of(preload_queue_.begin(), preload_queue_.end(),
                              [&](const auto& q) { return q.first == name; });
    if (!queued && preload_queue_.size() < 16) preload_queue_.emplace_back(name, p);
  }
  cv_.notify_all();
}

void ModelManager::PreloadLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !preload_queue_.empty(); });
    if (stopping_) return;
    auto [name, p] = preload_queue_.front();
    preload_queue_.pop_front();
    auto e = FindLocked(name, 0);
    if (!e) continue;
    ++preloads_running_;
    lock.unlock();
    auto r = AcquireEntry(e, true, p);
    lock.lock();
    --preloads_running_;
    cv_.notify_all();
  }
}

void ModelManager::WaitForPreloads() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return stopping_ || (preload_queue_.empty() && preloads_running_ == 0); });
}

void ModelManager::Housekeep() {
  const int64_t now = Now();
  std::vector<std::unique_ptr<Executable>> victims;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, versions] : models_) {
      for (auto& [v, e] : versions) {
        if (e->state != ModelState::kResident || e->leases > 0 || e->copy_in_flight) continue;
        uint64_t ka = KeepAliveUs(*e);
        if (ka == UINT64_MAX) continue;
        if (static_cast<uint64_t>(std::max<int64_t>(0, now - e->last_use_ns)) >= ka * 1000) {
          victims.emplace_back();
          EvictLocked(*e, &victims.back());
          ++stats_.idle_unloads;
        }
      }
    }
  }
  victims.clear();
  if (options_.control_mode == ControlMode::kPoll && repository_ != nullptr) {
    bool due;
    {
      std::lock_guard<std::mutex> lock(mu_);
      due = now - last_poll_ns_ >= options_.poll_interval_us * 1000;
      if (due) last_poll_ns_ = now;
    }
    if (due) PollRepository();
  }
}

void ModelManager::PollRepository() {
  ScanResult scan = repository_->Scan();
  std::vector<std::unique_ptr<Executable>> victims;
  std::vector<Buffer> hosts;
  std::vector<std::unique_ptr<ir::Model>> host_models;
  std::lock_guard<std::mutex> lock(mu_);
  scan_errors_ = scan.errors;
  // A new or changed file is taken only once two polls in a row saw the same size and mtime: one
  // still being copied or written is left alone (a resident copy keeps serving) until it settled.
  std::map<std::string, std::pair<uint64_t, int64_t>> seen;
  for (const auto& [name, model] : scan.models) {
    for (const auto& f : model.versions) seen[f.path] = {f.file_bytes, f.mtime_ns};
  }
  auto settled = [&](const ModelVersionFile& f) {
    auto it = poll_seen_.find(f.path);
    return it != poll_seen_.end() && it->second == std::make_pair(f.file_bytes, f.mtime_ns);
  };
  // Removed models and versions (and changed files, which are reloaded from disk on next use).
  for (auto it = models_.begin(); it != models_.end();) {
    auto sit = scan.models.find(it->first);
    for (auto jt = it->second.begin(); jt != it->second.end();) {
      Entry& e = *jt->second;
      const ModelVersionFile* file = nullptr;
      if (sit != scan.models.end()) {
        for (const auto& f : sit->second.versions) {
          if (f.version == e.version) file = &f;
        }
      }
      // A model whose directory is there but cannot be scanned now (its file or config is being
      // written) keeps what it has until the scan succeeds or the directory goes.
      bool gone = e.from_repository && file == nullptr && scan.errors.count(it->first) == 0;
      bool changed = e.from_repository && file != nullptr &&
                     (file->mtime_ns != e.mtime_ns || file->file_bytes != e.file_bytes) && settled(*file);
      bool busy = e.leases > 0 || e.copy_in_flight || e.state == ModelState::kLoadingHost ||
                  e.state == ModelState::kLoadingDevice;
      if ((gone || changed) && !busy) {
        if (e.state == ModelState::kResident) {
          victims.push_back(std::move(e.compiled));
          e.gate.reset();
          e.copy_error = Status::OK();
          e.cpu_model.reset();
          SetStateLocked(e, ModelState::kInHost);
        }
        if (e.state == ModelState::kInHost || e.state == ModelState::kFailed) {
          hosts.push_back(std::move(e.host_copy));
          host_models.push_back(std::move(e.host_model));
          e.host_bytes = 0;
          SetStateLocked(e, ModelState::kOnDisk);
        }
        if (changed) {
          e.mtime_ns = file->mtime_ns;
          e.file_bytes = file->file_bytes;
          e.estimated_bytes = file->file_bytes;
          e.device_bytes = 0;
          SetNeverFitsLocked(e, false);
          e.config = sit->second.config;
        }
      }
      if (gone && !busy) {
        e.removed = true;
        jt = it->second.erase(jt);
      } else {
        ++jt;
      }
    }
    it = it->second.empty() ? models_.erase(it) : std::next(it);
  }
  for (auto& [name, model] : scan.models) {
    std::erase_if(model.versions, [&](const ModelVersionFile& f) { return !settled(f); });
    if (model.versions.empty()) continue;
    Status s = RegisterLocked(std::move(model));
    if (!s.ok()) GH_LOG_WARN("residency", "{}", s.ToString());
  }
  poll_seen_ = std::move(seen);
  // victims / hosts are freed after the lock is released (declared before the guard).
}

void ModelManager::HousekeepingLoop() {
  std::unique_lock<std::mutex> lock(housekeeping_mu_);
  for (;;) {
    housekeeping_cv_.wait_for(lock, std::chrono::microseconds(options_.housekeeping_interval_us));
    {
      std::lock_guard<std::mutex> g(mu_);
      if (stopping_) return;
    }
    lock.unlock();
    Housekeep();
    lock.lock();
  }
}

}  // namespace gpuhive::residency
