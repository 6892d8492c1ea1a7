// LSTM, GRU and RNN (ONNX semantics, every attribute): the input projection of all time steps is one
// oneDNN sgemm, each step's recurrent projection another, and the gates are plain loops. This keeps
// ONNX gate orders, activations, clip, peepholes, sequence_lens and both layouts exact without
// oneDNN's more restricted RNN primitive. LSTMs that the primitive computes exactly (the common
// case, see rnn_onednn.h) run on it instead, several times faster: its gate math is JIT-compiled
// and vectorized where these loops call libm per element. Those of small steps with constant weights
// run on gpuhive's own AVX-512 LSTM instead where the CPU has it (loops/lstm_avx512.h: the
// primitive keeps a batch-1 sequence on one thread).
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "gpuhive/logging.h"
#include "kernels/cpu/onednn/common.h"
#include "kernels/cpu/onednn/kernels.h"
#include "kernels/cpu/loops/lstm_avx512.h"
#include "kernels/cpu/onednn/rnn_onednn.h"

namespace gpuhive::cpu::onednn {
namespace {

enum class CellKind { kLstm, kGru, kRnn };

struct Activation {
  enum Kind { kSigmoid, kTanh, kRelu, kAffine, kLeakyRelu, kThresholdedRelu, kScaledTanh, kHardSigmoid, kElu,
              kSoftsign, kSoftplus } kind = kSigmoid;
  float alpha = 0.f, beta = 0.f;

