// Tests of the shared plain-loop helpers (src/kernels/cpu/loops/common.h).
#include <atomic>
#include <cmath>

#include "kernels/cpu/loops/common.h"
#include <gtest/gtest.h>

namespace gpuhive::cpu::loops {
namespace {

// Independent float16 decoder (bit arithmetic with ldexp).
double DecodeHalf(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  double v = exp == 0 ? std::ldexp(mant, -24) : exp == 31 ? (mant ? NAN : INFINITY) : std::ldexp(mant + 1024, exp - 25);
  return sign ? -v : v;
}

TEST(LoopsCommon, HalfConversionRoundTripsEveryValue) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = HalfBitsToFloat(static_cast<uint16_t>(h));
    const double ref = DecodeHalf(static_cast<uint16_t>(h));
    if (std::isnan(ref)) {
      EXPECT_TRUE(std::isnan(f));
      continue;
    }
    ASSERT_EQ(static_cast<double>(f), ref) << h;
    ASSERT_EQ(FloatToHalfBits(f), h) << h;
  }
}

TEST(LoopsCommon, HalfAndBFloat16RoundToNearestEven) {
  EXPECT_EQ(FloatToHalfBits(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie -> even
  EXPECT_EQ(FloatToHalfBits(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(FloatToHalfBits(65504.f), 0x7bff);
  EXPECT_EQ(FloatToHalfBits(65520.f), 0x7c00);  // rounds to infinity
  EXPECT_EQ(FloatToHalfBits(-INFINITY), 0xfc00);
  EXPECT_EQ(FloatToHalfBits(std::ldexp(1.0f, -25)), 0x0000);  // tie to even zero
  EXPECT_EQ(FloatToHalfBits(std::ldexp(3.0f, -25)), 0x0002);
  EXPECT_EQ(FloatToBFloat16Bits(1.0f), 0x3f80);
  EXPECT_EQ(FloatToBFloat16Bits(1.00390625f), 0x3f80);    // tie -> even
  EXPECT_EQ(FloatToBFloat16Bits(1.01171875f), 0x3f82);    // tie -> even (up)
  EXPECT_TRUE(std::isnan(BFloat16BitsToFloat(FloatToBFloat16Bits(NAN))));
  EXPECT_EQ(static_cast<float>(Float16(2.5)), 2.5f);
  EXPECT_EQ(static_cast<float>(BFloat16(-3)), -3.f);
}

TEST(LoopsCommon, ConvertToAndDispatch) {
  EXPECT_EQ(ConvertTo<bool>(0.5f), true);
  EXPECT_EQ(ConvertTo<bool>(Float16(0.0f)), false);
  EXPECT_EQ(ConvertTo<int32_t>(Float16(-2.75f)), -2);
  EXPECT_EQ(static_cast<float>(ConvertTo<BFloat16>(int64_t{3})), 3.f);
  DataType seen = DataType::kUndefined;
  EXPECT_TRUE(VisitNumeric(DataType::kBFloat16, "t", [&](auto tag) {
                seen = DataTypeOf<typename decltype(tag)::type>();
                return Status::OK();
              }).ok());
  EXPECT_EQ(seen, DataType::kBFloat16);
  EXPECT_EQ(VisitFloat(DataType::kInt32, "t", [](auto) { return Status::OK(); }).code(), StatusCode::kUnimplemented);
  EXPECT_EQ(VisitAll(DataType::kString, "t", [](auto) { return Status::OK(); }).code(), StatusCode::kUnimplemented);
  size_t size = 0;
  EXPECT_TRUE(VisitBySize(DataType::kFloat16, "t", [&](auto tag) {
                size = sizeof(typename decltype(tag)::type);
                return Status::OK();
              }).ok());
  EXPECT_EQ(size, 2u);
}

TEST(LoopsCommon, BroadcastShapesAndPlans) {
  EXPECT_EQ(*BroadcastShapes({{2, 1, 4}, {3, 1}}, "t"), (Shape{2, 3, 4}));
  EXPECT_EQ(*BroadcastShapes({{0, 3}, {1, 3}}, "t"), (Shape{0, 3}));
  EXPECT_EQ(*BroadcastShapes({{}, {5}}, "t"), (Shape{5}));
  EXPECT_EQ(BroadcastShapes({{2, 3}, {4}}, "t").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(BroadcastShapes({{0}, {2}}, "t").status().code(), StatusCode::kInvalidArgument);

  auto same = MakeBroadcastPlan({{2, 3, 4}, {2, 3, 4}}, "t");
  EXPECT_EQ(same->inner, 24);  // fully collapsed
  EXPECT_EQ(same->outer, 1);
  auto trailing = MakeBroadcastPlan({{8, 16, 32}, {32}}, "t");
  EXPECT_EQ(trailing->inner, 32);
  EXPECT_EQ(trailing->outer, 128);
  EXPECT_EQ(trailing->outer_dims.size(), 1u);
  EXPECT_EQ(trailing->inner_stride, (std::vector<int64_t>{1, 1}));
  auto scalar = MakeBroadcastPlan({{8, 16}, {}}, "t");
  EXPECT_EQ(scalar->inner, 128);
  EXPECT_EQ(scalar->inner_stride, (std::vector<int64_t>{1, 0}));
  auto column = MakeBroadcastPlan({{4, 5}, {4, 1}}, "t");
  EXPECT_EQ(column->inner, 5);
  EXPECT_EQ(column->inner_stride, (std::vector<int64_t>{1, 0}));
  int64_t off[2];
  column->RunOffsets(3, off);
  EXPECT_EQ(off[0], 15);
  EXPECT_EQ(off[1], 3);
  auto empty = MakeBroadcastPlan({{0, 3}, {3}}, "t");
  EXPECT_EQ(empty->total(), 0);
}

TEST(LoopsCommon, ForEachBroadcastRunCoversOutputOnce) {
  auto plan = MakeBroadcastPlan({{7, 1, 300}, {50, 1}}, "t");
  ASSERT_TRUE(plan.ok());
  const int64_t total = NumElements(plan->out_shape);
  std::vector<std::atomic<int>> hits(static_cast<size_t>(total));
  ForEachBroadcastRun(*plan, 4, [&](const int64_t* offs, int64_t o, int64_t len) {
    for (int64_t j = 0; j < len; ++j) {
      hits[o + j]++;
      // Operand offsets agree with plain index arithmetic.
      const int64_t e = o + j, i0 = e / 15000, i1 = (e / 300) % 50, i2 = e % 300;
      EXPECT_EQ(offs[0] + j * plan->inner_stride[0], i0 * 300 + i2);
      EXPECT_EQ(offs[1] + j * plan->inner_stride[1], i1);
    }
  });
  for (auto& h : hits) ASSERT_EQ(h.load(), 1);
}

TEST(LoopsCommon, ParallelForCoversRangeOnce) {
  for (int64_t n : {0, 1, 1000, 100000, 1000003}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    ParallelFor(n, 3, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[i]++;
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  }
  EXPECT_EQ(*NormalizeAxis(-1, 3), 2);
  EXPECT_EQ(NormalizeAxis(3, 3).status().code(), StatusCode::kInvalidArgument);
  auto ints = ReadInts(*Tensor::FromVector<int32_t>(DataType::kInt32, {2}, {4, -1}));
  EXPECT_EQ(*ints, (std::vector<int64_t>{4, -1}));
}

}  // namespace
}  // namespace gpuhive::cpu::loops
