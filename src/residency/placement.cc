// ChoosePlacement: which device a model goes to (see device_set.h).
#include <algorithm>
#include <set>

#include "gpuhive/residency/device_set.h"
#include "gpuhive/units.h"

namespace gpuhive::residency {

namespace {

std::string DeviceList(const std::vector<PlacementTarget>& targets, const std::set<size_t>& which) {
  std::string out;
  for (size_t i : which) {
    out += (out.empty() ? "" : ", ") + fmt::format("{} (budget {})", targets[i].id, FormatBytes(targets[i].budget_bytes));
  }
  return out;
}

// The devices `config` allows, by instance_group.
StatusOr<std::set<size_t>> AllowedDevices(const std::string& name, const ModelConfig& config,
                                          const std::vector<PlacementTarget>& targets) {
  std::set<size_t> gpus, cpus;
  std::map<int, size_t> by_ordinal;
  for (size_t i = 0; i < targets.size(); ++i) {
    (targets[i].gpu_ordinal >= 0 ? gpus : cpus).insert(i);
    if (targets[i].gpu_ordinal >= 0) by_ordinal[targets[i].gpu_ordinal] = i;
  }
  // Without any GPU device every model runs on the CPU (the fallback; the server warns about
  // KIND_GPU configs where it serves them).
  if (gpus.empty()) return cpus;
  const std::set<size_t>& any = gpus;  // KIND_AUTO: a GPU when there is one
  if (config.instance_groups.empty()) return any;
  std::set<size_t> allowed;
  for (const auto& g : config.instance_groups) {
    if (g.kind == InstanceKind::kCpu) {
      if (cpus.empty()) {
        return InvalidArgument("model '{}': instance_group asks for KIND_CPU, but this server places models on {} only",
                               name, DeviceList(targets, gpus));
      }
      allowed.insert(cpus.begin(), cpus.end());
      continue;
    }
    if (g.gpus.empty()) {
      allowed.insert(any.begin(), any.end());
      continue;
    }
    for (int ordinal : g.gpus) {
      auto it = by_ordinal.find(ordinal);
      if (it == by_ordinal.end()) {
        return InvalidArgument("model '{}': instance_group asks for GPU {}, but this server has {} GPU device(s): {}",
                               name, ordinal, gpus.size(), DeviceList(targets, gpus));
      }
      allowed.insert(it->second);
    }
  }
  return allowed;
}

}  // namespace

StatusOr<size_t> ChoosePlacement(const std::string& name, const ModelConfig& config, uint64_t model_bytes,
                                 const std::vector<PlacementTarget>& targets) {
  if (targets.empty()) return InvalidArgument("model '{}': no device to place it on", name);
  ASSIGN_OR_RETURN(std::set<size_t> allowed, AllowedDevices(name, config, targets));
  std::optional<size_t> best;
  uint64_t best_free = 0;
  for (size_t i : allowed) {
    const PlacementTarget& t = targets[i];
    if (model_bytes > t.budget_bytes) continue;  // can never hold it
    const uint64_t held = std::max(t.used_bytes, t.placed_bytes);
    const uint64_t free = t.budget_bytes > held ? t.budget_bytes - held : 0;
    if (!best || free > best_free || (free == best_free && t.placed_models < targets[*best].placed_models)) {
      best = i;
      best_free = free;
    }
  }
  if (!best) {
    return ResourceExhausted("model '{}' ({}) fits on none of the devices it may use: {}", name,
                             FormatBytes(model_bytes), DeviceList(targets, allowed))
        .WithShortage(MemoryShortage::kNeverFits);
  }
  return *best;
}

}  // namespace gpuhive::residency