  float operator()(float x) const {
    switch (kind) {
      case kSigmoid: return 1.f / (1.f + std::exp(-x));
      case kTanh: return std::tanh(x);
      case kRelu: return x > 0 ? x : 0.f;
      case kAffine: return alpha * x + beta;
      case kLeakyRelu: return x >= 0 ? x : alpha * x;
      case kThresholdedRelu: return x > alpha ? x : 0.f;
      case kScaledTanh: return alpha * std::tanh(beta * x);
      case kHardSigmoid: return std::min(1.f, std::max(0.f, alpha * x + beta));
      case kElu: return x >= 0 ? x : alpha * (std::exp(x) - 1.f);
      case kSoftsign: return x / (1.f + std::fabs(x));
      case kSoftplus: return std::log1p(std::exp(x));
    }
    return x;
  }
};

// Parses "activations" with activation_alpha/beta consumed in order by the functions that take them.
StatusOr<std::vector<Activation>> ParseActivations(const ir::Node& node, const std::vector<std::string>& defaults,
                                                   int dirs) {
  ASSIGN_OR_RETURN(auto names, node.GetStrings("activations", std::vector<std::string>{}));
  ASSIGN_OR_RETURN(auto alphas, node.GetFloats("activation_alpha", std::vector<float>{}));
  ASSIGN_OR_RETURN(auto betas, node.GetFloats("activation_beta", std::vector<float>{}));
  if (names.empty()) {
    for (int d = 0; d < dirs; ++d) names.insert(names.end(), defaults.begin(), defaults.end());
  }
  if (names.size() != defaults.size() * static_cast<size_t>(dirs)) {
    return InvalidArgument("{}: expected {} activations, got {}", node.Describe(), defaults.size() * dirs,
                           names.size());
  }
  std::vector<Activation> out;
  size_t ai = 0, bi = 0;
  for (const std::string& raw : names) {
    std::string n = raw;
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    Activation a;
    bool uses_alpha = false, uses_beta = false;
    float da = 0.f, db = 0.f;
    if (n == "sigmoid") {
      a.kind = Activation::kSigmoid;
    } else if (n == "tanh") {
      a.kind = Activation::kTanh;
    } else if (n == "relu") {
      a.kind = Activation::kRelu;
    } else if (n == "affine") {
      a.kind = Activation::kAffine, uses_alpha = uses_beta = true, da = 1.f;
    } else if (n == "leakyrelu") {
      a.kind = Activation::kLeakyRelu, uses_alpha = true, da = 0.01f;
    } else if (n == "thresholdedrelu") {
      a.kind = Activation::kThresholdedRelu, uses_alpha = true, da = 1.f;
    } else if (n == "scaledtanh") {
      a.kind = Activation::kScaledTanh, uses_alpha = uses_beta = true, da = 1.f, db = 1.f;
    } else if (n == "hardsigmoid") {
      a.kind = Activation::kHardSigmoid, uses_alpha = uses_beta = true, da = 0.2f, db = 0.5f;
    } else if (n == "elu") {
      a.kind = Activation::kElu, uses_alpha = true, da = 1.f;
    } else if (n == "softsign") {
      a.kind = Activation::kSoftsign;
    } else if (n == "softplus") {
      a.kind = Activation::kSoftplus;
    } else {
      return Unimplemented("{}: activation '{}' is not supported", node.Describe(), raw);
    }
    a.alpha = uses_alpha ? (ai < alphas.size() ? alphas[ai++] : da) : 0.f;
    a.beta = uses_beta ? (bi < betas.size() ? betas[bi++] : db) : 0.f;
    out.push_back(a);
  }
  return out;
}

// Reported by implementation() when the kernel runs its own per-step loops.
constexpr char kLoopImplementation[] = "gpuhive:rnn_loops";
// The most batch rows per thread that gpuhive's AVX-512 LSTM takes (TryAvx512Lstm).
constexpr int64_t kAvx512LstmRowsPerThread = 4;

class RnnKernel final : public Kernel {
 public:
  explicit RnnKernel(CellKind kind) : kind_(kind), gates_(kind == CellKind::kLstm ? 4 : kind == CellKind::kGru ? 3 : 1) {}

  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& node = ctx.node();
    for (size_t i = 0; i < 3; ++i) {
      if (!ctx.has_input(i)) return InvalidArgument("{}: missing input {}", node.Describe(), i);
      if (ctx.input_dtype(i) != DataType::kFloat32) {
        return Unimplemented("{}: only float32 is supported", node.Describe());
      }
    }
    ASSIGN_OR_RETURN(std::string direction, node.GetString("direction", std::string("forward")));
    if (direction == "forward") {
      dirs_ = 1, reverse_only_ = false;
    } else if (direction == "reverse") {
      dirs_ = 1, reverse_only_ = true;
    } else if (direction == "bidirectional") {
      dirs_ = 2, reverse_only_ = false;
    } else {
      return InvalidArgument("{}: unknown direction '{}'", node.Describe(), direction);
    }
    ASSIGN_OR_RETURN(layout_, node.GetInt("layout", 0));
    if (layout_ != 0 && layout_ != 1) return InvalidArgument("{}: layout must be 0 or 1", node.Describe());
    const Shape& x = ctx.input_shape(0);
    const Shape& w = ctx.input_shape(1);
    const Shape& r = ctx.input_shape(2);
    if (x.size() != 3 || w.size() != 3 || r.size() != 3) {
      return InvalidArgument("{}: X, W and R must be 3-D", node.Describe());
    }
    seq_ = layout_ == 0 ? x[0] : x[1];
    batch_ = layout_ == 0 ? x[1] : x[0];
    input_ = x[2];
    ASSIGN_OR_RETURN(hidden_, node.GetInt("hidden_size", r[2]));
    const int64_t gh = gates_ * hidden_;
    if (w[0] != dirs_ || w[1] != gh || w[2] != input_ || r[0] != dirs_ || r[1] != gh || r[2] != hidden_) {
      return InvalidArgument("{}: W {} / R {} do not match X {}, hidden_size {} and direction", node.Describe(),
                             ShapeToString(w), ShapeToString(r), ShapeToString(x), hidden_);
    }
    has_b_ = ctx.num_inputs() > 3 && ctx.has_input(3);
    if (has_b_ && ctx.input_shape(3) != Shape{dirs_, 2 * gh}) {
      return InvalidArgument("{}: B must be [{}, {}]", node.Describe(), dirs_, 2 * gh);
    }
    has_lens_ = ctx.num_inputs() > 4 && ctx.has_input(4);
    if (has_lens_) {
      lens_dtype_ = ctx.input_dtype(4);
      if ((lens_dtype_ != DataType::kInt32 && lens_dtype_ != DataType::kInt64) ||
          NumElements(ctx.input_shape(4)) != batch_) {
        return InvalidArgument("{}: sequence_lens must be int32[{}]", node.Describe(), batch_);
      }
    }
    const Shape state_shape = layout_ == 0 ? Shape{dirs_, batch_, hidden_} : Shape{batch_, dirs_, hidden_};
    has_h0_ = ctx.num_inputs() > 5 && ctx.has_input(5);
    if (has_h0_ && ctx.input_shape(5) != state_shape) {
      return InvalidArgument("{}: initial_h must be {}", node.Describe(), ShapeToString(state_shape));
    }
    if (kind_ == CellKind::kLstm) {
      has_c0_ = ctx.num_inputs() > 6 && ctx.has_input(6);
      if (has_c0_ && ctx.input_shape(6) != state_shape) {
        return InvalidArgument("{}: initial_c must be {}", node.Describe(), ShapeToString(state_shape));
      }
      has_p_ = ctx.num_inputs() > 7 && ctx.has_input(7);
      if (has_p_ && ctx.input_shape(7) != Shape{dirs_, 3 * hidden_}) {
        return InvalidArgument("{}: P must be [{}, {}]", node.Describe(), dirs_, 3 * hidden_);
      }
      ASSIGN_OR_RETURN(input_forget_, node.GetInt("input_forget", 0));
    }
    for (size_t i = 3; i < ctx.num_inputs(); ++i) {
      if (i != 4 && ctx.has_input(i) && ctx.input_dtype(i) != DataType::kFloat32) {
        return Unimplemented("{}: input {} must be float32", node.Describe(), i);
      }
    }
    if (kind_ == CellKind::kGru) {
      ASSIGN_OR_RETURN(lbr_, node.GetInt("linear_before_reset", 0));
    }
    has_clip_ = node.has_attr("clip");
    if (has_clip_) {
      ASSIGN_OR_RETURN(clip_, node.GetFloat("clip"));
    }
    std::vector<std::string> defaults = kind_ == CellKind::kLstm  ? std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"}
                                        : kind_ == CellKind::kGru ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                                  : std::vector<std::string>{"Tanh"};
    ASSIGN_OR_RETURN(acts_, ParseActivations(node, defaults, static_cast<int>(dirs_)));
    nacts_ = defaults.size();

