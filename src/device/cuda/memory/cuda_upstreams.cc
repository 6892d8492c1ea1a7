// CUDA upstreams: device memory (cudaMalloc), stream-ordered memory (cudaMallocAsync), pinned host
// memory (cudaHostAlloc) and the events the pool records for stream-ordered frees.
#include "device/cuda/memory/cuda_upstreams.h"

#include "gpuhive/logging.h"
#include "device/cuda/memory/cuda_check.h"

namespace gpuhive::memory_detail {

namespace {

// Makes `device` current for the scope and restores the previous device.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
    if (previous_ != device) cudaSetDevice(device);
  }
  ~DeviceGuard() {
    if (previous_ >= 0) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

Status CheckDevice(int device_index) {
  int count = CudaDeviceCountImpl();
  if (device_index < 0 || device_index >= count) {
    return Unavailable("cuda:{} not present ({} CUDA devices visible)", device_index, count);
  }
  return Status::OK();
}

class CudaDeviceResource final : public MemoryResource {
 public:
  explicit CudaDeviceResource(int device) : device_(device) {}
  DeviceId device() const override { return DeviceId{DeviceType::kCuda, device_}; }
  std::string name() const override { return fmt::format("cudaMalloc(cuda:{})", device_); }

 private:
  StatusOr<void*> DoAllocate(size_t bytes, AllocTag, StreamView) override {
    DeviceGuard guard(device_);
    void* p = nullptr;
    Status s = GPUHIVE_CUDA_STATUS(cudaMalloc(&p, bytes));
    if (!s.ok()) {
      cudaGetLastError();  // clear the sticky allocation error
      return s;
    }
    return p;
  }
  void DoDeallocate(void* ptr, size_t, AllocTag, StreamView) noexcept override {
    DeviceGuard guard(device_);
    cudaFree(ptr);
  }
  const int device_;
};

class CudaAsyncResource final : public MemoryResource {
 public:
  explicit CudaAsyncResource(int device) : device_(device) {}
  DeviceId device() const override { return DeviceId{DeviceType::kCuda, device_}; }
  std::string name() const override { return fmt::format("cudaMallocAsync(cuda:{})", device_); }

 private:
  StatusOr<void*> DoAllocate(size_t bytes, AllocTag, StreamView stream) override {
    DeviceGuard guard(device_);
    void* p = nullptr;
    Status s = GPUHIVE_CUDA_STATUS(cudaMallocAsync(&p, bytes, static_cast<cudaStream_t>(stream.native)));
    if (!s.ok()) {
      cudaGetLastError();
      return s;
    }
    return p;
  }
  void DoDeallocate(void* ptr, size_t, AllocTag, StreamView stream) noexcept override {
    DeviceGuard guard(device_);
    cudaFreeAsync(ptr, static_cast<cudaStream_t>(stream.native));
  }
  const int device_;
};

class CudaPinnedResource final : public MemoryResource {
 public:
  DeviceId device() const override { return CpuDevice(); }
  std::string name() const override { return "pinned-host(cudaHostAlloc)"; }

 private:
  StatusOr<void*> DoAllocate(size_t bytes, AllocTag, StreamView) override {
    void* p = nullptr;
    Status s = GPUHIVE_CUDA_STATUS(cudaHostAlloc(&p, bytes, cudaHostAllocPortable));
    if (!s.ok()) {
      cudaGetLastError();
      return s;
    }
    return p;  // cudaHostAlloc returns page-aligned memory
  }
  void DoDeallocate(void* ptr, size_t, AllocTag, StreamView) noexcept override { cudaFreeHost(ptr); }
};

class CudaStreamEvents final : public StreamEvents {
 public:
  void* Record(StreamView stream) noexcept override {
    cudaEvent_t ev = nullptr;
    if (cudaEventCreateWithFlags(&ev, cudaEventDisableTiming) != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
    if (cudaEventRecord(ev, static_cast<cudaStream_t>(stream.native)) != cudaSuccess) {
      cudaGetLastError();
      cudaEventDestroy(ev);
      return nullptr;
    }
    return ev;
  }
  bool Done(void* event) noexcept override {
    cudaError_t err = cudaEventQuery(static_cast<cudaEvent_t>(event));
    if (err == cudaErrorNotReady) return false;
    if (err != cudaSuccess) cudaGetLastError();
    return true;
  }
  void Release(void* event) noexcept override { cudaEventDestroy(static_cast<cudaEvent_t>(event)); }
  void Synchronize(StreamView stream) noexcept override {
    cudaStreamSynchronize(static_cast<cudaStream_t>(stream.native));
  }
};

}  // namespace

int CudaDeviceCountImpl() {
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
}

std::unique_ptr<MemoryResource> CreateCudaPinnedImpl() {
  if (CudaDeviceCountImpl() == 0) return nullptr;
  return std::make_unique<CudaPinnedResource>();
}

StatusOr<std::unique_ptr<MemoryResource>> CreateCudaDeviceImpl(int device_index) {
  RETURN_IF_ERROR(CheckDevice(device_index));
  return std::unique_ptr<MemoryResource>(new CudaDeviceResource(device_index));
}

StatusOr<std::unique_ptr<MemoryResource>> CreateCudaAsyncImpl(int device_index) {
  RETURN_IF_ERROR(CheckDevice(device_index));
  int supported = 0;
  RETURN_IF_ERROR(GPUHIVE_CUDA_STATUS(
      cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, device_index)));
  if (!supported) return Unavailable("cuda:{} has no stream-ordered memory pools", device_index);
  return std::unique_ptr<MemoryResource>(new CudaAsyncResource(device_index));
}

StreamEvents* CudaStreamEventsImpl() {
  if (CudaDeviceCountImpl() == 0) return nullptr;
  static auto* events = new CudaStreamEvents();  // never destroyed: pools may outlive statics
  return events;
}

}  // namespace gpuhive::memory_detail
