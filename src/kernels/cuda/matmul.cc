// cuBLASLt matmul (include/gpuhive/cuda_kernels.h, MatmulRunner). Row-major D = A * B is computed
// as the column-major product D^T = B^T * A^T, so every buffer is used as stored and the bias
// epilogue (one value per row of column-major D) is one value per output column n.
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <map>
#include <mutex>
#include <tuple>

#include "gpuhive/cuda_kernels.h"
#include "kernels/cuda/lib_status.h"

namespace gpuhive::cuda {

Status CheckMatmulDesc(const MatmulDesc& d) {
  if (d.m <= 0 || d.n <= 0 || d.k <= 0 || d.batch <= 0) {
    return InvalidArgument("matmul: m, n, k and batch must be positive (got {}, {}, {}, {})", d.m, d.n, d.k, d.batch);
  }
  if (d.batch > INT32_MAX) return InvalidArgument("matmul: batch {} too large", d.batch);
  if (d.stride_a < 0 || d.stride_b < 0 || d.stride_d < 0) return InvalidArgument("matmul: negative batch stride");
  if (d.batch > 1 && d.stride_d < d.m * d.n) return InvalidArgument("matmul: output batches overlap");
  return Status::OK();
}

namespace {

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, bool, bool, int64_t, int64_t, int64_t, bool, int, int, bool>;

Key MakeKey(const MatmulDesc& d) {
  return Key{d.m, d.n, d.k, d.batch, d.trans_a, d.trans_b, d.stride_a, d.stride_b, d.stride_d, d.has_bias,
             static_cast<int>(d.epilogue), static_cast<int>(d.math), d.beta != 0.f};
}

cudaDataType_t StorageType(MathMode m) {
  switch (m) {
    case MathMode::kFloat16: return CUDA_R_16F;
    case MathMode::kBFloat16: return CUDA_R_16BF;
    default: return CUDA_R_32F;
  }
}

cublasLtEpilogue_t EpilogueOf(const MatmulDesc& d) {
  switch (d.epilogue) {
    case Epilogue::kRelu: return d.has_bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
    case Epilogue::kGelu: return d.has_bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
    default: return d.has_bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  }
}

// RAII over the cuBLASLt descriptor types.
struct LayoutDeleter {
  void operator()(cublasLtMatrixLayoutOpaque_t* p) const { cublasLtMatrixLayoutDestroy(p); }
};
using Layout = std::unique_ptr<cublasLtMatrixLayoutOpaque_t, LayoutDeleter>;
struct DescDeleter {
  void operator()(cublasLtMatmulDescOpaque_t* p) const { cublasLtMatmulDescDestroy(p); }
};
using Desc = std::unique_ptr<cublasLtMatmulDescOpaque_t, DescDeleter>;
struct PrefDeleter {
  void operator()(cublasLtMatmulPreferenceOpaque_t* p) const { cublasLtMatmulPreferenceDestroy(p); }
};
using Pref = std::unique_ptr<cublasLtMatmulPreferenceOpaque_t, PrefDeleter>;

StatusOr<Layout> MakeLayout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t batch, int64_t stride) {
  cublasLtMatrixLayout_t raw = nullptr;
  GH_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutCreate(&raw, type, static_cast<uint64_t>(rows),
                                                       static_cast<uint64_t>(cols), rows));
  Layout layout(raw);
  if (batch > 1) {
    int32_t count = static_cast<int32_t>(batch);
    GH_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutSetAttribute(raw, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                                               sizeof(count)));
    GH_CUBLAS_RETURN_IF_ERROR(cublasLtMatrixLayoutSetAttribute(raw, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                               &stride, sizeof(stride)));
  }
  return layout;
}

// Everything that depends only on the shape: layouts, the op descriptor (minus the bias pointer)
// and the chosen algorithm.
struct Plan {
  Layout a, b, d;  // cuBLAS's A (our B), cuBLAS's B (our A), D (also C)
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
};

StatusOr<Desc> MakeDesc(const MatmulDesc& d, const void* bias) {
  cublasComputeType_t compute = d.math == MathMode::kTF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  cublasLtMatmulDesc_t raw = nullptr;
  GH_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescCreate(&raw, compute, CUDA_R_32F));
  Desc desc(raw);
  cublasOperation_t op_a = d.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLAS's A is our B
  cublasOperation_t op_b = d.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  GH_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(raw, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
  GH_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(raw, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));
  cublasLtEpilogue_t epi = EpilogueOf(d);
  GH_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(raw, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  if (d.has_bias) {
    cudaDataType_t bias_type = StorageType(d.math);
    GH_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(raw, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                                             sizeof(bias_type)));
    GH_CUBLAS_RETURN_IF_ERROR(
        cublasLtMatmulDescSetAttribute(raw, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
    // A bias shared by every batch entry.
    int64_t bias_stride = 0;
    GH_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulDescSetAttribute(raw, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE,
                                                             &bias_stride, sizeof(bias_stride)));
  }
  return desc;
}

class MatmulRunnerImpl final : public MatmulRunner {
 public:
  MatmulRunnerImpl(cublasLtHandle_t handle, Options options) : handle_(handle), options_(options) {}
  ~MatmulRunnerImpl() override {
    plans_.clear();
    cublasLtDestroy(handle_);
  }