    WorkspacePlan ws;
    implementation_ = kLoopImplementation;
    primitive_.reset();
    avx512_lstm_.reset();
    want_y_ = ctx.num_outputs() > 0 && ctx.has_output(0);
    want_yh_ = ctx.num_outputs() > 1 && ctx.has_output(1);
    want_yc_ = ctx.num_outputs() > 2 && ctx.has_output(2);
    if (PrimitiveComputesExactly()) RETURN_IF_ERROR(TryAvx512Lstm(ctx, ws));
    if (avx512_lstm_ == nullptr && PrimitiveComputesExactly()) {
      LstmPrimitive::Options o;
      o.dirs = dirs_, o.reverse_only = reverse_only_, o.layout = layout_;
      o.seq = seq_, o.batch = batch_, o.input = input_, o.hidden = hidden_;
      o.has_b = has_b_, o.has_h0 = has_h0_, o.has_c0 = has_c0_, o.has_p = has_p_;
      o.want_y = want_y_, o.want_yh = want_yh_, o.want_yc = want_yc_;
      WorkspacePlan with_primitive = ws;
      auto primitive = LstmPrimitive::Create(ctx, o, with_primitive);
      if (primitive.ok()) {
        ws = with_primitive;
        primitive_ = std::move(primitive).value();
        implementation_ = primitive_->implementation();
      } else {
        GH_LOG_DEBUG("kernels", "{}: per-step loops instead of oneDNN's LSTM: {}", node.Describe(),
                     primitive.status().ToString());
      }
    }
    // The loops' buffers are needed also with the primitive when sequence_lens may differ.
    if ((primitive_ != nullptr || avx512_lstm_ != nullptr) && !has_lens_) {
      ctx.RequestWorkspace(ws.total());
      return DeclareOutputs(ctx);
    }
    ws_xw_ = ws.Add(sizeof(float) * static_cast<size_t>(seq_ * batch_ * gh));
    ws_hr_ = ws.Add(sizeof(float) * static_cast<size_t>(batch_ * gh));
    ws_h_ = ws.Add(sizeof(float) * static_cast<size_t>(batch_ * hidden_));
    ws_c_ = ws.Add(sizeof(float) * static_cast<size_t>(batch_ * hidden_));
    ws_tmp_ = ws.Add(sizeof(float) * static_cast<size_t>(batch_ * hidden_));
    ctx.RequestWorkspace(ws.total());
    return DeclareOutputs(ctx);
  }

