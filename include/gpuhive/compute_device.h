// ComputeDevice: the one API through which every layer above `device` reaches a device's memory,
// copies, streams and events (DESIGN.md "Devices"). Residency, the copy engine, the bandwidth probe
// and the pools hold a ComputeDevice*; they never dereference a pointer into device memory
// themselves (a device whose memory the host cannot address would crash them, and the simulated
// device makes sure a test notices: see sim_device.h).
//
// Implementations: the CPU (host memory, synchronous copies: the fallback and CI's default), the
// simulated device (a testing aid that behaves like a GPU to everything above `device`), and CUDA.
//
// Streams: work queued on one stream runs in order; work on different streams may overlap. Every
// stream has a priority level (0 = most urgent, as the scheduler's levels): when streams compete
// for the same engine (compute, or one copy direction), the more urgent one goes first.
// Events: recorded on a stream, they complete when the work queued before them has; another stream
// may wait for one (on the device, without blocking the host).
//
// Errors: a copy or launch that names memory outside the device's allocations, or a stream of
// another device, is kInvalidArgument at the call; errors raised while the work runs surface at
// the stream's next Synchronize (and fail it from then on).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "gpuhive/device.h"
#include "gpuhive/memory_resource.h"
#include "gpuhive/status.h"

namespace gpuhive {

// A point in a stream's work. Completes when everything queued on the stream before it has.
class DeviceEvent {
 public:
  virtual ~DeviceEvent() = default;
  virtual bool Query() const = 0;     // true once complete (never blocks)
  virtual Status Synchronize() = 0;   // blocks until complete
};

class DeviceStream {
 public:
  virtual ~DeviceStream() = default;
  virtual StreamView view() const = 0;
  virtual int priority_level() const = 0;
  // Blocks until everything queued so far has finished; the first error raised by that work.
  virtual Status Synchronize() = 0;
};

// How a kernel run by the host (CPU and simulated devices) reaches device memory: Map turns a
// device pointer into one the host may read and write for the kernel's duration.
class KernelAccess {
 public:
  virtual ~KernelAccess() = default;
  virtual void* Map(void* device_ptr) const = 0;
  const void* Map(const void* device_ptr) const { return Map(const_cast<void*>(device_ptr)); }
  // The inverse: the device pointer a mapped pointer stands for (others are returned as given).
  virtual void* Unmap(void* mapped_ptr) const = 0;
};

class ComputeDevice {
 public:
  virtual ~ComputeDevice() = default;

  virtual DeviceId id() const = 0;
  virtual std::string name() const = 0;
  virtual uint64_t memory_capacity_bytes() const = 0;
  // What the device can still hand out now, others' use included (cudaMemGetInfo's free on a GPU,
  // read at the call). Devices nobody else allocates from report their capacity.
  virtual uint64_t memory_free_bytes() const { return memory_capacity_bytes(); }
  // True when the host may dereference this device's memory (the CPU only).
  virtual bool host_accessible() const = 0;
  // The device's raw memory: the upstream of its pool. Not thread safe across devices' pools
  // sharing it unless the implementation says so (all of ours are thread safe).
  virtual MemoryResource* memory() = 0;
  // For devices whose kernels the host runs (the CPU, the simulated device): the view through which
  // a host-run backend (the CPU executor standing in for the device's kernels) reaches device
  // memory. Null where the host cannot run kernels on the device's memory (CUDA). Layers above
  // the backend never use it.
  virtual const KernelAccess* host_kernel_access() const = 0;

  virtual StatusOr<std::unique_ptr<DeviceStream>> CreateStream(int priority_level) = 0;

  // Stream-ordered copies (the host buffer must stay valid until the stream reaches the copy).
  virtual Status CopyToDevice(void* device_dst, const void* host_src, size_t bytes, DeviceStream& stream) = 0;
  virtual Status CopyToHost(void* host_dst, const void* device_src, size_t bytes, DeviceStream& stream) = 0;
  virtual Status CopyOnDevice(void* device_dst, const void* device_src, size_t bytes, DeviceStream& stream) = 0;

  virtual StatusOr<std::unique_ptr<DeviceEvent>> RecordEvent(DeviceStream& stream) = 0;
  // Work queued on `stream` after this call starts only once `event` has completed.
  virtual Status WaitEvent(DeviceStream& stream, DeviceEvent& event) = 0;
  // Runs `fn` on the host once the stream reaches it (the stream waits for it to return): how a
  // copy job advances a model's weight gate in stream order.
  virtual Status EnqueueHostCallback(DeviceStream& stream, std::function<void()> fn) = 0;
  // A kernel run by the host's CPU kernels (CPU and simulated devices; kUnimplemented on CUDA,
  // whose kernels the CUDA executor launches itself). `kernel` reaches device memory only through
  // the KernelAccess it is given; an error it returns fails the stream.
  virtual Status LaunchHostKernel(DeviceStream& stream, std::function<Status(const KernelAccess&)> kernel) = 0;

  // Convenience: copy and wait.
  Status CopyToDeviceSync(void* device_dst, const void* host_src, size_t bytes, DeviceStream& stream) {
    RETURN_IF_ERROR(CopyToDevice(device_dst, host_src, bytes, stream));
    return stream.Synchronize();
  }
  Status CopyToHostSync(void* host_dst, const void* device_src, size_t bytes, DeviceStream& stream) {
    RETURN_IF_ERROR(CopyToHost(host_dst, device_src, bytes, stream));
    return stream.Synchronize();
  }
};

// The host as a device: host memory, copies are memcpy done at once (streams are trivially in
// order), events are complete when recorded. Never null; lives for the process.
ComputeDevice* HostComputeDevice();

}  // namespace gpuhive
