// Upstream factories: CPU implementations here, CUDA ones in src/device/cuda/memory/ when built with CUDA.
#include "gpuhive/memory/upstreams.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "gpuhive/units.h"
#include "memory/stream_events.h"
#if GPUHIVE_HAVE_CUDA
#include "device/cuda/memory/cuda_upstreams.h"
#endif

namespace gpuhive {

namespace {

class HostVirtualRange final : public VirtualRange {
 public:
  HostVirtualRange(char* base, size_t size, size_t granularity)
      : base_(base), size_(size), granularity_(granularity) {}
  ~HostVirtualRange() override { munmap(base_, size_); }

  char* base() const override { return base_; }
  size_t size() const override { return size_; }
  size_t granularity() const override { return granularity_; }
  Status Commit(size_t offset, size_t bytes) override {
    if (offset + bytes > size_) return InvalidArgument("commit [{}, +{}) outside the range of {}", offset, bytes, size_);
    if (mprotect(base_ + offset, bytes, PROT_READ | PROT_WRITE) != 0) {
      return ResourceExhausted("mprotect of {} bytes failed: {}", bytes, std::strerror(errno));
    }
    return Status::OK();
  }
  void Decommit(size_t offset, size_t bytes) noexcept override {
    madvise(base_ + offset, bytes, MADV_DONTNEED);
    mprotect(base_ + offset, bytes, PROT_NONE);
  }
  DeviceId device() const override { return CpuDevice(); }
  std::string name() const override { return "host-range"; }

 private:
  char* const base_;
  const size_t size_;
  const size_t granularity_;
};

// "Pinned" host memory without CUDA: ordinary aligned host memory, named so logs say so.
class PinnedFallbackResource final : public MemoryResource {
 public:
  DeviceId device() const override { return CpuDevice(); }
  std::string name() const override { return "pinned-host(unpinned fallback)"; }

 private:
  StatusOr<void*> DoAllocate(size_t bytes, AllocTag tag, StreamView stream) override {
    return DefaultHostResource()->Allocate(bytes, tag, stream);
  }
  void DoDeallocate(void* ptr, size_t bytes, AllocTag tag, StreamView stream) noexcept override {
    DefaultHostResource()->Deallocate(ptr, bytes, tag, stream);
  }
};

}  // namespace

StatusOr<std::unique_ptr<VirtualRange>> CreateHostVirtualRange(size_t reserve_bytes, size_t granularity_bytes) {
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (granularity_bytes == 0 || granularity_bytes % page != 0) {
    return InvalidArgument("host range granularity {} must be a multiple of the page size {}", granularity_bytes,
                           page);
  }
  if (reserve_bytes == 0) return InvalidArgument("host range of 0 bytes");
  size_t size = AlignUp(reserve_bytes, granularity_bytes);
  void* p = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return ResourceExhausted("reserving {} bytes of address space failed: {}", size, std::strerror(errno));
  }
  return std::unique_ptr<VirtualRange>(new HostVirtualRange(static_cast<char*>(p), size, granularity_bytes));
}

#if GPUHIVE_HAVE_CUDA

int CudaDeviceCount() { return memory_detail::CudaDeviceCountImpl(); }

std::unique_ptr<MemoryResource> CreatePinnedHostResource() {
  if (auto r = memory_detail::CreateCudaPinnedImpl()) return r;
  return std::make_unique<PinnedFallbackResource>();
}

StatusOr<std::unique_ptr<MemoryResource>> CreateCudaDeviceResource(int device_index) {
  return memory_detail::CreateCudaDeviceImpl(device_index);
}
StatusOr<std::unique_ptr<MemoryResource>> CreateCudaAsyncResource(int device_index) {
  return memory_detail::CreateCudaAsyncImpl(device_index);
}
StatusOr<std::unique_ptr<VirtualRange>> CreateCudaVirtualRange(int device_index, size_t reserve_bytes) {
  return memory_detail::CreateCudaVirtualRangeImpl(device_index, reserve_bytes);
}
namespace memory_detail {
StreamEvents* DefaultStreamEvents() { return CudaStreamEventsImpl(); }
}  // namespace memory_detail

#else  // CPU-only build

int CudaDeviceCount() { return 0; }

std::unique_ptr<MemoryResource> CreatePinnedHostResource() { return std::make_unique<PinnedFallbackResource>(); }

StatusOr<std::unique_ptr<MemoryResource>> CreateCudaDeviceResource(int device_index) {
  return Unavailable("cuda:{} device memory: gpuhive was built without CUDA", device_index);
}
StatusOr<std::unique_ptr<MemoryResource>> CreateCudaAsyncResource(int device_index) {
  return Unavailable("cuda:{} stream-ordered memory: gpuhive was built without CUDA", device_index);
}
StatusOr<std::unique_ptr<VirtualRange>> CreateCudaVirtualRange(int device_index, size_t) {
  return Unavailable("cuda:{} virtual memory: gpuhive was built without CUDA", device_index);
}
namespace memory_detail {
StreamEvents* DefaultStreamEvents() { return nullptr; }
}  // namespace memory_detail

#endif

}  // namespace gpuhive
