#include "gpuhive/utf8.h"

#include <gtest/gtest.h>

namespace gpuhive {
namespace {

TEST(Utf8, AcceptsWellFormedSequences) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("tiny_mlp"));
  EXPECT_TRUE(IsValidUtf8("mod\xC3\xA8le"));            // è
  EXPECT_TRUE(IsValidUtf8("\xE2\x82\xAC"));             // €
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x98\x80"));         // U+1F600
  EXPECT_TRUE(IsValidUtf8("\xF4\x8F\xBF\xBF"));         // U+10FFFF
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82\xAC", 0), 3u);
}

TEST(Utf8, RefusesMalformedSequences) {
  EXPECT_FALSE(IsValidUtf8("bad\xFF\xFE"));
  EXPECT_FALSE(IsValidUtf8("\x80"));                    // stray continuation
  EXPECT_FALSE(IsValidUtf8("\xC3\x28"));                // bad continuation
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));                // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));            // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));            // surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));        // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));                // cut off
  EXPECT_EQ(Utf8SequenceLength("a", 1), 0u);
}

TEST(Utf8, ReplacesWhatIsNotUtf8) {
  EXPECT_EQ(ToValidUtf8("ok \xC3\xA8"), "ok \xC3\xA8");
  EXPECT_EQ(ToValidUtf8("bad\xFF\xFE!"), "bad\xEF\xBF\xBD\xEF\xBF\xBD!");
  EXPECT_EQ(ToValidUtf8("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_TRUE(IsValidUtf8(ToValidUtf8("\xC0\xAF\xED\xA0\x80")));
}

}  // namespace
}  // namespace gpuhive
