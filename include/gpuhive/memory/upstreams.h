// Upstream memory resources: where pools get their memory from (DESIGN.md "Memory model").
//
//  - host:           aligned host memory (DefaultHostResource() in memory_resource.h).
//  - pinned host:    page-locked host memory (cudaHostAlloc) when built with CUDA and a device is
//                    present; plain aligned host memory otherwise (so CPU builds run the same code).
//  - CUDA device:    cudaMalloc / cudaFree.
//  - CUDA async:     cudaMallocAsync / cudaFreeAsync on the stream (the driver's own stream-ordered
//                    pool; a baseline to compare PoolResource with).
//  - virtual ranges: a reserved address range committed piecewise (CUDA driver VMM API on a GPU,
//                    mmap(PROT_NONE) + mprotect on the host), so a pool can grow and shrink one
//                    contiguous range instead of collecting segments ("expandable segments").
//
// Factories return an error status (kUnavailable) when the build has no CUDA or no device exists;
// they never abort. Every resource here is thread safe.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "gpuhive/device.h"
#include "gpuhive/memory_resource.h"
#include "gpuhive/status.h"

namespace gpuhive {

// Number of CUDA devices visible to this process; 0 in a CPU-only build or without a driver.
int CudaDeviceCount();

// Host memory for short-lived per-request buffers (outputs, the naive mode's arenas): blocks of
// 128 KiB and more are kept when freed (up to 256 MiB, each for up to 2 s) and handed to the next
// allocation of the same page-rounded size, so a buffer freed and allocated again per request
// keeps its pages instead of faulting fresh ones in. DefaultHostResource() instead maps blocks of
// 1 MiB and more directly, so that long-lived large blocks (weights, host-tier models, pool
// segments) leave the process the moment they are freed. Never null; thread safe.
MemoryResource* TransientHostResource();

// Pinned host memory (see above). Never null.
std::unique_ptr<MemoryResource> CreatePinnedHostResource();

// cudaMalloc on `device_index`. kUnavailable without CUDA or without that device.
StatusOr<std::unique_ptr<MemoryResource>> CreateCudaDeviceResource(int device_index);

// cudaMallocAsync on the allocation's stream (the default stream when StreamView.native is null).
// kUnavailable without CUDA, without that device, or when the driver has no memory pools.
StatusOr<std::unique_ptr<MemoryResource>> CreateCudaAsyncResource(int device_index);

// A reserved virtual address range whose pages are made usable (committed) and given back
// (decommitted) piecewise. Offsets and sizes passed to Commit/Decommit are multiples of
// granularity(). Not thread safe: its owner (a PoolResource) serializes calls.
class VirtualRange {
 public:
  virtual ~VirtualRange() = default;
  virtual char* base() const = 0;
  virtual size_t size() const = 0;         // reserved bytes
  virtual size_t granularity() const = 0;  // commit unit in bytes
  // Backs [offset, offset + bytes) with memory. kResourceExhausted when the system has none.
  virtual Status Commit(size_t offset, size_t bytes) = 0;
  // Returns the memory behind [offset, offset + bytes) to the system; the addresses stay reserved.
  virtual void Decommit(size_t offset, size_t bytes) noexcept = 0;
  virtual DeviceId device() const = 0;
  virtual std::string name() const = 0;
};

// Host range: mmap(PROT_NONE, MAP_NORESERVE) of `reserve_bytes`, committed with mprotect and
// decommitted with madvise(MADV_DONTNEED) + mprotect(PROT_NONE). granularity_bytes must be a
// multiple of the page size (default 2 MiB, the CUDA granularity, so CPU figures match a GPU's).
StatusOr<std::unique_ptr<VirtualRange>> CreateHostVirtualRange(size_t reserve_bytes,
                                                               size_t granularity_bytes = 2u << 20);

// CUDA range on `device_index`: cuMemAddressReserve, then cuMemCreate + cuMemMap + cuMemSetAccess
// per granule on Commit, cuMemUnmap + cuMemRelease on Decommit. The driver API is reached through
// cudaGetDriverEntryPointByVersion, so binaries start on machines without a driver.
// kUnavailable without CUDA, without that device, or when the driver lacks virtual memory management.
StatusOr<std::unique_ptr<VirtualRange>> CreateCudaVirtualRange(int device_index, size_t reserve_bytes);

}  // namespace gpuhive
