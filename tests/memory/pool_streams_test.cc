// Stream-ordered frees without a GPU: a fake event source whose events complete when the test
// says so, in stream order, exercises the per-stream free lists and the cross-stream rule.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

#include "gpuhive/memory/pool_resource.h"
#include "memory/stream_events.h"

namespace gpuhive {
namespace {

class FakeEvents final : public memory_detail::StreamEvents {
 public:
  struct Event {
    void* stream;
    uint64_t seq;
  };
  void* Record(StreamView stream) noexcept override {
    ++live_;
    return new Event{stream.native, ++recorded_[stream.native]};
  }
  bool Done(void* e) noexcept override {
    auto* ev = static_cast<Event*>(e);
    return ev->seq <= completed_[ev->stream];
  }
  void Release(void* e) noexcept override {
    --live_;
    delete static_cast<Event*>(e);
  }
  void Synchronize(StreamView stream) noexcept override { completed_[stream.native] = recorded_[stream.native]; }
  // Completes all work recorded so far on `stream`.
  void Complete(void* stream) { completed_[stream] = recorded_[stream]; }
  // Completes part of the work on `stream` (in order).
  void CompleteSome(void* stream, std::mt19937_64& rng) {
    uint64_t pending = recorded_[stream] - completed_[stream];
    if (pending) completed_[stream] += 1 + rng() % pending;
  }
  bool IsDone(const Event& e) { return e.seq <= completed_[e.stream]; }
  uint64_t recorded(void* stream) { return recorded_[stream]; }
  int live() const { return live_; }

 private:
  std::map<void*, uint64_t> recorded_, completed_;
  int live_ = 0;
};

int kStreamA = 0, kStreamB = 0, kStreamC = 0;
const StreamView A{DeviceId{DeviceType::kCuda, 0}, &kStreamA};
const StreamView B{DeviceId{DeviceType::kCuda, 0}, &kStreamB};
const StreamView C{DeviceId{DeviceType::kCuda, 0}, &kStreamC};

std::unique_ptr<PoolResource> MakePool(FakeEvents* events, bool expandable) {
  PoolResource::Options o;
  o.stream_events = events;
  if (expandable) o.range = std::move(*CreateHostVirtualRange(1ull << 30));
  return std::move(*PoolResource::Create(std::move(o)));
}

class PoolStreamsTest : public ::testing::TestWithParam<bool> {};

TEST_P(PoolStreamsTest, SameStreamReusesAtOnceOtherStreamsWaitForTheEvent) {
  for (size_t bytes : {size_t{3000}, size_t{8} << 20}) {  // size-class path and best-fit path
    FakeEvents events;
    auto pool = MakePool(&events, GetParam());
    void* p = *pool->Allocate(bytes, {}, A);
    pool->Deallocate(p, bytes, {}, A);
    void* same = *pool->Allocate(bytes, {}, A);
    EXPECT_EQ(same, p) << "same stream reuses at once";
    pool->Deallocate(same, bytes, {}, A);
    void* other = *pool->Allocate(bytes, {}, B);
    EXPECT_NE(other, p) << "stream B must not get memory A may still be using";
    pool->Deallocate(other, bytes, {}, B);
    events.Complete(&kStreamA);
    events.Complete(&kStreamB);
    void* after = *pool->Allocate(bytes, {}, C);
    EXPECT_TRUE(after == p || after == other) << "after the events completed the memory is reused";
    pool->Deallocate(after, bytes, {}, C);
    events.Complete(&kStreamC);
    pool->Trim();
    EXPECT_EQ(pool->CheckInvariants(), "");
    EXPECT_EQ(pool->GetPoolStats().reserved_bytes, 0u);
    pool.reset();
    EXPECT_EQ(events.live(), 0) << "every event is released";
  }
}

// Random allocations on three streams with random event completion: no block ever overlaps a
// live block, nor a range freed on another stream whose event has not completed.
TEST_P(PoolStreamsTest, RandomizedCrossStreamSafety) {
  FakeEvents events;
  auto pool = MakePool(&events, GetParam());
  std::mt19937_64 rng(7);
  const StreamView streams[] = {A, B, C};
  struct Live {
    size_t n;
    int s;
  };
  struct Fenced {
    char* p;
    size_t n;
    int s;
    FakeEvents::Event ev;
  };
  std::map<char*, Live> live;
  std::vector<Fenced> fenced;
  for (int step = 0; step < 4000; ++step) {
    int r = static_cast<int>(rng() % 100);
    if (r < 5) {
      events.CompleteSome(streams[rng() % 3].native, rng);
      std::erase_if(fenced, [&](const Fenced& f) { return events.IsDone(f.ev); });
    } else if (r < 55 || live.empty()) {
      int s = static_cast<int>(rng() % 3);
      size_t n = rng() % 2 ? 1 + rng() % (200u << 10) : (1u << 20) + rng() % (6u << 20);
      auto res = pool->Allocate(n, {}, streams[s]);
      ASSERT_TRUE(res.ok()) << res.status().ToString();
      char* p = static_cast<char*>(*res);
      auto next = live.lower_bound(p);
      if (next != live.end()) {
        ASSERT_LE(p + n, next->first);
      }
      if (next != live.begin()) {
        auto prev = std::prev(next);
        ASSERT_LE(prev->first + prev->second.n, p);
      }
      for (const Fenced& f : fenced) {
        if (f.s == s) continue;
        bool overlap = p < f.p + f.n && f.p < p + n;
        ASSERT_FALSE(overlap) << "stream " << s << " got memory freed on stream " << f.s << " before its event";
      }
      live[p] = {n, s};
    } else {
      auto it = live.begin();
      std::advance(it, static_cast<long>(rng() % live.size()));
      int s = it->second.s;
      pool->Deallocate(it->first, it->second.n, {}, streams[s]);
      fenced.push_back({it->first, it->second.n, s, {streams[s].native, events.recorded(streams[s].native)}});
      live.erase(it);
    }
    if (step % 500 == 0) {
      ASSERT_EQ(pool->CheckInvariants(), "");
    }
  }
  for (auto& [p, l] : live) pool->Deallocate(p, l.n, {}, streams[l.s]);
  for (const StreamView& s : streams) events.Complete(s.native);
  pool->FlushCaches();
  pool->Trim();
  EXPECT_EQ(pool->CheckInvariants(), "");
  for (size_t blocks : pool->BlocksPerSegment()) EXPECT_EQ(blocks, 1u);
  EXPECT_EQ(pool->GetPoolStats().reserved_bytes, 0u);
  pool.reset();
  EXPECT_EQ(events.live(), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, PoolStreamsTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Expandable" : "Segments"; });

}  // namespace
}  // namespace gpuhive
