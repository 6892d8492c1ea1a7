#include "kernels/cpu/onednn/rnn_onednn.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace gpuhive::cpu::onednn {
namespace {

// oneDNN orders an LSTM's gates i, f, c~, o and its peepholes i, f, o; ONNX packs gates i, o, f, c
// and peepholes i, o, f. Entry k is the ONNX slot of oneDNN's k-th gate.
constexpr int64_t kOnnxGate[4] = {0, 2, 3, 1};
constexpr int64_t kOnnxPeephole[3] = {0, 2, 1};

// ONNX W or R of one direction ([4H, in], rows grouped by gate) as oneDNN's plain ldigo [in, 4, H].
void ToLdigo(const float* w, int64_t in, int64_t hidden, float* out) {
  for (int64_t g = 0; g < 4; ++g) {
    const float* src = w + kOnnxGate[g] * hidden * in;
    for (int64_t o = 0; o < hidden; ++o) {
      for (int64_t i = 0; i < in; ++i) out[(i * 4 + g) * hidden + o] = src[o * in + i];
    }
  }
}

// ONNX B of one direction ([Wb, Rb], 8H) as oneDNN's single bias (ldgo [4, H]): Wb + Rb.
void ToBias(const float* b, int64_t hidden, float* out) {
  for (int64_t g = 0; g < 4; ++g) {
    const float* wb = b + kOnnxGate[g] * hidden;
    const float* rb = wb + 4 * hidden;
    for (int64_t o = 0; o < hidden; ++o) out[g * hidden + o] = wb[o] + rb[o];
  }
}

// ONNX P of one direction (3H) as oneDNN's ldgo [3, H].
void ToPeephole(const float* p, int64_t hidden, float* out) {
  for (int64_t g = 0; g < 3; ++g) {
    const float* src = p + kOnnxPeephole[g] * hidden;
    std::copy(src, src + hidden, out + g * hidden);
  }
}

}  // namespace

StatusOr<std::unique_ptr<LstmPrimitive>> LstmPrimitive::Create(const PrepareContext& ctx, const Options& options,
                                                               WorkspacePlan& ws) {
  std::unique_ptr<LstmPrimitive> p(new LstmPrimitive(options));
  RETURN_IF_ERROR(Guard(ctx.node().Describe(), [&] { return p->Init(ctx, ws); }));
  return p;
}

LstmPrimitive::SliceMds LstmPrimitive::MdsFor(int64_t rows) const {
  using dt = memory::data_type;
  const int64_t T = o_.seq, B = o_.batch, I = o_.input, H = o_.hidden, D = o_.dirs;
  SliceMds m;
  // Views of `rows` rows with the whole batch's strides. X is [seq, batch, I] (layout 0) or
  // [batch, seq, I]; Y is [seq, dirs, batch, H] or [batch, seq, dirs, H]; the states are
  // [dirs, batch, H] or [batch, dirs, H] (oneDNN's view: [1, 1, rows, H]).
  m.src = memory::desc({T, rows, I}, dt::f32, o_.layout == 0 ? Dims{B * I, I, 1} : Dims{I, T * I, 1});
  const memory::desc y_view({T, rows, H}, dt::f32, o_.layout == 0 ? Dims{D * B * H, H, 1} : Dims{D * H, T * D * H, 1});
  const memory::desc y_ws({T, rows, H}, dt::f32, Dims{B * H, H, 1});  // Y in the workspace
  m.y = o_.want_y ? y_view : y_ws;
  const memory::desc state({1, 1, rows, H}, dt::f32,
                           o_.layout == 0 ? Dims{D * B * H, B * H, H, 1} : Dims{B * D * H, H, D * H, 1});
  const memory::desc dense_state({1, 1, rows, H}, dt::f32, Dims{B * H, B * H, H, 1}), none;
  const bool has_state_in = o_.has_h0 || o_.has_c0, has_state_out = o_.want_yh || o_.want_yc;
  m.h0 = o_.has_h0 ? state : has_state_in ? dense_state : none;
  m.c0 = o_.has_c0 ? state : has_state_in ? dense_state : none;
  m.yh = o_.want_yh ? state : has_state_out ? dense_state : none;
  m.yc = o_.want_yc ? state : has_state_out ? dense_state : none;
  return m;
}

