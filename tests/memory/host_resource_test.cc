// The request-buffer host resource (TransientHostResource): freed blocks of 128 KiB and more are
// handed to the next allocation of the same page-rounded size, newest first, and at most 256 MiB
// stay cached (the oldest go first).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "gpuhive/memory/upstreams.h"
#include "gpuhive/memory_resource.h"

namespace gpuhive {
namespace {

constexpr size_t kMiB = 1 << 20;

void* Take(MemoryResource* mr, size_t bytes) {
  auto p = mr->Allocate(bytes, AllocTag{}, StreamView{});
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? *p : nullptr;
}

TEST(TransientHostResource, AFreedBlockServesTheNextRequestOfItsSize) {
  MemoryResource* mr = TransientHostResource();
  void* a = Take(mr, 4 * kMiB);
  ASSERT_NE(a, nullptr);
  std::memset(a, 1, 4 * kMiB);  // its pages are resident now
  mr->Deallocate(a, 4 * kMiB, AllocTag{}, StreamView{});
  void* other = Take(mr, 2 * kMiB);  // another size: a fresh block, a stays cached
  EXPECT_NE(other, a);
  void* again = Take(mr, 4 * kMiB - 100);  // the same page-rounded size
  EXPECT_EQ(again, a);
  EXPECT_EQ(static_cast<unsigned char*>(again)[4 * kMiB - 200], 1);  // same pages, not faulted anew
  mr->Deallocate(again, 4 * kMiB - 100, AllocTag{}, StreamView{});
  mr->Deallocate(other, 2 * kMiB, AllocTag{}, StreamView{});
  // Small blocks come from malloc's heap, aligned as every resource's.
  void* small = Take(mr, 1000);
  ASSERT_NE(small, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small) % MemoryResource::kAlignment, 0u);
  mr->Deallocate(small, 1000, AllocTag{}, StreamView{});
}

TEST(TransientHostResource, AtMost256MiBStayCachedAndTheOldestGoFirst) {
  MemoryResource* mr = TransientHostResource();
  const size_t n = 100 * kMiB;  // mapped, never touched: costs no memory
  void* a = Take(mr, n);
  void* b = Take(mr, n);
  void* c = Take(mr, n);
  for (void* p : {a, b, c}) mr->Deallocate(p, n, AllocTag{}, StreamView{});  // 300 MiB: a is unmapped
  void* first = Take(mr, n);
  void* second = Take(mr, n);
  EXPECT_EQ(first, c);  // newest first
  EXPECT_EQ(second, b);
  mr->Deallocate(first, n, AllocTag{}, StreamView{});
  mr->Deallocate(second, n, AllocTag{}, StreamView{});
}

}  // namespace
}  // namespace gpuhive
