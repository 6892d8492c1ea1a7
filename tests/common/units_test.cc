#include "gpuhive/units.h"

#include <gtest/gtest.h>

namespace gpuhive {
namespace {

TEST(UnitsTest, ParseBytes) {
  EXPECT_EQ(*ParseBytes("12GiB"), 12 * GiB);
  EXPECT_EQ(*ParseBytes("512MiB"), 512 * MiB);
  EXPECT_EQ(*ParseBytes("1.5G"), 3 * GiB / 2);
  EXPECT_EQ(*ParseBytes("100MB"), 100000000u);
  EXPECT_EQ(*ParseBytes("4096"), 4096u);
  EXPECT_FALSE(ParseBytes("").ok());
  EXPECT_FALSE(ParseBytes("GiB").ok());
  EXPECT_FALSE(ParseBytes("12 parsecs").ok());
  EXPECT_FALSE(ParseBytes("1e30").ok());
}

TEST(UnitsTest, FormatBytes) {
  EXPECT_EQ(FormatBytes(100), "100 B");
  EXPECT_EQ(FormatBytes(1536), "1.50 KiB");
  EXPECT_EQ(FormatBytes(3 * GiB), "3.00 GiB");
}

TEST(UnitsTest, ParseDuration) {
  EXPECT_EQ(*ParseDurationUs("100ms"), 100000);
  EXPECT_EQ(*ParseDurationUs("5s"), 5000000);
  EXPECT_EQ(*ParseDurationUs("250us"), 250);
  EXPECT_EQ(*ParseDurationUs("2"), 2000);
  EXPECT_FALSE(ParseDurationUs("soon").ok());
}

}  // namespace
}  // namespace gpuhive
