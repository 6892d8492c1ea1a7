// The CUDA device layer for host code: RAII streams (with priorities) and events, pinned-host <->
// device copies, a measured host-to-device bandwidth, and the start-up choice between the GPU and
// the CPU fallback. No CUDA header is included: native handles travel as void* (cudaStream_t,
// cudaEvent_t) inside StreamView and through native().
//
// Builds without CUDA link the same API: every device call then returns kUnavailable ("built
// without CUDA") and ChooseBackend picks the CPU, so callers need no #ifdef.
// Errors: every CUDA return code becomes a Status naming the call, file and line; "no device" and
// "no driver" are kUnavailable, out of memory is kResourceExhausted, anything else kInternal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "gpuhive/device.h"
#include "gpuhive/status.h"

namespace gpuhive::cuda {

// The range cudaDeviceGetStreamPriorityRange reports. CUDA's convention: numerically lower is more
// urgent, so `greatest` <= `least` (e.g. least 0, greatest -5).
struct StreamPriorityRange {
  int least = 0;
  int greatest = 0;
};

// Maps a gpuhive priority level (0 = critical, larger = less urgent) to a CUDA stream priority:
// level 0 gets `greatest`, each further level one step less urgent, clamped at `least`. A negative
// level is treated as 0. Pure function (no device needed).
int CudaPriorityForLevel(int level, const StreamPriorityRange& range);

// The device's stream priority range. Errors: kUnavailable without a device.
StatusOr<StreamPriorityRange> GetStreamPriorityRange(int device_index);

// Owns one non-blocking cudaStream_t. Move-only; the stream is destroyed with the object (after
// the work queued on it has been handed to the device; cudaStreamDestroy does not wait).
class Stream {
 public:
  struct Options {
    int device_index = 0;
    int priority_level = 0;  // gpuhive level, mapped with CudaPriorityForLevel
  };
  static StatusOr<std::unique_ptr<Stream>> Create(const Options& options);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  StreamView view() const { return StreamView{DeviceId{DeviceType::kCuda, device_index_}, native_}; }
  void* native() const { return native_; }  // cudaStream_t
  int device_index() const { return device_index_; }
  int cuda_priority() const { return cuda_priority_; }
  // Blocks until all work queued so far has finished; reports asynchronous kernel errors.
  Status Synchronize() const;

 private:
  Stream(void* native, int device_index, int cuda_priority)
      : native_(native), device_index_(device_index), cuda_priority_(cuda_priority) {}
  void* native_;
  int device_index_;
  int cuda_priority_;
};

// Owns one cudaEvent_t. Move-only.
class Event {
 public:
  // `timing` false creates the event with cudaEventDisableTiming (cheaper for pure ordering).
  static StatusOr<std::unique_ptr<Event>> Create(int device_index, bool timing = true);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void* native() const { return native_; }  // cudaEvent_t
  Status Record(StreamView stream);
  // Makes `stream` wait (on the device, not the host) for the work this event captured.
  Status MakeStreamWait(StreamView stream) const;
  Status Synchronize() const;
  // Milliseconds between `start` and this event; both must have been recorded with timing.
  StatusOr<float> ElapsedMsSince(const Event& start) const;

 private:
  explicit Event(void* native) : native_(native) {}
  void* native_;
};

// Stream-ordered copies. Host pointers should be pinned (CreatePinnedHostResource) for the copy to
// be asynchronous; pageable memory works but the call then blocks. Zero bytes is a no-op.
Status CopyHostToDeviceAsync(void* device_dst, const void* host_src, size_t bytes, StreamView stream);
Status CopyDeviceToHostAsync(void* host_dst, const void* device_src, size_t bytes, StreamView stream);
Status CopyDeviceToDeviceAsync(void* dst, const void* src, size_t bytes, StreamView stream);
Status MemsetDeviceAsync(void* dst, int value, size_t bytes, StreamView stream);

// Makes `device_index` the calling thread's current device. Errors: kUnavailable.
Status SetCurrentDevice(int device_index);
// The number of CUDA devices; kUnavailable with the runtime's reason when there is none.
StatusOr<int> DeviceCountOrError();

// A captured CUDA graph, instantiated and ready to replay (RAII: destroyed with the object).
class GraphExec {
 public:
  // Captures what `body` enqueues on `stream` (thread-local capture mode) and instantiates it.
  // Errors: the body's own error, or kInternal naming the failed capture / instantiation (the
  // sticky runtime error is cleared, so the stream can run the work uncaptured).
  static StatusOr<std::unique_ptr<GraphExec>> Capture(StreamView stream, const std::function<Status()>& body);
  ~GraphExec();
  GraphExec(const GraphExec&) = delete;
  GraphExec& operator=(const GraphExec&) = delete;
  Status Launch(StreamView stream) const;

 private:
  explicit GraphExec(void* exec) : exec_(exec) {}
  void* exec_;
};

// Host-to-device bandwidth from pinned memory, in bytes per second: copies `bytes` `repeats` times
// (after one warm-up copy) on a fresh stream and times them with events. Errors: kUnavailable
// without a device, kResourceExhausted when the buffers cannot be allocated, kInvalidArgument for
// bytes == 0 or repeats < 1.
StatusOr<double> MeasureHostToDeviceBandwidth(int device_index, size_t bytes = 64ull << 20, int repeats = 5);

// --- Start-up choice between the GPU and the CPU fallback ------------------------------------

struct BackendOptions {
  // When no usable GPU is found: false falls back to the CPU (reason logged once per process),
  // true returns kUnavailable with the reason instead (the server's --strict-gpu).
  bool strict_gpu = false;
  int device_index = 0;  // which GPU to use when several are present
};

struct BackendChoice {
  DeviceId device;          // cuda:N, or cpu when falling back
  std::string device_name;  // "NVIDIA H100 80GB HBM3" or the CPU model
  std::string fallback_reason;  // empty when a GPU was chosen
  // True for the one call in this process that logged the fallback reason (later calls do not
  // log it again).
  bool reported_now = false;
};

// Discovers devices and chooses where models run. Errors: kUnavailable (strict_gpu and no GPU, or
// device_index out of range with strict_gpu), with the discovery's reason in the message.
StatusOr<BackendChoice> ChooseBackend(const BackendOptions& options = {});

}  // namespace gpuhive::cuda
