// CopyEngine: chunked copies in order, gates advanced per weight, failures, foreground jobs ahead
// of background ones, cancellation when it stops.
#include "gpuhive/residency/copy_engine.h"

#include "gpuhive/sim_device.h"
#include "gpuhive/units.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <thread>
#include <cstring>
#include <mutex>
#include <vector>

namespace gpuhive::residency {
namespace {

struct Weights {
  std::vector<std::shared_ptr<const Tensor>> sources;
  std::vector<std::vector<uint8_t>> destinations;
  std::vector<WeightCopy> copies;
  std::shared_ptr<WeightGate> gate;

  explicit Weights(std::vector<int64_t> sizes, uint8_t seed = 1) {
    for (size_t i = 0; i < sizes.size(); ++i) {
      auto t = Tensor::Allocate(DataType::kUint8, {sizes[i]});
      for (int64_t j = 0; j < sizes[i]; ++j) t->as<uint8_t>()[j] = static_cast<uint8_t>(seed + i * 31 + j);
      sources.push_back(std::make_shared<const Tensor>(std::move(*t)));
      destinations.emplace_back(static_cast<size_t>(sizes[i]), 0);
    }
    for (size_t i = 0; i < sizes.size(); ++i) {
      copies.push_back(WeightCopy{sources[i], destinations[i].data(), static_cast<size_t>(sizes[i]), i});
    }
    gate = std::make_shared<WeightGate>(sizes.size());
  }
  bool Arrived(size_t i) const {
    return std::memcmp(destinations[i].data(), sources[i]->data(), destinations[i].size()) == 0;
  }
};

TEST(CopyEngine, CopiesInChunksAndAdvancesTheGatePerWeight) {
  std::atomic<int> chunks{0};
  std::vector<size_t> arrived_at_chunk;  // the gate's value when each chunk starts
  Weights w({10000, 4096, 1, 9000});
  CopyEngineOptions o;
  o.chunk_bytes = 4096;
  o.copy = [&](void* dst, const void* src, size_t bytes) {
    arrived_at_chunk.push_back(w.gate->arrived());
    ++chunks;
    std::memcpy(dst, src, bytes);
    return Status::OK();
  };
  CopyEngine engine(o);
  CopyJobResult result;
  engine.Submit(w.copies, w.gate, [&](const CopyJobResult& r) { result = r; });
  engine.Drain();
  EXPECT_TRUE(result.status.ok());
  EXPECT_EQ(result.bytes, 10000u + 4096 + 1 + 9000);
  EXPECT_EQ(chunks.load(), 3 + 1 + 1 + 3);
  // Weight i is copied while exactly groups [0, i) have arrived.
  EXPECT_EQ(arrived_at_chunk, (std::vector<size_t>{0, 0, 0, 1, 2, 3, 3, 3}));
  for (size_t i = 0; i < 4; ++i) EXPECT_TRUE(w.Arrived(i)) << i;
  EXPECT_TRUE(w.gate->complete());
  EXPECT_EQ(engine.bytes_copied(), result.bytes);
}

TEST(CopyEngine, FailureFailsTheGateAndLaterJobsStillRun) {
  Weights bad({100, 100, 100}), good({50, 50}, 9);
  CopyEngineOptions o;
  int calls = 0;
  o.copy = [&](void* dst, const void* src, size_t bytes) -> Status {
    if (++calls == 2) return DataLoss("bus error");
    std::memcpy(dst, src, bytes);
    return Status::OK();
  };
  CopyEngine engine(o);
  CopyJobResult bad_result, good_result;
  engine.Submit(bad.copies, bad.gate, [&](const CopyJobResult& r) { bad_result = r; });
  engine.Submit(good.copies, good.gate, [&](const CopyJobResult& r) { good_result = r; });
  engine.Drain();
  EXPECT_EQ(bad_result.status.code(), StatusCode::kDataLoss);
  EXPECT_NE(bad_result.status.message().find("weight group 1"), std::string::npos) << bad_result.status.ToString();
  EXPECT_TRUE(bad.gate->failed());
  EXPECT_EQ(bad.gate->arrived(), 1u);
  EXPECT_TRUE(bad.Arrived(0));
  EXPECT_FALSE(bad.Arrived(2));
  EXPECT_TRUE(good_result.status.ok());
  EXPECT_TRUE(good.gate->complete());
}

// Holds the first job's first chunk until released, so later submissions queue up behind it.
struct Latch {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false, entered = false;
  void Wait() {
    std::unique_lock<std::mutex> lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return open; });
  }
  void AwaitEntered() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return entered; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu);
    open = true;
    cv.notify_all();
  }
};

TEST(CopyEngine, ForegroundJobsGoAheadOfQueuedBackgroundJobs) {
  Latch latch;
  std::atomic<bool> first{true};
  CopyEngineOptions o;
  o.copy = [&](void* dst, const void* src, size_t bytes) {
    if (first.exchange(false)) latch.Wait();
    std::memcpy(dst, src, bytes);
    return Status::OK();
  };
  CopyEngine engine(o);
  Weights running({8}), pre1({8}), pre2({8}), demand1({8}), demand2({8});
  std::mutex order_mu;
  std::vector<std::string> order;
  auto record = [&](std::string name) {
    return [&, name](const CopyJobResult&) {
      std::lock_guard<std::mutex> lock(order_mu);
      order.push_back(name);
    };
  };
  engine.Submit(running.copies, running.gate, record("running"));
  latch.AwaitEntered();
  engine.Submit(pre1.copies, pre1.gate, record("pre1"), /*background=*/true);
  engine.Submit(demand1.copies, demand1.gate, record("demand1"));
  engine.Submit(pre2.copies, pre2.gate, record("pre2"), /*background=*/true);
  engine.Submit(demand2.copies, demand2.gate, record("demand2"));
  latch.Open();
  engine.Drain();
  EXPECT_EQ(order, (std::vector<std::string>{"running", "demand1", "demand2", "pre1", "pre2"}));
}

