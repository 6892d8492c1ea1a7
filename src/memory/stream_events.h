// Internal: the events a pool records when a block is freed on a device stream, so that another
// stream reuses the block only after the freeing stream's earlier work is complete. The CUDA
// implementation lives in src/device/cuda/memory/; CPU builds have none (streams are synchronous there).
#pragma once

#include "gpuhive/device.h"

namespace gpuhive::memory_detail {

class StreamEvents {
 public:
  virtual ~StreamEvents() = default;
  // Records an event on `stream` after its current work; null when it cannot (the caller then
  // synchronizes the stream instead, so the memory is reusable at once).
  virtual void* Record(StreamView stream) noexcept = 0;
  // True once the recorded work has completed (also true for an event that failed).
  virtual bool Done(void* event) noexcept = 0;
  virtual void Release(void* event) noexcept = 0;
  // Waits for all work on `stream` (fallback when Record fails).
  virtual void Synchronize(StreamView stream) noexcept = 0;
};

// The process's stream events: CUDA events when built with CUDA and a device is present, null
// otherwise.
StreamEvents* DefaultStreamEvents();

}  // namespace gpuhive::memory_detail