  Status Run(RunContext& ctx) const override {
    if (avx512_lstm_ != nullptr || primitive_ != nullptr) {
      ASSIGN_OR_RETURN(bool full, AllSequencesFull(ctx));
      if (full && primitive_ != nullptr) return primitive_->Run(ctx);
      if (full) {
        auto in = [&](size_t i, bool present) { return present ? ctx.input(i).as<float>() : nullptr; };
        auto out = [&](size_t i, bool wanted) { return wanted ? ctx.output(i).as<float>() : nullptr; };
        avx512_lstm_->Run(ctx.input(0).as<float>(), in(5, has_h0_), in(6, has_c0_), out(0, want_y_),
                          out(1, want_yh_), out(2, want_yc_), static_cast<float*>(WsPtr(ctx, ws_avx512_lstm_)),
                          ctx.num_threads());
        return Status::OK();
      }
    }
    SetThreads(ctx.num_threads());
    for (int64_t d = 0; d < dirs_; ++d) RETURN_IF_ERROR(RunDirection(ctx, d, reverse_only_ || d == 1));
    return Status::OK();
  }

  std::string_view implementation() const override { return implementation_; }

 private:
  // oneDNN's LSTM has no clip, no coupled input-forget gate and fixed activations.
  bool PrimitiveComputesExactly() const {
    if (kind_ != CellKind::kLstm || has_clip_ || input_forget_ != 0) return false;
    for (size_t i = 0; i < acts_.size(); ++i) {
      const Activation::Kind want = i % nacts_ == 0 ? Activation::kSigmoid : Activation::kTanh;
      if (acts_[i].kind != want) return false;
    }
    return true;
  }

  // An LSTM with at most kAvx512LstmRowsPerThread batch rows per thread, constant weights and no
  // peepholes runs on gpuhive's AVX-512 LSTM (loops/lstm_avx512.h): split across the threads by rows
  // or, below a row per thread, by hidden units. With more rows per thread oneDNN's primitive is
  // faster. The audio model (gpuhive perf, p50 ms, ours / oneDNN's): 2 threads batch 1 0.24 / 0.50,
  // 4 0.61 / 0.62, 8 0.89-0.93 / 0.99-1.05, 16 1.73 / 1.66; one thread batch 1 0.34 / 0.49, 4
  // 0.77-0.79 / 0.90-0.91, 8 1.50 / 1.35 (docs/benchmarks.md). Sets avx512_lstm_ or leaves it null.
  Status TryAvx512Lstm(PrepareContext& ctx, WorkspacePlan& ws) {
    if (has_p_ || batch_ > kAvx512LstmRowsPerThread * std::max(1, ctx.options().num_threads)) return Status::OK();
    const Tensor* w = ctx.input_value(1);
    const Tensor* r = ctx.input_value(2);
    const Tensor* b = has_b_ ? ctx.input_value(3) : nullptr;
    if (w == nullptr || r == nullptr || (has_b_ && b == nullptr)) return Status::OK();
    loops::LstmAvx512::Options o;
    o.dirs = dirs_, o.reverse_only = reverse_only_, o.layout = layout_;
    o.seq = seq_, o.batch = batch_, o.input = input_, o.hidden = hidden_;
    ASSIGN_OR_RETURN(avx512_weights_, Buffer::Allocate(ctx.persistent_resource(),
                                                       sizeof(float) * loops::LstmAvx512::PackedFloats(o),
                                                       ctx.persistent_tag()));
    avx512_lstm_ = loops::LstmAvx512::Create(o, w->as<float>(), r->as<float>(),
                                             b != nullptr ? b->as<float>() : nullptr,
                                             static_cast<float*>(avx512_weights_.data()));
    if (avx512_lstm_ == nullptr) {
      avx512_weights_ = Buffer();
      return Status::OK();
    }
    ws_avx512_lstm_ = ws.Add(sizeof(float) * avx512_lstm_->ScratchFloats());
    implementation_ = avx512_lstm_->Implementation(std::max(1, ctx.options().num_threads));
    return Status::OK();
  }

