#include "kernels_nn/reference.h"

namespace gpuhive::testing {
namespace {

// numpy matmul reference with batch broadcasting and 1-D promotion.
Tensor RefMatMul(const Tensor& ta, const Tensor& tb) {
  Shape a = ta.shape(), b = tb.shape();
  bool a1 = a.size() == 1, b1 = b.size() == 1;
  if (a1) a.insert(a.begin(), 1);
  if (b1) b.push_back(1);
  size_t r = std::max(a.size(), b.size());
  while (a.size() < r) a.insert(a.begin(), 1);
  while (b.size() < r) b.insert(b.begin(), 1);
  int64_t m = a[r - 2], k = a[r - 1], n = b[r - 1];
  Shape batch;
  for (size_t i = 0; i + 2 < r; ++i) batch.push_back(std::max(a[i], b[i]));
  int64_t nb = NumElements(batch);
  std::vector<float> out(static_cast<size_t>(nb * m * n));
  for (int64_t bi = 0; bi < nb; ++bi) {
    int64_t rem = bi, aoff = 0, boff = 0, astr = 1, bstr = 1;
    for (int i = static_cast<int>(batch.size()) - 1; i >= 0; --i) {
      int64_t c = rem % batch[i];
      rem /= batch[i];
      aoff += (a[i] == 1 ? 0 : c) * astr;
      boff += (b[i] == 1 ? 0 : c) * bstr;
      astr *= a[i];
      bstr *= b[i];
    }
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < k; ++p)
          acc += static_cast<double>(ta.as<float>()[(aoff * m + i) * k + p]) * tb.as<float>()[(boff * k + p) * n + j];
        out[static_cast<size_t>((bi * m + i) * n + j)] = static_cast<float>(acc);
      }
  }
  Shape os = batch;
  if (!a1) os.push_back(m);
  if (!b1) os.push_back(n);
  return MakeFloat(os, out);
}

struct MatMulCase {
  const char* name;
  Shape a, b;
  bool const_b;
};

class MatMulTest : public ::testing::TestWithParam<MatMulCase> {};

TEST_P(MatMulTest, MatchesReference) {
  const auto& c = GetParam();
  Tensor a = RandomFloat(c.a, 1), b = RandomFloat(c.b, 2);
  RunOptions opts;
  if (c.const_b) opts.constant_inputs = {1};
  auto out = RunNode({"MatMul", "", 13, {}}, {&a, &b}, opts);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(TensorNear((*out)[0], RefMatMul(a, b), 1e-4, 1e-4));
}

INSTANTIATE_TEST_SUITE_P(
    MatMul, MatMulTest,
    ::testing::Values(MatMulCase{"2d", {5, 7}, {7, 3}, false}, MatMulCase{"2d_const", {5, 7}, {7, 3}, true},
                      MatMulCase{"3d_x_2d_const", {2, 9, 16}, {16, 24}, true},
                      MatMulCase{"3d_x_2d", {2, 9, 16}, {16, 24}, false},
                      MatMulCase{"batch_4d", {2, 3, 4, 5}, {2, 3, 5, 6}, false},
                      MatMulCase{"broadcast_batch", {2, 1, 4, 5}, {1, 3, 5, 6}, false},
                      MatMulCase{"2d_x_3d", {4, 5}, {3, 5, 6}, false},
                      MatMulCase{"vec_x_mat", {5}, {2, 5, 6}, false},
                      MatMulCase{"mat_x_vec", {2, 4, 5}, {5}, true},
                      MatMulCase{"vec_x_vec", {5}, {5}, false}),
    [](const ::testing::TestParamInfo<MatMulCase>& info) { return std::string(info.param.name); });

TEST(MatMulErrors, InnerDimMismatch) {
  Tensor a = RandomFloat({2, 3}, 1), b = RandomFloat({4, 5}, 2);
  auto out = RunNode({"MatMul", "", 13, {}}, {&a, &b});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
}

