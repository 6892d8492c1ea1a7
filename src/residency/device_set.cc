// DeviceSet: one ModelManager per device, and where each model is placed (see device_set.h).
#include "gpuhive/residency/device_set.h"

#include <algorithm>

#include "gpuhive/logging.h"
#include "gpuhive/units.h"

namespace gpuhive::residency {

StatusOr<std::unique_ptr<DeviceSet>> DeviceSet::Create(DeviceSetOptions options, ModelRepository* repository) {
  if (options.devices.empty()) return InvalidArgument("residency: a device set needs at least one device");
  std::unique_ptr<DeviceSet> set(new DeviceSet());
  set->repository_ = repository;
  set->strict_gpu_ = options.strict_gpu;
  for (size_t i = 0; i < options.devices.size(); ++i) {
    const DeviceSetOptions::Device& d = options.devices[i];
    ManagerOptions mo = options.manager;
    mo.device = d.device;
    mo.budget_bytes = d.budget_bytes;
    mo.host_budget_bytes = d.host_budget_bytes;
    // One device alone loads whatever it is asked to (as a manager standing alone does).
    if (options.devices.size() > 1) {
      DeviceSet* s = set.get();
      mo.may_preload = [s, i](const std::string& name) { return s->PlacedHere(name, i); };
    }
    set->gpu_ordinals_.push_back(d.gpu_ordinal);
    set->ids_.push_back(d.device != nullptr ? d.device->id().ToString() : "cpu");
    ASSIGN_OR_RETURN(auto manager, ModelManager::Create(std::move(mo), repository));
    set->managers_.push_back(std::move(manager));
  }
  // Config `preload` on several devices: on the placed device only (each manager skipped it).
  if (set->size() > 1 && repository != nullptr && options.manager.control_mode != ControlMode::kExplicit) {
    for (const auto& [name, model] : repository->Scan().models) {
      if (!model.config.preload) continue;
      auto lease = set->Acquire(name);
      if (!lease.ok()) GH_LOG_WARN("residency", "preload of '{}' failed: {}", name, lease.status().ToString());
    }
  }
  return set;
}

DeviceSet::~DeviceSet() {
  managers_.clear();  // their may_preload reads placed_: they go first
}

bool DeviceSet::PlacedHere(const std::string& name, size_t device) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = placed_.find(name);
  return it != placed_.end() && it->second.device == device;
}

std::optional<size_t> DeviceSet::PlacedOn(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = placed_.find(name);
  if (it == placed_.end()) return std::nullopt;
  return it->second.device;
}

std::vector<PlacementTarget> DeviceSet::Targets() const {
  std::vector<PlacementTarget> targets(size());
  for (size_t i = 0; i < size(); ++i) {
    ResidencyStats rs = managers_[i]->Stats();
    targets[i].id = ids_[i];
    targets[i].gpu_ordinal = gpu_ordinals_[i];
    targets[i].budget_bytes = rs.budget_bytes;
    targets[i].used_bytes = rs.used_bytes;
  }
  return targets;
}

Status DeviceSet::CheckPlacement(const std::string& name, const ModelConfig& config) const {
  return ChoosePlacement(name, config, 0, Targets()).status();
}

StatusOr<size_t> DeviceSet::Place(const std::string& name, const ModelConfig* config) {
  if (auto placed = PlacedOn(name)) return *placed;
  if (size() == 1) {
    std::lock_guard<std::mutex> lock(mu_);
    placed_[name] = Placed{0, 0};
    return size_t{0};
  }
  // The config and size it is about to be loaded with: the repository's (or the override), else
  // what is registered (a model added from memory, or one whose directory is being rewritten).
  ModelConfig chosen;
  uint64_t bytes = 0;
  StatusOr<RepositoryModel> scanned =
      repository_ != nullptr ? repository_->ScanModel(name, config) : NotFound("no repository");
  if (scanned.ok()) {
    chosen = scanned->config;
    for (const auto& f : scanned->versions) bytes = std::max(bytes, f.file_bytes);
  } else if (config != nullptr) {
    chosen = *config;
  } else {
    auto registered = GetConfig(name);
    if (!registered.ok()) return repository_ != nullptr ? scanned.status() : registered.status();
    chosen = *registered;
  }
  // Snapshot the managers first (never under mu_), then decide and record under mu_ so that
  // models placed one after another see each other.
  std::vector<PlacementTarget> targets = Targets();
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = placed_.find(name); it != placed_.end()) return it->second.device;
  for (const auto& [n, p] : placed_) {
    targets[p.device].placed_bytes += p.bytes;
    ++targets[p.device].placed_models;
  }
  ASSIGN_OR_RETURN(size_t device, ChoosePlacement(name, chosen, bytes, targets));
  placed_[name] = Placed{device, bytes};
  GH_LOG_INFO("residency", "model '{}' ({}) placed on {}", name, FormatBytes(bytes), ids_[device]);
  return device;
}

