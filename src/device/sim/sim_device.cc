// The simulated device (see sim_device.h for what it promises).
//
// Memory: two views of one range. The pointers handed out lie in `dev_`, a PROT_NONE reservation
// the host can never touch (with `protect`); the bytes live in `rw_`, a private read/write mapping
// of the same size. A device pointer p is reached as rw_ + (p - dev_) by the device itself only
// (copies, and kernels through KernelAccess). Without `protect` both views are one mapping.
//
// Work: every stream is a FIFO of operations; only a stream's head may run, so a stream runs in
// order. Each engine (compute, host->device, device->host, host callbacks) is one thread that
// starts the head operation of its kind from the most urgent stream (lowest priority level, then
// the oldest). Markers (events) and waits run on no engine: they complete as soon as they reach
// the head and, for a wait, its event has completed.
#include <sys/mman.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <thread>

#include "gpuhive/sim_device.h"
#include "gpuhive/units.h"

namespace gpuhive {
namespace {

constexpr size_t kAlign = MemoryResource::kAlignment;

// First-fit allocator over the device range, coalescing on free. Thread safe.
class SimMemory : public MemoryResource {
 public:
  SimMemory(DeviceId id, char* dev, char* rw, uint64_t size) : id_(id), dev_(dev), rw_(rw), size_(size) {
    free_[0] = size;
  }
  DeviceId device() const override { return id_; }
  std::string name() const override { return "memory(" + id_.ToString() + ")"; }
  std::optional<MemoryStats> Stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }
  bool Contains(const void* p) const {
    auto* c = static_cast<const char*>(p);
    return c >= dev_ && c < dev_ + size_;
  }
  char* Translate(const void* p) const { return rw_ + (static_cast<const char*>(p) - dev_); }
  bool ContainsMapped(const void* p) const {
    auto* c = static_cast<const char*>(p);
    return c >= rw_ && c < rw_ + size_;
  }
  char* Untranslate(const void* p) const { return dev_ + (static_cast<const char*>(p) - rw_); }
  // kInvalidArgument unless [p, p + bytes) lies inside one live allocation.
  Status CheckRange(const void* p, size_t bytes, const char* what) const {
    if (!Contains(p)) return InvalidArgument("{} {} is not memory of {}", what, p, id_.ToString());
    const uint64_t off = static_cast<uint64_t>(static_cast<const char*>(p) - dev_);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.upper_bound(off);
    if (it == live_.begin()) return InvalidArgument("{} {} is not inside an allocation of {}", what, p, id_.ToString());
    --it;
    if (off + bytes > it->first + it->second) {
      return InvalidArgument("{} of {} bytes at {} runs past its allocation on {} ({} bytes from offset {})", what,
                             bytes, p, id_.ToString(), it->second, it->first);
    }
    return Status::OK();
  }

 private:
  StatusOr<void*> DoAllocate(size_t bytes, AllocTag, StreamView) override {
    const uint64_t n = (static_cast<uint64_t>(bytes) + kAlign - 1) / kAlign * kAlign;
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->second < n) continue;
      const uint64_t off = it->first, len = it->second;
      free_.erase(it);
      if (len > n) free_[off + n] = len - n;
      live_[off] = n;
      stats_.current_bytes += n;
      stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.current_bytes);
      stats_.total_bytes += n;
      ++stats_.num_allocations;
      return static_cast<void*>(dev_ + off);
    }
    ++stats_.num_failures;
    return ResourceExhausted("{}: out of device memory allocating {} ({} of {} in use)", id_.ToString(),
                             FormatBytes(n), FormatBytes(stats_.current_bytes), FormatBytes(size_));
  }
  void DoDeallocate(void* p, size_t, AllocTag, StreamView) noexcept override {
    if (!Contains(p)) return;
    uint64_t off = static_cast<uint64_t>(static_cast<char*>(p) - dev_);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(off);
    if (it == live_.end()) return;  // not ours or freed twice: ignored, the range stays consistent
    uint64_t len = it->second;
    live_.erase(it);
    stats_.current_bytes -= len;
    ++stats_.num_deallocations;
    // Large frees give their pages back, as a GPU allocator's release would.
    if (len >= (1u << 20)) madvise(rw_ + off, len, MADV_DONTNEED);
    auto next = free_.lower_bound(off);
    if (next != free_.end() && next->first == off + len) {
      len += next->second;
      next = free_.erase(next);
    }
    if (next != free_.begin()) {
      auto prev = std::prev(next);
      if (prev->first + prev->second == off) {
        prev->second += len;
        return;
      }
    }
    free_[off] = len;
  }

  const DeviceId id_;
  char* const dev_;
  char* const rw_;
  const uint64_t size_;
  mutable std::mutex mu_;
  std::map<uint64_t, uint64_t> free_;  // offset -> length; guarded by mu_
  std::map<uint64_t, uint64_t> live_;  // guarded by mu_
  MemoryStats stats_;                  // guarded by mu_
};

