#include <cmath>

#include "kernels/cpu/loops/avx512_math.h"
#include "kernels_nn/reference.h"

namespace gpuhive::testing {
namespace {

TEST(BatchNormalization, InferenceMatchesFormula) {
  Tensor x = RandomFloat({2, 3, 4, 5}, 1);
  Tensor scale = RandomFloat({3}, 2), b = RandomFloat({3}, 3), mean = RandomFloat({3}, 4),
         var = RandomFloat({3}, 5, 0.1f, 2.f);
  std::vector<float> e(static_cast<size_t>(x.num_elements()));
  for (size_t i = 0; i < e.size(); ++i) {
    size_t c = (i / 20) % 3;
    e[i] = (x.as<float>()[i] - mean.as<float>()[c]) / std::sqrt(var.as<float>()[c] + 1e-3f) * scale.as<float>()[c] +
           b.as<float>()[c];
  }
  for (int opset : {9, 14, 15}) {
    auto out = RunNode({"BatchNormalization", "", opset, {{"epsilon", AttrFloat(1e-3f)}}}, {&x, &scale, &b, &mean, &var});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_TRUE(TensorNear((*out)[0], MakeFloat(x.shape(), e), 1e-5, 1e-5)) << opset;
  }
  auto train = RunNode({"BatchNormalization", "", 15, {{"training_mode", AttrInt(1)}}}, {&x, &scale, &b, &mean, &var});
  ASSERT_FALSE(train.ok());
  EXPECT_EQ(train.status().code(), StatusCode::kUnimplemented);
}

TEST(InstanceNormalization, MatchesFormula) {
  Tensor x = RandomFloat({2, 3, 4, 5}, 6), scale = RandomFloat({3}, 7), b = RandomFloat({3}, 8);
  std::vector<float> e(static_cast<size_t>(x.num_elements()));
  for (int p = 0; p < 6; ++p) {
    double m = 0, v = 0;
    for (int i = 0; i < 20; ++i) m += x.as<float>()[p * 20 + i];
    m /= 20;
    for (int i = 0; i < 20; ++i) v += std::pow(x.as<float>()[p * 20 + i] - m, 2);
    v /= 20;
    for (int i = 0; i < 20; ++i)
      e[static_cast<size_t>(p * 20 + i)] = static_cast<float>((x.as<float>()[p * 20 + i] - m) / std::sqrt(v + 1e-5) *
                                                                  scale.as<float>()[p % 3] + b.as<float>()[p % 3]);
  }
  auto out = RunNode({"InstanceNormalization", "", 6, {}}, {&x, &scale, &b});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_TRUE(TensorNear((*out)[0], MakeFloat(x.shape(), e), 1e-5, 1e-4));
}

TEST(LayerNormalization, AxesBroadcastAndStatistics) {
  Tensor x = RandomFloat({2, 3, 8}, 9);
  for (int64_t axis : {-1, 1, 0}) {
    int64_t a = axis < 0 ? axis + 3 : axis;
    Shape inner(x.shape().begin() + a, x.shape().end());
    int64_t n_in = NumElements(inner), n_out = x.num_elements() / n_in;
    for (bool full_scale : {true, false}) {
      Shape sshape = full_scale ? inner : Shape{inner.back()};
      Tensor scale = RandomFloat(sshape, 10), b = RandomFloat(sshape, 11);
      std::vector<float> e(static_cast<size_t>(x.num_elements())), me, inv;
      for (int64_t o = 0; o < n_out; ++o) {
        double m = 0, v = 0;
        for (int64_t i = 0; i < n_in; ++i) m += x.as<float>()[o * n_in + i];
        m /= n_in;
        for (int64_t i = 0; i < n_in; ++i) v += std::pow(x.as<float>()[o * n_in + i] - m, 2);
        v /= n_in;
        double is = 1 / std::sqrt(v + 1e-5);
        me.push_back(static_cast<float>(m));
        inv.push_back(static_cast<float>(is));
        for (int64_t i = 0; i < n_in; ++i) {
          int64_t si = full_scale ? i : i % inner.back();
          e[static_cast<size_t>(o * n_in + i)] =
              static_cast<float>((x.as<float>()[o * n_in + i] - m) * is * scale.as<float>()[si] + b.as<float>()[si]);
        }
      }
      auto out = RunNode({"LayerNormalization", "", 17, {{"axis", AttrInt(axis)}}, 3}, {&x, &scale, &b});
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      EXPECT_TRUE(TensorNear((*out)[0], MakeFloat(x.shape(), e), 1e-4, 1e-4)) << axis;
      Shape stat = x.shape();
      for (size_t i = static_cast<size_t>(a); i < 3; ++i) stat[i] = 1;
      EXPECT_TRUE(TensorNear((*out)[1], MakeFloat(stat, me), 1e-5, 1e-5));
      EXPECT_TRUE(TensorNear((*out)[2], MakeFloat(stat, inv), 1e-4, 1e-4));
    }
  }
  Tensor scale = RandomFloat({8}, 12);
  auto nobias = RunNode({"LayerNormalization", "", 17, {}}, {&x, &scale});
  EXPECT_TRUE(nobias.ok()) << nobias.status().ToString();
  auto bad = RunNode({"LayerNormalization", "", 17, {{"axis", AttrInt(3)}}}, {&x, &scale});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

// Full-length scale and bias run their rows 16 lanes wide on AVX-512 CPUs ("gpuhive:rows_avx512";
// BERT-base's 25 LayerNormalizations per run were SSE): row lengths around the 32-float main loop
// and its tail, with and without bias, in place, against a double-precision reference.
TEST(LayerNormalization, VectorizedRowsMatchTheDefinition) {
  for (int64_t n : {5, 16, 37, 64, 768}) {
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE(::testing::Message() << "n " << n << " bias " << with_bias);
      Tensor x = RandomFloat({3, n}, static_cast<uint32_t>(n), -3.f, 5.f);
      Tensor scale = RandomFloat({n}, 2), b = RandomFloat({n}, 3);
      std::vector<float> e(static_cast<size_t>(3 * n));
      for (int64_t o = 0; o < 3; ++o) {
        double m = 0, v = 0;
        for (int64_t i = 0; i < n; ++i) m += x.as<float>()[o * n + i];
        m /= n;
        for (int64_t i = 0; i < n; ++i) v += std::pow(x.as<float>()[o * n + i] - m, 2);
        const double is = 1 / std::sqrt(v / n + 1e-5);
        for (int64_t i = 0; i < n; ++i) {
          e[static_cast<size_t>(o * n + i)] = static_cast<float>((x.as<float>()[o * n + i] - m) * is * scale.as<float>()[i] +
                                                                 (with_bias ? b.as<float>()[i] : 0.f));
        }
      }
      RunOptions opts;
      std::string impl;
      opts.implementation = &impl;
      std::vector<const Tensor*> in = {&x, &scale};
      if (with_bias) in.push_back(&b);
      auto out = RunNode({"LayerNormalization", "", 17, {}}, in, opts);
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      EXPECT_TRUE(TensorNear((*out)[0], MakeFloat({3, n}, e), 1e-5, 1e-4));
      EXPECT_EQ(impl, cpu::loops::Avx512Usable() ? "gpuhive:rows_avx512" : "gpuhive:rows");
    }
  }
}

TEST(Lrn, EvenAndOddSizes) {
  Tensor x = RandomFloat({1, 6, 3, 2}, 13);
  for (int64_t size : {3, 4}) {
    std::vector<float> e(static_cast<size_t>(x.num_elements()));
    for (int64_t c = 0; c < 6; ++c)
      for (int64_t i = 0; i < 6; ++i) {
        double sq = 0;
        for (int64_t cc = c - (size - 1) / 2; cc <= c + size / 2; ++cc)
          if (cc >= 0 && cc < 6) sq += std::pow(x.as<float>()[cc * 6 + i], 2);
        e[static_cast<size_t>(c * 6 + i)] =
            static_cast<float>(x.as<float>()[c * 6 + i] / std::pow(2.0 + 0.5 / size * sq, 0.6));
      }
    auto out = RunNode({"LRN", "", 13,
                        {{"size", AttrInt(size)}, {"alpha", AttrFloat(0.5f)}, {"beta", AttrFloat(0.6f)}, {"bias", AttrFloat(2.f)}}},
                       {&x});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_TRUE(TensorNear((*out)[0], MakeFloat(x.shape(), e), 1e-5, 1e-5)) << size;
  }
}

TEST(PRelu, SlopeBroadcasts) {
  Tensor x = RandomFloat({2, 3, 4}, 14);
  for (Shape ss : {Shape{1}, Shape{3, 1}, Shape{4}, Shape{2, 3, 4}}) {
    Tensor slope = RandomFloat(ss, 15);
    Tensor e = MakeFloat(x.shape(), std::vector<float>(24, 0.f));
    std::memcpy(e.data(), x.data(), e.bytes());
    Tensor s2 = MakeFloat(x.shape(), std::vector<float>(24, 1.f));
    ref::BroadcastApply(s2, slope, [](float, float v) { return v; });
    for (int i = 0; i < 24; ++i) {
      float v = x.as<float>()[i];
      e.as<float>()[i] = v < 0 ? v * s2.as<float>()[i] : v;
    }
    auto out = RunNode({"PRelu", "", 16, {}}, {&x, &slope});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_TRUE(TensorNear((*out)[0], e)) << ShapeToString(ss);
  }
  Tensor bad = RandomFloat({5}, 16);
  EXPECT_FALSE(RunNode({"PRelu", "", 16, {}}, {&x, &bad}).ok());
}

}  // namespace
}  // namespace gpuhive::testing
