#include "gpuhive/memory/naive_resource.h"

#include <gtest/gtest.h>

namespace gpuhive {
namespace {

TEST(FirstFitResourceTest, FirstFitSplitsAndMergesOnFree) {
  auto ff = std::move(*FirstFitResource::Create(4096));
  char* a = static_cast<char*>(*ff->Allocate(1024));
  char* b = static_cast<char*>(*ff->Allocate(1024));
  char* c = static_cast<char*>(*ff->Allocate(1024));
  EXPECT_EQ(b, a + 1024);
  EXPECT_EQ(c, b + 1024);
  EXPECT_EQ(ff->free_bytes(), 1024u);
  ff->Deallocate(a, 1024);
  ff->Deallocate(c, 1024);  // merges with the tail
  EXPECT_EQ(ff->num_free_blocks(), 2u);
  EXPECT_EQ(ff->largest_free_block(), 2048u);
  // 3072 bytes are free but no range of 2304 exists: the naive design fails.
  auto r = ff->Allocate(2304);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ff->Stats()->num_failures, 1u);
  // First fit: the lowest range that fits.
  char* d = static_cast<char*>(*ff->Allocate(256));
  EXPECT_EQ(d, a);
  ff->Deallocate(d, 256);
  ff->Deallocate(b, 1024);
  EXPECT_EQ(ff->num_free_blocks(), 1u);
  EXPECT_EQ(ff->largest_free_block(), 4096u);
  EXPECT_EQ(ff->Stats()->current_bytes, 0u);
}

TEST(FirstFitResourceTest, CapacityIsExact) {
  auto ff = std::move(*FirstFitResource::Create(8192));
  auto a = ff->Allocate(8192);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(ff->Allocate(1).ok());
  ff->Deallocate(*a, 8192);
  EXPECT_FALSE(FirstFitResource::Create(0).ok());
}

}  // namespace
}  // namespace gpuhive
