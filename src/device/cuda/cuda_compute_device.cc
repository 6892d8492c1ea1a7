// A CUDA GPU as a ComputeDevice: cuda::Stream / cuda::Event underneath, copies with
// cudaMemcpyAsync, host callbacks handed from cudaLaunchHostFunc to a callback thread.
#include "gpuhive/cuda_compute_device.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include <cuda_runtime_api.h>

#include "device/cuda/cuda_status.h"
#include "gpuhive/cuda_device.h"
#include "gpuhive/memory/upstreams.h"

namespace gpuhive {
namespace {

class CudaDeviceStream final : public DeviceStream {
 public:
  CudaDeviceStream(std::unique_ptr<cuda::Stream> stream, int level) : stream_(std::move(stream)), level_(level) {}
  StreamView view() const override { return stream_->view(); }
  int priority_level() const override { return level_; }
  Status Synchronize() override { return stream_->Synchronize(); }
  cudaStream_t native() const { return static_cast<cudaStream_t>(stream_->native()); }
  int device_index() const { return stream_->device_index(); }

 private:
  std::unique_ptr<cuda::Stream> stream_;
  const int level_;
};

class CudaDeviceEvent final : public DeviceEvent {
 public:
  explicit CudaDeviceEvent(std::unique_ptr<cuda::Event> event) : event_(std::move(event)) {}
  bool Query() const override { return cudaEventQuery(static_cast<cudaEvent_t>(event_->native())) == cudaSuccess; }
  Status Synchronize() override { return event_->Synchronize(); }
  cuda::Event& event() { return *event_; }

 private:
  std::unique_ptr<cuda::Event> event_;
};

class CudaDevice final : public ComputeDevice {
 public:
  CudaDevice(int index, std::string name, uint64_t capacity, std::unique_ptr<MemoryResource> memory)
      : index_(index), name_(std::move(name)), capacity_(capacity), memory_(std::move(memory)) {
    callback_thread_ = std::thread([this] { CallbackLoop(); });
  }
  ~CudaDevice() override {
    // Callbacks still queued on streams name this object: let the device finish them first.
    if (cudaSetDevice(index_) == cudaSuccess) (void)cudaDeviceSynchronize();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    callback_thread_.join();
  }

  DeviceId id() const override { return DeviceId{DeviceType::kCuda, index_}; }
  std::string name() const override { return name_; }
  uint64_t memory_capacity_bytes() const override { return capacity_; }
  uint64_t memory_free_bytes() const override {
    size_t free_b = 0, total_b = 0;
    if (cudaSetDevice(index_) != cudaSuccess || cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
      cudaGetLastError();
      return 0;  // unknown: the caller falls back to its own rule
    }
    return free_b;
  }
  bool host_accessible() const override { return false; }
  MemoryResource* memory() override { return memory_.get(); }
  const KernelAccess* host_kernel_access() const override { return nullptr; }

