// Attention fusion end to end (issue 15): the scaled dot-product attention a transformer exporter
// writes (head transposes, MatMul, scaling, mask Add, Softmax, MatMul, transpose back) becomes one
// gpuhive.Attention node, and the optimized model computes what the graph as imported computes.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "gpuhive/onnx_import.h"
#include "gpuhive/passes.h"
#include "gpuhive/runtime.h"
#include "kernels/cpu/loops/avx512_math.h"
#include "kernels/cpu/loops/softmax_row.h"
#include "graph/onnx_test_util.h"
#include "support/kernel_harness.h"

namespace gpuhive {
namespace {
using namespace gpuhive::testing;  // NOLINT
constexpr int kF = onnx::TensorProto::FLOAT;
constexpr int64_t kB = 2, kS = 5, kH = 3, kD = 4;

struct Variant {
  const char* scaling;  // "Div", "Mul" or "" (none)
  bool mask;
  bool probs_also_output;  // the Softmax result is a graph output: must not fuse
};

onnx::ModelProto AttentionModel(const Variant& v) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  for (const char* n : {"q", "k", "v"}) AddInput(g, n, kF, {int64_t{kB}, int64_t{kS}, int64_t{kH}, int64_t{kD}});
  AddIntsAttr(AddNode(g, "Transpose", {"q"}, {"qt"}), "perm", {0, 2, 1, 3});
  AddIntsAttr(AddNode(g, "Transpose", {"k"}, {"kt"}), "perm", {0, 2, 3, 1});
  AddIntsAttr(AddNode(g, "Transpose", {"v"}, {"vt"}), "perm", {0, 2, 1, 3});
  AddNode(g, "MatMul", {"qt", "kt"}, {"s0"});
  std::string s = "s0";
  if (std::string(v.scaling) == "Div" || std::string(v.scaling) == "Mul") {
    AddFloatInit(g, "c", {}, {std::string(v.scaling) == "Div" ? 2.f : 0.5f});
    AddNode(g, v.scaling, {"s0", "c"}, {"s1"});
    s = "s1";
  }
  if (v.mask) {
    AddInput(g, "mask", kF, {int64_t{kB}, int64_t{1}, int64_t{1}, int64_t{kS}});
    AddNode(g, "Add", {"mask", s}, {"s2"});  // mask first: the operand order must not matter
    s = "s2";
  }
  AddIntAttr(AddNode(g, "Softmax", {s}, {"p"}), "axis", -1);
  AddNode(g, "MatMul", {"p", "vt"}, {"o"});
  AddIntsAttr(AddNode(g, "Transpose", {"o"}, {"y"}), "perm", {0, 2, 1, 3});
  AddOutput(g, "y", kF, {int64_t{kB}, int64_t{kS}, int64_t{kH}, int64_t{kD}});
  if (v.probs_also_output) AddOutput(g, "p", kF, {int64_t{kB}, int64_t{kH}, int64_t{kS}, int64_t{kS}});
  return m;
}

int CountOp(const ir::Graph& g, const std::string& domain, const std::string& op) {
  int n = 0;
  for (const auto& node : g.nodes()) n += node->domain == domain && node->op_type == op;
  return n;
}

class AttentionFusionTest : public ::testing::TestWithParam<Variant> {};

TEST_P(AttentionFusionTest, FusesAndMatchesTheUnfusedGraph) {
  const Variant& v = GetParam();
  const std::string bytes = Serialize(AttentionModel(v));
  auto fused = ImportOnnxBytes(bytes);
  ASSERT_TRUE(fused.ok()) << fused.status().ToString();
  ASSERT_TRUE(OptimizeModel(**fused, {}).ok());
  const int expect = v.probs_also_output ? 0 : 1;
  EXPECT_EQ(CountOp(*(*fused)->graph, "gpuhive", "Attention"), expect);
  if (expect == 1) {
    EXPECT_EQ(CountOp(*(*fused)->graph, "", "Transpose"), 0);
    EXPECT_EQ(CountOp(*(*fused)->graph, "", "Softmax"), 0);
  }
  // A backend without the fused op keeps the graph as it was.
  auto cuda_like = ImportOnnxBytes(bytes);
  ASSERT_TRUE(cuda_like.ok());
  OptimizeOptions no_attention;
  no_attention.supports = [](const std::string&, const std::string& op) { return op != "Attention"; };
  ASSERT_TRUE(OptimizeModel(**cuda_like, no_attention).ok());
  EXPECT_EQ(CountOp(*(*cuda_like)->graph, "gpuhive", "Attention"), 0);

  std::vector<Tensor> inputs;
  for (uint32_t i = 0; i < 3; ++i) inputs.push_back(RandomFloat({kB, kS, kH, kD}, 10 + i, -2.f, 2.f));
  if (v.mask) {
    Tensor m = RandomFloat({kB, 1, 1, kS}, 20, -1.f, 0.f);
    m.as<float>()[1] = -std::numeric_limits<float>::infinity();  // a masked-out column
    inputs.push_back(std::move(m));
  }
  std::vector<TensorView> views;
  for (const Tensor& t : inputs) views.push_back(t.view());
  std::vector<std::vector<Tensor>> results;
  for (bool optimize : {false, true}) {
    auto model = ImportOnnxBytes(bytes);
    ASSERT_TRUE(model.ok());
    CompileOptions co;
    co.optimize = optimize;
    co.num_threads = 2;
    auto compiled = CompiledModel::Create(std::move(*model), co);
    ASSERT_TRUE(compiled.ok()) << compiled.status().ToString();
    ExecutionContext ctx({});
    auto out = (*compiled)->Run(ctx, views);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    results.push_back(std::move(*out));
  }
  EXPECT_TRUE(TensorNear(results[1][0], results[0][0], 1e-5, 1e-5));
}

INSTANTIATE_TEST_SUITE_P(Attention, AttentionFusionTest,
                         ::testing::Values(Variant{"Div", true, false}, Variant{"Mul", false, false},
                                           Variant{"", true, false}, Variant{"Div", true, true}),
                         [](const ::testing::TestParamInfo<Variant>& info) {
                           return std::string(info.param.scaling[0] ? info.param.scaling : "NoScale") +
                                  (info.param.mask ? "_mask" : "") + (info.param.probs_also_output ? "_probs_used" : "");
                         });

// The kernel alone on two threads (each with its workspace slice for k^T and the scores) against
// a direct evaluation of softmax(q k^T * scale + mask) v, and on oneDNN's optimized matmuls: its
// sgemm-based predecessor spent 28 of BERT-base's 92 ms in packing buffers malloc'ed per call.
TEST(AttentionKernel, TwoThreadsMatchTheDefinitionOnOptimizedMatmuls) {
  constexpr int64_t B = 2, S = 32, H = 4, D = 16;
  const float scale = 0.25f;
  Tensor q = RandomFloat({B, S, H, D}, 1, -1.f, 1.f), k = RandomFloat({B, S, H, D}, 2, -1.f, 1.f),
         v = RandomFloat({B, S, H, D}, 3, -1.f, 1.f), mask = RandomFloat({B, 1, 1, S}, 4, -2.f, 0.f);
  NodeSpec spec{"Attention", "gpuhive", 1, {{"scale", AttrFloat(scale)}}};
  RunOptions opts;
  opts.num_threads = 2;
  std::string impl;
  opts.implementation = &impl;
  auto out = RunNode(spec, {&q, &k, &v, &mask}, opts);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_FALSE(impl.empty());
  EXPECT_EQ(impl.find("ref"), std::string::npos) << impl;
  // The scaled, masked softmax rows run vectorized for 16 lanes where the CPU has AVX-512 (BERT-base
  // at batch 1 spent 3.5 of 93 ms in them compiled for baseline x86-64).
  EXPECT_NE(impl.find(cpu::loops::Avx512Usable() ? "softmax:avx512" : "softmax:portable"), std::string::npos) << impl;

  auto at = [](const Tensor& t, int64_t b, int64_t s, int64_t h, int64_t d) {
    return t.as<float>()[((b * S + s) * H + h) * D + d];
  };
  std::vector<float> expect(static_cast<size_t>(B * S * H * D));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < S; ++i) {
        std::vector<double> p(S);
        double mx = -1e30, sum = 0;
        for (int64_t j = 0; j < S; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += double(at(q, b, i, h, d)) * at(k, b, j, h, d);
          p[j] = dot * scale + mask.as<float>()[b * S + j];
          mx = std::max(mx, p[j]);
        }
        for (double& x : p) sum += (x = std::exp(x - mx));
        for (int64_t d = 0; d < D; ++d) {
          double y = 0;
          for (int64_t j = 0; j < S; ++j) y += p[j] / sum * at(v, b, j, h, d);
          expect[((b * S + i) * H + h) * D + d] = static_cast<float>(y);
        }
      }
  EXPECT_TRUE(TensorNear((*out)[0], MakeFloat({B, S, H, D}, expect), 1e-5, 1e-4));
}

