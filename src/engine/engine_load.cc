// Engine: what happens when a version is loaded beyond registering it — Triton's model_warmup
// (run before the model reports READY), load-time warnings (config fields gpuhive does not use, an
// instance kind this machine cannot honour), and the repository's invalid configs (503 with why).
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <cstring>
#include <random>

#include "gpuhive/logging.h"
#include "gpuhive/units.h"
#include "engine/engine_internal.h"
#include "gpuhive/residency/warmup.h"

namespace gpuhive::engine {

Status Engine::Impl::WarmUp(const ServedVersion& v) {
  const residency::ModelConfig& c = v.config;
  const std::string model_dir = (std::filesystem::path(repository->root()) / v.name).string();
  std::mt19937 rng(7);
  const int64_t start = NowNs();
  int runs = 0;
  for (const auto& w : c.warmups) {
    const std::string what = fmt::format("model '{}' v{}: model_warmup '{}'", v.name, v.version, w.name);
    for (int i = 0; i < w.count; ++i) {
      auto req = std::make_unique<InferenceRequest>();
      req->model_name = v.key;
      req->id = "warmup:" + w.name;
      ASSIGN_OR_RETURN(std::vector<residency::WarmupInput> inputs, residency::WarmupInputs(c, w, model_dir, &rng));
      for (auto& in : inputs) req->inputs.push_back({std::move(in.name), std::move(in.tensor)});
      std::promise<Status> done;
      std::future<Status> result = done.get_future();
      req->on_complete = [&done](InferenceResponse r) { done.set_value(r.status); };
      (void)scheduler->Enqueue(std::move(req));  // a refusal is answered through the callback
      Status s = result.get();
      if (!s.ok()) return s.WithContext(what);
      ++runs;
    }
  }
  GH_LOG_INFO("core", "model '{}' v{}: {} warm-up run(s) in {:.1f} ms", v.name, v.version, runs,
              static_cast<double>(NowNs() - start) * 1e-6);
  return Status::OK();
}

std::vector<std::string> Engine::Impl::LoadWarnings(const ServedVersion& v) {
  std::vector<std::string> out;
  const residency::ModelConfig& c = v.config;
  if (!c.skipped_fields.empty()) {
    std::string fields;
    for (const auto& f : c.skipped_fields) fields += (fields.empty() ? "" : ", ") + f;
    out.push_back(fmt::format("config.pbtxt fields gpuhive does not use (skipped): {}", fields));
  }
  for (const auto& g : c.instance_groups) {
    if (g.kind != residency::InstanceKind::kGpu) continue;
    if (!devices.empty()) break;  // GPUs (or simulated ones) are there: placement checks them
    if (discovery.gpus.empty()) {
      out.push_back(fmt::format("instance_group{} asks for KIND_GPU, but this machine has no usable GPU ({}): the "
                                "model runs on the CPU",
                                g.name.empty() ? "" : " '" + g.name + "'", discovery.gpu_unavailable_reason));
    } else {
      out.push_back(fmt::format("instance_group asks for KIND_GPU, but the GPU cannot run models ({}): the model "
                                "runs on the CPU",
                                gpu_backend_reason.empty() ? "models run on the CPU as asked" : gpu_backend_reason));
    }
    break;
  }
  // Once per model and distinct text: configs are rescanned often, versions load one by one.
  std::string key;
  for (const auto& w : out) key += w + "\n";
  auto& seen = warned[v.name];
  if (seen != key) {
    seen = key;
    for (const auto& w : out) GH_LOG_WARN("core", "model '{}': {}", v.name, w);
  }
  return out;
}

void Engine::Impl::RefreshConfigErrors() {
  std::map<std::string, std::string> now;
  for (const auto& [name, status] : device_set->ScanErrors()) now[name] = status.ToString();
  std::vector<std::pair<std::string, std::string>> appeared;
  std::vector<std::string> cleared;
  {
    std::unique_lock lock(mu);
    for (const auto& [name, reason] : now) {
      auto it = config_errors.find(name);
      if (it == config_errors.end() || it->second != reason) appeared.emplace_back(name, reason);
    }
    for (const auto& [name, reason] : config_errors) {
      if (!now.count(name)) cleared.push_back(name);
    }
    config_errors = std::move(now);
  }
  for (const auto& [name, reason] : appeared) {
    GH_LOG_WARN("core", "model '{}' cannot be served from the repository (its requests get 503 until it is fixed): {}",
                name, reason);
  }
  for (const auto& name : cleared) GH_LOG_INFO("core", "model '{}': the repository serves it again", name);
}

// ---- repository extension --------------------------------------------------------------------------

Status Engine::LoadModel(const std::string& name) {
  Impl& c = *impl_;
  RETURN_IF_ERROR(residency::ValidateModelName(name));
  // Only a model the repository has a directory for is remembered as unavailable: a load of a
  // name with nothing behind it must leave no trace (each one used to stay in the index).
  auto remember_failure = [&c, &name](const Status& s) {
    if (s.code() == StatusCode::kNotFound || !c.repository->HasModelDirectory(name)) return;
    std::unique_lock lock(c.mu);
    c.unavailable[name] = s.ToString();
  };
  std::lock_guard<std::mutex> control(c.control_mu);
  {
    std::unique_lock lock(c.mu);
    c.unloaded.erase(name);
  }
  if (c.naive()) {
    {
      std::shared_lock lock(c.mu);
      if (c.models.count(name)) return Status::OK();
    }
    Status s = c.LoadNaiveLocked(name);
    if (!s.ok()) remember_failure(s);
    return s;
  }
  Status s = c.device_set->Load(name);
  if (!s.ok()) {
    remember_failure(s);
    return s;
  }
  c.SyncLocked();
  return Status::OK();
}

Status Engine::UnloadModel(const std::string& name) {
  Impl& c = *impl_;
  std::lock_guard<std::mutex> control(c.control_mu);
  std::vector<int64_t> versions;
  {
    std::unique_lock lock(c.mu);
    auto it = c.models.find(name);
    if (it == c.models.end()) {
      if (c.unavailable.erase(name) > 0 || c.unloaded.count(name)) {
        c.unloaded.insert(name);
        return Status::OK();
      }
      return NotFound("unknown model '{}'", name);
    }
    for (const auto& [ver, v] : it->second.versions) versions.push_back(ver);
    c.unloaded.insert(name);
  }
  c.Unserve(name, versions);  // admitted requests finish first
  if (!c.naive()) {
    Status s = c.device_set->Unload(name);
    if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
  }
  GH_LOG_INFO("core", "model '{}' unloaded", name);
  return Status::OK();
}

Status Engine::LoadModelWithConfig(const std::string& name, const std::string& config_json) {
  Impl& c = *impl_;
  bool overridden;
  {
    std::shared_lock lock(c.mu);
    overridden = c.overridden.count(name) > 0;
  }
  // A plain load of a model running with an override reads its config.pbtxt again (Triton).
  if (config_json.empty() && !overridden) return LoadModel(name);
  RETURN_IF_ERROR(residency::ValidateModelName(name));
  if (c.naive()) return FailedPrecondition("naive mode compiles every model at start; it takes no config override");
  std::optional<residency::ModelConfig> config;
  if (!config_json.empty()) {
    ASSIGN_OR_RETURN(config, residency::ParseModelConfigJson(config_json, "parameters.config"));
    if (config->name.empty()) config->name = name;
    if (config->name != name) {
      return InvalidArgument("parameters.config names model '{}', the load is for '{}'", config->name, name);
    }
  }
  std::lock_guard<std::mutex> control(c.control_mu);
  std::vector<int64_t> served;
  {
    std::unique_lock lock(c.mu);
    c.unloaded.erase(name);
    auto it = c.models.find(name);
    if (it != c.models.end()) {
      for (const auto& [ver, v] : it->second.versions) served.push_back(ver);
    }
  }
  // The versions served with the old config go (queued requests are answered, running batches
  // finish); the sync below serves them with the new one.
  c.Unserve(name, served);
  Status s = c.device_set->LoadWithConfig(name, config ? &*config : nullptr);
  {
    std::unique_lock lock(c.mu);
    if (s.ok() && config) {
      c.overridden.insert(name);
    } else if (s.ok()) {
      c.overridden.erase(name);
    }
    if (!s.ok() && s.code() != StatusCode::kNotFound) c.unavailable[name] = s.ToString();
  }
  if (!s.ok()) return s;
  c.SyncLocked();
  GH_LOG_INFO("core", "model '{}' loaded with {}", name, config ? "the config of the load request" : "its config.pbtxt");
  return Status::OK();
}

}  // namespace gpuhive::engine
