// Error contracts of the CUDA kernel API that hold without a device: malformed shapes, operand
// counts, permutations, ranges and types are refused with a clear Status before anything is
// launched, and the library-backed runners report a missing device as kUnavailable.
#include <gtest/gtest.h>

#include "gpuhive/cuda_kernels.h"
#include "gpuhive/device_discovery.h"

namespace gpuhive {
namespace {

// Never dereferenced: every call below fails validation before a launch.
float* const kFake = reinterpret_cast<float*>(uintptr_t{0x1000});

void ExpectCode(const Status& st, StatusCode code, const char* needle) {
  EXPECT_EQ(st.code(), code) << st.ToString();
  EXPECT_NE(st.message().find(needle), std::string::npos) << st.ToString();
}

TEST(CudaKernelContracts, ElementwiseChainRejectsBadOperands) {
  std::vector<PostOp> add = {PostOp{PostOp::Kind::kAdd}};
  cuda::BroadcastOperand x{kFake, {2, 3}};
  ExpectCode(cuda::ElementwiseChain(add, x, {}, kFake, {2, 3}, {}), StatusCode::kInvalidArgument, "1 binary ops but 0");
  ExpectCode(cuda::ElementwiseChain(add, x, {{kFake, {4}}}, kFake, {2, 3}, {}), StatusCode::kInvalidArgument,
             "does not broadcast");
  ExpectCode(cuda::ElementwiseChain({}, {kFake, {2, 2, 3}}, {}, kFake, {2, 3}, {}), StatusCode::kInvalidArgument,
             "higher rank");
  std::vector<PostOp> many(cuda::kMaxChainOps + 1, PostOp{PostOp::Kind::kRelu});
  ExpectCode(cuda::ElementwiseChain(many, x, {}, kFake, {2, 3}, {}), StatusCode::kUnimplemented, "exceeds");
  ExpectCode(cuda::ElementwiseChain({}, x, {}, kFake, Shape(cuda::kMaxDims + 1, 1), {}), StatusCode::kUnimplemented,
             "rank");
  ExpectCode(cuda::ElementwiseChain({}, {nullptr, {2, 3}}, {}, kFake, {2, 3}, {}), StatusCode::kInvalidArgument, "null");
}

TEST(CudaKernelContracts, LayoutKernelsRejectBadArguments) {
  ExpectCode(cuda::Transpose(kFake, kFake, 4, {2, 3}, {0, 0}, {}), StatusCode::kInvalidArgument, "not a permutation");
  ExpectCode(cuda::Transpose(kFake, kFake, 4, {2, 3}, {0}, {}), StatusCode::kInvalidArgument, "perm has 1");
  ExpectCode(cuda::Transpose(kFake, kFake, 3, {2, 3}, {1, 0}, {}), StatusCode::kUnimplemented, "element size 3");
  ExpectCode(cuda::StridedSlice(kFake, kFake, 4, {4}, {2}, {1}, {3}, {}), StatusCode::kInvalidArgument, "outside");
  ExpectCode(cuda::StridedSlice(kFake, kFake, 4, {4}, {3}, {-1}, {5}, {}), StatusCode::kInvalidArgument, "outside");
  ExpectCode(cuda::BroadcastTo(kFake, kFake, 4, {3}, {2, 4}, {}), StatusCode::kInvalidArgument, "does not broadcast");
  ExpectCode(cuda::PadConstant(kFake, kFake, 4, {2, 2}, {1}, {4, 4}, 0, {}), StatusCode::kInvalidArgument, "ranks");
  ExpectCode(cuda::Gather(kFake, kFake, true, 2, kFake, 5, 1, 3, 1, nullptr, {}), StatusCode::kUnimplemented,
             "element size 5");
  ExpectCode(cuda::Reduce(cuda::ReduceKind::kMean, kFake, kFake, 2, 0, 1, {}), StatusCode::kInvalidArgument, "empty");
  ExpectCode(cuda::LayerNorm(kFake, nullptr, nullptr, kFake, 2, 8, 1e-5f, {}), StatusCode::kInvalidArgument, "scale");
  cuda::Pool2dParams pool;
  pool.kernel_h = 0;
  ExpectCode(cuda::Pool2d(kFake, kFake, pool, {}), StatusCode::kInvalidArgument, "positive");
  cuda::ResizeParams resize;
  ExpectCode(cuda::Resize(kFake, kFake, resize, {}), StatusCode::kInvalidArgument, "bad sizes");
}

TEST(CudaKernelContracts, TypeConversionsNameTheUnsupportedType) {
  ExpectCode(cuda::Cast(kFake, DataType::kString, kFake, DataType::kFloat32, 4, {}), StatusCode::kUnimplemented, "string");
  ExpectCode(cuda::Cast(kFake, DataType::kFloat32, kFake, DataType::kComplex64, 4, {}), StatusCode::kUnimplemented,
             "complex64");
  ExpectCode(cuda::ConvertFromFloat(kFake, kFake, DataType::kInt32, 4, {}), StatusCode::kInvalidArgument, "int32");
  ExpectCode(cuda::ConvertToFloat(kFake, DataType::kFloat64, kFake, 4, {}), StatusCode::kInvalidArgument, "double");
}

TEST(CudaKernelContracts, ConvolutionShapesAreCheckedBeforeTheDevice) {
  cuda::ConvDesc d;
  d.n = 1, d.c = 3, d.in_h = 8, d.in_w = 8, d.k = 4, d.kernel_h = 3, d.kernel_w = 3, d.groups = 2;
  ExpectCode(cuda::ConvRunner::Create(d).status(), StatusCode::kInvalidArgument, "multiples of groups");
  d.groups = 1;
  d.pad_top = 1;
  ExpectCode(cuda::ConvRunner::Create(d).status(), StatusCode::kUnimplemented, "asymmetric padding");
  d.pad_bottom = 1;
  d.epilogue = cuda::Epilogue::kGelu;
  ExpectCode(cuda::ConvRunner::Create(d).status(), StatusCode::kInvalidArgument, "ReLU");
  d.stride_h = 0;
  ExpectCode(cuda::ConvRunner::Create(d).status(), StatusCode::kInvalidArgument, "positive");
}

// The output size ConvRunner::Create and the plan preview share, forward and transposed (ONNX's
// formulas), and what makes a transposed descriptor malformed.
TEST(CudaKernelContracts, ConvolutionOutputSizes) {
  cuda::ConvDesc d;
  d.n = 1, d.c = 3, d.in_h = 9, d.in_w = 8, d.k = 4, d.kernel_h = 3, d.kernel_w = 2;
  d.stride_h = 2, d.stride_w = 2, d.pad_top = d.pad_bottom = 1;
  StatusOr<cuda::ConvOutput> out = cuda::ConvOutputSize(d);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->h, 5);  // (9 + 2 - 3) / 2 + 1
  EXPECT_EQ(out->w, 4);  // (8 - 2) / 2 + 1
  d.transposed = true;
  d.c = 4, d.k = 6, d.groups = 2, d.out_pad_h = 1;
  out = cuda::ConvOutputSize(d);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->h, 18);  // (9 - 1) * 2 - 2 + 3 + 1
  EXPECT_EQ(out->w, 16);  // (8 - 1) * 2 + 2
  d.out_pad_w = 2;
  ExpectCode(cuda::ConvOutputSize(d).status(), StatusCode::kInvalidArgument, "below the stride");
  d.out_pad_w = 0;
  d.transposed = false;
  d.out_pad_h = 1;
  ExpectCode(cuda::ConvOutputSize(d).status(), StatusCode::kInvalidArgument, "needs a transposed");
  d.out_pad_h = 0;
  d.in_h = 1, d.pad_top = d.pad_bottom = 0;
  ExpectCode(cuda::ConvOutputSize(d).status(), StatusCode::kInvalidArgument, "empty");
}