StatusOr<bool> LstmPrimitive::BuildPrimitives(int64_t slices, bool avoid_ref, size_t* scratch) {
  slices_ = slices;
  slice_rows_ = (o_.batch + slices - 1) / slices;
  slice_mds_ = {MdsFor(slice_rows_)};
  if (o_.batch % slice_rows_ != 0) slice_mds_.push_back(MdsFor(o_.batch % slice_rows_));
  dirs_.clear();
  *scratch = 0;
  const memory::desc wl_any({1, 1, o_.input, 4, o_.hidden}, memory::data_type::f32, Tag::any);
  const memory::desc wi_any({1, 1, o_.hidden, 4, o_.hidden}, memory::data_type::f32, Tag::any);
  for (int64_t d = 0; d < o_.dirs; ++d) {
    const bool reverse = o_.reverse_only || d == 1;
    const auto direction = reverse ? dnnl::rnn_direction::unidirectional_right2left
                                   : dnnl::rnn_direction::unidirectional_left2right;
    const auto kind = dnnl::prop_kind::forward_inference;
    Direction dir;
    dir.index = d;
    for (const SliceMds& m : slice_mds_) {
      const auto desc = o_.has_p ? dnnl::lstm_forward::desc(kind, direction, m.src, m.h0, m.c0, wl_any, wi_any,
                                                            peephole_md_, bias_md_, m.y, m.yh, m.yc)
                                 : dnnl::lstm_forward::desc(kind, direction, m.src, m.h0, m.c0, wl_any, wi_any,
                                                            bias_md_, m.y, m.yh, m.yc);
      // Below AVX-512, oneDNN 2.6 has no JIT LSTM and picks "ref": its gemm-based RNN (the matrix
      // work on its JIT sgemm), which still beats gpuhive's per-step loops: the audio model capped
      // at AVX2, 2 threads, 2.62 vs 6.84 ms at batch 8 and 0.54 vs 1.03 ms at batch 1. So it is
      // taken for the whole batch, but a split is not worth it there.
      dnnl::lstm_forward::primitive_desc pd(desc, ScratchAttr(), Engine());
      if (dirs_.empty() && dir.prims.empty()) {
        implementation_ = pd.impl_info_str();
        wl_md_ = pd.weights_layer_desc();
        wi_md_ = pd.weights_iter_desc();
        if (avoid_ref && implementation_.rfind("ref", 0) == 0) return false;
      } else if (pd.weights_layer_desc() != wl_md_ || pd.weights_iter_desc() != wi_md_ ||
                 pd.impl_info_str() != implementation_) {
        // One set of packed weights serves every direction and slice.
        return false;
      }
      *scratch = std::max(*scratch, pd.scratchpad_desc().get_size());
      dir.prims.emplace_back(pd);
    }
    dirs_.push_back(std::move(dir));
  }
  return true;
}