class RangeAccess : public KernelAccess {
 public:
  explicit RangeAccess(const SimMemory* memory) : memory_(memory) {}
  void* Map(void* p) const override { return memory_->Contains(p) ? memory_->Translate(p) : p; }
  void* Unmap(void* p) const override { return memory_->ContainsMapped(p) ? memory_->Untranslate(p) : p; }

 private:
  const SimMemory* memory_;
};

enum class Engine { kCompute = 0, kHostToDevice, kDeviceToHost, kCallback, kNone };
constexpr int kEngines = 4;

struct StreamState;

struct Op {
  Engine engine = Engine::kNone;
  uint64_t seq = 0;
  int64_t enqueued_ns = 0;
  std::function<Status()> run;            // engines' work
  std::shared_ptr<StreamState> wait_for;  // a wait: completes when wait_for->done >= wait_seq
  uint64_t wait_seq = 0;
  bool running = false;
};

struct StreamState {
  int priority = 0;
  uint64_t enqueued = 0;  // guarded by the device's mu_
  uint64_t done = 0;      // guarded by the device's mu_
  std::deque<Op> ops;     // guarded by the device's mu_
  Status error;           // guarded by the device's mu_
};

class SimDeviceImpl;

class SimStream : public DeviceStream {
 public:
  SimStream(SimDeviceImpl* device, std::shared_ptr<StreamState> state) : device_(device), state_(std::move(state)) {}
  ~SimStream() override;
  StreamView view() const override;
  int priority_level() const override { return state_->priority; }
  Status Synchronize() override;
  const std::shared_ptr<StreamState>& state() const { return state_; }

 private:
  SimDeviceImpl* device_;
  std::shared_ptr<StreamState> state_;
};

class SimEvent : public DeviceEvent {
 public:
  SimEvent(SimDeviceImpl* device, std::shared_ptr<StreamState> stream, uint64_t seq)
      : device_(device), stream_(std::move(stream)), seq_(seq) {}
  bool Query() const override;
  Status Synchronize() override;
  const std::shared_ptr<StreamState>& stream() const { return stream_; }
  uint64_t seq() const { return seq_; }
  const SimDeviceImpl* device() const { return device_; }

 private:
  SimDeviceImpl* device_;
  std::shared_ptr<StreamState> stream_;
  uint64_t seq_;
};

