// DeviceSet: models served on several devices (`--device sim:N`, several GPUs), one ModelManager
// per device, so each device has its own pool, byte budget, copy engine and host tier
// (DESIGN.md "Memory model": one budget per device). Each model is placed on one device when it
// is first loaded and stays there until it is unloaded; its versions go with it.
//
// Placement (ChoosePlacement): Triton's instance_group says which devices a model may use —
// KIND_GPU (optionally `gpus: [...]`, ordinals of the GPU devices; simulated devices count as
// GPUs), KIND_CPU (the host CPU executor), KIND_AUTO / KIND_MODEL or no group (any GPU device, the
// CPU when there is none). Among the allowed devices that can hold the model, the one with the
// most free budget wins (free = budget - max(bytes in use, bytes of the models placed there));
// ties go to the device with fewer models placed, then to the lower index. A model that names a
// GPU the server does not have, or that none of its allowed devices can hold, is refused with a
// message naming the devices.
//
// A model its device's executor cannot compile (an operator it lacks: kUnimplemented) runs whole
// on the host CPU instead, when the server chose its device (no instance_group, KIND_AUTO or
// KIND_MODEL, not KIND_GPU), the set has the host CPU and DeviceSetOptions::strict_gpu is off: it
// is placed there until it is unloaded, with one warning.
//
// Every manager knows every repository model (control modes none and poll register them all);
// only the placed device's manager ever loads it: requests, explicit loads and config `preload`
// go through Place, and a manager preloads by prediction only the models placed on it
// (ManagerOptions::may_preload).
//
// Thread safety: every method is thread safe. Place never holds its lock while calling a
// manager (managers call may_preload under their own lock).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "gpuhive/residency/manager.h"

namespace gpuhive::residency {

// One device as placement sees it.
struct PlacementTarget {
  std::string id;             // "sim:0", "cpu"
  int gpu_ordinal = -1;       // the number `gpus: [...]` names; -1: the host CPU
  uint64_t budget_bytes = 0;
  uint64_t used_bytes = 0;    // in use now
  uint64_t placed_bytes = 0;  // file bytes of the models placed here
  int placed_models = 0;
};

// The index into `targets` where model `name` with `config` (whose largest version file is
// `model_bytes`) goes. Errors: kInvalidArgument (its instance_group names a GPU that is not there,
// or asks for a kind of device the server does not have), kResourceExhausted (no allowed device's
// budget can hold `model_bytes`). Both messages name the model and the devices.
StatusOr<size_t> ChoosePlacement(const std::string& name, const ModelConfig& config, uint64_t model_bytes,
                                 const std::vector<PlacementTarget>& targets);

struct DeviceSetOptions {
  struct Device {
    ComputeDevice* device = nullptr;  // null: the host CPU. Not owned; outlives the set.
    int gpu_ordinal = -1;             // -1: the host CPU (instance_group KIND_CPU)
    uint64_t budget_bytes = 0;
    uint64_t host_budget_bytes = 0;
  };
  std::vector<Device> devices;
  // Refuse, rather than run on the host CPU, a model its device's executor cannot compile
  // (--strict-gpu).
  bool strict_gpu = false;
  // Every manager's options; device, budget_bytes, host_budget_bytes and may_preload are set per
  // device from the list above.
  ManagerOptions manager;
};

class DeviceSet {
 public:
  // Creates one manager per device (each registers the repository's models in modes none and
  // poll), then loads the models whose config sets `preload` on their placed devices.
  // `repository` may be null; it must outlive the set. Errors: kInvalidArgument (no devices), and
  // ModelManager::Create's.
  static StatusOr<std::unique_ptr<DeviceSet>> Create(DeviceSetOptions options, ModelRepository* repository);
  ~DeviceSet();
  DeviceSet(const DeviceSet&) = delete;
  DeviceSet& operator=(const DeviceSet&) = delete;

  size_t size() const { return managers_.size(); }
  ModelManager& manager(size_t index) const { return *managers_[index]; }
  const std::string& id(size_t index) const { return ids_[index]; }

  // The device `name` is placed on, placing it now if it is not yet (`config`: the config it is
  // about to be loaded with; null: the registered one, else its config.pbtxt). Errors: as
  // ChoosePlacement, kNotFound (not in the repository nor registered).
  StatusOr<size_t> Place(const std::string& name, const ModelConfig* config = nullptr);
  // Whether `config`'s instance_group names devices this set has (its size is checked when it is
  // placed). Errors: ChoosePlacement's kInvalidArgument.
  Status CheckPlacement(const std::string& name, const ModelConfig& config) const;
  // Where `name` is placed, if it is.
  std::optional<size_t> PlacedOn(const std::string& name) const;

  // After a load or run of `name` on device `from` failed with `why`: the host CPU's index when
  // the model moves there (its load on `from` failed with kUnimplemented, as recorded by that
  // device's manager; see the header comment; it is placed there now), else nullopt. Load,
  // LoadWithConfig and Acquire do this themselves; a caller that runs on manager(i) directly
  // calls it on failure and retries on the index returned.
  std::optional<size_t> MoveToCpuAfter(const std::string& name, size_t from, const Status& why);

  // ModelManager's calls, on the placed device (placing first where they load).
  Status Load(const std::string& name);
  Status LoadWithConfig(const std::string& name, const ModelConfig* config);
  StatusOr<ModelLease> Acquire(const std::string& name, int64_t version = 0);
  // On every device; the placement is forgotten (the next load places the model again).
  // Errors: kNotFound when no device knows the model.
  Status Unload(const std::string& name);
  // On every device (the limit follows the model wherever it goes).
  Status SetMemoryLimit(const std::string& name, uint64_t limit_bytes);
  StatusOr<ModelConfig> GetConfig(const std::string& name, int64_t version = 0) const;
  std::map<std::string, Status> ScanErrors() const { return managers_[0]->ScanErrors(); }
  // One entry per registered version, from its placed device (ModelStatus::device set), or from
  // the first device that knows it when it is not placed.
  std::vector<ModelStatus> ListModels() const;
  // Budgets summed over the devices models go to by default (the GPUs; the CPU when there is none).
  uint64_t budget_bytes() const;

 private:
  DeviceSet() = default;
  struct Placed {
    size_t device = 0;
    uint64_t bytes = 0;
  };
  bool PlacedHere(const std::string& name, size_t device) const;
  // Every device's budget and bytes in use now (placed_bytes / placed_models left 0).
  std::vector<PlacementTarget> Targets() const;

  ModelRepository* repository_ = nullptr;
  bool strict_gpu_ = false;
  std::vector<int> gpu_ordinals_;
  std::vector<std::string> ids_;
  std::vector<std::unique_ptr<ModelManager>> managers_;
  mutable std::mutex mu_;
  std::map<std::string, Placed> placed_;  // GUARDED_BY(mu_)
};

}  // namespace gpuhive::residency
