#include "gpuhive/residency/copy_engine.h"

#include <algorithm>
#include <cstring>

#include "gpuhive/units.h"

namespace gpuhive::residency {

CopyEngine::CopyEngine(CopyEngineOptions options) : options_(std::move(options)) {
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
  const size_t chunk = std::max<size_t>(options_.chunk_bytes, 1);
  for (WeightCopy& c : job.copies) {
    const auto* src = static_cast<const char*>(c.source ? c.source->data() : nullptr);
    auto* dst = static_cast<char*>(c.destination);
    for (size_t off = 0; off < c.bytes && r.status.ok(); off += chunk) {
      const size_t n = std::min(chunk, c.bytes - off);
      if (src == nullptr || dst == nullptr) {
        r.status = Internal("weight group {}: no source or destination", c.group);
      } else if (options_.copy) {
        r.status = options_.copy(dst + off, src + off, n);
      } else {
        std::memcpy(dst + off, src + off, n);
      }
      if (r.status.ok()) r.bytes += n;
    }
    if (!r.status.ok()) {
      r.status = r.status.WithContext(fmt::format("copying weight group {}", c.group));
      break;
    }
    c.source.reset();  // the host-tier tensor may go now
    if (job.gate) job.gate->Advance(c.group + 1);
  }
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