  StatusOr<size_t> WorkspaceBytes(const MatmulDesc& desc) override {
    ASSIGN_OR_RETURN(const Plan* plan, GetPlan(desc));
    return plan->workspace;
  }

  Status Run(const MatmulDesc& d, const void* a, const void* b, const void* bias, void* out, void* workspace,
             size_t workspace_bytes, StreamView stream) override {
    ASSIGN_OR_RETURN(const Plan* plan, GetPlan(d));
    if (workspace_bytes < plan->workspace) {
      return InvalidArgument("matmul: workspace of {} bytes given, {} needed", workspace_bytes, plan->workspace);
    }
    if (d.has_bias && bias == nullptr) return InvalidArgument("matmul: has_bias set but no bias given");
    ASSIGN_OR_RETURN(Desc desc, MakeDesc(d, bias));
    float alpha = d.alpha, beta = d.beta;
    GH_CUBLAS_RETURN_IF_ERROR(cublasLtMatmul(handle_, desc.get(), &alpha, b, plan->a.get(), a, plan->b.get(), &beta,
                                             out, plan->d.get(), out, plan->d.get(), &plan->algo, workspace,
                                             workspace_bytes, static_cast<cudaStream_t>(stream.native)));
    return Status::OK();
  }

  size_t cached_algorithms() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return plans_.size();
  }

 private:
  StatusOr<const Plan*> GetPlan(const MatmulDesc& d) {
    RETURN_IF_ERROR(CheckMatmulDesc(d));
    Key key = MakeKey(d);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = plans_.find(key);
    if (it != plans_.end()) return it->second.get();
    // The heuristic is a host-side query (no device work), so holding the lock is short.
    auto plan = std::make_unique<Plan>();
    cudaDataType_t type = StorageType(d.math);
    // cuBLAS's A = our B: column-major rows x cols of the stored buffer.
    int64_t a_rows = d.trans_b ? d.k : d.n, a_cols = d.trans_b ? d.n : d.k;
    int64_t b_rows = d.trans_a ? d.m : d.k, b_cols = d.trans_a ? d.k : d.m;
    ASSIGN_OR_RETURN(plan->a, MakeLayout(type, a_rows, a_cols, d.batch, d.stride_b));
    ASSIGN_OR_RETURN(plan->b, MakeLayout(type, b_rows, b_cols, d.batch, d.stride_a));
    ASSIGN_OR_RETURN(plan->d, MakeLayout(type, d.n, d.m, d.batch, d.stride_d));
    // A placeholder bias pointer: the heuristic only looks at the epilogue, the pointer is set per run.
    ASSIGN_OR_RETURN(Desc desc, MakeDesc(d, nullptr));
    cublasLtMatmulPreference_t raw_pref = nullptr;
    GH_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceCreate(&raw_pref));
    Pref pref(raw_pref);
    uint64_t max_ws = options_.max_workspace_bytes;
    GH_CUBLAS_RETURN_IF_ERROR(cublasLtMatmulPreferenceSetAttribute(raw_pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                                   &max_ws, sizeof(max_ws)));
    // Several candidates: the first one cuBLASLt ranks highest that it accepts and that fits the
    // workspace. None at all (an epilogue no kernel implements for this shape) is kUnimplemented,
    // which the executor answers by running the epilogue as its own step.
    constexpr int kCandidates = 8;
    cublasLtMatmulHeuristicResult_t results[kCandidates] = {};
    int returned = 0;
    cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(handle_, desc.get(), plan->a.get(), plan->b.get(),
                                                       plan->d.get(), plan->d.get(), raw_pref, kCandidates, results,
                                                       &returned);
    const cublasLtMatmulHeuristicResult_t* chosen = nullptr;
    for (int i = 0; hs == CUBLAS_STATUS_SUCCESS && i < returned && chosen == nullptr; ++i) {
      if (results[i].state == CUBLAS_STATUS_SUCCESS && results[i].workspaceSize <= max_ws) chosen = &results[i];
    }
    if (chosen == nullptr) {
      return Unimplemented("cuBLASLt has no algorithm for matmul m={} n={} k={} batch={} epilogue={} (heuristic status {})",
                           d.m, d.n, d.k, d.batch, static_cast<int>(d.epilogue), static_cast<int>(hs));
    }
    plan->algo = chosen->algo;
    plan->workspace = chosen->workspaceSize;
    const Plan* p = plan.get();
    plans_.emplace(key, std::move(plan));
    return p;
  }

  cublasLtHandle_t handle_;
  Options options_;
  mutable std::mutex mu_;
  std::map<Key, std::unique_ptr<Plan>> plans_;  // guarded by mu_; entries never removed while alive
};

}  // namespace

StatusOr<std::unique_ptr<MatmulRunner>> MatmulRunner::Create(const Options& options) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    return Unavailable("cuBLASLt matmul needs a CUDA device and none is present");
  }
  cublasLtHandle_t handle = nullptr;
  GH_CUBLAS_RETURN_IF_ERROR(cublasLtCreate(&handle));
  return std::unique_ptr<MatmulRunner>(new MatmulRunnerImpl(handle, options));
}

}  // namespace gpuhive::cuda
