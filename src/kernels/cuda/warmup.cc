// WarmUpLibraries (include/gpuhive/cuda_kernels.h): loads on a device what every model needs
// whatever it is, so the engine can measure it once as the device's library reserve. CUDA loads
// kernel images lazily (CUDA_MODULE_LOADING=LAZY is the default since 12.2), so a handle alone
// costs little: the first convolution and matrix product in each math mode load cuDNN's and
// cuBLASLt's kernels, and the first launch of gpuhive's own kernels loads theirs. The buffers used
// here are freed again; what stays is the libraries' state in the context.
#include <cuda_runtime_api.h>

#include <memory>
#include <vector>

#include "device/cuda/cuda_status.h"
#include "gpuhive/cuda_device.h"
#include "gpuhive/cuda_kernels.h"

namespace gpuhive::cuda {
namespace {

struct DeviceBuffers {
  std::vector<void*> ptrs;
  ~DeviceBuffers() {
    for (void* p : ptrs) cudaFree(p);
  }
  StatusOr<void*> Zeroed(size_t bytes) {
    void* p = nullptr;
    RETURN_IF_ERROR(GH_CUDA_STATUS(cudaMalloc(&p, bytes == 0 ? 1 : bytes)));
    ptrs.push_back(p);
    RETURN_IF_ERROR(GH_CUDA_STATUS(cudaMemset(p, 0, bytes == 0 ? 1 : bytes)));
    return p;
  }
};

// One small convolution (bias and ReLU fused) in `math`.
Status WarmUpConvolution(MathMode math, DeviceBuffers& mem, StreamView stream) {
  ConvDesc d;
  d.n = 1, d.c = 16, d.in_h = d.in_w = 16, d.k = 16, d.kernel_h = d.kernel_w = 3;
  d.pad_top = d.pad_left = d.pad_bottom = d.pad_right = 1;
  d.math = math;
  d.has_bias = true;
  d.epilogue = Epilogue::kRelu;
  ASSIGN_OR_RETURN(auto conv, ConvRunner::Create(d, size_t{64} << 20));
  const size_t elem = (math == MathMode::kFloat16 || math == MathMode::kBFloat16) ? 2 : 4;
  ASSIGN_OR_RETURN(void* x, mem.Zeroed(16 * 16 * 16 * elem));
  ASSIGN_OR_RETURN(void* w, mem.Zeroed(16 * 16 * 9 * elem));
  ASSIGN_OR_RETURN(void* b, mem.Zeroed(16 * elem));
  ASSIGN_OR_RETURN(void* y, mem.Zeroed(16 * conv->out_h() * conv->out_w() * elem));
  ASSIGN_OR_RETURN(void* ws, mem.Zeroed(conv->workspace_bytes()));
  return conv->Run(x, w, b, nullptr, y, ws, stream);
}

// One small matrix product with a bias epilogue in `math`.
Status WarmUpMatmul(MatmulRunner& runner, MathMode math, DeviceBuffers& mem, StreamView stream) {
  MatmulDesc d;
  d.m = d.n = d.k = 64;
  d.has_bias = true;
  d.math = math;
  ASSIGN_OR_RETURN(size_t ws_bytes, runner.WorkspaceBytes(d));
  const size_t elem = (math == MathMode::kFloat16 || math == MathMode::kBFloat16) ? 2 : 4;
  ASSIGN_OR_RETURN(void* a, mem.Zeroed(64 * 64 * elem));
  ASSIGN_OR_RETURN(void* b, mem.Zeroed(64 * 64 * elem));
  ASSIGN_OR_RETURN(void* bias, mem.Zeroed(64 * elem));
  ASSIGN_OR_RETURN(void* out, mem.Zeroed(64 * 64 * elem));
  ASSIGN_OR_RETURN(void* ws, mem.Zeroed(ws_bytes));
  return runner.Run(d, a, b, bias, out, ws, ws_bytes, stream);
}

}  // namespace

Status WarmUpLibraries(int device_index) {
  RETURN_IF_ERROR(GH_CUDA_STATUS(cudaSetDevice(device_index)));
  ASSIGN_OR_RETURN(std::unique_ptr<Stream> owned, Stream::Create({.device_index = device_index}));
  const StreamView stream = owned->view();
  DeviceBuffers mem;
  ASSIGN_OR_RETURN(auto matmul, MatmulRunner::Create(MatmulRunner::Options{}));
  // A math mode the device lacks (BF16 or TF32 before Ampere: kUnimplemented) loads nothing and
  // is skipped; models asking for it are refused or fall back when they compile.
  for (MathMode math : {MathMode::kFloat32, MathMode::kTF32, MathMode::kFloat16, MathMode::kBFloat16}) {
    for (Status st : {WarmUpConvolution(math, mem, stream).WithContext("a warm-up convolution"),
                      WarmUpMatmul(*matmul, math, mem, stream).WithContext("a warm-up matrix product")}) {
      if (!st.ok() && st.code() != StatusCode::kUnimplemented) return st;
    }
  }
  // gpuhive's own kernels: a conversion each way and a softmax load their images.
  ASSIGN_OR_RETURN(void* f, mem.Zeroed(256 * sizeof(float)));
  ASSIGN_OR_RETURN(void* g, mem.Zeroed(256 * sizeof(float)));
  ASSIGN_OR_RETURN(void* h, mem.Zeroed(256 * 2));
  RETURN_IF_ERROR(ConvertFromFloat(static_cast<const float*>(f), h, DataType::kFloat16, 256, stream));
  RETURN_IF_ERROR(ConvertToFloat(h, DataType::kFloat16, static_cast<float*>(f), 256, stream));
  RETURN_IF_ERROR(Softmax(static_cast<const float*>(f), static_cast<float*>(g), 16, 16, 1, false, stream));
  return owned->Synchronize();
}

}  // namespace gpuhive::cuda
