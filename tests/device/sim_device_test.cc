// The simulated device: its memory is reachable only through the copy API, copies and kernels
// run in stream order, more urgent streams go first, events order work across streams, and
// misuse is a clear error at the call.
#include "gpuhive/sim_device.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <numeric>
#include <vector>

#include "gpuhive/units.h"

namespace gpuhive {
namespace {

std::unique_ptr<SimDevice> MakeDevice(double copy_bytes_per_s = 0, bool protect = true) {
  SimDeviceOptions o;
  o.memory_bytes = 64ull << 20;
  o.copy_bytes_per_s = copy_bytes_per_s;
  o.protect = protect;
  auto d = SimDevice::Create(o);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return std::move(*d);
}

TEST(SimDevice, RoundTripThroughTheCopyApi) {
  auto dev = MakeDevice();
  auto stream = dev->CreateStream(0);
  ASSERT_TRUE(stream.ok());
  std::vector<float> in(1000), out(1000, -1.f);
  std::iota(in.begin(), in.end(), 0.f);
  auto buf = Buffer::Allocate(dev->memory(), in.size() * sizeof(float));
  ASSERT_TRUE(buf.ok());
  EXPECT_TRUE(dev->Contains(buf->data()));
  ASSERT_TRUE(dev->CopyToDevice(buf->data(), in.data(), in.size() * 4, **stream).ok());
  ASSERT_TRUE(dev->CopyToHostSync(out.data(), buf->data(), out.size() * 4, **stream).ok());
  EXPECT_EQ(in, out);
  SimDeviceStats s = dev->stats();
  EXPECT_EQ(s.host_to_device_bytes, 4000u);
  EXPECT_EQ(s.device_to_host_bytes, 4000u);
  EXPECT_GE(s.allocated_bytes, 4000u);
}

TEST(SimDevice, KernelsReachDeviceMemoryThroughTheirAccessOnly) {
  auto dev = MakeDevice();
  auto stream = dev->CreateStream(0);
  ASSERT_TRUE(stream.ok());
  auto buf = Buffer::Allocate(dev->memory(), 16 * sizeof(int));
  ASSERT_TRUE(buf.ok());
  std::vector<int> in(16, 3), out(16);
  ASSERT_TRUE(dev->CopyToDevice(buf->data(), in.data(), 64, **stream).ok());
  void* p = buf->data();
  ASSERT_TRUE(dev->LaunchHostKernel(**stream, [p](const KernelAccess& a) {
                   auto* v = static_cast<int*>(a.Map(p));
                   for (int i = 0; i < 16; ++i) v[i] = v[i] * 2 + i;
                   return Status::OK();
                 }).ok());
  ASSERT_TRUE(dev->CopyToHostSync(out.data(), p, 64, **stream).ok());
  for (int i = 0; i < 16; ++i) EXPECT_EQ(out[i], 6 + i);
}

// The debug protection: a layer above `device` that writes device memory directly faults.
TEST(SimDeviceDeathTest, DirectHostAccessToDeviceMemoryFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto dev = MakeDevice();
  auto buf = Buffer::Allocate(dev->memory(), 4096);
  ASSERT_TRUE(buf.ok());
  EXPECT_DEATH(std::memset(buf->data(), 0, 16), "");
  EXPECT_DEATH(
      {
        volatile char c = *static_cast<volatile char*>(buf->data());
        (void)c;
      },
      "");
}

TEST(SimDevice, UnprotectedDeviceIsHostAccessible) {
  auto dev = MakeDevice(0, /*protect=*/false);
  EXPECT_TRUE(dev->host_accessible());
  auto buf = Buffer::Allocate(dev->memory(), 4096);
  ASSERT_TRUE(buf.ok());
  std::memset(buf->data(), 7, 4096);
  auto stream = dev->CreateStream(0);
  char c = 0;
  ASSERT_TRUE(dev->CopyToHostSync(&c, buf->data(), 1, **stream).ok());
  EXPECT_EQ(c, 7);
}

TEST(SimDevice, CopiesOutsideALiveAllocationAreRefusedAtTheCall) {
  auto dev = MakeDevice();
  auto stream = dev->CreateStream(0);
  auto buf = Buffer::Allocate(dev->memory(), 1024);
  ASSERT_TRUE(buf.ok());
  std::vector<char> host(4096);
  // Past the end of the allocation.
  Status s = dev->CopyToDevice(buf->data(), host.data(), 2048, **stream);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("runs past its allocation"), std::string::npos) << s.ToString();
  // A host pointer as the device side, a device pointer as the host side.
  EXPECT_EQ(dev->CopyToDevice(host.data(), host.data(), 16, **stream).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(dev->CopyToHost(buf->data(), buf->data(), 16, **stream).code(), StatusCode::kInvalidArgument);
  // Freed memory is no longer a valid target.
  void* p = buf->data();
  buf->Reset();
  EXPECT_EQ(dev->CopyToDevice(p, host.data(), 16, **stream).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE((*stream)->Synchronize().ok());
}

TEST(SimDevice, StreamsOfAnotherDeviceAreRefused) {
  auto a = MakeDevice();
  SimDeviceOptions o;
  o.index = 1;
  o.memory_bytes = 1 << 20;
  auto b = SimDevice::Create(o);
  ASSERT_TRUE(b.ok());
  auto sb = (*b)->CreateStream(0);
  auto buf = Buffer::Allocate(a->memory(), 64);
  char host[64] = {};
  EXPECT_EQ(a->CopyToDevice(buf->data(), host, 64, **sb).code(), StatusCode::kInvalidArgument);
  auto host_stream = HostComputeDevice()->CreateStream(0);
  EXPECT_EQ(a->CopyToDevice(buf->data(), host, 64, **host_stream).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*b)->id().ToString(), "sim:1");
}

TEST(SimDevice, OutOfMemoryIsResourceExhaustedAndFreesCoalesce) {
  SimDeviceOptions o;
  o.memory_bytes = 1 << 20;
  auto dev = SimDevice::Create(o);
  ASSERT_TRUE(dev.ok());
  MemoryResource* m = (*dev)->memory();
  std::vector<Buffer> bufs;
  for (int i = 0; i < 4; ++i) {
    auto b = Buffer::Allocate(m, 256 << 10);
    ASSERT_TRUE(b.ok()) << i;
    bufs.push_back(std::move(*b));
  }
  auto more = Buffer::Allocate(m, 256);
  EXPECT_EQ(more.status().code(), StatusCode::kResourceExhausted);
  // Freeing two neighbours leaves one hole big enough for both.
  bufs[1].Reset();
  bufs[2].Reset();
  auto big = Buffer::Allocate(m, 512 << 10);
  EXPECT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_EQ(m->Stats()->num_failures, 1u);
}

TEST(SimDevice, CopiesTakeAtLeastBytesOverBandwidth) {
  auto dev = MakeDevice(/*copy_bytes_per_s=*/100e6);  // 100 MB/s: 4 MiB take >= 41 ms
  auto stream = dev->CreateStream(0);
  std::vector<char> host(4 << 20, 1);
  auto buf = Buffer::Allocate(dev->memory(), host.size());
  int64_t t0 = NowNs();
  ASSERT_TRUE(dev->CopyToDevice(buf->data(), host.data(), host.size(), **stream).ok());
  int64_t enqueue_ns = NowNs() - t0;
  ASSERT_TRUE((*stream)->Synchronize().ok());
  int64_t total_ns = NowNs() - t0;
  EXPECT_GE(total_ns, 41'000'000);
  EXPECT_LT(enqueue_ns, total_ns);  // asynchronous: the call returned before the copy finished
}

TEST(SimDevice, MoreUrgentStreamsRunFirst) {
  auto dev = MakeDevice();
  auto low = dev->CreateStream(2);
  auto mid = dev->CreateStream(1);
  auto high = dev->CreateStream(0);
  dev->PauseCompute(true);
  std::vector<int> order;
  std::mutex mu;
  auto kernel = [&](int tag) {
    return [&, tag](const KernelAccess&) {
      std::lock_guard<std::mutex> g(mu);
      order.push_back(tag);
      return Status::OK();
    };
  };
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(dev->LaunchHostKernel(**low, kernel(2)).ok());
    ASSERT_TRUE(dev->LaunchHostKernel(**mid, kernel(1)).ok());
    ASSERT_TRUE(dev->LaunchHostKernel(**high, kernel(0)).ok());
  }
  dev->PauseCompute(false);
  ASSERT_TRUE((*low)->Synchronize().ok());
  ASSERT_TRUE((*mid)->Synchronize().ok());
  ASSERT_TRUE((*high)->Synchronize().ok());
  EXPECT_EQ(order, (std::vector<int>{0, 0, 1, 1, 2, 2}));
  EXPECT_EQ(dev->stats().kernel_priorities, (std::vector<int>{0, 0, 1, 1, 2, 2}));
}

TEST(SimDevice, EventsOrderWorkAcrossStreams) {
  auto dev = MakeDevice(/*copy_bytes_per_s=*/50e6);
  auto copy = dev->CreateStream(3);
  auto compute = dev->CreateStream(0);
  std::vector<int> host(1 << 18, 5);  // 1 MiB: ~20 ms at 50 MB/s
  auto buf = Buffer::Allocate(dev->memory(), host.size() * sizeof(int));
  ASSERT_TRUE(dev->CopyToDevice(buf->data(), host.data(), host.size() * 4, **copy).ok());
  auto ev = dev->RecordEvent(**copy);
  ASSERT_TRUE(ev.ok());
  EXPECT_FALSE((*ev)->Query());
  ASSERT_TRUE(dev->WaitEvent(**compute, **ev).ok());
  std::atomic<int> seen{-1};
  void* p = buf->data();
  ASSERT_TRUE(dev->LaunchHostKernel(**compute, [&](const KernelAccess& a) {
                   seen = static_cast<const int*>(a.Map(p))[host.size() - 1];
                   return Status::OK();
                 }).ok());
  ASSERT_TRUE((*compute)->Synchronize().ok());
  EXPECT_EQ(seen.load(), 5);  // the kernel waited for the whole copy
  EXPECT_TRUE((*ev)->Query());
}

TEST(SimDevice, HostCallbacksRunInStreamOrder) {
  auto dev = MakeDevice(/*copy_bytes_per_s=*/100e6);
  auto s = dev->CreateStream(1);
  std::vector<char> host(1 << 20, 1);
  auto buf = Buffer::Allocate(dev->memory(), host.size());
  std::atomic<uint64_t> copied_when_called{0};
  ASSERT_TRUE(dev->CopyToDevice(buf->data(), host.data(), host.size(), **s).ok());
  ASSERT_TRUE(dev->EnqueueHostCallback(**s, [&] { copied_when_called = dev->stats().host_to_device_bytes; }).ok());
  ASSERT_TRUE((*s)->Synchronize().ok());
  EXPECT_EQ(copied_when_called.load(), host.size());
}

TEST(SimDevice, AFailedKernelFailsItsStreamAndSkipsWhatFollows) {
  auto dev = MakeDevice();
  auto s = dev->CreateStream(0);
  std::atomic<bool> ran_after{false};
  ASSERT_TRUE(dev->LaunchHostKernel(**s, [](const KernelAccess&) { return Internal("kernel broke"); }).ok());
  ASSERT_TRUE(dev->LaunchHostKernel(**s, [&](const KernelAccess&) {
                   ran_after = true;
                   return Status::OK();
                 }).ok());
  Status st = (*s)->Synchronize();
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_FALSE(ran_after.load());
  // Other streams are unaffected.
  auto other = dev->CreateStream(0);
  EXPECT_TRUE(dev->LaunchHostKernel(**other, [](const KernelAccess&) { return Status::OK(); }).ok());
  EXPECT_TRUE((*other)->Synchronize().ok());
}

TEST(SimDevice, ManyStreamsFromManyThreads) {
  auto dev = MakeDevice();
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto s = dev->CreateStream(t % 3);
      auto buf = Buffer::Allocate(dev->memory(), 4096);
      std::vector<char> in(4096, static_cast<char>(t)), out(4096);
      for (int i = 0; i < 50; ++i) {
        if (!dev->CopyToDevice(buf->data(), in.data(), 4096, **s).ok()) ++bad;
        if (!dev->CopyToHostSync(out.data(), buf->data(), 4096, **s).ok() || out != in) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(DeviceSpec, Parses) {
  EXPECT_EQ(ParseDeviceSpec("cpu")->kind, DeviceSpec::Kind::kCpu);
  EXPECT_EQ(ParseDeviceSpec("gpu")->kind, DeviceSpec::Kind::kCuda);
  EXPECT_EQ(ParseDeviceSpec("sim")->count, 1);
  EXPECT_EQ(ParseDeviceSpec("sim:2")->count, 2);
  EXPECT_EQ(ParseDeviceSpec("sim:2")->kind, DeviceSpec::Kind::kSim);
  for (const char* bad : {"sim:0", "sim:x", "sim:2x", "sim:17", "tpu", ""}) {
    EXPECT_EQ(ParseDeviceSpec(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(HostComputeDevice, CopiesAtOnce) {
  ComputeDevice* d = HostComputeDevice();
  EXPECT_TRUE(d->host_accessible());
  auto s = d->CreateStream(0);
  int a = 4, b = 0;
  ASSERT_TRUE(d->CopyToDevice(&b, &a, sizeof a, **s).ok());
  EXPECT_EQ(b, 4);
  ASSERT_TRUE(d->LaunchHostKernel(**s, [](const KernelAccess&) { return Internal("x"); }).ok());
  EXPECT_EQ((*s)->Synchronize().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace gpuhive
