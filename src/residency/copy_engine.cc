#include "gpuhive/residency/copy_engine.h"

#include <algorithm>

#include "gpuhive/units.h"

namespace gpuhive::residency {

CopyEngine::CopyEngine(CopyEngineOptions options)
    : options_(std::move(options)), device_(options_.device != nullptr ? options_.device : HostComputeDevice()) {
  auto stream = device_->CreateStream(options_.stream_priority_level);
  if (stream.ok()) {
    stream_ = std::move(*stream);
  } else {
    stream_error_ = stream.status().WithContext("creating the copy stream of " + device_->id().ToString());
  }
  thread_ = std::thread([this] { Loop(); });
}

CopyEngine::~CopyEngine() {
  std::deque<Job> cancelled;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cancelled.swap(queue_);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (Job& job : cancelled) {
    CopyJobResult r;
    r.status = Cancelled("copy engine stopped before the weights were copied");
    if (job.gate) job.gate->Fail(r.status);
    if (job.done) job.done(r);
  }
}

void CopyEngine::Submit(std::vector<WeightCopy> copies, std::shared_ptr<WeightGate> gate,
                        std::function<void(const CopyJobResult&)> done, bool background) {
  Job job{std::move(copies), std::move(gate), std::move(done), NowNs(), background};
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      // Ahead of queued background jobs, behind other foreground ones.
      auto pos = background ? queue_.end()
                            : std::find_if(queue_.begin(), queue_.end(), [](const Job& j) { return j.background; });
      queue_.insert(pos, std::move(job));
      cv_.notify_all();
      return;
    }
  }
  CopyJobResult r;
  r.status = Cancelled("copy engine is stopping");
  if (job.gate) job.gate->Fail(r.status);
  if (job.done) job.done(r);
}

void CopyEngine::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return (queue_.empty() && !running_job_) || stopping_; });
}

uint64_t CopyEngine::bytes_copied() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_copied_;
}

CopyJobResult CopyEngine::RunJob(Job& job) {
  CopyJobResult r;
  const int64_t t0 = NowNs();
  r.queued_ns = t0 - job.submitted_ns;
  if (!stream_error_.ok()) r.status = stream_error_;
  const size_t chunk = std::max<size_t>(options_.chunk_bytes, 1);
  // Queue every chunk, then a callback per weight that advances the gate in stream order: the
  // request that caused the swap-in runs a step as soon as that step's weights are in.
  for (WeightCopy& c : job.copies) {
    if (!r.status.ok()) break;
    const auto* src = static_cast<const char*>(c.source ? c.source->data() : nullptr);
    auto* dst = static_cast<char*>(c.destination);
    uint64_t queued = 0;
    for (size_t off = 0; off < c.bytes && r.status.ok(); off += chunk) {
      const size_t n = std::min(chunk, c.bytes - off);
      if (src == nullptr || dst == nullptr) {
        r.status = Internal("weight group {}: no source or destination", c.group);
        break;
      }
      if (options_.copy) r.status = options_.copy(dst + off, src + off, n);
      if (r.status.ok()) r.status = device_->CopyToDevice(dst + off, src + off, n, *stream_);
      if (r.status.ok()) queued += n;
    }
    if (r.status.ok() && job.gate) {
      r.status = device_->EnqueueHostCallback(*stream_, [gate = job.gate, g = c.group] { gate->Advance(g + 1); });
    }
    if (!r.status.ok()) {
      r.status = r.status.WithContext(fmt::format("copying weight group {}", c.group));
      break;
    }
    r.bytes += queued;
  }
  // The sources (host-tier tensors) stay alive until the stream has read them.
  Status done = stream_ ? stream_->Synchronize() : Status::OK();
  if (r.status.ok() && !done.ok()) {
    r.status = done.WithContext("copying weights to " + device_->id().ToString());
    r.bytes = 0;
  }
  for (WeightCopy& c : job.copies) c.source.reset();
  r.copy_ns = NowNs() - t0;
  if (!r.status.ok() && job.gate) job.gate->Fail(r.status);
  return r;
}

void CopyEngine::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    running_job_ = true;
    lock.unlock();
    CopyJobResult r = RunJob(job);
    job.copies.clear();
    if (job.done) job.done(r);
    lock.lock();
    bytes_copied_ += r.bytes;
    running_job_ = false;
    cv_.notify_all();
  }
}

}  // namespace gpuhive::residency