TEST(FusedMatMul, BertStylePostOpsMatchUnfused) {
  struct Case {
    Shape a, b;
    std::vector<std::string> ops;
    std::vector<Shape> extras;
    bool const_b;
  };
  const Case cases[] = {
      {{2, 8, 16}, {16, 32}, {"add", "gelu_erf"}, {{32}}, true},
      {{2, 8, 16}, {16, 32}, {"add", "sum"}, {{32}, {2, 8, 32}}, true},
      {{2, 3, 8, 4}, {2, 3, 4, 8}, {"mul", "add"}, {{1}, {2, 1, 1, 8}}, false},
      {{2, 8, 16}, {16, 32}, {"add", "mul"}, {{2, 1, 32}, {8, 1}}, true},
      {{6, 16}, {16, 5}, {"add", "relu", "tanh", "abs", "square"}, {{5}}, false},
  };
  for (const Case& c : cases) {
    Tensor a = RandomFloat(c.a, 3), b = RandomFloat(c.b, 4);
    std::vector<Tensor> extras;
    for (size_t i = 0; i < c.extras.size(); ++i) extras.push_back(RandomFloat(c.extras[i], 10 + static_cast<uint32_t>(i), 0.5f, 1.5f));
    Tensor expected = RefMatMul(a, b);
    ref::ApplyPostOps(expected, c.ops, extras);
    std::vector<const Tensor*> in = {&a, &b};
    for (const Tensor& t : extras) in.push_back(&t);
    RunOptions opts;
    if (c.const_b) opts.constant_inputs = {1};
    auto out = RunNode({"FusedMatMul", "gpuhive", 1, {{"post_ops", AttrStrings(c.ops)}}}, in, opts);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_TRUE(TensorNear((*out)[0], expected, 1e-4, 1e-4)) << ShapeToString(c.a);
  }
}

Tensor RefGemm(const Tensor& a, const Tensor& b, const Tensor* c, float alpha, float beta, bool ta, bool tb) {
  int64_t m = ta ? a.shape()[1] : a.shape()[0], k = ta ? a.shape()[0] : a.shape()[1];
  int64_t n = tb ? b.shape()[0] : b.shape()[1];
  std::vector<float> out(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) {
        float av = ta ? a.as<float>()[p * m + i] : a.as<float>()[i * k + p];
        float bv = tb ? b.as<float>()[j * k + p] : b.as<float>()[p * n + j];
        acc += static_cast<double>(av) * bv;
      }
      out[static_cast<size_t>(i * n + j)] = static_cast<float>(alpha * acc);
    }
  Tensor r = MakeFloat({m, n}, out);
  if (c) ref::BroadcastApply(r, *c, [beta](float x, float v) { return x + beta * v; });
  return r;
}

TEST(Gemm, AttributeCombinations) {
  const int64_t m = 4, k = 6, n = 5;
  const Shape c_shapes[] = {{m, n}, {n}, {1, n}, {m, 1}, {1}, {}};
  int seed = 0;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (const Shape& cs : c_shapes)
        for (float beta : {1.f, 0.5f, 0.f})
          for (bool constant : {false, true}) {
            float alpha = (seed % 2) ? 1.f : 0.75f;
            ++seed;
            Tensor a = RandomFloat(ta ? Shape{k, m} : Shape{m, k}, seed);
            Tensor b = RandomFloat(tb ? Shape{n, k} : Shape{k, n}, seed + 100);
            Tensor c = RandomFloat(cs, seed + 200);
            Tensor expected = RefGemm(a, b, beta != 0.f ? &c : nullptr, alpha, beta, ta, tb);
            NodeSpec spec{"Gemm", "", 13,
                          {{"alpha", AttrFloat(alpha)}, {"beta", AttrFloat(beta)}, {"transA", AttrInt(ta)},
                           {"transB", AttrInt(tb)}}};
            RunOptions opts;
            if (constant) opts.constant_inputs = {1, 2};
            auto out = RunNode(spec, {&a, &b, &c}, opts);
            ASSERT_TRUE(out.ok()) << out.status().ToString();
            EXPECT_TRUE(TensorNear((*out)[0], expected, 1e-4, 1e-4))
                << "ta=" << ta << " tb=" << tb << " C=" << ShapeToString(cs) << " beta=" << beta
                << " const=" << constant;
          }
}

TEST(Gemm, NoCAndFusedRelu) {
  Tensor a = RandomFloat({3, 4}, 1), b = RandomFloat({4, 2}, 2), c = RandomFloat({2}, 3);
  Tensor expected = RefGemm(a, b, nullptr, 1.f, 1.f, false, false);
  auto out = RunNode({"Gemm", "", 13, {}}, {&a, &b});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(TensorNear((*out)[0], expected, 1e-4, 1e-4));
  Tensor e2 = RefGemm(a, b, &c, 2.f, 1.f, false, false);
  ref::Map(e2, [](float v) { return v > 0 ? v : 0.f; });
  auto out2 = RunNode({"FusedGemm", "gpuhive", 1, {{"alpha", AttrFloat(2.f)}, {"post_ops", AttrStrings({"relu"})}}},
                      {&a, &b, &c}, {{1, 2}});
  ASSERT_TRUE(out2.ok()) << out2.status().ToString();
  EXPECT_TRUE(TensorNear((*out2)[0], e2, 1e-4, 1e-4));
}

}  // namespace
}  // namespace gpuhive::testing