class SimDeviceImpl : public SimDevice {
 public:
  SimDeviceImpl(const SimDeviceOptions& o, char* dev, char* rw)
      : options_(o), id_{DeviceType::kSim, o.index}, dev_(dev), rw_(rw),
        memory_(id_, dev, rw, o.memory_bytes), access_(&memory_) {
    for (int i = 0; i < kEngines; ++i) engines_.emplace_back([this, i] { Loop(static_cast<Engine>(i)); });
  }
  ~SimDeviceImpl() override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      paused_ = false;
      cv_.notify_all();
      // Queued work finishes first (a destroyed device must not leave a copy half done).
      cv_.wait(lock, [&] { return AllIdleLocked(); });
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : engines_) t.join();
    munmap(rw_, options_.memory_bytes);
    if (dev_ != rw_) munmap(dev_, options_.memory_bytes);
  }

  DeviceId id() const override { return id_; }
  std::string name() const override { return "simulated device " + std::to_string(options_.index); }
  uint64_t memory_capacity_bytes() const override { return options_.memory_bytes; }
  uint64_t memory_free_bytes() const override {
    const uint64_t used = memory_.Stats()->current_bytes;
    return used < options_.memory_bytes ? options_.memory_bytes - used : 0;
  }
  bool host_accessible() const override { return !options_.protect; }
  MemoryResource* memory() override { return &memory_; }
  const KernelAccess* host_kernel_access() const override { return &access_; }
  bool Contains(const void* p) const override { return memory_.Contains(p); }

  SimDeviceStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    SimDeviceStats s = stats_;
    s.allocated_bytes = memory_.Stats()->current_bytes;
    return s;
  }
  void PauseCompute(bool paused) override {
    std::lock_guard<std::mutex> lock(mu_);
    paused_ = paused;
    cv_.notify_all();
  }

  StatusOr<std::unique_ptr<DeviceStream>> CreateStream(int priority_level) override {
    auto state = std::make_shared<StreamState>();
    state->priority = priority_level;
    {
      std::lock_guard<std::mutex> lock(mu_);
      streams_.push_back(state);
    }
    return std::unique_ptr<DeviceStream>(std::make_unique<SimStream>(this, std::move(state)));
  }

  Status CopyToDevice(void* dst, const void* src, size_t bytes, DeviceStream& stream) override {
    if (bytes == 0) return Own(stream).status();
    if (src == nullptr || Contains(src)) return InvalidArgument("copy to device: the source {} is not host memory", src);
    RETURN_IF_ERROR(memory_.CheckRange(dst, bytes, "copy to device: destination"));
    return Copy(Engine::kHostToDevice, memory_.Translate(dst), src, bytes, stream);
  }
  Status CopyToHost(void* dst, const void* src, size_t bytes, DeviceStream& stream) override {
    if (bytes == 0) return Own(stream).status();
    if (dst == nullptr || Contains(dst)) return InvalidArgument("copy to host: the destination {} is not host memory", dst);
    RETURN_IF_ERROR(memory_.CheckRange(src, bytes, "copy to host: source"));
    return Copy(Engine::kDeviceToHost, dst, memory_.Translate(src), bytes, stream);
  }
  Status CopyOnDevice(void* dst, const void* src, size_t bytes, DeviceStream& stream) override {
    if (bytes == 0) return Own(stream).status();
    RETURN_IF_ERROR(memory_.CheckRange(dst, bytes, "device copy: destination"));
    RETURN_IF_ERROR(memory_.CheckRange(src, bytes, "device copy: source"));
    return Copy(Engine::kCompute, memory_.Translate(dst), memory_.Translate(src), bytes, stream);
  }

  StatusOr<std::unique_ptr<DeviceEvent>> RecordEvent(DeviceStream& stream) override {
    ASSIGN_OR_RETURN(StreamState * s, Own(stream));
    std::lock_guard<std::mutex> lock(mu_);
    Op op;  // a marker: completes when it reaches the head
    EnqueueLocked(*s, std::move(op));
    return std::unique_ptr<DeviceEvent>(
        std::make_unique<SimEvent>(this, static_cast<SimStream&>(stream).state(), s->enqueued));
  }
  Status WaitEvent(DeviceStream& stream, DeviceEvent& event) override {
    ASSIGN_OR_RETURN(StreamState * s, Own(stream));
    auto* e = dynamic_cast<SimEvent*>(&event);
    if (e == nullptr || e->device() != this) return InvalidArgument("an event of another device was given to {}", id_.ToString());
    std::lock_guard<std::mutex> lock(mu_);
    Op op;
    op.wait_for = e->stream();
    op.wait_seq = e->seq();
    EnqueueLocked(*s, std::move(op));
    return Status::OK();
  }
  Status EnqueueHostCallback(DeviceStream& stream, std::function<void()> fn) override {
    ASSIGN_OR_RETURN(StreamState * s, Own(stream));
    Op op;
    op.engine = Engine::kCallback;
    op.run = [fn = std::move(fn)] {
      if (fn) fn();
      return Status::OK();
    };
    std::lock_guard<std::mutex> lock(mu_);
    EnqueueLocked(*s, std::move(op));
    return Status::OK();
  }
  Status LaunchHostKernel(DeviceStream& stream, std::function<Status(const KernelAccess&)> kernel) override {
    ASSIGN_OR_RETURN(StreamState * s, Own(stream));
    Op op;
    op.engine = Engine::kCompute;
    const int priority = s->priority;
    op.run = [this, kernel = std::move(kernel), priority] {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.kernels;
        stats_.kernel_priorities.push_back(priority);
      }
      return kernel ? kernel(access_) : Status::OK();
    };
    std::lock_guard<std::mutex> lock(mu_);
    EnqueueLocked(*s, std::move(op));
    return Status::OK();
  }

  // Stream and event support (called by SimStream / SimEvent).
  Status SynchronizeStream(StreamState& s) {
    std::unique_lock<std::mutex> lock(mu_);
    const uint64_t target = s.enqueued;
    cv_.wait(lock, [&] { return s.done >= target; });
    return s.error;
  }
  void ReleaseStream(const std::shared_ptr<StreamState>& s) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return s->done >= s->enqueued; });
    streams_.remove(s);
  }
  bool EventDone(const StreamState& s, uint64_t seq) const {
    std::lock_guard<std::mutex> lock(mu_);
    return s.done >= seq;
  }
  Status SynchronizeEvent(const StreamState& s, uint64_t seq) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return s.done >= seq; });
    return Status::OK();
  }

 private:
  StatusOr<StreamState*> Own(DeviceStream& stream) {
    if (stream.view().device != id_ || stream.view().native == nullptr) {
      return InvalidArgument("a stream of {} was given to {}", stream.view().device.ToString(), id_.ToString());
    }
    return static_cast<StreamState*>(stream.view().native);
  }

  Status Copy(Engine engine, void* dst, const void* src, size_t bytes, DeviceStream& stream) {
    ASSIGN_OR_RETURN(StreamState * s, Own(stream));
    const double bw = engine == Engine::kCompute ? 0.0 : options_.copy_bytes_per_s;
    Op op;
    op.engine = engine;
    op.run = [this, engine, dst, src, bytes, bw] {
      const int64_t t0 = NowNs();
      std::memmove(dst, src, bytes);
      if (bw > 0) {
        const auto until = std::chrono::steady_clock::now() +
                           std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(bytes) / bw * 1e9) -
                                                    (NowNs() - t0));
        std::this_thread::sleep_until(until);
      }
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.copies;
      (engine == Engine::kHostToDevice   ? stats_.host_to_device_bytes
       : engine == Engine::kDeviceToHost ? stats_.device_to_host_bytes
                                         : stats_.device_to_device_bytes) += bytes;
      return Status::OK();
    };
    std::lock_guard<std::mutex> lock(mu_);
    EnqueueLocked(*s, std::move(op));
    return Status::OK();
  }

  void EnqueueLocked(StreamState& s, Op op) {
    op.seq = ++s.enqueued;
    op.enqueued_ns = NowNs();
    s.ops.push_back(std::move(op));
    AdvanceLocked();
    cv_.notify_all();
  }

  // Completes the heads that need no engine (markers, satisfied waits) and skips the work of
  // failed streams, until nothing changes.
  void AdvanceLocked() {
    bool changed = true;
    while (changed) {
      changed = false;
      for (auto& sp : streams_) {
        StreamState& s = *sp;
        while (!s.ops.empty() && !s.ops.front().running) {
          Op& head = s.ops.front();
          const bool marker = head.engine == Engine::kNone && head.wait_for == nullptr;
          const bool wait_done = head.wait_for != nullptr && head.wait_for->done >= head.wait_seq;
          const bool skipped = !s.error.ok() && head.engine != Engine::kNone;
          if (!marker && !wait_done && !skipped) break;
          s.done = head.seq;
          s.ops.pop_front();
          changed = true;
        }
      }
    }
  }

  bool AllIdleLocked() const {
    for (const auto& s : streams_) {
      if (!s->ops.empty()) return false;
    }
    return true;
  }

  // The head op of kind `engine` to start next: the most urgent stream's, then the oldest.
  Op* PickLocked(Engine engine, StreamState** owner) {
    Op* best = nullptr;
    for (auto& sp : streams_) {
      if (sp->ops.empty()) continue;
      Op& head = sp->ops.front();
      if (head.engine != engine || head.running) continue;
      if (best == nullptr || sp->priority < (*owner)->priority ||
          (sp->priority == (*owner)->priority && head.enqueued_ns < best->enqueued_ns)) {
        best = &head;
        *owner = sp.get();
      }
    }
    return best;
  }

  void Loop(Engine engine) {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      StreamState* owner = nullptr;
      Op* op = nullptr;
      cv_.wait(lock, [&] {
        if (stopping_) return true;
        if (engine == Engine::kCompute && paused_) return false;
        op = PickLocked(engine, &owner);
        return op != nullptr;
      });
      if (stopping_) return;
      op->running = true;
      std::function<Status()> run = std::move(op->run);
      lock.unlock();
      Status st = run ? run() : Status::OK();
      run = nullptr;
      lock.lock();
      // The op is still the owner's head: only its engine pops a running op.
      if (!st.ok() && owner->error.ok()) owner->error = std::move(st);
      owner->done = owner->ops.front().seq;
      owner->ops.pop_front();
      AdvanceLocked();
      cv_.notify_all();
    }
  }

  const SimDeviceOptions options_;
  const DeviceId id_;
  char* const dev_;
  char* const rw_;
  SimMemory memory_;
  RangeAccess access_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::list<std::shared_ptr<StreamState>> streams_;  // guarded by mu_
  SimDeviceStats stats_;                             // guarded by mu_ (allocated_bytes aside)
  bool paused_ = false;                              // guarded by mu_
  bool stopping_ = false;                            // guarded by mu_
  std::vector<std::thread> engines_;
};