Status LstmPrimitive::Init(const PrepareContext& ctx, WorkspacePlan& ws) {
  using dt = memory::data_type;
  const int64_t T = o_.seq, B = o_.batch, I = o_.input, H = o_.hidden;
  if (T <= 0 || B <= 0 || I <= 0 || H <= 0) return Unimplemented("empty LSTM");
  wl_user_md_ = memory::desc({1, 1, I, 4, H}, dt::f32, Tag::ldigo);
  wi_user_md_ = memory::desc({1, 1, H, 4, H}, dt::f32, Tag::ldigo);
  bias_md_ = memory::desc({1, 1, 4, H}, dt::f32, Tag::ldgo);
  peephole_md_ = memory::desc({1, 1, 3, H}, dt::f32, Tag::ldgo);

  // oneDNN splits the RNN's work when the primitive descriptor is created, for the thread count of
  // that moment, and runs that many threads whatever the count at execution: create it in the
  // team size Run will use. Small steps run on one thread; then, with several threads and rows,
  // the rows are split into one slice per thread.
  const int budget = std::max(1, ctx.options().num_threads);
  threads_ = B * 4 * H * H >= kRnnParallelStepMacs ? budget : 1;
  ThreadScope threads(threads_);
  size_t scratch = 0;
  const int64_t split = threads_ == 1 ? std::min<int64_t>(budget, B) : 1;
  bool built = false;
  if (split > 1) {
    ASSIGN_OR_RETURN(built, BuildPrimitives(split, /*avoid_ref=*/true, &scratch));
  }
  if (!built) {
    ASSIGN_OR_RETURN(built, BuildPrimitives(1, /*avoid_ref=*/false, &scratch));
    if (!built) return Unimplemented("the two directions want different weight formats");
  }
  if (slices_ > 1) implementation_ += fmt::format(" [rows split {} ways]", slices_);
  if (scratch > 0) scratch_md_ = memory::desc({static_cast<int64_t>(scratch)}, dt::u8, Tag::a);
  scratch_bytes_ = (scratch + 63) / 64 * 64;  // each slice's scratchpad on its own cache lines
  ws_scratch_ = ws.Add(scratch_bytes_ * static_cast<size_t>(slices_));
  const size_t dense_state = sizeof(float) * static_cast<size_t>(B * H);
  if (!o_.want_y) ws_y_ = ws.Add(sizeof(float) * static_cast<size_t>(T * B * H));
  if (o_.has_h0 != o_.has_c0) ws_state_in_ = ws.Add(dense_state);
  if (o_.want_yh != o_.want_yc) ws_state_out_ = ws.Add(dense_state);

  // Weights: reordered once here when constant, otherwise on every run through the workspace.
  const Tensor* w = ctx.input_value(1);
  const Tensor* r = ctx.input_value(2);
  const Tensor* b = o_.has_b ? ctx.input_value(3) : nullptr;
  const Tensor* p = o_.has_p ? ctx.input_value(7) : nullptr;
  weights_at_run_ = w == nullptr || r == nullptr;
  bias_at_run_ = o_.has_b && b == nullptr;
  peephole_at_run_ = o_.has_p && p == nullptr;
  std::vector<float> stage;
  for (Direction& dir : dirs_) {
    const int64_t d = dir.index;
    if (!weights_at_run_) {
      stage.resize(static_cast<size_t>(I * 4 * H));
      ToLdigo(w->as<float>() + d * 4 * H * I, I, H, stage.data());
      ASSIGN_OR_RETURN(dir.weights_layer, ReorderToPersistent(ctx, wl_user_md_, stage.data(), wl_md_));
      stage.resize(static_cast<size_t>(H * 4 * H));
      ToLdigo(r->as<float>() + d * 4 * H * H, H, H, stage.data());
      ASSIGN_OR_RETURN(dir.weights_iter, ReorderToPersistent(ctx, wi_user_md_, stage.data(), wi_md_));
    }
    if (!bias_at_run_) {
      // oneDNN 2.6 rejects an LSTM without a bias md: without B it gets zeros.
      stage.assign(static_cast<size_t>(4 * H), 0.f);
      if (o_.has_b) ToBias(b->as<float>() + d * 8 * H, H, stage.data());
      ASSIGN_OR_RETURN(dir.bias, ReorderToPersistent(ctx, bias_md_, stage.data(), bias_md_));
    }
    if (o_.has_p && !peephole_at_run_) {
      stage.resize(static_cast<size_t>(3 * H));
      ToPeephole(p->as<float>() + d * 3 * H, H, stage.data());
      ASSIGN_OR_RETURN(dir.peephole, ReorderToPersistent(ctx, peephole_md_, stage.data(), peephole_md_));
    }
  }
  if (weights_at_run_) {
    ws_stage_ = ws.Add(sizeof(float) * static_cast<size_t>(std::max(I, H) * 4 * H));
    ws_wl_ = ws.Add(wl_md_.get_size());
    ws_wi_ = ws.Add(wi_md_.get_size());
    wl_reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), wl_user_md_, Engine(), wl_md_));
    wi_reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), wi_user_md_, Engine(), wi_md_));
  }
  if (bias_at_run_) ws_bias_ = ws.Add(bias_md_.get_size());
  if (peephole_at_run_) ws_peephole_ = ws.Add(peephole_md_.get_size());
  return Status::OK();
}