TEST(CudaKernelContracts, LstmCellRejectsBadArguments) {
  ExpectCode(cuda::LstmCell(kFake, kFake, nullptr, nullptr, kFake, kFake, 2, 0, 0.f, {}), StatusCode::kInvalidArgument,
             "bad extent");
  ExpectCode(cuda::LstmCell(nullptr, kFake, nullptr, nullptr, kFake, kFake, 2, 4, 0.f, {}), StatusCode::kInvalidArgument,
             "required");
  ExpectCode(cuda::LstmCell(kFake, nullptr, nullptr, nullptr, kFake, kFake, 2, 4, -1.f, {}), StatusCode::kInvalidArgument,
             "clip");
}

TEST(CudaKernelContracts, GruStepRejectsBadArguments) {
  ExpectCode(cuda::GruCell(kFake, kFake, 8, kFake, 4, nullptr, kFake, kFake, 2, 0, true, 0.f, {}),
             StatusCode::kInvalidArgument, "bad extent");
  ExpectCode(cuda::GruCell(nullptr, nullptr, 0, nullptr, 0, nullptr, nullptr, kFake, 2, 4, true, 0.f, {}),
             StatusCode::kInvalidArgument, "required");
  ExpectCode(cuda::GruCell(kFake, kFake, 7, kFake, 4, nullptr, kFake, kFake, 2, 4, true, 0.f, {}),
             StatusCode::kInvalidArgument, "stride");
  ExpectCode(cuda::GruCell(kFake, kFake, 8, kFake, 3, nullptr, kFake, kFake, 2, 4, false, 0.f, {}),
             StatusCode::kInvalidArgument, "stride");
  ExpectCode(cuda::GruCell(kFake, nullptr, 0, nullptr, 0, nullptr, nullptr, kFake, 2, 4, true, -1.f, {}),
             StatusCode::kInvalidArgument, "clip");
  ExpectCode(cuda::GruReset(kFake, nullptr, 8, nullptr, kFake, kFake, 2, 4, 0.f, {}), StatusCode::kInvalidArgument,
             "required");
  ExpectCode(cuda::GruReset(kFake, kFake, 6, nullptr, kFake, kFake, 2, 4, 0.f, {}), StatusCode::kInvalidArgument,
             "stride");
}

