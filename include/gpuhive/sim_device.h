// The simulated device (`gpuhive serve --device sim[:N]`): a testing aid, never a default. It
// behaves like a GPU to everything above `device`, so CI (which has no GPU) exercises the device
// path: the copy engine, the bandwidth probe, the pool over device memory, per-device budgets,
// placement across devices, stream priorities and events.
//
//  - Memory is a region of its own. With `protect` (the default) the pointers it hands out lie in
//    an address range the host cannot touch (PROT_NONE): any read or write from above `device`
//    that does not go through the ComputeDevice API faults at once (SIGSEGV), so a test fails the
//    moment a layer touches device memory directly. The device itself reaches the bytes through a
//    second, private view of the same pages (kernels get it through KernelAccess::Map).
//  - Copies are asynchronous: host->device and device->host each have an engine (a thread) that
//    takes the most urgent stream's next copy, and each copy lasts at least bytes / bandwidth.
//  - Kernels (LaunchHostKernel) run on one compute engine, most urgent stream first: the CPU
//    kernels, on device memory mapped through KernelAccess.
//  - Host callbacks run on an engine of their own, in their stream's order.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gpuhive/compute_device.h"

namespace gpuhive {

struct SimDeviceOptions {
  int index = 0;
  uint64_t memory_bytes = 1ull << 30;     // address space reserved; pages are committed on use
  double copy_bytes_per_s = 16e9;         // each direction, host<->device (0: as fast as memcpy)
  bool protect = true;                    // fault on any host access to device memory
};

// What the device did, for tests and the status page.
struct SimDeviceStats {
  uint64_t host_to_device_bytes = 0;
  uint64_t device_to_host_bytes = 0;
  uint64_t device_to_device_bytes = 0;
  uint64_t copies = 0;
  uint64_t kernels = 0;
  uint64_t allocated_bytes = 0;           // live allocations of the raw memory now
  // Order in which the compute engine started kernels: each entry is the stream's priority level.
  std::vector<int> kernel_priorities;
};

class SimDevice : public ComputeDevice {
 public:
  // Errors: kInvalidArgument (memory_bytes 0), kResourceExhausted (the address space cannot be
  // reserved).
  static StatusOr<std::unique_ptr<SimDevice>> Create(const SimDeviceOptions& options);
  virtual SimDeviceStats stats() const = 0;
  // Pauses (true) or resumes the compute engine: work queues up meanwhile (tests use it to queue
  // kernels of several priorities before any starts).
  virtual void PauseCompute(bool paused) = 0;
  // True when `ptr` lies in this device's memory (the range the host may not touch).
  virtual bool Contains(const void* ptr) const = 0;
};

// Parses a --device value: "cpu", "sim" (one simulated device), "sim:N" (N of them), "cuda"/"gpu"
// (every GPU). Returns the kind and count; kInvalidArgument names what was wrong.
struct DeviceSpec {
  enum class Kind { kCpu, kSim, kCuda } kind = Kind::kCpu;
  int count = 1;
};
StatusOr<DeviceSpec> ParseDeviceSpec(const std::string& text);

}  // namespace gpuhive
