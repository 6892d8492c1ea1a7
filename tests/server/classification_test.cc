// Triton's classification extension: ranking, formatting and the BYTES wire form.
#include "server/classification.h"

#include <gtest/gtest.h>

namespace gpuhive::server {
namespace {

TEST(Classification, TopValuesPerRowHighestFirstTiesByIndex) {
  auto t = Tensor::Allocate(DataType::kFloat32, {2, 4});
  ASSERT_TRUE(t.ok());
  const float v[] = {1, 5, 10, 4, /* row 2 */ 0.5f, 2, 2, -1};
  std::memcpy(t->data(), v, sizeof(v));
  auto c = Classify(*t, 2, /*batched=*/true);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->shape, (Shape{2, 2}));
  EXPECT_EQ(c->entries, (std::vector<std::string>{"10.000000:2", "5.000000:1", "2.000000:1", "2.000000:2"}));
  // Unbatched: the whole tensor is one row; the count is capped at its size.
  auto all = Classify(*t, 100, /*batched=*/false);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->shape, (Shape{8}));
  EXPECT_EQ(all->entries.front(), "10.000000:2");
  EXPECT_EQ(all->entries.back(), "-1.000000:7");
}

TEST(Classification, LabelsAppendedWhereTheIndexHasOne) {
  auto t = Tensor::Allocate(DataType::kFloat32, {1, 3});
  ASSERT_TRUE(t.ok());
  const float v[] = {0.1f, 0.7f, 0.2f};
  std::memcpy(t->data(), v, sizeof(v));
  const std::vector<std::string> labels = {"cat", "dog"};  // index 2 has none
  auto c = Classify(*t, 3, /*batched=*/true, &labels);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->entries, (std::vector<std::string>{"0.700000:1:dog", "0.200000:2", "0.100000:0:cat"}));
}

TEST(Classification, IntegersBadCountsAndBytesEncoding) {
  auto t = Tensor::Allocate(DataType::kInt32, {3});
  ASSERT_TRUE(t.ok());
  const int32_t v[] = {7, -2, 9};
  std::memcpy(t->data(), v, sizeof(v));
  auto c = Classify(*t, 1, false);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->entries, (std::vector<std::string>{"9:2"}));
  EXPECT_FALSE(Classify(*t, 0, false).ok());
  const std::string bytes = EncodeBytesElements({"ab", ""});
  EXPECT_EQ(bytes, std::string("\x02\x00\x00\x00" "ab" "\x00\x00\x00\x00", 10));
}

}  // namespace
}  // namespace gpuhive::server