TEST(CudaKernelContracts, MatmulDescriptorsAreCheckedBeforeTheDevice) {
  cuda::MatmulDesc d;
  d.m = 2, d.n = 3, d.k = 4;
  EXPECT_TRUE(cuda::CheckMatmulDesc(d).ok());
  d.k = 0;
  ExpectCode(cuda::CheckMatmulDesc(d), StatusCode::kInvalidArgument, "positive");
  d.k = 4, d.batch = 2, d.stride_d = 5;
  ExpectCode(cuda::CheckMatmulDesc(d), StatusCode::kInvalidArgument, "overlap");
}

TEST(CudaKernelContracts, PointwiseOpsCheckTypesAndShapes) {
  using cuda::PointwiseOp;
  using cuda::TypedOperand;
  const TypedOperand f{kFake, DataType::kFloat32, {2, 3}}, i64{kFake, DataType::kInt64, {2, 3}};
  const TypedOperand b{kFake, DataType::kBool, {2, 3}}, f16{kFake, DataType::kFloat16, {2, 3}};
  ExpectCode(cuda::Pointwise(PointwiseOp::kErf, {i64}, kFake, {2, 3}, {}), StatusCode::kUnimplemented, "expected float");
  ExpectCode(cuda::Pointwise(PointwiseOp::kPow, {f}, kFake, {2, 3}, {}), StatusCode::kInvalidArgument, "1 operand(s), expected 2");
  ExpectCode(cuda::Pointwise(PointwiseOp::kEqual, {f, i64}, kFake, {2, 3}, {}), StatusCode::kInvalidArgument, "expected float");
  ExpectCode(cuda::Pointwise(PointwiseOp::kLess, {f16, f16}, kFake, {2, 3}, {}), StatusCode::kUnimplemented, "float16");
  ExpectCode(cuda::Pointwise(PointwiseOp::kWhere, {f, f, f}, kFake, {2, 3}, {}), StatusCode::kInvalidArgument, "expected bool");
  ExpectCode(cuda::Pointwise(PointwiseOp::kWhere, {b, f, i64}, kFake, {2, 3}, {}), StatusCode::kInvalidArgument, "operand 2");
  ExpectCode(cuda::Pointwise(PointwiseOp::kGreater, {f, {kFake, DataType::kFloat32, {4}}}, kFake, {2, 3}, {}),
             StatusCode::kInvalidArgument, "does not broadcast");
  ExpectCode(cuda::Pointwise(PointwiseOp::kNot, {{nullptr, DataType::kBool, {2, 3}}}, kFake, {2, 3}, {}),
             StatusCode::kInvalidArgument, "null");
  // The same checks without a launch, for planning: null data is fine there.
  EXPECT_TRUE(cuda::CheckPointwise(PointwiseOp::kNot, {{nullptr, DataType::kBool, {2, 3}}}, {2, 3}).ok());
  ExpectCode(cuda::CheckPointwise(PointwiseOp::kPow, {f, i64}, {2, 3}), StatusCode::kUnimplemented, "operand 1");
}

TEST(CudaKernelContracts, LibraryRunnersNeedADevice) {
  if (!DiscoverDevices().gpus.empty()) GTEST_SKIP() << "a GPU is present";
  ExpectCode(cuda::MatmulRunner::Create({}).status(), StatusCode::kUnavailable, "device");
  cuda::ConvDesc d;
  d.n = 1, d.c = 3, d.in_h = 8, d.in_w = 8, d.k = 4, d.kernel_h = 3, d.kernel_w = 3;
  ExpectCode(cuda::ConvRunner::Create(d).status(), StatusCode::kUnavailable, "device");
}

}  // namespace
}  // namespace gpuhive