SimStream::~SimStream() { device_->ReleaseStream(state_); }
StreamView SimStream::view() const { return StreamView{device_->id(), state_.get()}; }
Status SimStream::Synchronize() { return device_->SynchronizeStream(*state_); }
bool SimEvent::Query() const { return device_->EventDone(*stream_, seq_); }
Status SimEvent::Synchronize() { return device_->SynchronizeEvent(*stream_, seq_); }

}  // namespace

StatusOr<std::unique_ptr<SimDevice>> SimDevice::Create(const SimDeviceOptions& options) {
  if (options.memory_bytes == 0) return InvalidArgument("simulated device {}: memory_bytes is 0", options.index);
  if (options.copy_bytes_per_s < 0) return InvalidArgument("simulated device {}: negative copy bandwidth", options.index);
  const size_t n = options.memory_bytes;
  void* rw = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (rw == MAP_FAILED) return ResourceExhausted("simulated device {}: cannot map {}", options.index, FormatBytes(n));
  void* dev = rw;
  if (options.protect) {
    dev = mmap(nullptr, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (dev == MAP_FAILED) {
      munmap(rw, n);
      return ResourceExhausted("simulated device {}: cannot reserve {}", options.index, FormatBytes(n));
    }
  }
  return std::unique_ptr<SimDevice>(
      std::make_unique<SimDeviceImpl>(options, static_cast<char*>(dev), static_cast<char*>(rw)));
}

StatusOr<DeviceSpec> ParseDeviceSpec(const std::string& text) {
  DeviceSpec spec;
  if (text == "cpu") return spec;
  if (text == "cuda" || text == "gpu") {
    spec.kind = DeviceSpec::Kind::kCuda;
    return spec;
  }
  if (text == "sim") {
    spec.kind = DeviceSpec::Kind::kSim;
    return spec;
  }
  if (text.rfind("sim:", 0) == 0) {
    int n = 0;
    const char* b = text.data() + 4;
    const char* e = text.data() + text.size();
    auto [p, ec] = std::from_chars(b, e, n);
    if (ec != std::errc() || p != e || n < 1 || n > 16) {
      return InvalidArgument("--device '{}': sim:N takes N from 1 to 16", text);
    }
    spec.kind = DeviceSpec::Kind::kSim;
    spec.count = n;
    return spec;
  }
  return InvalidArgument("--device '{}': expected cpu, gpu (or cuda), sim or sim:N", text);
}

}  // namespace gpuhive