TEST(CopyEngine, StoppingCancelsQueuedJobs) {
  Latch latch;
  std::atomic<bool> first{true};
  CopyEngineOptions o;
  o.copy = [&](void* dst, const void* src, size_t bytes) {
    if (first.exchange(false)) latch.Wait();
    std::memcpy(dst, src, bytes);
    return Status::OK();
  };
  Weights running({16, 16}), queued({16});
  CopyJobResult running_result, queued_result;
  std::atomic<int> callbacks{0};
  std::thread opener;
  {
    CopyEngine engine(o);
    engine.Submit(running.copies, running.gate, [&](const CopyJobResult& r) {
      running_result = r;
      ++callbacks;
    });
    latch.AwaitEntered();
    engine.Submit(queued.copies, queued.gate, [&](const CopyJobResult& r) {
      queued_result = r;
      ++callbacks;
    });
    // Opened once the engine is stopping (its destructor runs meanwhile on this thread).
    opener = std::thread([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      latch.Open();
    });
  }  // the running job finishes, the queued one is cancelled
  opener.join();
  EXPECT_EQ(callbacks.load(), 2);
  EXPECT_TRUE(running_result.status.ok());
  EXPECT_TRUE(running.gate->complete());
  EXPECT_EQ(queued_result.status.code(), StatusCode::kCancelled) << queued_result.status.ToString();
  EXPECT_TRUE(queued.gate->failed());
  EXPECT_FALSE(queued.Arrived(0));
}


// The device copy path: destinations in the simulated device's memory (the host cannot touch
// them: a memcpy there would fault), weights arrive through its copy API on the copy stream, and
// the gate advances in stream order while the copy is still going on.
TEST(CopyEngine, CopiesThroughTheDeviceApiIntoDeviceMemory) {
  SimDeviceOptions so;
  so.memory_bytes = 16 << 20;
  so.copy_bytes_per_s = 200e6;  // 4 x 256 KiB: ~5 ms in all
  auto dev = SimDevice::Create(so);
  ASSERT_TRUE(dev.ok());
  Weights w({256 << 10, 256 << 10, 256 << 10, 256 << 10});
  std::vector<Buffer> device_bufs;
  for (size_t i = 0; i < w.copies.size(); ++i) {
    auto b = Buffer::Allocate((*dev)->memory(), w.copies[i].bytes);
    ASSERT_TRUE(b.ok());
    w.copies[i].destination = b->data();
    device_bufs.push_back(std::move(*b));
  }
  CopyEngineOptions o;
  o.chunk_bytes = 64 << 10;
  o.device = dev->get();
  CopyEngine engine(o);
  CopyJobResult result;
  std::vector<size_t> gate_seen;
  engine.Submit(w.copies, w.gate, [&](const CopyJobResult& r) { result = r; });
  // Sample the gate while the copy runs: it advances one weight at a time.
  for (int i = 0; i < 2000 && !w.gate->complete(); ++i) {
    size_t a = w.gate->arrived();
    if (gate_seen.empty() || gate_seen.back() != a) gate_seen.push_back(a);
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  engine.Drain();
  ASSERT_TRUE(result.status.ok()) << result.status.ToString();
  EXPECT_EQ(result.bytes, 4u * (256 << 10));
  EXPECT_TRUE(w.gate->complete());
  EXPECT_GE(gate_seen.size(), 2u);  // seen part-way, not only before and after
  SimDeviceStats st = (*dev)->stats();
  EXPECT_EQ(st.host_to_device_bytes, 4u * (256 << 10));
  EXPECT_EQ(st.copies, 16u);  // 4 chunks per weight
  auto stream = (*dev)->CreateStream(0);
  for (size_t i = 0; i < w.copies.size(); ++i) {
    std::vector<uint8_t> back(w.copies[i].bytes);
    ASSERT_TRUE((*dev)->CopyToHostSync(back.data(), device_bufs[i].data(), back.size(), **stream).ok());
    EXPECT_EQ(0, std::memcmp(back.data(), w.sources[i]->data(), back.size())) << i;
  }
}

// A destination outside the device's allocations is refused by the device at the call: the job
// fails with the weight named and the gate fails, nothing is written.
TEST(CopyEngine, ADestinationOutsideDeviceMemoryFailsTheJob) {
  SimDeviceOptions so;
  so.memory_bytes = 1 << 20;
  auto dev = SimDevice::Create(so);
  ASSERT_TRUE(dev.ok());
  Weights w({1024, 1024});
  auto b = Buffer::Allocate((*dev)->memory(), 1024);
  ASSERT_TRUE(b.ok());
  w.copies[0].destination = b->data();  // the second stays a host vector: not device memory
  CopyEngineOptions o;
  o.device = dev->get();
  CopyEngine engine(o);
  CopyJobResult result;
  engine.Submit(w.copies, w.gate, [&](const CopyJobResult& r) { result = r; });
  engine.Drain();
  EXPECT_EQ(result.status.code(), StatusCode::kInvalidArgument) << result.status.ToString();
  EXPECT_NE(result.status.message().find("weight group 1"), std::string::npos) << result.status.ToString();
  EXPECT_TRUE(w.gate->failed());
  EXPECT_EQ(w.gate->arrived(), 1u);
  EXPECT_FALSE(w.Arrived(1));
}

}  // namespace
}  // namespace gpuhive::residency