Status LstmPrimitive::Run(const RunContext& ctx) const {
  ThreadScope threads(threads_);
  return Guard("LSTM", [&]() -> Status {
    dnnl::stream& s = ThreadStream();
    auto in = [&](size_t i) { return ctx.input(i).as<float>(); };
    const int64_t I = o_.input, H = o_.hidden;
    if (o_.has_h0 != o_.has_c0) {
      std::memset(WsPtr(ctx, ws_state_in_), 0, sizeof(float) * static_cast<size_t>(o_.batch * H));
    }
    for (const Direction& dir : dirs_) {
      const int64_t d = dir.index;
      // What every slice shares: weights, bias, peepholes.
      ArgMap shared;
      if (weights_at_run_) {
        float* stage = static_cast<float*>(WsPtr(ctx, ws_stage_));
        memory wl(wl_md_, Engine(), WsPtr(ctx, ws_wl_)), wi(wi_md_, Engine(), WsPtr(ctx, ws_wi_));
        memory staged_l(wl_user_md_, Engine(), stage), staged_i(wi_user_md_, Engine(), stage);
        // Waiting for each reorder lets one staging buffer serve both.
        ToLdigo(in(1) + d * 4 * H * I, I, H, stage);
        wl_reorder_.execute(s, staged_l, wl);
        s.wait();
        ToLdigo(in(2) + d * 4 * H * H, H, H, stage);
        wi_reorder_.execute(s, staged_i, wi);
        s.wait();
        shared.insert({DNNL_ARG_WEIGHTS_LAYER, wl});
        shared.insert({DNNL_ARG_WEIGHTS_ITER, wi});
      } else {
        shared.insert({DNNL_ARG_WEIGHTS_LAYER, memory(wl_md_, Engine(), dir.weights_layer.data())});
        shared.insert({DNNL_ARG_WEIGHTS_ITER, memory(wi_md_, Engine(), dir.weights_iter.data())});
      }
      void* bias = dir.bias.data();
      if (bias_at_run_) {
        bias = WsPtr(ctx, ws_bias_);
        ToBias(in(3) + d * 8 * H, H, static_cast<float*>(bias));
      }
      shared.insert({DNNL_ARG_BIAS, memory(bias_md_, Engine(), bias)});
      if (o_.has_p) {
        void* peephole = dir.peephole.data();
        if (peephole_at_run_) {
          peephole = WsPtr(ctx, ws_peephole_);
          ToPeephole(in(7) + d * 3 * H, H, static_cast<float*>(peephole));
        }
        shared.insert({DNNL_ARG_WEIGHTS_PEEPHOLE, memory(peephole_md_, Engine(), peephole)});
      }
      if (slices_ == 1) {
        RETURN_IF_ERROR(RunSlice(ctx, dir, 0, shared));
        s.wait();
        continue;
      }
      // One slice of rows per thread, each single-threaded on its own stream and scratchpad.
      std::vector<Status> done(static_cast<size_t>(slices_));
#pragma omp parallel for num_threads(static_cast<int>(slices_)) schedule(static, 1)
      for (int64_t slice = 0; slice < slices_; ++slice) {
        ThreadScope one(1);
        done[static_cast<size_t>(slice)] = Guard("LSTM rows", [&]() -> Status {
          RETURN_IF_ERROR(RunSlice(ctx, dir, slice, shared));
          ThreadStream().wait();
          return Status::OK();
        });
      }
      for (const Status& st : done) RETURN_IF_ERROR(st);
    }
    return Status::OK();
  });
}

Status LstmPrimitive::RunSlice(const RunContext& ctx, const Direction& dir, int64_t slice, const ArgMap& shared) const {
  const int64_t d = dir.index, b = SliceStart(slice), H = o_.hidden;
  const SliceMds& m = slice_mds_[SliceSize(slice)];
  auto in = [&](size_t i) { return ctx.input(i).as<float>(); };
  auto out = [&](size_t i) { return ctx.output(i).as<float>(); };
  ArgMap args = shared;
  args.insert({DNNL_ARG_SRC_LAYER, memory(m.src, Engine(), in(0) + SrcOffset(b))});
  // A state argument: the node's tensor at this direction's and slice's offset, or the workspace
  // partner at the slice's rows.
  auto state = [&](int arg, const memory::desc& md, bool present, size_t tensor, bool input, size_t ws) {
    if (md.is_zero()) return;
    float* base = !present ? static_cast<float*>(WsPtr(ctx, ws)) + b * H
                  : input  ? in(tensor) + StateOffset(d, b)
                           : out(tensor) + StateOffset(d, b);
    args.insert({arg, memory(md, Engine(), base)});
  };
  state(DNNL_ARG_SRC_ITER, m.h0, o_.has_h0, 5, true, ws_state_in_);
  state(DNNL_ARG_SRC_ITER_C, m.c0, o_.has_c0, 6, true, ws_state_in_);
  state(DNNL_ARG_DST_ITER, m.yh, o_.want_yh, 1, false, ws_state_out_);
  state(DNNL_ARG_DST_ITER_C, m.yc, o_.want_yc, 2, false, ws_state_out_);
  float* y = o_.want_y ? out(0) + YOffset(d, b) : static_cast<float*>(WsPtr(ctx, ws_y_)) + b * H;
  args.insert({DNNL_ARG_DST_LAYER, memory(m.y, Engine(), y)});
  if (scratch_md_.get_size() > 0) {
    char* scratch = static_cast<char*>(WsPtr(ctx, ws_scratch_)) + static_cast<size_t>(slice) * scratch_bytes_;
    args.insert({DNNL_ARG_SCRATCHPAD, memory(scratch_md_, Engine(), scratch)});
  }
  dir.prims[SliceSize(slice)].execute(ThreadStream(), args);
  return Status::OK();
}

}  // namespace gpuhive::cpu::onednn
