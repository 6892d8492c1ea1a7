// An InferenceService with tiny models computed in C++, for frontend tests and the fuzz target.
//   add_sub       INT32 INPUT0, INPUT1 [-1,16] -> OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1
//   add_sub_fp32  the same in FP32
//   identity_any  FP32 INPUT0 [-1,-1] -> OUTPUT0 = INPUT0 (dynamic shapes)
//   delay         FP32 INPUT0 [-1,1] -> OUTPUT0 = INPUT0, answered after INPUT0[0] milliseconds
//                 on a worker thread, or kDeadlineExceeded when the deadline passes first
//   busy          like add_sub_fp32 but refused with kResourceExhausted (queue full)
//   nofit         like add_sub_fp32 but refused with kUnavailable (cannot be made resident)
//   unloaded      known to the repository, not loaded until LoadModel("unloaded")
// Thread safe.
#pragma once

#include <memory>
#include <mutex>

#include "gpuhive/monitor/metric_names.h"
#include "gpuhive/server/service.h"

namespace gpuhive::server {

class FakeService final : public InferenceService {
 public:
  FakeService();
  ~FakeService() override;

  void SetReady(bool ready);
  // Completed Infer calls (any outcome).
  int64_t completed() const;

  ServerMetadata GetServerMetadata() override;
  bool IsLive() override { return true; }
  bool IsReady() override;
  StatusOr<bool> ModelReady(const std::string& name, const std::string& version) override;
  StatusOr<ModelMetadata> GetModelMetadata(const std::string& name,
                                           const std::string& version) override;
  void Infer(std::unique_ptr<InferenceRequest> request) override;
  StatusOr<std::vector<RepositoryEntry>> RepositoryIndex(bool ready_only) override;
  Status LoadModel(const std::string& name) override;
  Status UnloadModel(const std::string& name) override;
  std::vector<DeviceStatus> Devices() override;
  std::vector<ModelStatus> Models() override;
  StatusOr<ModelStatus> GetModelStatus(const std::string& name) override;
  Status UpdateModelSettings(const std::string& name, const ModelSettings& settings) override;
  std::string MetricsText() override;

  monitor::Registry* registry();
  const monitor::GpuhiveMetrics& metrics() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gpuhive::server
