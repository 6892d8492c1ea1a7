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

memory::desc LstmPrimitive::YMd() const {
  const int64_t D = o_.dirs, B = o_.batch, H = o_.hidden;
  // Y is [seq, dirs, batch, H] (layout 0) or [batch, seq, dirs, H]; one direction's slice is a
  // strided [seq, batch, H] view starting at YOffset(d).
  Dims strides = o_.layout == 0 ? Dims{D * B * H, H, 1} : Dims{D * H, o_.seq * D * H, 1};
  return memory::desc({o_.seq, B, H}, memory::data_type::f32, strides);
}

memory::desc LstmPrimitive::StateMd() const {
  const int64_t D = o_.dirs, B = o_.batch, H = o_.hidden;
  // States are [dirs, batch, H] (layout 0) or [batch, dirs, H]; oneDNN's view is [1, 1, batch, H].
  Dims strides = o_.layout == 0 ? Dims{D * B * H, B * H, H, 1} : Dims{B * D * H, H, D * H, 1};
  return memory::desc({1, 1, B, H}, memory::data_type::f32, strides);
}

Status LstmPrimitive::Init(const PrepareContext& ctx, WorkspacePlan& ws) {
  using dt = memory::data_type;
  const int64_t T = o_.seq, B = o_.batch, I = o_.input, H = o_.hidden;
  if (T <= 0 || B <= 0 || I <= 0 || H <= 0) return Unimplemented("empty LSTM");
  src_md_ = memory::desc({T, B, I}, dt::f32, o_.layout == 0 ? Tag::tnc : Tag::ntc);
  y_md_ = o_.want_y ? YMd() : memory::desc({T, B, H}, dt::f32, Tag::tnc);
  state_md_ = StateMd();
  const memory::desc none, dense_state({1, 1, B, H}, dt::f32, Tag::ldnc);
  const bool has_state_in = o_.has_h0 || o_.has_c0, has_state_out = o_.want_yh || o_.want_yc;
  h0_md_ = o_.has_h0 ? state_md_ : has_state_in ? dense_state : none;
  c0_md_ = o_.has_c0 ? state_md_ : has_state_in ? dense_state : none;
  yh_md_ = o_.want_yh ? state_md_ : has_state_out ? dense_state : none;
  yc_md_ = o_.want_yc ? state_md_ : has_state_out ? dense_state : none;
  wl_user_md_ = memory::desc({1, 1, I, 4, H}, dt::f32, Tag::ldigo);
  wi_user_md_ = memory::desc({1, 1, H, 4, H}, dt::f32, Tag::ldigo);
  bias_md_ = memory::desc({1, 1, 4, H}, dt::f32, Tag::ldgo);
  peephole_md_ = memory::desc({1, 1, 3, H}, dt::f32, Tag::ldgo);
  const memory::desc wl_any({1, 1, I, 4, H}, dt::f32, Tag::any), wi_any({1, 1, H, 4, H}, dt::f32, Tag::any);

  // oneDNN splits the RNN's work when the primitive descriptor is created, for the thread count of
  // that moment, and runs that many threads whatever the count at execution: create it in the
  // team size Run will use.
  threads_ = B * 4 * H * H >= kRnnParallelStepMacs ? std::max(1, ctx.options().num_threads) : 1;
  ThreadScope threads(threads_);
  size_t scratch = 0;
  for (int64_t d = 0; d < o_.dirs; ++d) {
    const bool reverse = o_.reverse_only || d == 1;
    const auto direction = reverse ? dnnl::rnn_direction::unidirectional_right2left
                                   : dnnl::rnn_direction::unidirectional_left2right;
    const auto kind = dnnl::prop_kind::forward_inference;
    const auto desc = o_.has_p ? dnnl::lstm_forward::desc(kind, direction, src_md_, h0_md_, c0_md_, wl_any, wi_any,
                                                          peephole_md_, bias_md_, y_md_, yh_md_, yc_md_)
                               : dnnl::lstm_forward::desc(kind, direction, src_md_, h0_md_, c0_md_, wl_any, wi_any,
                                                          bias_md_, y_md_, yh_md_, yc_md_);
    // Below AVX-512, oneDNN 2.6 has no JIT LSTM and picks "ref": its gemm-based RNN (the matrix
    // work on its JIT sgemm), which still beats gpuhive's per-step loops: the audio model capped at
    // AVX2, 2 threads, 2.62 vs 6.84 ms at batch 8 and 0.54 vs 1.03 ms at batch 1. So it is taken.
    dnnl::lstm_forward::primitive_desc pd(desc, ScratchAttr(), Engine());
    if (d == 0) {
      implementation_ = pd.impl_info_str();
      wl_md_ = pd.weights_layer_desc();
      wi_md_ = pd.weights_iter_desc();
    } else if (pd.weights_layer_desc() != wl_md_ || pd.weights_iter_desc() != wi_md_) {
      return Unimplemented("the two directions want different weight formats");
    }
    scratch = std::max(scratch, pd.scratchpad_desc().get_size());
    Direction dir;
    dir.index = d;
    dir.prim = dnnl::lstm_forward(pd);
    dirs_.push_back(std::move(dir));
  }
  if (scratch > 0) scratch_md_ = memory::desc({static_cast<int64_t>(scratch)}, dt::u8, Tag::a);
  ws_scratch_ = ws.Add(scratch);
  if (!o_.want_y) ws_y_ = ws.Add(y_md_.get_size());
  if (o_.has_h0 != o_.has_c0) ws_state_in_ = ws.Add(dense_state.get_size());
  if (o_.want_yh != o_.want_yc) ws_state_out_ = ws.Add(dense_state.get_size());

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
    for (const Direction& dir : dirs_) RETURN_IF_ERROR(RunDirection(ctx, dir));
    ThreadStream().wait();
    return Status::OK();
  });
}