  StatusOr<std::unique_ptr<DeviceStream>> CreateStream(int priority_level) override {
    ASSIGN_OR_RETURN(auto s, cuda::Stream::Create({index_, priority_level}));
    return std::unique_ptr<DeviceStream>(std::make_unique<CudaDeviceStream>(std::move(s), priority_level));
  }
  Status CopyToDevice(void* dst, const void* src, size_t bytes, DeviceStream& stream) override {
    ASSIGN_OR_RETURN(CudaDeviceStream * s, Own(stream));
    return cuda::CopyHostToDeviceAsync(dst, src, bytes, s->view());
  }
  Status CopyToHost(void* dst, const void* src, size_t bytes, DeviceStream& stream) override {
    ASSIGN_OR_RETURN(CudaDeviceStream * s, Own(stream));
    return cuda::CopyDeviceToHostAsync(dst, src, bytes, s->view());
  }
  Status CopyOnDevice(void* dst, const void* src, size_t bytes, DeviceStream& stream) override {
    ASSIGN_OR_RETURN(CudaDeviceStream * s, Own(stream));
    return cuda::CopyDeviceToDeviceAsync(dst, src, bytes, s->view());
  }
  StatusOr<std::unique_ptr<DeviceEvent>> RecordEvent(DeviceStream& stream) override {
    ASSIGN_OR_RETURN(CudaDeviceStream * s, Own(stream));
    ASSIGN_OR_RETURN(auto e, cuda::Event::Create(index_, /*timing=*/false));
    RETURN_IF_ERROR(e->Record(s->view()));
    return std::unique_ptr<DeviceEvent>(std::make_unique<CudaDeviceEvent>(std::move(e)));
  }
  Status WaitEvent(DeviceStream& stream, DeviceEvent& event) override {
    ASSIGN_OR_RETURN(CudaDeviceStream * s, Own(stream));
    auto* e = dynamic_cast<CudaDeviceEvent*>(&event);
    if (e == nullptr) return InvalidArgument("{}: the event was not recorded on a CUDA device", id().ToString());
    return e->event().MakeStreamWait(s->view());
  }
  Status EnqueueHostCallback(DeviceStream& stream, std::function<void()> fn) override {
    ASSIGN_OR_RETURN(CudaDeviceStream * s, Own(stream));
    auto* job = new Job{this, std::move(fn)};
    Status st = GH_CUDA_STATUS(cudaLaunchHostFunc(s->native(), &CudaDevice::OnHostFunc, job));
    if (!st.ok()) delete job;
    return st;
  }
  Status LaunchHostKernel(DeviceStream&, std::function<Status(const KernelAccess&)>) override {
    return Unimplemented("{}: the host cannot run kernels on a CUDA device (its memory is not host memory)",
                         id().ToString());
  }

 private:
  struct Job {
    CudaDevice* device;
    std::function<void()> fn;
  };

  // Runs on a CUDA runtime thread, which must not call CUDA: hand the work to our thread.
  static void CUDART_CB OnHostFunc(void* data) {
    auto* job = static_cast<Job*>(data);
    CudaDevice* d = job->device;
    {
      std::lock_guard<std::mutex> lock(d->mu_);
      d->queue_.push_back(std::move(job->fn));
    }
    d->cv_.notify_one();
    delete job;
  }

  void CallbackLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_ and drained
      std::function<void()> fn = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      if (fn) fn();
      lock.lock();
    }
  }

  StatusOr<CudaDeviceStream*> Own(DeviceStream& stream) const {
    auto* s = dynamic_cast<CudaDeviceStream*>(&stream);
    if (s == nullptr || s->device_index() != index_) {
      return InvalidArgument("{}: the stream belongs to another device", id().ToString());
    }
    return s;
  }

  const int index_;
  const std::string name_;
  const uint64_t capacity_;
  std::unique_ptr<MemoryResource> memory_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // GUARDED_BY(mu_)
  bool stop_ = false;                        // GUARDED_BY(mu_)
  std::thread callback_thread_;
};

}  // namespace

StatusOr<std::unique_ptr<ComputeDevice>> CreateCudaComputeDevice(const CudaComputeDeviceOptions& options) {
  ASSIGN_OR_RETURN(int count, cuda::DeviceCountOrError());
  if (options.device_index < 0 || options.device_index >= count) {
    return Unavailable("cuda:{}: no such device ({} found)", options.device_index, count);
  }
  RETURN_IF_ERROR(cuda::SetCurrentDevice(options.device_index));
  cudaDeviceProp prop{};
  GH_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, options.device_index));
  std::unique_ptr<MemoryResource> memory;
  if (options.memory == CudaComputeDeviceOptions::Memory::kCudaMallocAsync) {
    ASSIGN_OR_RETURN(memory, CreateCudaAsyncResource(options.device_index));
  } else {
    ASSIGN_OR_RETURN(memory, CreateCudaDeviceResource(options.device_index));
  }
  return std::unique_ptr<ComputeDevice>(std::make_unique<CudaDevice>(
      options.device_index, std::string(prop.name), static_cast<uint64_t>(prop.totalGlobalMem), std::move(memory)));
}

}  // namespace gpuhive
