// Parts of include/gpuhive/cuda_device.h that need no CUDA header: the priority mapping and the
// start-up choice between the GPU and the CPU fallback. Compiled in every build.
#include <algorithm>
#include <mutex>

#include "gpuhive/cuda_device.h"
#include "gpuhive/device_discovery.h"
#include "gpuhive/logging.h"

namespace gpuhive::cuda {

int CudaPriorityForLevel(int level, const StreamPriorityRange& range) {
  level = std::max(level, 0);
  // CUDA: greatest (most urgent) is the numerically smallest value.
  int lo = std::min(range.greatest, range.least);
  int hi = std::max(range.greatest, range.least);
  int64_t p = static_cast<int64_t>(lo) + level;
  return static_cast<int>(std::min<int64_t>(p, hi));
}

StatusOr<BackendChoice> ChooseBackend(const BackendOptions& options) {
  DiscoveryResult found = DiscoverDevices();
  std::string reason;
  if (found.gpus.empty()) {
    reason = found.gpu_unavailable_reason.empty() ? "no usable GPU" : found.gpu_unavailable_reason;
  } else if (options.device_index < 0 || options.device_index >= static_cast<int>(found.gpus.size())) {
    reason = fmt::format("GPU index {} requested but {} GPU(s) found", options.device_index, found.gpus.size());
  }
  if (reason.empty()) {
    const DeviceInfo& gpu = found.gpus[static_cast<size_t>(options.device_index)];
    return BackendChoice{gpu.id, gpu.name, "", false};
  }
  if (options.strict_gpu) {
    return Unavailable("no GPU available and strict GPU mode is on: {}", reason);
  }
  BackendChoice choice{found.cpu.id, found.cpu.name, reason, false};
  static std::once_flag reported;
  std::call_once(reported, [&] {
    choice.reported_now = true;
    GH_LOG_WARN("device", "no GPU in use, running models on the CPU: {}", reason);
  });
  return choice;
}

}  // namespace gpuhive::cuda
