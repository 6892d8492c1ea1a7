// cuDNN convolution forward (include/gpuhive/cuda_kernels.h, ConvRunner) through cuDNN 9's
// descriptor API. The algorithm is chosen once per shape with cuDNN's heuristic
// (cudnnGetConvolutionForwardAlgorithm_v7, no trial runs). FP32/TF32 with a bias and ReLU run as
// one cudnnConvolutionBiasActivationForward call (which accepts ReLU with every algorithm); other
// combinations run convolution, then cudnnAddTensor for the residual and the bias, then
// cudnnActivationForward. A transposed convolution (ONNX ConvTranspose) is cuDNN's backward-data
// convolution of the forward convolution that maps y's shape to x's, followed by the same
// unfused bias, residual and activation.
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "gpuhive/cuda_kernels.h"
#include "kernels/cuda/lib_status.h"

namespace gpuhive::cuda {
namespace {

// One cuDNN handle per device, shared by every runner; calls that bind it to a stream and use it
// hold its lock, so concurrent runners on different streams stay correct.
struct SharedHandle {
  std::mutex mu;
  cudnnHandle_t handle = nullptr;
};

StatusOr<SharedHandle*> HandleForCurrentDevice() {
  static std::mutex registry_mu;
  static std::map<int, std::unique_ptr<SharedHandle>>* registry = new std::map<int, std::unique_ptr<SharedHandle>>();
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return Unavailable("cuDNN convolution needs a CUDA device: {}", cudaGetErrorString(err));
  }
  std::lock_guard<std::mutex> lock(registry_mu);
  auto& slot = (*registry)[device];
  if (slot == nullptr) {
    auto h = std::make_unique<SharedHandle>();
    GH_CUDNN_RETURN_IF_ERROR(cudnnCreate(&h->handle));
    slot = std::move(h);
  }
  return slot.get();
}

cudnnDataType_t CudnnType(MathMode m) {
  switch (m) {
    case MathMode::kFloat16: return CUDNN_DATA_HALF;
    case MathMode::kBFloat16: return CUDNN_DATA_BFLOAT16;
    default: return CUDNN_DATA_FLOAT;
  }
}

// The first of cuDNN's heuristic candidates (best first) that succeeded, fits `max_ws` bytes of
// workspace and, for exact FP32, uses FMA math (not TF32 tensor cores); null when none does.
template <typename Perf>
const Perf* FirstUsable(const Perf* perf, int returned, MathMode math, size_t max_ws) {
  for (int i = 0; i < returned; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > max_ws) continue;
    if (math == MathMode::kFloat32 && perf[i].mathType != CUDNN_FMA_MATH && perf[i].mathType != CUDNN_DEFAULT_MATH) {
      continue;
    }
    return &perf[i];
  }
  return nullptr;
}

class ConvRunnerImpl final : public ConvRunner {
 public:
  ~ConvRunnerImpl() override {
    if (act_ != nullptr) cudnnDestroyActivationDescriptor(act_);
    if (conv_ != nullptr) cudnnDestroyConvolutionDescriptor(conv_);
    if (w_ != nullptr) cudnnDestroyFilterDescriptor(w_);
    if (bias_ != nullptr) cudnnDestroyTensorDescriptor(bias_);
    if (y_ != nullptr) cudnnDestroyTensorDescriptor(y_);
    if (x_ != nullptr) cudnnDestroyTensorDescriptor(x_);
  }