  // Whether every batch entry runs the whole sequence (sequence_lens absent or all seq_).
  StatusOr<bool> AllSequencesFull(const RunContext& ctx) const {
    if (!has_lens_) return true;
    for (int64_t b = 0; b < batch_; ++b) {
      int64_t v = lens_dtype_ == DataType::kInt32 ? ctx.input(4).as<int32_t>()[b] : ctx.input(4).as<int64_t>()[b];
      if (v < 0 || v > seq_) return InvalidArgument("sequence_lens[{}] = {} outside [0, {}]", b, v, seq_);
      if (v != seq_) return false;
    }
    return true;
  }

  Status DeclareOutputs(PrepareContext& ctx) const {
    const Shape state_shape = layout_ == 0 ? Shape{dirs_, batch_, hidden_} : Shape{batch_, dirs_, hidden_};
    const Shape y_shape = layout_ == 0 ? Shape{seq_, dirs_, batch_, hidden_} : Shape{batch_, seq_, dirs_, hidden_};
    if (ctx.num_outputs() > 0 && ctx.has_output(0)) ctx.SetOutput(0, DataType::kFloat32, y_shape);
    if (ctx.num_outputs() > 1 && ctx.has_output(1)) ctx.SetOutput(1, DataType::kFloat32, state_shape);
    if (kind_ == CellKind::kLstm && ctx.num_outputs() > 2 && ctx.has_output(2)) {
      ctx.SetOutput(2, DataType::kFloat32, state_shape);
    }
    return Status::OK();
  }

  // State offset of (dir, batch) in initial_h / Y_h / Y_c.
  int64_t StateIndex(int64_t d, int64_t b) const {
    return layout_ == 0 ? (d * batch_ + b) * hidden_ : (b * dirs_ + d) * hidden_;
  }
  int64_t YIndex(int64_t t, int64_t d, int64_t b) const {
    return layout_ == 0 ? ((t * dirs_ + d) * batch_ + b) * hidden_ : ((b * seq_ + t) * dirs_ + d) * hidden_;
  }
  float Clip(float v) const { return has_clip_ ? std::min(clip_, std::max(-clip_, v)) : v; }

