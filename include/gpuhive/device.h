// Device identity and stream views: the vocabulary the memory, kernel and runtime layers share.
// The CUDA implementation (discovery, RAII streams and events) lives in src/device/cuda and is
// reached through include/gpuhive/cuda_device.h; nothing here includes a CUDA header.
#pragma once

#include <cstdint>
#include <string>

namespace gpuhive {

// kSim: the simulated device (sim_device.h), a testing aid that behaves like a GPU.
enum class DeviceType : uint8_t { kCpu = 0, kCuda = 1, kSim = 2 };

struct DeviceId {
  DeviceType type = DeviceType::kCpu;
  int index = 0;

  bool is_cpu() const { return type == DeviceType::kCpu; }
  std::string ToString() const {
    switch (type) {
      case DeviceType::kCpu: return "cpu";
      case DeviceType::kSim: return "sim:" + std::to_string(index);
      case DeviceType::kCuda: break;
    }
    return "cuda:" + std::to_string(index);
  }
  friend bool operator==(const DeviceId&, const DeviceId&) = default;
};

inline DeviceId CpuDevice() { return DeviceId{DeviceType::kCpu, 0}; }

// Non-owning view of an execution stream. On the CPU `native` is null (work is synchronous);
// on CUDA it is a cudaStream_t. Ownership stays with the Stream object that created it.
struct StreamView {
  DeviceId device;
  void* native = nullptr;
  friend bool operator==(const StreamView&, const StreamView&) = default;
};

}  // namespace gpuhive
