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

}  // namespace
}  // namespace gpuhive::sched::detail