std::optional<size_t> DeviceSet::MoveToCpuAfter(const std::string& name, size_t from, const Status& why) {
  if (why.ok() || strict_gpu_ || gpu_ordinals_[from] < 0) return std::nullopt;
  // The load error the device's manager recorded, not `why`: a caller (RunBatch) may have
  // wrapped it.
  const Status load_error = managers_[from]->LastLoadError(name);
  if (load_error.code() != StatusCode::kUnimplemented) return std::nullopt;
  auto cpu = std::find(gpu_ordinals_.begin(), gpu_ordinals_.end(), -1);
  if (cpu == gpu_ordinals_.end()) return std::nullopt;
  auto config = managers_[from]->GetConfig(name);
  if (!config.ok()) return std::nullopt;
  for (const InstanceGroupConfig& g : config->instance_groups) {
    if (g.kind == InstanceKind::kGpu) return std::nullopt;  // the user asked for a GPU: their call
  }
  const size_t to = static_cast<size_t>(cpu - gpu_ordinals_.begin());
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = placed_.find(name);
    if (it == placed_.end() || it->second.device != from) return std::nullopt;  // unloaded or moved meanwhile
    it->second.device = to;
  }
  GH_LOG_WARN("residency", "model '{}' cannot run on {} ({}): it runs on the CPU", name, ids_[from],
              load_error.message());
  return to;
}

Status DeviceSet::Load(const std::string& name) {
  ASSIGN_OR_RETURN(size_t device, Place(name));
  Status s = managers_[device]->Load(name);
  if (auto cpu = MoveToCpuAfter(name, device, s)) return managers_[*cpu]->Load(name);
  return s;
}

Status DeviceSet::LoadWithConfig(const std::string& name, const ModelConfig* config) {
  // The model stays where it is (its manager refuses while it is in use) unless the new config
  // names its own devices: then it is unloaded everywhere and placed anew.
  if (PlacedOn(name) && config != nullptr && !config->instance_groups.empty()) {
    Status unloaded = Unload(name);
    if (!unloaded.ok() && unloaded.code() != StatusCode::kNotFound) return unloaded;
  }
  ASSIGN_OR_RETURN(size_t device, Place(name, config));
  Status s = managers_[device]->LoadWithConfig(name, config);
  if (auto cpu = MoveToCpuAfter(name, device, s)) return managers_[*cpu]->LoadWithConfig(name, config);
  return s;
}

StatusOr<ModelLease> DeviceSet::Acquire(const std::string& name, int64_t version) {
  ASSIGN_OR_RETURN(size_t device, Place(name));
  auto lease = managers_[device]->Acquire(name, version);
  if (lease.ok()) return lease;
  if (auto cpu = MoveToCpuAfter(name, device, lease.status())) return managers_[*cpu]->Acquire(name, version);
  return lease;
}

Status DeviceSet::Unload(const std::string& name) {
  Status result = NotFound("model '{}' is not registered", name);
  for (auto& m : managers_) {
    Status s = m->Unload(name);
    if (s.code() != StatusCode::kNotFound && (result.ok() || result.code() == StatusCode::kNotFound)) result = s;
  }
  std::lock_guard<std::mutex> lock(mu_);
  placed_.erase(name);
  return result;
}

Status DeviceSet::SetMemoryLimit(const std::string& name, uint64_t limit_bytes) {
  Status result = NotFound("model '{}' is not registered", name);
  for (auto& m : managers_) {
    Status s = m->SetMemoryLimit(name, limit_bytes);
    if (s.code() != StatusCode::kNotFound && (result.ok() || result.code() == StatusCode::kNotFound)) result = s;
  }
  return result;
}

StatusOr<ModelConfig> DeviceSet::GetConfig(const std::string& name, int64_t version) const {
  if (auto placed = PlacedOn(name)) {
    auto config = managers_[*placed]->GetConfig(name, version);
    if (config.ok()) return config;
  }
  StatusOr<ModelConfig> first = NotFound("model '{}' is not registered", name);
  for (const auto& m : managers_) {
    auto config = m->GetConfig(name, version);
    if (config.ok()) return config;
    if (first.status().code() == StatusCode::kNotFound) first = std::move(config);
  }
  return first;
}

std::vector<ModelStatus> DeviceSet::ListModels() const {
  std::map<std::string, std::map<int64_t, ModelStatus>> merged;
  std::map<std::string, size_t> placed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, p] : placed_) placed[name] = p.device;
  }
  for (size_t i = 0; i < size(); ++i) {
    for (ModelStatus& st : managers_[i]->ListModels()) {
      auto p = placed.find(st.name);
      const bool here = p != placed.end() && p->second == i;
      auto [it, fresh] = merged[st.name].try_emplace(st.version);
      if (!fresh && !here) continue;  // the placed device's entry, else the first device's
      if (here || size() == 1) st.device = ids_[i];
      it->second = std::move(st);
    }
  }
  std::vector<ModelStatus> out;
  for (auto& [name, versions] : merged) {
    for (auto& [v, st] : versions) out.push_back(std::move(st));
  }
  return out;
}

uint64_t DeviceSet::budget_bytes() const {
  const bool any_gpu = std::any_of(gpu_ordinals_.begin(), gpu_ordinals_.end(), [](int o) { return o >= 0; });
  uint64_t total = 0;
  for (size_t i = 0; i < size(); ++i) {
    if (!any_gpu || gpu_ordinals_[i] >= 0) total += managers_[i]->Stats().budget_bytes;
  }
  return total;
}

}  // namespace gpuhive::residency
