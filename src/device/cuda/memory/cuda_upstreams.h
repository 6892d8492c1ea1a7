// Internal: entry points of the CUDA upstreams (src/device/cuda/memory/*.cc). This header includes no
// CUDA header; only builds with GPUHIVE_HAVE_CUDA compile and call these.
#pragma once

#include <cstddef>
#include <memory>

#include "gpuhive/memory/upstreams.h"
#include "memory/stream_events.h"

namespace gpuhive::memory_detail {

int CudaDeviceCountImpl();
// Null when no device is present.
std::unique_ptr<MemoryResource> CreateCudaPinnedImpl();
StatusOr<std::unique_ptr<MemoryResource>> CreateCudaDeviceImpl(int device_index);
StatusOr<std::unique_ptr<MemoryResource>> CreateCudaAsyncImpl(int device_index);
StatusOr<std::unique_ptr<VirtualRange>> CreateCudaVirtualRangeImpl(int device_index, size_t reserve_bytes);
// Null when no device is present.
StreamEvents* CudaStreamEventsImpl();

}  // namespace gpuhive::memory_detail
