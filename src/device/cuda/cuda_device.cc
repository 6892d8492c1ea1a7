// CUDA implementation of include/gpuhive/cuda_device.h (streams, events, copies, bandwidth).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <vector>

#include "device/cuda/cuda_status.h"
#include "gpuhive/cuda_device.h"

namespace gpuhive::cuda {
namespace {
cudaStream_t AsStream(StreamView s) { return static_cast<cudaStream_t>(s.native); }
cudaEvent_t AsEvent(void* e) { return static_cast<cudaEvent_t>(e); }

Status CheckDeviceIndex(int device_index) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return GH_CUDA_STATUS(err);
  }
  if (device_index < 0 || device_index >= count) {
    return Unavailable("CUDA device {} requested but {} device(s) present", device_index, count);
  }
  return Status::OK();
}
}  // namespace

StatusOr<StreamPriorityRange> GetStreamPriorityRange(int device_index) {
  RETURN_IF_ERROR(CheckDeviceIndex(device_index));
  GH_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_index));
  StreamPriorityRange range;
  GH_CUDA_RETURN_IF_ERROR(cudaDeviceGetStreamPriorityRange(&range.least, &range.greatest));
  return range;
}

StatusOr<std::unique_ptr<Stream>> Stream::Create(const Options& options) {
  ASSIGN_OR_RETURN(StreamPriorityRange range, GetStreamPriorityRange(options.device_index));
  int priority = CudaPriorityForLevel(options.priority_level, range);
  cudaStream_t s = nullptr;
  GH_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, priority));
  return std::unique_ptr<Stream>(new Stream(s, options.device_index, priority));
}

Stream::~Stream() {
  if (native_ != nullptr) cudaStreamDestroy(static_cast<cudaStream_t>(native_));
}

Status Stream::Synchronize() const { return GH_CUDA_STATUS(cudaStreamSynchronize(static_cast<cudaStream_t>(native_))); }

StatusOr<std::unique_ptr<Event>> Event::Create(int device_index, bool timing) {
  RETURN_IF_ERROR(CheckDeviceIndex(device_index));
  GH_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_index));
  cudaEvent_t e = nullptr;
  GH_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
  return std::unique_ptr<Event>(new Event(e));
}

Event::~Event() {
  if (native_ != nullptr) cudaEventDestroy(AsEvent(native_));
}

Status Event::Record(StreamView stream) { return GH_CUDA_STATUS(cudaEventRecord(AsEvent(native_), AsStream(stream))); }

Status Event::MakeStreamWait(StreamView stream) const {
  return GH_CUDA_STATUS(cudaStreamWaitEvent(AsStream(stream), AsEvent(native_), 0));
}

Status Event::Synchronize() const { return GH_CUDA_STATUS(cudaEventSynchronize(AsEvent(native_))); }

StatusOr<float> Event::ElapsedMsSince(const Event& start) const {
  float ms = 0.f;
  GH_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, AsEvent(start.native_), AsEvent(native_)));
  return ms;
}

Status CopyHostToDeviceAsync(void* device_dst, const void* host_src, size_t bytes, StreamView stream) {
  if (bytes == 0) return Status::OK();
  return GH_CUDA_STATUS(cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, AsStream(stream)));
}

Status CopyDeviceToHostAsync(void* host_dst, const void* device_src, size_t bytes, StreamView stream) {
  if (bytes == 0) return Status::OK();
  return GH_CUDA_STATUS(cudaMemcpyAsync(host_dst, device_src, bytes, cudaMemcpyDeviceToHost, AsStream(stream)));
}

Status CopyDeviceToDeviceAsync(void* dst, const void* src, size_t bytes, StreamView stream) {
  if (bytes == 0 || dst == src) return Status::OK();
  return GH_CUDA_STATUS(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, AsStream(stream)));
}

Status MemsetDeviceAsync(void* dst, int value, size_t bytes, StreamView stream) {
  if (bytes == 0) return Status::OK();
  return GH_CUDA_STATUS(cudaMemsetAsync(dst, value, bytes, AsStream(stream)));
}

StatusOr<double> MeasureHostToDeviceBandwidth(int device_index, size_t bytes, int repeats) {
  if (bytes == 0 || repeats < 1) {
    return InvalidArgument("bandwidth measurement needs bytes > 0 and repeats >= 1 (got {}, {})", bytes, repeats);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Stream> stream, Stream::Create({device_index, 0}));
  ASSIGN_OR_RETURN(std::unique_ptr<Event> start, Event::Create(device_index));
  ASSIGN_OR_RETURN(std::unique_ptr<Event> stop, Event::Create(device_index));
  void* host = nullptr;
  void* dev = nullptr;
  Status st = GH_CUDA_STATUS(cudaMallocHost(&host, bytes));
  if (st.ok()) st = GH_CUDA_STATUS(cudaMalloc(&dev, bytes));
  if (st.ok()) {
    std::fill_n(static_cast<unsigned char*>(host), bytes, static_cast<unsigned char>(0x5a));
    st = CopyHostToDeviceAsync(dev, host, bytes, stream->view());  // warm-up
  }
  if (st.ok()) st = start->Record(stream->view());
  for (int i = 0; st.ok() && i < repeats; ++i) st = CopyHostToDeviceAsync(dev, host, bytes, stream->view());
  if (st.ok()) st = stop->Record(stream->view());
  if (st.ok()) st = stop->Synchronize();
  StatusOr<float> ms = st.ok() ? stop->ElapsedMsSince(*start) : StatusOr<float>(st);
  if (dev != nullptr) cudaFree(dev);
  if (host != nullptr) cudaFreeHost(host);
  if (!ms.ok()) return ms.status();
  if (*ms <= 0.f) return Internal("bandwidth measurement timed {} ms for {} bytes", *ms, bytes);
  return static_cast<double>(bytes) * repeats / (static_cast<double>(*ms) * 1e-3);
}

Status SetCurrentDevice(int device_index) { return GH_CUDA_STATUS(cudaSetDevice(device_index)); }

StatusOr<int> DeviceCountOrError() {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    cudaGetLastError();
    return Unavailable("no CUDA device: {}", err != cudaSuccess ? cudaGetErrorString(err) : "none found");
  }
  return count;
}

StatusOr<std::unique_ptr<GraphExec>> GraphExec::Capture(StreamView stream, const std::function<Status()>& body) {
  auto s = static_cast<cudaStream_t>(stream.native);
  GH_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  Status st = body();
  cudaGraph_t graph = nullptr;
  cudaError_t end = cudaStreamEndCapture(s, &graph);
  cudaGraphExec_t exec = nullptr;
  if (st.ok() && end == cudaSuccess && graph != nullptr) end = cudaGraphInstantiate(&exec, graph, 0);
  if (graph != nullptr) cudaGraphDestroy(graph);
  if (st.ok() && (end != cudaSuccess || exec == nullptr)) {
    st = Internal("CUDA graph capture failed: {}", cudaGetErrorString(end));
  }
  if (!st.ok()) {
    cudaGetLastError();
    if (exec != nullptr) cudaGraphExecDestroy(exec);
    return st;
  }
  return std::unique_ptr<GraphExec>(new GraphExec(exec));
}

GraphExec::~GraphExec() {
  if (exec_ != nullptr) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_));
}

Status GraphExec::Launch(StreamView stream) const {
  return GH_CUDA_STATUS(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec_), static_cast<cudaStream_t>(stream.native)));
}

}  // namespace gpuhive::cuda