// The softmax rows (shared by Softmax and the attention kernel) on this CPU's path and on the
// portable one, against a double-precision softmax of x * scale + mask: lengths around the 16-lane
// vectors, masks broadcast, contiguous and strided, and rows with non-finite values refused (the
// callers then take the general path, which gives ONNX's NaN/-inf results).
TEST(SoftmaxRows, BothPathsMatchTheDefinition) {
  for (int64_t n : {1, 5, 16, 17, 31, 128, 1000}) {
    for (int64_t mask_stride : {-1, 0, 1, 3}) {  // -1: no mask
      SCOPED_TRACE(::testing::Message() << "n " << n << " mask stride " << mask_stride);
      Tensor x = RandomFloat({n}, static_cast<uint64_t>(n), -8.f, 8.f);
      Tensor mask = RandomFloat({3 * n}, 7, -4.f, 0.f);
      const float scale = 0.37f;
      const float* m = mask_stride < 0 ? nullptr : mask.as<float>();
      std::vector<double> want(static_cast<size_t>(n));
      double mx = -1e30, sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        want[j] = double(x.as<float>()[j]) * scale + (m ? m[j * mask_stride] : 0.f);
        mx = std::max(mx, want[j]);
      }
      for (double& v : want) sum += (v = std::exp(v - mx));
      for (double& v : want) v /= sum;
      for (bool portable : {false, true}) {
        std::vector<float> row(x.as<float>(), x.as<float>() + n);
        const bool ok = portable ? cpu::loops::ScaledMaskedSoftmaxRowFloatPortable(row.data(), n, scale, m, mask_stride)
                                 : cpu::loops::ScaledMaskedSoftmaxRowFloat(row.data(), n, scale, m, mask_stride);
        ASSERT_TRUE(ok);
        double err = 0;
        for (int64_t j = 0; j < n; ++j) err = std::max(err, std::abs(row[j] - want[j]) / std::max(want[j], 1e-30));
        EXPECT_LT(err, 1e-5) << (portable ? "portable" : "this CPU's path");
        // Unscaled, unmasked, out of place.
        std::vector<float> y(static_cast<size_t>(n));
        std::vector<float> scaled(static_cast<size_t>(n));
        for (int64_t j = 0; j < n; ++j) scaled[j] = static_cast<float>(double(x.as<float>()[j]) * scale + (m ? m[j * mask_stride] : 0.f));
        ASSERT_TRUE(portable ? cpu::loops::SoftmaxRowFloatPortable(scaled.data(), y.data(), n)
                             : cpu::loops::SoftmaxRowFloat(scaled.data(), y.data(), n));
        for (int64_t j = 0; j < n; ++j) EXPECT_NEAR(y[j], want[j], 1e-5 * want[j] + 1e-12) << j;
      }
      for (float bad : {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                        std::numeric_limits<float>::quiet_NaN()}) {
        std::vector<float> row(x.as<float>(), x.as<float>() + n);
        row[static_cast<size_t>(n / 2)] = bad;
        std::vector<float> y(static_cast<size_t>(n));
        EXPECT_FALSE(cpu::loops::SoftmaxRowFloat(row.data(), y.data(), n)) << bad;
        EXPECT_FALSE(cpu::loops::SoftmaxRowFloatPortable(row.data(), y.data(), n)) << bad;
        EXPECT_FALSE(cpu::loops::ScaledMaskedSoftmaxRowFloat(row.data(), n, scale, m, mask_stride)) << bad;
      }
    }
  }
}

}  // namespace
}  // namespace gpuhive
