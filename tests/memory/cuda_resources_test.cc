// CUDA upstreams and the pool on a GPU. Label "gpu": every test skips visibly without a device.
#include <gtest/gtest.h>

#include <vector>

#include "gpuhive/memory/pool_resource.h"
#include "gpuhive/memory/upstreams.h"

namespace gpuhive {
namespace {

#define REQUIRE_GPU()                                                                    \
  do {                                                                                   \
    if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device present (cudaGetDeviceCount == 0)"; \
  } while (0)

void AllocateAndFreeSome(MemoryResource* mr) {
  std::vector<std::pair<void*, size_t>> held;
  for (size_t n : {size_t{1}, size_t{4096}, size_t{1} << 20, size_t{64} << 20}) {
    auto r = mr->Allocate(n);
    ASSERT_TRUE(r.ok()) << mr->name() << ": " << r.status().ToString();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(*r) % MemoryResource::kAlignment, 0u);
    held.push_back({*r, n});
  }
  for (auto& [p, n] : held) mr->Deallocate(p, n);
}

TEST(CudaResourcesTest, DeviceResource) {
  REQUIRE_GPU();
  auto mr = CreateCudaDeviceResource(0);
  ASSERT_TRUE(mr.ok()) << mr.status().ToString();
  EXPECT_EQ((*mr)->device().type, DeviceType::kCuda);
  AllocateAndFreeSome(mr->get());
  EXPECT_EQ(CreateCudaDeviceResource(CudaDeviceCount()).status().code(), StatusCode::kUnavailable);
}

TEST(CudaResourcesTest, AsyncResource) {
  REQUIRE_GPU();
  auto mr = CreateCudaAsyncResource(0);
  if (!mr.ok() && mr.status().code() == StatusCode::kUnavailable) GTEST_SKIP() << mr.status().ToString();
  ASSERT_TRUE(mr.ok()) << mr.status().ToString();
  AllocateAndFreeSome(mr->get());
}

TEST(CudaResourcesTest, PinnedHost) {
  REQUIRE_GPU();
  auto mr = CreatePinnedHostResource();
  EXPECT_NE(mr->name().find("cudaHostAlloc"), std::string::npos);
  AllocateAndFreeSome(mr.get());
}

TEST(CudaResourcesTest, VirtualRangePoolGrowsAndShrinks) {
  REQUIRE_GPU();
  auto range = CreateCudaVirtualRange(0, 8ull << 30);
  if (!range.ok() && range.status().code() == StatusCode::kUnavailable) GTEST_SKIP() << range.status().ToString();
  ASSERT_TRUE(range.ok()) << range.status().ToString();
  PoolResource::Options o;
  o.range = std::move(*range);
  o.reserve_limit_bytes = 256u << 20;
  auto pool = PoolResource::Create(std::move(o));
  ASSERT_TRUE(pool.ok()) << pool.status().ToString();
  std::vector<void*> v;
  for (int i = 0; i < 3; ++i) {
    auto r = (*pool)->Allocate(80u << 20);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    v.push_back(*r);
  }
  (*pool)->Deallocate(v[0], 80u << 20);
  (*pool)->Deallocate(v[2], 80u << 20);
  auto big = (*pool)->Allocate(160u << 20);  // only possible by remapping the holes
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_LE((*pool)->GetPoolStats().reserved_bytes, 256u << 20);
  (*pool)->Deallocate(*big, 160u << 20);
  (*pool)->Deallocate(v[1], 80u << 20);
  EXPECT_EQ((*pool)->CheckInvariants(), "");
  EXPECT_GT((*pool)->Trim(), 0u);
  EXPECT_EQ((*pool)->GetPoolStats().reserved_bytes, 0u);
}

TEST(CudaResourcesTest, SegmentPoolOverCudaMalloc) {
  REQUIRE_GPU();
  auto upstream = CreateCudaDeviceResource(0);
  ASSERT_TRUE(upstream.ok());
  PoolResource::Options o;
  o.upstream = upstream->get();
  auto pool = PoolResource::Create(std::move(o));
  ASSERT_TRUE(pool.ok());
  AllocateAndFreeSome(pool->get());
  (*pool)->FlushCaches();
  EXPECT_EQ((*pool)->CheckInvariants(), "");
}

}  // namespace
}  // namespace gpuhive
