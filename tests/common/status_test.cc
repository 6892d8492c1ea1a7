#include "gpuhive/status.h"

#include <gtest/gtest.h>

namespace gpuhive {
namespace {

StatusOr<int> Half(int x) {
  if (x % 2) return InvalidArgument("{} is odd", x);
  return x / 2;
}

Status Chain(int x, int* out) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(*out, Half(h));
  return Status::OK();
}

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(Status::OK().ok());
  Status s = NotFound("model '{}'", "resnet");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "model 'resnet'");
  EXPECT_EQ(s.ToString(), "NotFound: model 'resnet'");
  EXPECT_EQ(s.WithContext("load").message(), "load: model 'resnet'");
}

TEST(StatusTest, ShortageIsKeptThroughContext) {
  Status s = ResourceExhausted("no room").WithShortage(MemoryShortage::kNeverFits);
  EXPECT_EQ(s.shortage(), MemoryShortage::kNeverFits);
  Status c = s.WithContext("model 'm'");
  EXPECT_EQ(c.shortage(), MemoryShortage::kNeverFits);
  EXPECT_EQ(c.message(), "model 'm': no room");
  EXPECT_EQ(c.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ResourceExhausted("x").shortage(), MemoryShortage::kNone);
  EXPECT_TRUE(Status::OK().WithShortage(MemoryShortage::kContended).ok());
  EXPECT_EQ(s.WithShortage(MemoryShortage::kContended).shortage(), MemoryShortage::kContended);
  EXPECT_EQ(s.shortage(), MemoryShortage::kNeverFits);  // copies: the original is unchanged
}

TEST(StatusTest, StatusOrPropagates) {
  int out = 0;
  EXPECT_TRUE(Chain(8, &out).ok());
  EXPECT_EQ(out, 2);
  Status s = Chain(6, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "3 is odd");
}

TEST(StatusTest, StatusOrFromOkIsInternal) {
  StatusOr<int> v{Status::OK()};
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace gpuhive
