// Engine: Triton's statistics and model configuration extensions.
#include <chrono>

#include "engine/engine_internal.h"

namespace gpuhive::engine {

namespace {

void Add(DurationStat* d, int64_t ns) {
  d->count++;
  d->ns += static_cast<uint64_t>(std::max<int64_t>(0, ns));
}

uint64_t NowEpochMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

void VersionStatistics::RecordRequest(const InferenceResponse& r, int64_t request_ns) {
  const uint64_t now_ms = NowEpochMs();
  std::lock_guard lock(mu_);
  s_.last_inference_ms = now_ms;
  if (!r.status.ok()) {
    Add(&s_.fail, request_ns);
    return;
  }
  Add(&s_.success, request_ns);
  Add(&s_.queue, r.queue_ns);
  Add(&s_.compute_input, r.compute_input_ns);
  Add(&s_.compute_infer, r.compute_ns);
  Add(&s_.compute_output, r.compute_output_ns);
}

void VersionStatistics::RecordExecution(uint64_t rows, int64_t input_ns, int64_t infer_ns, int64_t output_ns) {
  std::lock_guard lock(mu_);
  s_.execution_count++;
  s_.inference_count += rows;
  BatchStat& b = batches_[rows];
  b.batch_size = rows;
  Add(&b.compute_input, input_ns);
  Add(&b.compute_infer, infer_ns);
  Add(&b.compute_output, output_ns);
}

ModelStatistics VersionStatistics::Snapshot() const {
  std::lock_guard lock(mu_);
  ModelStatistics out = s_;
  for (const auto& [rows, b] : batches_) out.batch_stats.push_back(b);
  return out;
}

StatusOr<std::vector<ModelStatistics>> Engine::GetModelStatistics(const std::string& name,
                                                                       const std::string& version) {
  Impl& c = *impl_;
  std::vector<std::shared_ptr<ServedVersion>> versions;
  if (name.empty()) {
    if (!version.empty()) return InvalidArgument("a version needs a model name");
    std::shared_lock lock(c.mu);
    for (const auto& [n, m] : c.models) {
      for (const auto& [ver, v] : m.versions) versions.push_back(v);
    }
  } else if (!version.empty()) {
    ASSIGN_OR_RETURN(auto v, c.Resolve(name, version, nullptr, nullptr));
    versions.push_back(std::move(v));
  } else {
    RETURN_IF_ERROR(c.Resolve(name, "", nullptr, nullptr).status());
    std::shared_lock lock(c.mu);
    auto it = c.models.find(name);
    if (it == c.models.end()) return NotFound("unknown model '{}'", name);
    for (const auto& [ver, v] : it->second.versions) versions.push_back(v);
  }
  std::vector<ModelStatistics> out;
  for (const auto& v : versions) {
    ModelStatistics s = v->stats.Snapshot();
    s.name = v->name;
    s.version = std::to_string(v->version);
    out.push_back(std::move(s));
  }
  return out;
}

StatusOr<ModelConfigDocument> Engine::GetModelConfig(const std::string& name, const std::string& version) {
  ASSIGN_OR_RETURN(auto v, impl_->Resolve(name, version, nullptr, nullptr));
  residency::ModelConfig config = v->config;
  if (config.name.empty()) config.name = name;
  return ModelConfigDocument{residency::ModelConfigToJson(config), residency::ModelConfigToProtoBytes(config)};
}

}  // namespace gpuhive::engine
