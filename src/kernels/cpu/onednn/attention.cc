// gpuhive.Attention (FuseAttention in graph/passes_attention.cc): y = softmax(q k^T * scale
// [+ mask]) v per (batch, head), with q [B, S, H, D], k [B, Sk, H, D], v [B, Sk, H, Dv] and
// y [B, S, H, Dv] (the layouts the Q/K/V projections produce and the output projection reads).
// Each (batch, head) is two oneDNN matmul primitives, prepared once, that read q and v and write y
// in place through row strides of H * D, with k^T and the S x Sk scores in a per-thread slice of
// the workspace: no [B, H, S, Sk] tensor and no allocation while running. (The
// primitives replaced dnnl_sgemm, whose packing buffers are malloc'ed per call: mapped and
// faulted in afresh each time above the process's mmap threshold, 28 of BERT-base's 92 ms.)
// Tasks run in parallel; each primitive runs on its task's thread.
#include <omp.h>

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
    return Guard(node.Describe(), [&] { return BuildPrimitives(ctx); });
  }

  std::string_view implementation() const override { return implementation_; }

  Status Run(RunContext& ctx) const override {
    const float* q = ctx.input(0).as<const float>();
    const float* k = ctx.input(1).as<const float>();
    const float* v = ctx.input(2).as<const float>();
    const float* mask = has_mask_ ? ctx.input(3).as<const float>() : nullptr;
    float* y = ctx.output(0).as<float>();
    std::atomic<bool> ok{true};
    const int threads = std::min(ctx.num_threads(), threads_);
    loops::ParallelFor(b_ * h_, threads, s_ * sk_ * (d_ + dv_), [&](int64_t begin, int64_t end) {
      const int t_index = omp_in_parallel() ? omp_get_thread_num() : 0;
      char* slice = static_cast<char*>(ctx.workspace()) + static_cast<size_t>(t_index) * slice_bytes_;
      float* scores = reinterpret_cast<float*>(slice);
      float* kt = reinterpret_cast<float*>(slice + scores_bytes_);
      void* scratch = slice + scores_bytes_ + kt_bytes_;
      try {
        dnnl::stream& st = ThreadStream();
        for (int64_t t = begin; t < end; ++t) {
          const int64_t b = t / h_, h = t % h_;
          const float* qb = q + (b * s_ * h_ + h) * d_;
          const float* kb = k + (b * sk_ * h_ + h) * d_;
          const float* vb = v + (b * sk_ * h_ + h) * dv_;
          float* yb = y + (b * s_ * h_ + h) * dv_;
          // k^T [D, Sk], dense: oneDNN's gemm reads a transposed strided k 30x slower (0.39 vs
          // 0.013 ms per head at S = 128, D = 64) than a plain one, and the copy costs ~5 us.
          for (int64_t j0 = 0; j0 < sk_; j0 += 16) {
            const int64_t j1 = std::min(sk_, j0 + 16);
            for (int64_t dd = 0; dd < d_; ++dd)
              for (int64_t j = j0; j < j1; ++j) kt[dd * sk_ + j] = kb[j * h_ * d_ + dd];
          }
          memory mq(q_md_, Engine(), const_cast<float*>(qb)), mk(kt_md_, Engine(), kt);
          memory ms(scores_md_, Engine(), scores), mv(v_md_, Engine(), const_cast<float*>(vb)), my(y_md_, Engine(), yb);
          ArgMap qk{{DNNL_ARG_SRC, mq}, {DNNL_ARG_WEIGHTS, mk}, {DNNL_ARG_DST, ms}};
          if (qk_scratch_md_.get_size() > 0) {
            qk.insert({DNNL_ARG_SCRATCHPAD, memory(qk_scratch_md_, Engine(), scratch)});
          }
          qk_.execute(st, qk);
          for (int64_t i = 0; i < s_; ++i) {
            float* row = scores + i * sk_;
            const float* mrow =
                mask == nullptr ? nullptr : mask + b * mask_strides_[0] + h * mask_strides_[1] + i * mask_strides_[2];
            const int64_t js = mask == nullptr ? 0 : mask_strides_[3];
            if (!loops::ScaledMaskedSoftmaxRowFloat(row, sk_, scale_, mrow, js)) {
              loops::SoftmaxRowGeneral(row, row, sk_);
            }
          }
          ArgMap pv{{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mv}, {DNNL_ARG_DST, my}};
          if (pv_scratch_md_.get_size() > 0) {
            pv.insert({DNNL_ARG_SCRATCHPAD, memory(pv_scratch_md_, Engine(), scratch)});
          }
          pv_.execute(st, pv);
        }
        st.wait();
      } catch (const dnnl::error&) {
        ok.store(false, std::memory_order_relaxed);
      }
    });
    if (!ok.load()) return Internal("{}: oneDNN matmul failed", "gpuhive.Attention");
    return Status::OK();
  }

 private:
  // One (batch, head): scores [S, Sk] = q [S, D] (row stride H*D) x k^T [D, Sk] (k's rows,
  // transposed into the thread's slice first), then y [S, Dv] (row stride H*Dv) = scores x
  // v [Sk, Dv] (row stride H*Dv).
  // Each thread gets a workspace slice for its k^T, its scores and the primitives' scratchpad.
  Status BuildPrimitives(PrepareContext& ctx) {
    const memory::data_type f32 = memory::data_type::f32;
    q_md_ = memory::desc({s_, d_}, f32, Dims{h_ * d_, 1});
    kt_md_ = memory::desc({d_, sk_}, f32, Dims{sk_, 1});
    scores_md_ = memory::desc({s_, sk_}, f32, Dims{sk_, 1});
    v_md_ = memory::desc({sk_, dv_}, f32, Dims{h_ * dv_, 1});
    y_md_ = memory::desc({s_, dv_}, f32, Dims{h_ * dv_, 1});
    dnnl::matmul::primitive_desc qk(dnnl::matmul::desc(q_md_, kt_md_, scores_md_), ScratchAttr(), Engine());
    dnnl::matmul::primitive_desc pv(dnnl::matmul::desc(scores_md_, v_md_, y_md_), ScratchAttr(), Engine());
    qk_ = dnnl::matmul(qk);
    pv_ = dnnl::matmul(pv);
    qk_scratch_md_ = qk.scratchpad_desc();
    pv_scratch_md_ = pv.scratchpad_desc();
    implementation_ = std::string(qk.impl_info_str()) + " / softmax:" + std::string(loops::SoftmaxRowImplementation()) +
                      " / " + pv.impl_info_str();
    auto round = [](size_t n) { return (n + 63) / 64 * 64; };
    scores_bytes_ = round(static_cast<size_t>(s_ * sk_) * sizeof(float));
    kt_bytes_ = round(static_cast<size_t>(d_ * sk_) * sizeof(float));
    slice_bytes_ = scores_bytes_ + kt_bytes_ + round(std::max(qk_scratch_md_.get_size(), pv_scratch_md_.get_size()));
    threads_ = std::max(1, ctx.options().num_threads);
    ctx.RequestWorkspace(slice_bytes_ * static_cast<size_t>(threads_));
    return Status::OK();
  }

  float scale_;
  int64_t b_ = 0, s_ = 0, h_ = 0, d_ = 0, sk_ = 0, dv_ = 0;
  bool has_mask_ = false;
  std::vector<int64_t> mask_strides_;
  memory::desc q_md_, kt_md_, scores_md_, v_md_, y_md_, qk_scratch_md_, pv_scratch_md_;
  dnnl::matmul qk_, pv_;
  std::string implementation_;
  size_t scores_bytes_ = 0, kt_bytes_ = 0, slice_bytes_ = 0;
  int threads_ = 1;
};

}  // namespace

StatusOr<std::unique_ptr<Kernel>> MakeAttention(const ir::Node& node) {
  ASSIGN_OR_RETURN(float scale, node.GetFloat("scale", 1.f));
  return std::unique_ptr<Kernel>(new AttentionKernel(scale));
}

}  // namespace gpuhive::cpu::onednn
