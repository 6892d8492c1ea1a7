#include <gtest/gtest.h>

#include "sched/batching.h"
#include "sched/latency_profile.h"

namespace gpuhive::sched::detail {
namespace {

Tensor Make(Shape shape, float start) {
  std::vector<float> v(static_cast<size_t>(NumElements(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = start + static_cast<float>(i);
  return Tensor::FromVector(DataType::kFloat32, shape, v).value();
}

TEST(BatchingTest, ConcatThenSplitRoundTrips) {
  Tensor a = Make({1, 3}, 0), b = Make({2, 3}, 100);
  std::vector<TensorView> va{a.view()}, vb{b.view()};
  auto cat = ConcatBatch({&va, &vb});
  ASSERT_TRUE(cat.ok()) << cat.status().ToString();
  ASSERT_EQ(cat->size(), 1u);
  EXPECT_EQ((*cat)[0].shape(), (Shape{3, 3}));
  const float* c = (*cat)[0].as<float>();
  EXPECT_EQ(c[0], 0.0f);
  EXPECT_EQ(c[3], 100.0f);
  EXPECT_EQ(c[8], 105.0f);
  auto split = SplitBatch(*cat, {1, 2});
  ASSERT_TRUE(split.ok());
  ASSERT_EQ(split->size(), 2u);
  EXPECT_EQ((*split)[0][0].shape(), (Shape{1, 3}));
  EXPECT_EQ((*split)[1][0].shape(), (Shape{2, 3}));
  EXPECT_EQ((*split)[1][0].as<float>()[5], 105.0f);
}

TEST(BatchingTest, RefusesMismatchedInnerDims) {
  Tensor a = Make({1, 3}, 0), b = Make({1, 4}, 0);
  std::vector<TensorView> va{a.view()}, vb{b.view()};
  auto cat = ConcatBatch({&va, &vb});
  ASSERT_FALSE(cat.ok());
  EXPECT_EQ(cat.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(InputSignature(va, true), InputSignature(vb, true));
  Tensor c = Make({5, 3}, 0);
  std::vector<TensorView> vc{c.view()};
  EXPECT_EQ(InputSignature(va, true), InputSignature(vc, true));
  EXPECT_NE(InputSignature(va, false), InputSignature(vc, false));
}

TEST(BatchingTest, SplitRefusesWrongBatchDim) {
  std::vector<Tensor> outs;
  outs.push_back(Make({4, 2}, 0));
  auto split = SplitBatch(outs, {1, 2});
  ASSERT_FALSE(split.ok());
  EXPECT_EQ(split.status().code(), StatusCode::kInvalidArgument);
}

TEST(LatencyProfileTest, InterpolatesAndExtrapolates) {
  LatencyProfile p(8, 0.5);
  EXPECT_EQ(p.Estimate(4, 777), 777);
  p.Record(2, 2000);
  p.Record(6, 6000);
  EXPECT_EQ(p.Estimate(2, 0), 2000);
  EXPECT_EQ(p.Estimate(4, 0), 4000);   // between 2 and 6
  EXPECT_EQ(p.Estimate(8, 0), 8000);   // per-row cost of 6
  EXPECT_EQ(p.Estimate(1, 0), 2000);   // only larger sizes known
  p.Record(2, 4000);                    // EWMA with alpha 0.5
  EXPECT_EQ(p.Estimate(2, 0), 3000);
  ASSERT_EQ(p.Points().size(), 2u);
}

// Batch sizes sized by what they buy (SchedulerOptions::batch_min_gain): the limit doubles from 1
// while each doubling was measured to cut the time per row by the gain; an unmeasured size is
// allowed so that it gets measured.
TEST(LatencyProfileTest, BatchLimitGrowsOnlyWhileBatchingBuysTheGain) {
  EXPECT_EQ(BatchLimitFor(nullptr, 32, 0.1), 1);  // nothing measured: one row first
  LatencyProfile p(32, 1.0);                      // alpha 1: the newest measurement counts
  EXPECT_EQ(BatchLimitFor(&p, 32, 0.1), 1);
  p.Record(1, 1000);
  EXPECT_EQ(BatchLimitFor(&p, 32, 0.1), 2);  // 2 is not measured: try it
  p.Record(2, 1960);                          // 980 per row: 2 % better, under the gain
  EXPECT_EQ(BatchLimitFor(&p, 32, 0.1), 1);
  EXPECT_EQ(BatchLimitsFor(&p, 32, 0.1).next, 2);  // measured, did not pay: worth a later retrial
  EXPECT_EQ(BatchLimitFor(&p, 32, 0.01), 4);  // a 1 % gain is bought: try 4
  p.Record(2, 1200);                          // 600 per row: 40 % better
  EXPECT_EQ(BatchLimitFor(&p, 32, 0.1), 4);
  p.Record(4, 2000);                          // 500 per row: 17 % better than 2's
  p.Record(8, 3800);                          // 475 per row: 5 % better than 4's
  EXPECT_EQ(BatchLimitFor(&p, 32, 0.1), 4);
  p.Record(8, 3000);                          // 375: 25 % better; 16 unmeasured
  EXPECT_EQ(BatchLimitFor(&p, 32, 0.1), 16);
  p.Record(16, 5000);                         // 312: 17 % better; 32 unmeasured
  EXPECT_EQ(BatchLimitFor(&p, 32, 0.1), 32);
  p.Record(32, 9000);                         // 281: 10 % better (not less than 10 %)
  EXPECT_EQ(BatchLimitFor(&p, 32, 0.1), 32);
  EXPECT_EQ(BatchLimitsFor(&p, 32, 0.1).next, 0);  // nothing beyond max_batch_size
  // A max_batch_size that is not a power of two ends the doubling at it.
  LatencyProfile q(12, 1.0);
  q.Record(1, 1000);
  q.Record(2, 1000);
  q.Record(4, 1000);
  q.Record(8, 1000);
  EXPECT_EQ(BatchLimitFor(&q, 12, 0.1), 12);  // 12 unmeasured
  q.Record(12, 1000);
  EXPECT_EQ(BatchLimitFor(&q, 12, 0.1), 12);
  EXPECT_EQ(BatchLimitFor(&q, 1, 0.1), 1);
}

// The scheduler's path: the first run at a size prepares its plan and is not a measurement.
TEST(LatencyProfileTest, TheFirstRunAtEachSizeIsAWarmUp) {
  LatencyProfile p(8, 1.0);
  p.RecordAfterWarmup(1, 50'000);  // plan preparation included: dropped
  EXPECT_TRUE(p.empty());
  EXPECT_EQ(p.Measured(1), 0.0);
  p.RecordAfterWarmup(1, 1000);
  EXPECT_EQ(p.Measured(1), 1000.0);
  p.RecordAfterWarmup(2, 90'000);
  EXPECT_EQ(p.Measured(2), 0.0);
  EXPECT_EQ(BatchLimitFor(&p, 8, 0.1), 2);  // 2 is still to be measured
  p.RecordAfterWarmup(2, 1200);
  EXPECT_EQ(BatchLimitFor(&p, 8, 0.1), 4);
}

}  // namespace
}  // namespace gpuhive::sched::detail
