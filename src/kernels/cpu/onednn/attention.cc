// gpuhive.Attention (FuseAttention in graph/passes_attention.cc): y = softmax(q k^T * scale
// [+ mask]) v per (batch, head), with q [B, S, H, D], k [B, Sk, H, D], v [B, Sk, H, Dv] and
// y [B, S, H, Dv] (the layouts the Q/K/V projections produce and the output projection reads).
// Each (batch, head) is two oneDNN sgemm calls that read q, k, v and write y in place through
// leading dimensions of H * D, with the S x Sk scores in a per-task buffer: no transposes and no
// [B, H, S, Sk] tensor. Tasks run in parallel; the sgemm calls inside are single-threaded.
#include <oneapi/dnnl/dnnl.h>

#include <atomic>
#include <vector>

#include "kernels/cpu/loops/common.h"
#include "kernels/cpu/loops/softmax_row.h"
#include "kernels/cpu/onednn/common.h"
#include "kernels/cpu/onednn/kernels.h"

namespace gpuhive::cpu::onednn {
namespace {

class AttentionKernel final : public Kernel {
 public:
  explicit AttentionKernel(float scale) : scale_(scale) {}

  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& node = ctx.node();
    if (ctx.num_inputs() < 3 || ctx.num_inputs() > 4) return InvalidArgument("{}: needs q, k, v [, mask]", node.Describe());
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      if (!ctx.has_input(i)) return InvalidArgument("{}: input {} is missing", node.Describe(), i);
      if (ctx.input_dtype(i) != DataType::kFloat32) {
        return Unimplemented("{}: only float32 is supported (input {} is {})", node.Describe(), i,
                             DataTypeName(ctx.input_dtype(i)));
      }
    }
    const Shape &q = ctx.input_shape(0), &k = ctx.input_shape(1), &v = ctx.input_shape(2);
    if (q.size() != 4 || k.size() != 4 || v.size() != 4) {
      return InvalidArgument("{}: q, k, v must be [batch, seq, heads, head_dim], got {}, {}, {}", node.Describe(),
                             ShapeToString(q), ShapeToString(k), ShapeToString(v));
    }
    if (k[0] != q[0] || v[0] != q[0] || k[2] != q[2] || v[2] != q[2] || k[3] != q[3] || v[1] != k[1]) {
      return InvalidArgument("{}: q {}, k {}, v {} do not agree", node.Describe(), ShapeToString(q), ShapeToString(k),
                             ShapeToString(v));
    }
    b_ = q[0], s_ = q[1], h_ = q[2], d_ = q[3], sk_ = k[1], dv_ = v[3];
    if (ctx.num_inputs() == 4) {
      // The mask broadcasts (numpy rules) to the scores [B, H, S, Sk]: strides per dim, 0 where broadcast.
      const Shape& m = ctx.input_shape(3);
      const Shape scores = {b_, h_, s_, sk_};
      if (m.size() > 4) return InvalidArgument("{}: mask {} has rank > 4", node.Describe(), ShapeToString(m));
      mask_strides_.assign(4, 0);
      int64_t stride = 1;
      for (size_t j = 0; j < m.size(); ++j) {
        const size_t mi = m.size() - 1 - j, si = 3 - j;
        if (m[mi] != 1 && m[mi] != scores[si]) {
          return InvalidArgument("{}: mask {} does not broadcast to the scores {}", node.Describe(), ShapeToString(m),
                                 ShapeToString(scores));
        }
        mask_strides_[si] = m[mi] == 1 ? 0 : stride;
        stride *= m[mi];
      }
      has_mask_ = true;
    }
    ctx.SetOutput(0, DataType::kFloat32, Shape{b_, s_, h_, dv_});
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    const float* q = ctx.input(0).as<const float>();
    const float* k = ctx.input(1).as<const float>();
    const float* v = ctx.input(2).as<const float>();
    const float* mask = has_mask_ ? ctx.input(3).as<const float>() : nullptr;
    float* y = ctx.output(0).as<float>();
    const int64_t ldq = h_ * d_, ldv = h_ * dv_;
    std::atomic<bool> ok{true};
    loops::ParallelFor(b_ * h_, ctx.num_threads(), s_ * sk_ * (d_ + dv_), [&](int64_t begin, int64_t end) {
      std::vector<float> scores(static_cast<size_t>(s_ * sk_));
      for (int64_t t = begin; t < end; ++t) {
        const int64_t b = t / h_, h = t % h_;
        const float* qb = q + (b * s_ * h_ + h) * d_;
        const float* kb = k + (b * sk_ * h_ + h) * d_;
        const float* vb = v + (b * sk_ * h_ + h) * dv_;
        float* yb = y + (b * s_ * h_ + h) * dv_;
        if (dnnl_sgemm('N', 'T', s_, sk_, d_, scale_, qb, ldq, kb, ldq, 0.f, scores.data(), sk_) != dnnl_success) {
          ok.store(false, std::memory_order_relaxed);
          return;
        }
        for (int64_t i = 0; i < s_; ++i) {
          float* row = scores.data() + i * sk_;
          if (mask != nullptr) {
            const float* mrow = mask + b * mask_strides_[0] + h * mask_strides_[1] + i * mask_strides_[2];
            const int64_t js = mask_strides_[3];
            for (int64_t j = 0; j < sk_; ++j) row[j] += mrow[j * js];
          }
          if (!loops::SoftmaxRowFloat(row, row, sk_)) loops::SoftmaxRowGeneral(row, row, sk_);
        }
        if (dnnl_sgemm('N', 'N', s_, dv_, sk_, 1.f, scores.data(), sk_, vb, ldv, 0.f, yb, ldv) != dnnl_success) {
          ok.store(false, std::memory_order_relaxed);
          return;
        }
      }
    });
    if (!ok.load()) return Internal("{}: oneDNN sgemm failed", "gpuhive.Attention");
    return Status::OK();
  }

 private:
  float scale_;
  int64_t b_ = 0, s_ = 0, h_ = 0, d_ = 0, sk_ = 0, dv_ = 0;
  bool has_mask_ = false;
  std::vector<int64_t> mask_strides_;
};

}  // namespace

StatusOr<std::unique_ptr<Kernel>> MakeAttention(const ir::Node& node) {
  ASSIGN_OR_RETURN(float scale, node.GetFloat("scale", 1.f));
  return std::unique_ptr<Kernel>(new AttentionKernel(scale));
}

}  // namespace gpuhive::cpu::onednn
