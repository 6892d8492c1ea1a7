// The host as a ComputeDevice: memory is host memory, copies and kernels run at once on the
// calling thread (a stream is trivially in order), events are complete when recorded.
#include <cstring>
#include <mutex>

#include "gpuhive/compute_device.h"

namespace gpuhive {
namespace {

class HostStream : public DeviceStream {
 public:
  explicit HostStream(int priority_level) : priority_level_(priority_level) {}
  StreamView view() const override { return StreamView{CpuDevice(), nullptr}; }
  int priority_level() const override { return priority_level_; }
  Status Synchronize() override {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }
  // The first error of the work run on this stream; later work is skipped.
  bool Failed() {
    std::lock_guard<std::mutex> lock(mu_);
    return !error_.ok();
  }
  void Fail(Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_.ok()) error_ = std::move(s);
  }

 private:
  const int priority_level_;
  std::mutex mu_;
  Status error_;  // guarded by mu_
};

class DoneEvent : public DeviceEvent {
 public:
  bool Query() const override { return true; }
  Status Synchronize() override { return Status::OK(); }
};

class IdentityAccess : public KernelAccess {
 public:
  void* Map(void* device_ptr) const override { return device_ptr; }
  void* Unmap(void* mapped_ptr) const override { return mapped_ptr; }
};

class HostDevice : public ComputeDevice {
 public:
  DeviceId id() const override { return CpuDevice(); }
  std::string name() const override { return "cpu"; }
  uint64_t memory_capacity_bytes() const override { return 0; }
  bool host_accessible() const override { return true; }
  MemoryResource* memory() override { return DefaultHostResource(); }
  const KernelAccess* host_kernel_access() const override { return &access_; }

  StatusOr<std::unique_ptr<DeviceStream>> CreateStream(int priority_level) override {
    return std::unique_ptr<DeviceStream>(std::make_unique<HostStream>(priority_level));
  }
  Status CopyToDevice(void* dst, const void* src, size_t bytes, DeviceStream& stream) override {
    return Copy(dst, src, bytes, stream);
  }
  Status CopyToHost(void* dst, const void* src, size_t bytes, DeviceStream& stream) override {
    return Copy(dst, src, bytes, stream);
  }
  Status CopyOnDevice(void* dst, const void* src, size_t bytes, DeviceStream& stream) override {
    return Copy(dst, src, bytes, stream);
  }
  StatusOr<std::unique_ptr<DeviceEvent>> RecordEvent(DeviceStream& stream) override {
    RETURN_IF_ERROR(Own(stream));
    return std::unique_ptr<DeviceEvent>(std::make_unique<DoneEvent>());
  }
  Status WaitEvent(DeviceStream& stream, DeviceEvent&) override { return Own(stream); }
  Status EnqueueHostCallback(DeviceStream& stream, std::function<void()> fn) override {
    RETURN_IF_ERROR(Own(stream));
    if (fn) fn();
    return Status::OK();
  }
  Status LaunchHostKernel(DeviceStream& stream, std::function<Status(const KernelAccess&)> kernel) override {
    RETURN_IF_ERROR(Own(stream));
    auto& s = static_cast<HostStream&>(stream);
    if (s.Failed() || !kernel) return Status::OK();
    Status st = kernel(access_);
    if (!st.ok()) s.Fail(std::move(st));
    return Status::OK();
  }

 private:
  static Status Own(DeviceStream& stream) {
    if (stream.view().device != CpuDevice() || stream.view().native != nullptr) {
      return InvalidArgument("a stream of {} was given to the cpu device", stream.view().device.ToString());
    }
    return Status::OK();
  }
  Status Copy(void* dst, const void* src, size_t bytes, DeviceStream& stream) {
    RETURN_IF_ERROR(Own(stream));
    if (bytes == 0) return Status::OK();
    if (dst == nullptr || src == nullptr) return InvalidArgument("copy of {} bytes with a null pointer", bytes);
    auto& s = static_cast<HostStream&>(stream);
    if (!s.Failed()) std::memmove(dst, src, bytes);
    return Status::OK();
  }
  IdentityAccess access_;
};

}  // namespace

ComputeDevice* HostComputeDevice() {
  static HostDevice* device = new HostDevice();  // never destroyed: pools may outlive statics
  return device;
}

}  // namespace gpuhive
