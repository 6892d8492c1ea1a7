// include/gpuhive/cuda_device.h for builds without the CUDA toolkit: every device call reports
// kUnavailable, so callers take the CPU path without #ifdefs.
#include "gpuhive/cuda_device.h"

namespace gpuhive::cuda {
namespace {
Status NoCuda() { return Unavailable("gpuhive was built without CUDA"); }
}  // namespace

StatusOr<StreamPriorityRange> GetStreamPriorityRange(int) { return NoCuda(); }
StatusOr<std::unique_ptr<Stream>> Stream::Create(const Options&) { return NoCuda(); }
Stream::~Stream() = default;
Status Stream::Synchronize() const { return NoCuda(); }
StatusOr<std::unique_ptr<Event>> Event::Create(int, bool) { return NoCuda(); }
Event::~Event() = default;
Status Event::Record(StreamView) { return NoCuda(); }
Status Event::MakeStreamWait(StreamView) const { return NoCuda(); }
Status Event::Synchronize() const { return NoCuda(); }
StatusOr<float> Event::ElapsedMsSince(const Event&) const { return NoCuda(); }
Status CopyHostToDeviceAsync(void*, const void*, size_t, StreamView) { return NoCuda(); }
Status CopyDeviceToHostAsync(void*, const void*, size_t, StreamView) { return NoCuda(); }
Status CopyDeviceToDeviceAsync(void*, const void*, size_t, StreamView) { return NoCuda(); }
Status MemsetDeviceAsync(void*, int, size_t, StreamView) { return NoCuda(); }
StatusOr<double> MeasureHostToDeviceBandwidth(int, size_t, int) { return NoCuda(); }
Status SetCurrentDevice(int) { return NoCuda(); }
StatusOr<int> DeviceCountOrError() { return NoCuda(); }
StatusOr<std::unique_ptr<GraphExec>> GraphExec::Capture(StreamView, const std::function<Status()>&) { return NoCuda(); }
GraphExec::~GraphExec() = default;
Status GraphExec::Launch(StreamView) const { return NoCuda(); }

}  // namespace gpuhive::cuda