  Status Init(const ConvDesc& d, size_t max_ws) {
    desc_ = d;
    ASSIGN_OR_RETURN(ConvOutput out, ConvOutputSize(d));
    out_h_ = out.h;
    out_w_ = out.w;
    ASSIGN_OR_RETURN(shared_, HandleForCurrentDevice());
    cudnnDataType_t type = CudnnType(d.math);
    GH_CUDNN_RETURN_IF_ERROR(cudnnCreateTensorDescriptor(&x_));
    GH_CUDNN_RETURN_IF_ERROR(cudnnCreateTensorDescriptor(&y_));
    GH_CUDNN_RETURN_IF_ERROR(cudnnCreateTensorDescriptor(&bias_));
    GH_CUDNN_RETURN_IF_ERROR(cudnnCreateFilterDescriptor(&w_));
    GH_CUDNN_RETURN_IF_ERROR(cudnnCreateConvolutionDescriptor(&conv_));
    GH_CUDNN_RETURN_IF_ERROR(cudnnCreateActivationDescriptor(&act_));
    GH_CUDNN_RETURN_IF_ERROR(cudnnSetTensor4dDescriptor(x_, CUDNN_TENSOR_NCHW, type, I(d.n), I(d.c), I(d.in_h),
                                                        I(d.in_w)));
    // The filter of the forward convolution cuDNN sees: x -> y, or for a transposed one y -> x.
    const int64_t fwd_out = d.transposed ? d.c : d.k, fwd_in = d.transposed ? d.k : d.c;
    GH_CUDNN_RETURN_IF_ERROR(cudnnSetFilter4dDescriptor(w_, type, CUDNN_TENSOR_NCHW, I(fwd_out), I(fwd_in / d.groups),
                                                        I(d.kernel_h), I(d.kernel_w)));
    GH_CUDNN_RETURN_IF_ERROR(cudnnSetConvolution2dDescriptor(conv_, I(d.pad_top), I(d.pad_left), I(d.stride_h),
                                                             I(d.stride_w), I(d.dilation_h), I(d.dilation_w),
                                                             CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    GH_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionGroupCount(conv_, I(d.groups)));
    // CUDNN_DEFAULT_MATH would let FP32 use TF32 on Ampere and later: exact FP32 asks for FMA.
    cudnnMathType_t math = d.math == MathMode::kFloat32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
    GH_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionMathType(conv_, math));
    GH_CUDNN_RETURN_IF_ERROR(cudnnSetTensor4dDescriptor(y_, CUDNN_TENSOR_NCHW, type, I(d.n), I(d.k), I(out_h_),
                                                        I(out_w_)));
    // cuDNN's own view of the shapes must agree with ours: the forward convolution of x (or, when
    // transposed, of y) has the other tensor's shape.
    int on = 0, oc = 0, oh = 0, ow = 0;
    GH_CUDNN_RETURN_IF_ERROR(cudnnGetConvolution2dForwardOutputDim(conv_, d.transposed ? y_ : x_, w_, &on, &oc, &oh, &ow));
    const int64_t want_h = d.transposed ? d.in_h : out_h_, want_w = d.transposed ? d.in_w : out_w_;
    if (oh != want_h || ow != want_w || oc != fwd_out) {
      return Internal("conv: cuDNN computes {}x{}x{} where {}x{}x{} was planned", oc, oh, ow, fwd_out, want_h, want_w);
    }
    GH_CUDNN_RETURN_IF_ERROR(cudnnSetTensor4dDescriptor(bias_, CUDNN_TENSOR_NCHW, type, 1, I(d.k), 1, 1));
    GH_CUDNN_RETURN_IF_ERROR(cudnnSetActivationDescriptor(act_, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
    if (d.transposed) return ChooseBackwardData(d, max_ws);

    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int returned = 0;
    {
      std::lock_guard<std::mutex> lock(shared_->mu);
      GH_CUDNN_RETURN_IF_ERROR(cudnnGetConvolutionForwardAlgorithm_v7(
          shared_->handle, x_, w_, conv_, y_, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, perf));
    }
    const cudnnConvolutionFwdAlgoPerf_t* chosen = FirstUsable(perf, returned, d.math, max_ws);
    if (chosen == nullptr) {
      return Unimplemented("cuDNN has no forward algorithm for conv N={} C={} H={} W={} K={} {}x{} groups={} within {} "
                           "bytes of workspace",
                           d.n, d.c, d.in_h, d.in_w, d.k, d.kernel_h, d.kernel_w, d.groups, max_ws);
    }
    algo_ = chosen->algo;
    workspace_ = chosen->memory;
    fused_ = d.has_bias && d.epilogue == Epilogue::kRelu &&
             (d.math == MathMode::kFloat32 || d.math == MathMode::kTF32);
    return Status::OK();
  }

  int64_t out_h() const override { return out_h_; }
  int64_t out_w() const override { return out_w_; }
  size_t workspace_bytes() const override { return workspace_; }
  bool fused() const override { return fused_; }

  Status Run(const void* x, const void* w, const void* bias, const void* z, void* y, void* workspace,
             StreamView stream) const override {
    if (desc_.has_bias && bias == nullptr) return InvalidArgument("conv: has_bias set but no bias given");
    if (desc_.has_sum && z == nullptr) return InvalidArgument("conv: has_sum set but no residual given");
    std::lock_guard<std::mutex> lock(shared_->mu);
    cudnnHandle_t h = shared_->handle;
    GH_CUDNN_RETURN_IF_ERROR(cudnnSetStream(h, static_cast<cudaStream_t>(stream.native)));
    const float one = 1.f, zero = 0.f;
    if (desc_.transposed) {
      GH_CUDNN_RETURN_IF_ERROR(cudnnConvolutionBackwardData(h, &one, w_, w, x_, x, conv_, bwd_algo_, workspace,
                                                            workspace_, &zero, y_, y));
      return Epilogues(h, z, bias, y);
    }
    if (fused_) {
      const float alpha2 = desc_.has_sum ? 1.f : 0.f;
      // Without a residual z aliases y; zero it so stale NaNs in y cannot leak through 0 * z.
      if (!desc_.has_sum) {
        size_t bytes = static_cast<size_t>(desc_.n * desc_.k * out_h_ * out_w_) * (desc_.math == MathMode::kFloat16 ||
                                                                                   desc_.math == MathMode::kBFloat16
                                                                                   ? 2 : 4);
        cudaError_t err = cudaMemsetAsync(y, 0, bytes, static_cast<cudaStream_t>(stream.native));
        if (err != cudaSuccess) {
          return Internal("cudaMemsetAsync(y) before the fused convolution failed: {}", cudaGetErrorString(err));
        }
      }
      GH_CUDNN_RETURN_IF_ERROR(cudnnConvolutionBiasActivationForward(
          h, &one, x_, x, w_, w, conv_, algo_, workspace, workspace_, &alpha2, y_, desc_.has_sum ? z : y, bias_, bias,
          act_, y_, y));
      return Status::OK();
    }
    GH_CUDNN_RETURN_IF_ERROR(cudnnConvolutionForward(h, &one, x_, x, w_, w, conv_, algo_, workspace, workspace_,
                                                     &zero, y_, y));
    return Epilogues(h, z, bias, y);
  }

 private:
  static int I(int64_t v) { return static_cast<int>(v); }

  // The unfused tail: residual, bias, then ReLU, each in place on y. Caller holds the handle lock.
  Status Epilogues(cudnnHandle_t h, const void* z, const void* bias, void* y) const {
    const float one = 1.f, zero = 0.f;
    if (desc_.has_sum) GH_CUDNN_RETURN_IF_ERROR(cudnnAddTensor(h, &one, y_, z, &one, y_, y));
    if (desc_.has_bias) GH_CUDNN_RETURN_IF_ERROR(cudnnAddTensor(h, &one, bias_, bias, &one, y_, y));
    if (desc_.epilogue == Epilogue::kRelu) {
      GH_CUDNN_RETURN_IF_ERROR(cudnnActivationForward(h, act_, &one, y_, y, &zero, y_, y));
    }
    return Status::OK();
  }

  Status ChooseBackwardData(const ConvDesc& d, size_t max_ws) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int returned = 0;
    {
      std::lock_guard<std::mutex> lock(shared_->mu);
      GH_CUDNN_RETURN_IF_ERROR(cudnnGetConvolutionBackwardDataAlgorithm_v7(
          shared_->handle, w_, x_, conv_, y_, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned, perf));
    }
    if (const cudnnConvolutionBwdDataAlgoPerf_t* chosen = FirstUsable(perf, returned, d.math, max_ws)) {
      bwd_algo_ = chosen->algo;
      workspace_ = chosen->memory;
      return Status::OK();
    }
    return Unimplemented("cuDNN has no transposed-convolution algorithm for N={} C={} H={} W={} K={} {}x{} groups={} "
                         "within {} bytes of workspace",
                         d.n, d.c, d.in_h, d.in_w, d.k, d.kernel_h, d.kernel_w, d.groups, max_ws);
  }

  ConvDesc desc_;
  SharedHandle* shared_ = nullptr;
  cudnnTensorDescriptor_t x_ = nullptr, y_ = nullptr, bias_ = nullptr;
  cudnnFilterDescriptor_t w_ = nullptr;
  cudnnConvolutionDescriptor_t conv_ = nullptr;
  cudnnActivationDescriptor_t act_ = nullptr;
  cudnnConvolutionFwdAlgo_t algo_ = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  cudnnConvolutionBwdDataAlgo_t bwd_algo_ = CUDNN_CONVOLUTION_BWD_DATA_ALGO_0;
  size_t workspace_ = 0;
  int64_t out_h_ = 0, out_w_ = 0;
  bool fused_ = false;
};

}  // namespace

