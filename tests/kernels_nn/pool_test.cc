#include <cmath>
#include <limits>

#include "kernels_nn/blocked_harness.h"
#include "kernels_nn/reference.h"

namespace gpuhive::testing {
namespace {

enum class Kind { kMax, kAvg, kLp };

struct PoolParams {
  std::vector<int64_t> k, s, d, pb, pe;
  bool ceil = false, include_pad = false;
  int p = 2;
};

// Straight N-D pooling; output size per ONNX (floor or ceil, last window starting inside).
Tensor RefPool(const Tensor& x, Kind kind, const PoolParams& p, Tensor* indices = nullptr, int storage_order = 0) {
  const Shape& xs = x.shape();
  size_t sp = xs.size() - 2;
  auto in = ref::Pad3({xs.begin() + 2, xs.end()}, 1);
  auto k = ref::Pad3(p.k, 1), s = ref::Pad3(p.s, 1), d = ref::Pad3(p.d, 1), pb = ref::Pad3(p.pb, 0),
       pe = ref::Pad3(p.pe, 0);
  std::vector<int64_t> out(3);
  for (int i = 0; i < 3; ++i) {
    int64_t span = in[i] + pb[i] + pe[i] - ((k[i] - 1) * d[i] + 1);
    out[i] = p.ceil ? (span + s[i] - 1) / s[i] + 1 : span / s[i] + 1;
    if (p.ceil && (out[i] - 1) * s[i] >= in[i] + pb[i]) --out[i];
  }
  Shape os = {xs[0], xs[1]};
  for (size_t i = 0; i < sp; ++i) os.push_back(out[3 - sp + i]);
  std::vector<float> r;
  std::vector<int64_t> idx;
  for (int64_t pl = 0; pl < xs[0] * xs[1]; ++pl)
    for (int64_t a = 0; a < out[0]; ++a)
      for (int64_t b = 0; b < out[1]; ++b)
        for (int64_t c = 0; c < out[2]; ++c) {
          double acc = kind == Kind::kMax ? -INFINITY : 0;
          int64_t cnt = 0, cnt_pad = 0, best = -1;
          for (int64_t i = 0; i < k[0]; ++i)
            for (int64_t j = 0; j < k[1]; ++j)
              for (int64_t l = 0; l < k[2]; ++l) {
                int64_t z = a * s[0] - pb[0] + i * d[0], y = b * s[1] - pb[1] + j * d[1], w = c * s[2] - pb[2] + l * d[2];
                if (z < in[0] + pe[0] && y < in[1] + pe[1] && w < in[2] + pe[2]) ++cnt_pad;
                if (z < 0 || y < 0 || w < 0 || z >= in[0] || y >= in[1] || w >= in[2]) continue;
                double v = x.as<float>()[((pl * in[0] + z) * in[1] + y) * in[2] + w];
                ++cnt;
                if (kind == Kind::kMax) {
                  if (v > acc) {
                    acc = v;
                    best = pl * in[0] * in[1] * in[2] +
                           (storage_order == 0 ? (z * in[1] + y) * in[2] + w : (w * in[1] + y) * in[0] + z);
                  }
                } else if (kind == Kind::kAvg) {
                  acc += v;
                } else {
                  acc += std::pow(std::fabs(v), p.p);
                }
              }
          if (kind == Kind::kAvg) acc /= static_cast<double>(p.include_pad ? cnt_pad : cnt);
          if (kind == Kind::kLp) acc = std::pow(acc, 1.0 / p.p);
          r.push_back(static_cast<float>(acc));
          idx.push_back(best);
        }
  if (indices) *indices = MakeInt64(os, idx);
  return MakeFloat(os, r);
}

struct PoolCase {
  const char* name;
  Kind kind;
  Shape x;
  PoolParams p;
};

class PoolTest : public ::testing::TestWithParam<PoolCase> {};

TEST_P(PoolTest, MatchesReference) {
  const auto& c = GetParam();
  Tensor x = RandomFloat(c.x, 7);
  const char* op = c.kind == Kind::kMax ? "MaxPool" : c.kind == Kind::kAvg ? "AveragePool" : "LpPool";
  NodeSpec spec{op, "", 18, {{"kernel_shape", AttrInts(c.p.k)}, {"strides", AttrInts(c.p.s)}}};
  std::vector<int64_t> pads = c.p.pb;
  pads.insert(pads.end(), c.p.pe.begin(), c.p.pe.end());
  spec.attrs["pads"] = AttrInts(pads);
  if (c.kind == Kind::kMax) spec.attrs["dilations"] = AttrInts(c.p.d);
  if (c.kind != Kind::kLp) spec.attrs["ceil_mode"] = AttrInt(c.p.ceil);
  if (c.kind == Kind::kAvg) spec.attrs["count_include_pad"] = AttrInt(c.p.include_pad);
  if (c.kind == Kind::kLp) spec.attrs["p"] = AttrInt(c.p.p);
  Tensor expected = RefPool(x, c.kind, c.p);
  auto out = RunNode(spec, {&x});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(TensorNear((*out)[0], expected, 1e-5, 1e-5));
  if (c.kind != Kind::kLp && c.x.size() == 4) {
    auto blocked = ReorderTo(AsValue(x), "blocked16");
    ASSERT_TRUE(blocked.ok());
    auto bout = RunNodeLayouts(spec, {&*blocked});
    if (c.kind == Kind::kAvg && c.p.ceil && c.p.include_pad) {
      EXPECT_FALSE(bout.ok()) << "loop-only configuration must refuse blocked input";
      return;
    }
    ASSERT_TRUE(bout.ok()) << bout.status().ToString();
    EXPECT_EQ((*bout)[0].layout, Layout::kBlocked16);
    auto plain = ToPlain((*bout)[0]);
    ASSERT_TRUE(plain.ok());
    EXPECT_TRUE(TensorNear(*plain, expected, 1e-5, 1e-5));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Pool, PoolTest,
    ::testing::Values(
        PoolCase{"max_basic", Kind::kMax, {1, 3, 8, 8}, {{3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}}},
        PoolCase{"max_ceil", Kind::kMax, {2, 5, 7, 9}, {{3, 2}, {2, 2}, {1, 1}, {0, 0}, {1, 0}, true}},
        PoolCase{"max_dilation", Kind::kMax, {1, 4, 9, 9}, {{2, 2}, {1, 2}, {2, 3}, {1, 0}, {0, 1}}},
        PoolCase{"max_1d", Kind::kMax, {2, 3, 11}, {{3}, {2}, {1}, {1}, {1}}},
        PoolCase{"max_3d", Kind::kMax, {1, 2, 4, 5, 6}, {{2, 2, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, {1, 0, 1}}},
        PoolCase{"avg_exclude", Kind::kAvg, {1, 3, 8, 8}, {{3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}}},
        PoolCase{"avg_include", Kind::kAvg, {1, 3, 8, 8}, {{3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, false, true}},
        PoolCase{"avg_ceil_exclude", Kind::kAvg, {1, 3, 7, 7}, {{3, 3}, {2, 2}, {1, 1}, {0, 0}, {0, 0}, true}},
        PoolCase{"avg_ceil_include", Kind::kAvg, {1, 3, 7, 6}, {{3, 3}, {2, 2}, {1, 1}, {1, 0}, {0, 1}, true, true}},
        PoolCase{"lp2", Kind::kLp, {1, 3, 6, 6}, {{2, 2}, {2, 2}, {1, 1}, {0, 0}, {0, 0}}},
        PoolCase{"lp3", Kind::kLp, {1, 2, 5, 5}, {{3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, false, false, 3}}),
    [](const ::testing::TestParamInfo<PoolCase>& info) { return std::string(info.param.name); });

TEST(Pool, SameUpperMatchesExplicitPads) {
  Tensor x = RandomFloat({1, 2, 7, 6}, 3);
  // in 7, k 3, s 2 -> out 4, total pad 2 (1,1); in 6 -> out 3, total pad 1 (0,1).
  Tensor expected = RefPool(x, Kind::kMax, {{3, 3}, {2, 2}, {1, 1}, {1, 0}, {1, 1}});
  NodeSpec spec{"MaxPool", "", 12,
                {{"kernel_shape", AttrInts({3, 3})}, {"strides", AttrInts({2, 2})}, {"auto_pad", AttrString("SAME_UPPER")}}};
  auto out = RunNode(spec, {&x});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(TensorNear((*out)[0], expected));
}

TEST(Pool, MaxPoolIndicesBothStorageOrders) {
  Tensor x = RandomFloat({2, 3, 5, 4}, 9);
  for (int order : {0, 1}) {
    Tensor ind;
    Tensor expected = RefPool(x, Kind::kMax, {{2, 2}, {2, 1}, {1, 1}, {1, 0}, {0, 1}}, &ind, order);
    NodeSpec spec{"MaxPool", "", 12,
                  {{"kernel_shape", AttrInts({2, 2})}, {"strides", AttrInts({2, 1})}, {"pads", AttrInts({1, 0, 0, 1})},
                   {"storage_order", AttrInt(order)}},
                  2};
    auto out = RunNode(spec, {&x});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_TRUE(TensorNear((*out)[0], expected));
    EXPECT_TRUE(TensorNear((*out)[1], ind, 0, 0)) << "storage_order " << order;
  }
}

TEST(Pool, GlobalPools) {
  Tensor x = RandomFloat({2, 20, 5, 3}, 4);
  struct G {
    const char* op;
    Kind kind;
  };
  for (G g : {G{"GlobalAveragePool", Kind::kAvg}, G{"GlobalMaxPool", Kind::kMax}, G{"GlobalLpPool", Kind::kLp}}) {
    Tensor expected = RefPool(x, g.kind, {{5, 3}, {1, 1}, {1, 1}, {0, 0}, {0, 0}});
    auto out = RunNode({g.op, "", 13, {}}, {&x});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_TRUE(TensorNear((*out)[0], expected, 1e-5, 1e-5)) << g.op;
    if (g.kind != Kind::kLp) {
      auto blocked = ReorderTo(AsValue(x), "blocked8");
      ASSERT_TRUE(blocked.ok());
      auto bout = RunNodeLayouts({g.op, "", 13, {}}, {&*blocked});
      ASSERT_TRUE(bout.ok()) << bout.status().ToString();
      EXPECT_EQ((*bout)[0].layout, Layout::kBlocked8);
      auto plain = ToPlain((*bout)[0]);
      ASSERT_TRUE(plain.ok());
      EXPECT_TRUE(TensorNear(*plain, expected, 1e-5, 1e-5)) << g.op;
    }
  }
}

TEST(Pool, MaxPoolUint8) {
  std::vector<uint8_t> v(2 * 4 * 4);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>((i * 37) % 251);
  Tensor x = MakeTensor(DataType::kUint8, {1, 2, 4, 4}, v.data());
  auto out = RunNode({"MaxPool", "", 12, {{"kernel_shape", AttrInts({2, 2})}, {"strides", AttrInts({2, 2})}}}, {&x});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  std::vector<uint8_t> e;
  for (int c = 0; c < 2; ++c)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) {
        uint8_t m = 0;
        for (int a = 0; a < 2; ++a)
          for (int b = 0; b < 2; ++b) m = std::max(m, v[static_cast<size_t>(c * 16 + (2 * i + a) * 4 + 2 * j + b)]);
        e.push_back(m);
      }
  EXPECT_TRUE(TensorNear((*out)[0], MakeTensor(DataType::kUint8, {1, 2, 2, 2}, e.data()), 0, 0));
}

TEST(Pool, MissingKernelShapeIsAnError) {
  Tensor x = RandomFloat({1, 1, 4, 4}, 1);
  EXPECT_FALSE(RunNode({"MaxPool", "", 12, {}}, {&x}).ok());
}

}  // namespace
}  // namespace gpuhive::testing
