// CUDA virtual-memory range: cuMemAddressReserve once, then one physical allocation per granule
// mapped on Commit (cuMemCreate + cuMemMap + cuMemSetAccess) and unmapped on Decommit. The driver
// functions come from cudaGetDriverEntryPointByVersion so the binary does not link libcuda.
#include <mutex>
#include <vector>

#include "gpuhive/logging.h"
#include "gpuhive/units.h"
#include "device/cuda/memory/cuda_check.h"
#include "device/cuda/memory/cuda_upstreams.h"

namespace gpuhive::memory_detail {

namespace {

struct DriverApi {
  decltype(&cuMemGetAllocationGranularity) get_granularity = nullptr;
  decltype(&cuMemAddressReserve) address_reserve = nullptr;
  decltype(&cuMemAddressFree) address_free = nullptr;
  decltype(&cuMemCreate) create = nullptr;
  decltype(&cuMemRelease) release = nullptr;
  decltype(&cuMemMap) map = nullptr;
  decltype(&cuMemUnmap) unmap = nullptr;
  decltype(&cuMemSetAccess) set_access = nullptr;
  decltype(&cuDeviceGet) device_get = nullptr;
  decltype(&cuDeviceGetAttribute) device_attribute = nullptr;
  Status status;
};

template <typename Fn>
Status Load(const char* symbol, Fn* fn) {
  void* p = nullptr;
  cudaDriverEntryPointQueryResult result{};
  cudaError_t err = cudaGetDriverEntryPointByVersion(symbol, &p, 12000, cudaEnableDefault, &result);
  if (err != cudaSuccess || result != cudaDriverEntryPointSuccess || p == nullptr) {
    cudaGetLastError();
    return Unavailable("CUDA driver entry point {} not available", symbol);
  }
  *fn = reinterpret_cast<Fn>(p);
  return Status::OK();
}

const DriverApi& Driver() {
  static const DriverApi api = [] {
    DriverApi a;
    a.status = [&]() -> Status {
      RETURN_IF_ERROR(Load("cuMemGetAllocationGranularity", &a.get_granularity));
      RETURN_IF_ERROR(Load("cuMemAddressReserve", &a.address_reserve));
      RETURN_IF_ERROR(Load("cuMemAddressFree", &a.address_free));
      RETURN_IF_ERROR(Load("cuMemCreate", &a.create));
      RETURN_IF_ERROR(Load("cuMemRelease", &a.release));
      RETURN_IF_ERROR(Load("cuMemMap", &a.map));
      RETURN_IF_ERROR(Load("cuMemUnmap", &a.unmap));
      RETURN_IF_ERROR(Load("cuMemSetAccess", &a.set_access));
      RETURN_IF_ERROR(Load("cuDeviceGet", &a.device_get));
      RETURN_IF_ERROR(Load("cuDeviceGetAttribute", &a.device_attribute));
      return Status::OK();
    }();
    return a;
  }();
  return api;
}

CUmemAllocationProp DeviceProp(int device) {  // device: the ordinal (CUdevice equals it)
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = device;
  return prop;
}

class CudaVirtualRange final : public VirtualRange {
 public:
  CudaVirtualRange(int device, CUdeviceptr base, size_t size, size_t granularity)
      : device_(device), base_(base), size_(size), granularity_(granularity), handles_(size / granularity, 0) {}
  ~CudaVirtualRange() override {
    Decommit(0, size_);
    Driver().address_free(base_, size_);
  }

  char* base() const override { return reinterpret_cast<char*>(base_); }
  size_t size() const override { return size_; }
  size_t granularity() const override { return granularity_; }
  DeviceId device() const override { return DeviceId{DeviceType::kCuda, device_}; }
  std::string name() const override { return fmt::format("cuda-vmm(cuda:{})", device_); }

  Status Commit(size_t offset, size_t bytes) override {
    if (offset % granularity_ != 0 || bytes % granularity_ != 0 || offset + bytes > size_) {
      return InvalidArgument("commit [{}, +{}) not granule-aligned inside {} bytes", offset, bytes, size_);
    }
    const DriverApi& d = Driver();
    CUmemAllocationProp prop = DeviceProp(device_);
    CUmemAccessDesc access{};
    access.location = prop.location;
    access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    for (size_t off = offset; off < offset + bytes; off += granularity_) {
      size_t i = off / granularity_;
      if (handles_[i] != 0) continue;
      CUmemGenericAllocationHandle h = 0;
      Status s = GPUHIVE_CU_STATUS(d.create(&h, granularity_, &prop, 0));
      if (s.ok()) {
        s = GPUHIVE_CU_STATUS(d.map(base_ + off, granularity_, 0, h, 0));
        if (!s.ok()) d.release(h);
      }
      if (s.ok()) {
        s = GPUHIVE_CU_STATUS(d.set_access(base_ + off, granularity_, &access, 1));
        if (!s.ok()) {
          d.unmap(base_ + off, granularity_);
          d.release(h);
        }
      }
      if (!s.ok()) {
        Decommit(offset, off - offset);  // all or nothing
        return s;
      }
      handles_[i] = h;
    }
    return Status::OK();
  }

  void Decommit(size_t offset, size_t bytes) noexcept override {
    const DriverApi& d = Driver();
    for (size_t off = offset; off < offset + bytes && off < size_; off += granularity_) {
      size_t i = off / granularity_;
      if (handles_[i] == 0) continue;
      d.unmap(base_ + off, granularity_);
      d.release(handles_[i]);
      handles_[i] = 0;
    }
  }

 private:
  const int device_;
  const CUdeviceptr base_;
  const size_t size_;
  const size_t granularity_;
  std::vector<CUmemGenericAllocationHandle> handles_;  // one per granule, 0 when not mapped
};

}  // namespace

StatusOr<std::unique_ptr<VirtualRange>> CreateCudaVirtualRangeImpl(int device_index, size_t reserve_bytes) {
  int count = CudaDeviceCountImpl();
  if (device_index < 0 || device_index >= count) {
    return Unavailable("cuda:{} not present ({} CUDA devices visible)", device_index, count);
  }
  const DriverApi& d = Driver();
  RETURN_IF_ERROR(d.status);
  // The primary context must exist before the driver calls.
  RETURN_IF_ERROR(GPUHIVE_CUDA_STATUS(cudaSetDevice(device_index)));
  RETURN_IF_ERROR(GPUHIVE_CUDA_STATUS(cudaFree(nullptr)));
  CUdevice dev = 0;
  RETURN_IF_ERROR(GPUHIVE_CU_STATUS(d.device_get(&dev, device_index)));
  int vmm = 0;
  RETURN_IF_ERROR(GPUHIVE_CU_STATUS(
      d.device_attribute(&vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, dev)));
  if (!vmm) return Unavailable("cuda:{} does not support virtual memory management", device_index);
  CUmemAllocationProp prop = DeviceProp(device_index);
  size_t granularity = 0;
  RETURN_IF_ERROR(GPUHIVE_CU_STATUS(d.get_granularity(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED)));
  if (granularity == 0 || granularity % MemoryResource::kAlignment != 0) {
    return Internal("unexpected CUDA allocation granularity {}", granularity);
  }
  size_t size = AlignUp(reserve_bytes, granularity);
  CUdeviceptr base = 0;
  RETURN_IF_ERROR(GPUHIVE_CU_STATUS(d.address_reserve(&base, size, granularity, 0, 0)));
  return std::unique_ptr<VirtualRange>(new CudaVirtualRange(device_index, base, size, granularity));
}

}  // namespace gpuhive::memory_detail
