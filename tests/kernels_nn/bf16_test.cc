// BF16 compute (KernelOptions::bf16_compute, precision "bf16"): which kernels take it, pinned by
// the implementation oneDNN runs (deterministic), and how far their results are from FP32. Where
// oneDNN has no BF16 dot product (this binary also runs capped at AVX2) the tests say so and skip.
#include <cmath>
#include <string>

#include "gpuhive/kernel.h"
#include "kernels_nn/reference.h"

namespace gpuhive::testing {
namespace {

double RelL2(const Tensor& got, const Tensor& want) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    const double d = got.as<float>()[i] - want.as<float>()[i];
    num += d * d;
    den += static_cast<double>(want.as<float>()[i]) * want.as<float>()[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

struct Ran {
  Tensor out;
  std::string impl;
};

Ran RunIn(const NodeSpec& spec, const std::vector<const Tensor*>& in, std::vector<int> constants, bool bf16) {
  RunOptions ro;
  ro.constant_inputs = std::move(constants);
  ro.bf16_compute = bf16;
  std::string impl;
  ro.implementation = &impl;
  auto out = RunNode(spec, in, ro);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  if (!out.ok()) return {};
  return {std::move((*out)[0]), impl};
}

TEST(Bf16Compute, DenseConvolutionsAndMatMulsRunInBf16) {
  if (!CpuHasBf16Compute()) GTEST_SKIP() << "oneDNN has no BF16 dot product on this CPU (or is capped below it)";
  Tensor x = RandomFloat({2, 32, 14, 14}, 1);
  Tensor w = RandomFloat({64, 32, 3, 3}, 2, -0.2f, 0.2f);
  Tensor b = RandomFloat({64}, 3);
  NodeSpec conv{"Conv", "", 11, {{"pads", AttrInts({1, 1, 1, 1})}}};
  Ran f32 = RunIn(conv, {&x, &w, &b}, {1, 2}, false);
  Ran bf16 = RunIn(conv, {&x, &w, &b}, {1, 2}, true);
  EXPECT_EQ(f32.impl.find("[bf16]"), std::string::npos) << f32.impl;
  EXPECT_NE(bf16.impl.find("[bf16]"), std::string::npos) << bf16.impl << " vs " << f32.impl;
  const double conv_err = RelL2(bf16.out, f32.out);
  EXPECT_GT(conv_err, 0) << "BF16 rounding must show";
  EXPECT_LT(conv_err, 1e-2);

  Tensor a = RandomFloat({3, 16, 128}, 4);
  Tensor m = RandomFloat({128, 96}, 5, -0.2f, 0.2f);
  NodeSpec matmul{"MatMul", "", 13, {}};
  Ran mf32 = RunIn(matmul, {&a, &m}, {1}, false);
  Ran mbf16 = RunIn(matmul, {&a, &m}, {1}, true);
  EXPECT_EQ(mf32.impl.find("[bf16]"), std::string::npos) << mf32.impl;
  EXPECT_NE(mbf16.impl.find("[bf16]"), std::string::npos) << mbf16.impl;
  const double mm_err = RelL2(mbf16.out, mf32.out);
  EXPECT_GT(mm_err, 0);
  EXPECT_LT(mm_err, 1e-2);

  Tensor ga = RandomFloat({5, 64}, 6);
  Tensor gb = RandomFloat({48, 64}, 7, -0.2f, 0.2f);
  Tensor gc = RandomFloat({48}, 8);
  NodeSpec gemm{"Gemm", "", 13, {{"transB", AttrInt(1)}, {"alpha", AttrFloat(0.5f)}}};
  Ran gbf16 = RunIn(gemm, {&ga, &gb, &gc}, {1, 2}, true);
  Ran gf32 = RunIn(gemm, {&ga, &gb, &gc}, {1, 2}, false);
  EXPECT_NE(gbf16.impl.find("[bf16]"), std::string::npos) << gbf16.impl;
  EXPECT_LT(RelL2(gbf16.out, gf32.out), 1e-2);
}

// Kept in FP32 under the option: a depthwise (grouped) convolution (memory-bound; converting its
// input costs more than BF16 saves), a MatMul of two activations (nothing to pack), ConvTranspose.
TEST(Bf16Compute, MemoryBoundAndUnpackedKernelsStayFp32) {
  if (!CpuHasBf16Compute()) GTEST_SKIP() << "oneDNN has no BF16 dot product on this CPU (or is capped below it)";
  Tensor x = RandomFloat({1, 32, 14, 14}, 11);
  Tensor dw = RandomFloat({32, 1, 3, 3}, 12);
  Ran depthwise = RunIn(NodeSpec{"Conv", "", 11, {{"group", AttrInt(32)}, {"pads", AttrInts({1, 1, 1, 1})}}}, {&x, &dw},
                      {1}, true);
  EXPECT_EQ(depthwise.impl.find("[bf16]"), std::string::npos) << depthwise.impl;
  Tensor a = RandomFloat({4, 8, 16}, 13), b = RandomFloat({4, 16, 8}, 14);
  Ran activations = RunIn(NodeSpec{"MatMul", "", 13, {}}, {&a, &b}, {}, true);
  EXPECT_EQ(activations.impl.find("[bf16]"), std::string::npos) << activations.impl;
  Tensor tw = RandomFloat({32, 8, 2, 2}, 15);
  Ran transposed = RunIn(NodeSpec{"ConvTranspose", "", 11, {{"strides", AttrInts({2, 2})}}}, {&x, &tw}, {1}, true);
  EXPECT_EQ(transposed.impl.find("[bf16]"), std::string::npos) << transposed.impl;
}

}  // namespace
}  // namespace gpuhive::testing