StatusOr<ConvOutput> ConvOutputSize(const ConvDesc& d) {
  if (d.n <= 0 || d.c <= 0 || d.in_h <= 0 || d.in_w <= 0 || d.k <= 0 || d.kernel_h <= 0 || d.kernel_w <= 0 ||
      d.groups <= 0 || d.stride_h <= 0 || d.stride_w <= 0 || d.dilation_h <= 0 || d.dilation_w <= 0) {
    return InvalidArgument("conv: sizes, strides, dilations and groups must be positive");
  }
  if (d.c % d.groups != 0 || d.k % d.groups != 0) {
    return InvalidArgument("conv: channels {} and filters {} must be multiples of groups {}", d.c, d.k, d.groups);
  }
  if (d.pad_top < 0 || d.pad_left < 0 || d.pad_bottom < 0 || d.pad_right < 0) {
    return InvalidArgument("conv: negative padding");
  }
  if (d.pad_top != d.pad_bottom || d.pad_left != d.pad_right) {
    return Unimplemented("conv: asymmetric padding ({},{},{},{}) is not supported by the cuDNN path", d.pad_top,
                         d.pad_left, d.pad_bottom, d.pad_right);
  }
  const int64_t kIntMax = 0x7fffffff;
  for (int64_t v : {d.n, d.c, d.in_h, d.in_w, d.k, d.n * d.c * d.in_h * d.in_w}) {
    if (v > kIntMax) return Unimplemented("conv: extent {} exceeds cuDNN's 32-bit descriptor range", v);
  }
  if (d.epilogue == Epilogue::kGelu) {
    return InvalidArgument("conv: cuDNN fuses only ReLU; apply GELU with ElementwiseChain");
  }
  const int64_t eff_h = (d.kernel_h - 1) * d.dilation_h + 1, eff_w = (d.kernel_w - 1) * d.dilation_w + 1;
  ConvOutput out;
  if (d.transposed) {
    if (d.out_pad_h < 0 || d.out_pad_w < 0 || d.out_pad_h >= std::max(d.stride_h, d.dilation_h) ||
        d.out_pad_w >= std::max(d.stride_w, d.dilation_w)) {
      return InvalidArgument("conv: output padding {}x{} must be below the stride or dilation", d.out_pad_h,
                             d.out_pad_w);
    }
    out.h = (d.in_h - 1) * d.stride_h - 2 * d.pad_top + eff_h + d.out_pad_h;
    out.w = (d.in_w - 1) * d.stride_w - 2 * d.pad_left + eff_w + d.out_pad_w;
  } else {
    if (d.out_pad_h != 0 || d.out_pad_w != 0) return InvalidArgument("conv: output padding needs a transposed conv");
    out.h = (d.in_h + 2 * d.pad_top - eff_h) / d.stride_h + 1;
    out.w = (d.in_w + 2 * d.pad_left - eff_w) / d.stride_w + 1;
    if (d.in_h + 2 * d.pad_top < eff_h || d.in_w + 2 * d.pad_left < eff_w) out.h = out.w = 0;
  }
  if (out.h <= 0 || out.w <= 0) return InvalidArgument("conv: the output would be empty ({}x{})", out.h, out.w);
  if (d.n * d.k * out.h * out.w > kIntMax) {
    return Unimplemented("conv: output extent {} exceeds cuDNN's 32-bit descriptor range", d.n * d.k * out.h * out.w);
  }
  return out;
}

StatusOr<std::unique_ptr<ConvRunner>> ConvRunner::Create(const ConvDesc& desc, size_t max_workspace_bytes) {
  auto runner = std::make_unique<ConvRunnerImpl>();
  RETURN_IF_ERROR(runner->Init(desc, max_workspace_bytes));
  return std::unique_ptr<ConvRunner>(std::move(runner));
}

}  // namespace gpuhive::cuda