  Status RunDirection(RunContext& ctx, int64_t d, bool reverse) const {
    const int64_t gh = gates_ * hidden_, H = hidden_;
    const float* x = ctx.input(0).as<float>();
    const float* w = ctx.input(1).as<float>() + d * gh * input_;
    const float* r = ctx.input(2).as<float>() + d * gh * H;
    const float* wb = has_b_ ? ctx.input(3).as<float>() + d * 2 * gh : nullptr;
    const float* rb = has_b_ ? wb + gh : nullptr;
    const float* p = has_p_ ? ctx.input(7).as<float>() + d * 3 * H : nullptr;
    float* xw = static_cast<float*>(WsPtr(ctx, ws_xw_));
    float* hr = static_cast<float*>(WsPtr(ctx, ws_hr_));
    float* h = static_cast<float*>(WsPtr(ctx, ws_h_));
    float* c = static_cast<float*>(WsPtr(ctx, ws_c_));
    float* tmp = static_cast<float*>(WsPtr(ctx, ws_tmp_));
    const Activation* act = &acts_[static_cast<size_t>(d) * nacts_];

    // X W^T for every (time, batch) row, in X's own row order.
    if (dnnl_sgemm('N', 'T', seq_ * batch_, gh, input_, 1.f, x, input_, w, input_, 0.f, xw, gh) != dnnl_success) {
      return Internal("sgemm failed");
    }
    for (int64_t b = 0; b < batch_; ++b) {
      for (int64_t j = 0; j < H; ++j) {
        h[b * H + j] = has_h0_ ? ctx.input(5).as<float>()[StateIndex(d, b) + j] : 0.f;
        c[b * H + j] = has_c0_ ? ctx.input(6).as<float>()[StateIndex(d, b) + j] : 0.f;
      }
    }
    std::vector<int64_t> lens(static_cast<size_t>(batch_), seq_);
    if (has_lens_) {
      for (int64_t b = 0; b < batch_; ++b) {
        int64_t v = lens_dtype_ == DataType::kInt32 ? ctx.input(4).as<int32_t>()[b] : ctx.input(4).as<int64_t>()[b];
        if (v < 0 || v > seq_) return InvalidArgument("sequence_lens[{}] = {} outside [0, {}]", b, v, seq_);
        lens[static_cast<size_t>(b)] = v;
      }
    }
    float* y = ctx.num_outputs() > 0 && ctx.has_output(0) ? ctx.output(0).as<float>() : nullptr;
    // Small steps on this thread only (see kRnnParallelStepMacs); the projection above had the team.
    ThreadScope step_threads(batch_ * gh * H >= kRnnParallelStepMacs ? ctx.num_threads() : 1);
    for (int64_t step = 0; step < seq_; ++step) {
      // Recurrent projection H_{t-1} R^T (for GRU without linear_before_reset the h gate is redone below).
      if (dnnl_sgemm('N', 'T', batch_, gh, H, 1.f, h, H, r, H, 0.f, hr, gh) != dnnl_success) {
        return Internal("sgemm failed");
      }
      if (kind_ == CellKind::kGru && lbr_ == 0) {
        // r (.) H_{t-1} first, then its projection through Rh.
        for (int64_t b = 0; b < batch_; ++b) {
          const int64_t len = lens[static_cast<size_t>(b)];
          const int64_t t = reverse ? len - 1 - step : step;
          if (step >= len) {
            std::memset(tmp + b * H, 0, sizeof(float) * static_cast<size_t>(H));
            continue;
          }
          const float* g = xw + (layout_ == 0 ? t * batch_ + b : b * seq_ + t) * gh;
          for (int64_t j = 0; j < H; ++j) {
            float rv = g[H + j] + hr[b * gh + H + j] + (wb ? wb[H + j] + rb[H + j] : 0.f);
            tmp[b * H + j] = act[0](Clip(rv)) * h[b * H + j];
          }
        }
        // Overwrite the h-gate slice of hr with (r (.) H) Rh^T.
        if (dnnl_sgemm('N', 'T', batch_, H, H, 1.f, tmp, H, r + 2 * H * H, H, 0.f, hr + 2 * H, gh) != dnnl_success) {
          return Internal("sgemm failed");
        }
      }
      for (int64_t b = 0; b < batch_; ++b) {
        const int64_t len = lens[static_cast<size_t>(b)];
        if (step >= len) continue;
        const int64_t t = reverse ? len - 1 - step : step;
        const float* g = xw + (layout_ == 0 ? t * batch_ + b : b * seq_ + t) * gh;
        const float* q = hr + b * gh;
        float* hb = h + b * H;
        float* cb = c + b * H;
        auto bias = [&](int64_t k) { return wb ? wb[k] + rb[k] : 0.f; };
        if (kind_ == CellKind::kLstm) {
          for (int64_t j = 0; j < H; ++j) {
            const float cprev = cb[j];
            float iv = g[j] + q[j] + bias(j) + (p ? p[j] * cprev : 0.f);
            float fv = g[2 * H + j] + q[2 * H + j] + bias(2 * H + j) + (p ? p[2 * H + j] * cprev : 0.f);
            float cv = g[3 * H + j] + q[3 * H + j] + bias(3 * H + j);
            const float it = act[0](Clip(iv));
            const float ft = input_forget_ ? 1.f - it : act[0](Clip(fv));
            const float ct = act[1](Clip(cv));
            const float cn = ft * cprev + it * ct;
            float ov = g[H + j] + q[H + j] + bias(H + j) + (p ? p[H + j] * cn : 0.f);
            const float ot = act[0](Clip(ov));
            cb[j] = cn;
            hb[j] = ot * act[2](cn);
          }
        } else if (kind_ == CellKind::kGru) {
          for (int64_t j = 0; j < H; ++j) {
            const float zt = act[0](Clip(g[j] + q[j] + bias(j)));
            float hv;
            if (lbr_ != 0) {
              const float rt = act[0](Clip(g[H + j] + q[H + j] + bias(H + j)));
              hv = g[2 * H + j] + (wb ? wb[2 * H + j] : 0.f) + rt * (q[2 * H + j] + (rb ? rb[2 * H + j] : 0.f));
            } else {
              hv = g[2 * H + j] + q[2 * H + j] + bias(2 * H + j);
            }
            const float ht = act[1](Clip(hv));
            hb[j] = (1.f - zt) * ht + zt * hb[j];
          }
        } else {
          for (int64_t j = 0; j < H; ++j) hb[j] = act[0](Clip(g[j] + q[j] + bias(j)));
        }
        if (y) std::memcpy(y + YIndex(t, d, b), hb, sizeof(float) * static_cast<size_t>(H));
      }
    }
    if (y) {
      // Steps past a batch entry's sequence length are zero.
      for (int64_t b = 0; b < batch_; ++b) {
        for (int64_t t = lens[static_cast<size_t>(b)]; t < seq_; ++t) {
          std::memset(y + YIndex(t, d, b), 0, sizeof(float) * static_cast<size_t>(H));
        }
      }
    }
    for (int64_t b = 0; b < batch_; ++b) {
      if (ctx.num_outputs() > 1 && ctx.has_output(1)) {
        std::memcpy(ctx.output(1).as<float>() + StateIndex(d, b), h + b * H, sizeof(float) * static_cast<size_t>(H));
      }
      if (kind_ == CellKind::kLstm && ctx.num_outputs() > 2 && ctx.has_output(2)) {
        std::memcpy(ctx.output(2).as<float>() + StateIndex(d, b), c + b * H, sizeof(float) * static_cast<size_t>(H));
      }
    }
    return Status::OK();
  }