Status LstmPrimitive::RunDirection(const RunContext& ctx, const Direction& dir) const {
  const int64_t d = dir.index, I = o_.input, H = o_.hidden;
  dnnl::stream& s = ThreadStream();
  auto in = [&](size_t i) { return ctx.input(i).as<float>(); };
  auto out = [&](size_t i) { return ctx.output(i).as<float>(); };
  ArgMap args{{DNNL_ARG_SRC_LAYER, memory(src_md_, Engine(), in(0))}};
  if (o_.has_h0 != o_.has_c0) {
    std::memset(WsPtr(ctx, ws_state_in_), 0, sizeof(float) * static_cast<size_t>(o_.batch * H));
  }
  // A state argument: the node's tensor at this direction's offset, or the workspace partner.
  auto state = [&](int arg, const memory::desc& md, bool present, size_t tensor, bool input, size_t ws) {
    if (md.is_zero()) return;
    float* base = !present ? static_cast<float*>(WsPtr(ctx, ws)) : input ? in(tensor) + StateOffset(d)
                                                                          : out(tensor) + StateOffset(d);
    args.insert({arg, memory(md, Engine(), base)});
  };
  state(DNNL_ARG_SRC_ITER, h0_md_, o_.has_h0, 5, true, ws_state_in_);
  state(DNNL_ARG_SRC_ITER_C, c0_md_, o_.has_c0, 6, true, ws_state_in_);
  state(DNNL_ARG_DST_ITER, yh_md_, o_.want_yh, 1, false, ws_state_out_);
  state(DNNL_ARG_DST_ITER_C, yc_md_, o_.want_yc, 2, false, ws_state_out_);

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
    args.insert({DNNL_ARG_WEIGHTS_LAYER, wl});
    args.insert({DNNL_ARG_WEIGHTS_ITER, wi});
  } else {
    args.insert({DNNL_ARG_WEIGHTS_LAYER, memory(wl_md_, Engine(), dir.weights_layer.data())});
    args.insert({DNNL_ARG_WEIGHTS_ITER, memory(wi_md_, Engine(), dir.weights_iter.data())});
  }
  void* bias = dir.bias.data();
  if (bias_at_run_) {
    bias = WsPtr(ctx, ws_bias_);
    ToBias(in(3) + d * 8 * H, H, static_cast<float*>(bias));
  }
  args.insert({DNNL_ARG_BIAS, memory(bias_md_, Engine(), bias)});
  if (o_.has_p) {
    void* peephole = dir.peephole.data();
    if (peephole_at_run_) {
      peephole = WsPtr(ctx, ws_peephole_);
      ToPeephole(in(7) + d * 3 * H, H, static_cast<float*>(peephole));
    }
    args.insert({DNNL_ARG_WEIGHTS_PEEPHOLE, memory(peephole_md_, Engine(), peephole)});
  }
  float* y = o_.want_y ? out(0) + YOffset(d) : static_cast<float*>(WsPtr(ctx, ws_y_));
  args.insert({DNNL_ARG_DST_LAYER, memory(y_md_, Engine(), y)});
  if (scratch_md_.get_size() > 0) {
    args.insert({DNNL_ARG_SCRATCHPAD, memory(scratch_md_, Engine(), WsPtr(ctx, ws_scratch_))});
  }
  dir.prim.execute(s, args);
  return Status::OK();
}

}  // namespace gpuhive::cpu::onednn