  CellKind kind_;
  int64_t gates_;
  int64_t dirs_ = 1;
  bool reverse_only_ = false;
  int64_t layout_ = 0, seq_ = 0, batch_ = 0, input_ = 0, hidden_ = 0;
  bool has_b_ = false, has_lens_ = false, has_h0_ = false, has_c0_ = false, has_p_ = false;
  DataType lens_dtype_ = DataType::kInt32;
  int64_t input_forget_ = 0, lbr_ = 0;
  bool has_clip_ = false;
  float clip_ = 0.f;
  std::vector<Activation> acts_;
  size_t nacts_ = 1;
  size_t ws_xw_ = 0, ws_hr_ = 0, ws_h_ = 0, ws_c_ = 0, ws_tmp_ = 0;
  std::unique_ptr<LstmPrimitive> primitive_;  // set when oneDNN's LSTM computes this node exactly
  std::unique_ptr<loops::LstmAvx512> avx512_lstm_;  // set instead for small steps (TryAvx512Lstm)
  Buffer avx512_weights_;                           // avx512_lstm_'s packed weights
  bool want_y_ = false, want_yh_ = false, want_yc_ = false;  // outputs the node asks for
  size_t ws_avx512_lstm_ = 0;
  std::string implementation_;
};

}  // namespace

StatusOr<std::unique_ptr<Kernel>> MakeLstm(const ir::Node&) {
  return std::unique_ptr<Kernel>(new RnnKernel(CellKind::kLstm));
}
StatusOr<std::unique_ptr<Kernel>> MakeGru(const ir::Node&) {
  return std::unique_ptr<Kernel>(new RnnKernel(CellKind::kGru));
}
StatusOr<std::unique_ptr<Kernel>> MakeRnn(const ir::Node&) {
  return std::unique_ptr<Kernel>(new RnnKernel(CellKind::kRnn));
}

}  // namespace gpuhive::cpu::onednn
