// ONNX LSTM and GRU on the device (layout 0, default activations, any direction). Per direction
// one GEMM projects every time step's input at once (X [T*B, I] x W^T -> [T, B, gates*H]); then
// each time step runs the recurrence GEMM(s) (skipped while H_{t-1} is zero) and a pointwise kernel:
// LstmCell adds the biases and peepholes, applies the gates and writes H_t straight into Y (or a
// workspace ping-pong when Y is not used) and C_t into Y_c (or the workspace); GRU's are described
// at BuildGru. Each step is a fixed launch sequence, so it is captured into the plan's CUDA graph
// like every other step.
#include <algorithm>
#include <string>
#include <vector>

#include "gpuhive/cuda_device.h"
#include "runtime/cuda/step_builders.h"

namespace gpuhive::cuda::executor::detail {
namespace {

// The activations attribute, when given, must be the default ones (`defaults` per direction).
Status CheckDefaultActivations(const ir::Node& n, int64_t directions, const std::vector<std::string>& defaults) {
  if (!n.has_attr("activations")) return Status::OK();
  ASSIGN_OR_RETURN(std::vector<std::string> acts, n.GetStrings("activations"));
  if (acts.size() != defaults.size() * static_cast<size_t>(directions)) {
    return InvalidArgument("{}: {} activations for {} direction(s)", n.Describe(), acts.size(), directions);
  }
  for (size_t i = 0; i < acts.size(); ++i) {
    std::string a = acts[i];
    std::transform(a.begin(), a.end(), a.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (a != defaults[i % defaults.size()]) {
      return Unimplemented("{}: {} activation '{}' on CUDA (only the default ones)", n.Describe(), n.op_type, acts[i]);
    }
  }
  return Status::OK();
}

// What LSTM and GRU share: layout 0, the direction, clip, X [T, B, I], W [dirs, gates*H, I] and
// R [dirs, gates*H, H], and sequence_lens (only "every sequence is full length", known while planning).
struct RnnShape {
  int64_t dirs = 1, steps = 0, batch = 0, input = 0, hidden = 0;
  bool reverse_only = false;
  float clip = 0.f;
};
StatusOr<RnnShape> ReadRnn(StepInputs& in, int64_t gates, const std::vector<std::string>& activations) {
  const ir::Node& n = in.node();
  const PlannedValue* x = in.input(0);
  const PlannedValue* w = in.input(1);
  const PlannedValue* r = in.input(2);
  RETURN_IF_ERROR(NeedFloat(x, n, "X"));
  RETURN_IF_ERROR(NeedFloat(w, n, "W"));
  RETURN_IF_ERROR(NeedFloat(r, n, "R"));
  ASSIGN_OR_RETURN(int64_t layout, n.GetInt("layout", 0));
  if (layout != 0) return Unimplemented("{}: {} layout {} on CUDA (layout 0 only)", n.Describe(), n.op_type, layout);
  ASSIGN_OR_RETURN(std::string direction, n.GetString("direction", "forward"));
  if (direction != "forward" && direction != "reverse" && direction != "bidirectional") {
    return InvalidArgument("{}: unknown direction '{}'", n.Describe(), direction);
  }
  RnnShape rs;
  rs.dirs = direction == "bidirectional" ? 2 : 1;
  rs.reverse_only = direction == "reverse";
  RETURN_IF_ERROR(CheckDefaultActivations(n, rs.dirs, activations));
  ASSIGN_OR_RETURN(rs.clip, n.GetFloat("clip", 0.f));
  if (rs.clip < 0.f) return InvalidArgument("{}: clip must not be negative", n.Describe());
  if (x->shape.size() != 3 || w->shape.size() != 3 || r->shape.size() != 3) {
    return InvalidArgument("{}: X, W and R must be rank 3", n.Describe());
  }
  rs.steps = x->shape[0], rs.batch = x->shape[1], rs.input = x->shape[2], rs.hidden = r->shape[2];
  if (rs.steps == 0) return Unimplemented("{}: {} over zero time steps on CUDA", n.Describe(), n.op_type);
  if (w->shape != Shape{rs.dirs, gates * rs.hidden, rs.input} || r->shape != Shape{rs.dirs, gates * rs.hidden, rs.hidden}) {
    return InvalidArgument("{}: W {} / R {} do not fit X {} and {} direction(s)", n.Describe(),
                           ShapeToString(w->shape), ShapeToString(r->shape), ShapeToString(x->shape), rs.dirs);
  }
  if (in.num_inputs() > 4 && in.input(4) != nullptr) {
    ASSIGN_OR_RETURN(std::vector<int64_t> lens, HostInts(in.input(4), n, "sequence_lens"));
    for (int64_t len : lens) {
      if (len != rs.steps) {
        return Unimplemented("{}: {} sequences shorter than the input on CUDA", n.Describe(), n.op_type);
      }
    }
  }
  return rs;
}

// Optional input i with the given shape: its device pointer, or null when omitted.
StatusOr<const void*> OptionalRnnInput(StepInputs& in, size_t i, const char* what, const Shape& want) {
  if (in.num_inputs() <= i || in.input(i) == nullptr) return static_cast<const void*>(nullptr);
  RETURN_IF_ERROR(NeedFloat(in.input(i), in.node(), what));
  if (in.input(i)->shape != want) {
    return InvalidArgument("{}: {} is {}, expected {}", in.node().Describe(), what, ShapeToString(in.input(i)->shape),
                           ShapeToString(want));
  }
  return in.DeviceInput(i);
}

const void* Offset(const void* p, int64_t floats) {
  return p == nullptr ? nullptr : static_cast<const float*>(p) + floats;
}

}  // namespace

StatusOr<BuiltStep> BuildLstm(StepInputs& in) {
  const ir::Node& n = in.node();
  ASSIGN_OR_RETURN(int64_t input_forget, n.GetInt("input_forget", 0));
  if (input_forget != 0) return Unimplemented("{}: LSTM input_forget on CUDA", n.Describe());
  ASSIGN_OR_RETURN(RnnShape rs, ReadRnn(in, 4, {"sigmoid", "tanh", "tanh"}));
  const int64_t dirs = rs.dirs, steps = rs.steps, batch = rs.batch, input = rs.input, hidden = rs.hidden;
  const float clip = rs.clip;
  ASSIGN_OR_RETURN(const void* bias, OptionalRnnInput(in, 3, "B", Shape{dirs, 8 * hidden}));
  ASSIGN_OR_RETURN(const void* h0, OptionalRnnInput(in, 5, "initial_h", Shape{dirs, batch, hidden}));
  ASSIGN_OR_RETURN(const void* c0, OptionalRnnInput(in, 6, "initial_c", Shape{dirs, batch, hidden}));
  ASSIGN_OR_RETURN(const void* peep, OptionalRnnInput(in, 7, "P", Shape{dirs, 3 * hidden}));
  ASSIGN_OR_RETURN(const void* xp, in.DeviceInput(0));
  ASSIGN_OR_RETURN(const void* wp, in.DeviceInput(1));
  ASSIGN_OR_RETURN(const void* rp, in.DeviceInput(2));
  float* y = in.output_used(0) ? static_cast<float*>(in.output(0)->device) : nullptr;
  float* y_h = in.output_used(1) ? static_cast<float*>(in.output(1)->device) : nullptr;
  float* y_c = in.output_used(2) ? static_cast<float*>(in.output(2)->device) : nullptr;

  MatmulDesc proj;  // X [T*B, I] x W_d^T [I, 4H]
  proj.m = steps * batch, proj.k = input, proj.n = 4 * hidden, proj.trans_b = true, proj.math = Float32Math(in.math());
  MatmulDesc rec;  // H [B, H] x R_d^T [H, 4H]
  rec.m = batch, rec.k = hidden, rec.n = 4 * hidden, rec.trans_b = true, rec.math = Float32Math(in.math());
  ASSIGN_OR_RETURN(size_t proj_ws, in.matmul().WorkspaceBytes(proj));
  ASSIGN_OR_RETURN(size_t rec_ws, in.matmul().WorkspaceBytes(rec));
  const int64_t bh = batch * hidden;
  // Workspace: gates of every step [T, B, 4H], recurrent gates [B, 4H], the cell state [B, H], two
  // hidden-state buffers [B, H] (used when Y is not), then the GEMMs' own workspace.
  const size_t gx_bytes = AlignWorkspace(static_cast<size_t>(steps * batch * 4 * hidden) * sizeof(float));
  const size_t gh_bytes = AlignWorkspace(static_cast<size_t>(batch * 4 * hidden) * sizeof(float));
  const size_t state_bytes = AlignWorkspace(static_cast<size_t>(bh) * sizeof(float));
  const size_t mm_offset = gx_bytes + gh_bytes + 3 * state_bytes;
  const size_t mm_bytes = std::max(proj_ws, rec_ws);
  MatmulRunner* mm = &in.matmul();
  const bool reverse_only = rs.reverse_only;

  auto run = [=](StreamView s, void* ws) -> Status {
    char* base = static_cast<char*>(ws);
    float* gx = reinterpret_cast<float*>(base);
    float* gh = reinterpret_cast<float*>(base + gx_bytes);
    float* c_ws = reinterpret_cast<float*>(base + gx_bytes + gh_bytes);
    float* h_ws[2] = {reinterpret_cast<float*>(base + gx_bytes + gh_bytes + state_bytes),
                      reinterpret_cast<float*>(base + gx_bytes + gh_bytes + 2 * state_bytes)};
    void* mm_ws = base + mm_offset;
    for (int64_t d = 0; d < dirs; ++d) {
      const bool reverse = reverse_only || d == 1;
      RETURN_IF_ERROR(mm->Run(proj, xp, Offset(wp, d * 4 * hidden * input), nullptr, gx, mm_ws, mm_bytes, s));
      float* c = y_c != nullptr ? y_c + d * bh : c_ws;
      const size_t state = static_cast<size_t>(bh) * sizeof(float);
      if (c0 != nullptr) {
        RETURN_IF_ERROR(CopyDeviceToDeviceAsync(c, Offset(c0, d * bh), state, s));
      } else {
        RETURN_IF_ERROR(MemsetDeviceAsync(c, 0, state, s));
      }
      const float* h_prev = static_cast<const float*>(Offset(h0, d * bh));
      for (int64_t i = 0; i < steps; ++i) {
        const int64_t t = reverse ? steps - 1 - i : i;
        if (h_prev != nullptr) {
          RETURN_IF_ERROR(mm->Run(rec, h_prev, Offset(rp, d * 4 * hidden * hidden), nullptr, gh, mm_ws, mm_bytes, s));
        }
        float* h_out = y != nullptr ? y + (t * dirs + d) * bh : h_ws[i % 2];
        RETURN_IF_ERROR(LstmCell(gx + t * batch * 4 * hidden, h_prev != nullptr ? gh : nullptr,
                                 static_cast<const float*>(Offset(bias, d * 8 * hidden)),
                                 static_cast<const float*>(Offset(peep, d * 3 * hidden)), c, h_out, batch, hidden,
                                 clip, s));
        h_prev = h_out;
      }
      if (y_h != nullptr) {
        if (h_prev == nullptr) return Internal("LSTM: no hidden state after {} steps", steps);
        RETURN_IF_ERROR(CopyDeviceToDeviceAsync(y_h + d * bh, h_prev, state, s));
      }
    }
    return Status::OK();
  };
  return BuiltStep{run, mm_offset + mm_bytes};
}

// ONNX GRU: per direction one GEMM for every step's input projection, then per step the
// recurrence. With linear_before_reset (PyTorch's export): one GEMM H_{t-1} R^T [B, 3H] and GruCell.
// Without: H_{t-1} R_zr^T [B, 2H], GruReset (r . H_{t-1}), (r . H_{t-1}) R_h^T [B, H], GruCell.
StatusOr<BuiltStep> BuildGru(StepInputs& in) {
  const ir::Node& n = in.node();
  ASSIGN_OR_RETURN(RnnShape rs, ReadRnn(in, 3, {"sigmoid", "tanh"}));
  ASSIGN_OR_RETURN(int64_t lbr, n.GetInt("linear_before_reset", 0));
  const bool linear_before_reset = lbr != 0;
  const int64_t dirs = rs.dirs, steps = rs.steps, batch = rs.batch, input = rs.input, hidden = rs.hidden;
  const float clip = rs.clip;
  ASSIGN_OR_RETURN(const void* bias, OptionalRnnInput(in, 3, "B", Shape{dirs, 6 * hidden}));
  ASSIGN_OR_RETURN(const void* h0, OptionalRnnInput(in, 5, "initial_h", Shape{dirs, batch, hidden}));
  ASSIGN_OR_RETURN(const void* xp, in.DeviceInput(0));
  ASSIGN_OR_RETURN(const void* wp, in.DeviceInput(1));
  ASSIGN_OR_RETURN(const void* rp, in.DeviceInput(2));
  float* y = in.output_used(0) ? static_cast<float*>(in.output(0)->device) : nullptr;
  float* y_h = in.output_used(1) ? static_cast<float*>(in.output(1)->device) : nullptr;

  const MathMode math = Float32Math(in.math());
  MatmulDesc proj;  // X [T*B, I] x W_d^T [I, 3H]
  proj.m = steps * batch, proj.k = input, proj.n = 3 * hidden, proj.trans_b = true, proj.math = math;
  MatmulDesc rec;  // H [B, H] x R_d^T [H, 3H] (linear_before_reset) or R_zr^T [H, 2H]
  rec.m = batch, rec.k = hidden, rec.n = (linear_before_reset ? 3 : 2) * hidden, rec.trans_b = true, rec.math = math;
  MatmulDesc rec_h;  // (r . H) [B, H] x R_h^T [H, H] (without linear_before_reset)
  rec_h.m = batch, rec_h.k = hidden, rec_h.n = hidden, rec_h.trans_b = true, rec_h.math = math;
  ASSIGN_OR_RETURN(size_t proj_ws, in.matmul().WorkspaceBytes(proj));
  ASSIGN_OR_RETURN(size_t rec_ws, in.matmul().WorkspaceBytes(rec));
  size_t rec_h_ws = 0;
  if (!linear_before_reset) {
    ASSIGN_OR_RETURN(rec_h_ws, in.matmul().WorkspaceBytes(rec_h));
  }
  const int64_t bh = batch * hidden;
  // Workspace: gates of every step [T, B, 3H], recurrent gates [B, 3H], the candidate's recurrent
  // product and r . H [B, H] each, two hidden-state buffers [B, H] (used when Y is not), then the
  // GEMMs' own workspace.
  const size_t gx_bytes = AlignWorkspace(static_cast<size_t>(steps * batch * 3 * hidden) * sizeof(float));
  const size_t gh_bytes = AlignWorkspace(static_cast<size_t>(batch * 3 * hidden) * sizeof(float));
  const size_t state_bytes = AlignWorkspace(static_cast<size_t>(bh) * sizeof(float));
  const size_t mm_offset = gx_bytes + gh_bytes + 4 * state_bytes;
  const size_t mm_bytes = std::max({proj_ws, rec_ws, rec_h_ws});
  MatmulRunner* mm = &in.matmul();
  const bool reverse_only = rs.reverse_only;

  auto run = [=](StreamView s, void* ws) -> Status {
    char* base = static_cast<char*>(ws);
    float* gx = reinterpret_cast<float*>(base);
    float* gh = reinterpret_cast<float*>(base + gx_bytes);
    float* ghh = reinterpret_cast<float*>(base + gx_bytes + gh_bytes);
    float* rh = reinterpret_cast<float*>(base + gx_bytes + gh_bytes + state_bytes);
    float* h_ws[2] = {reinterpret_cast<float*>(base + gx_bytes + gh_bytes + 2 * state_bytes),
                      reinterpret_cast<float*>(base + gx_bytes + gh_bytes + 3 * state_bytes)};
    void* mm_ws = base + mm_offset;
    const int64_t gh_stride = (linear_before_reset ? 3 : 2) * hidden;
    for (int64_t d = 0; d < dirs; ++d) {
      const bool reverse = reverse_only || d == 1;
      RETURN_IF_ERROR(mm->Run(proj, xp, Offset(wp, d * 3 * hidden * input), nullptr, gx, mm_ws, mm_bytes, s));
      const float* r_d = static_cast<const float*>(Offset(rp, d * 3 * hidden * hidden));
      const float* b_d = static_cast<const float*>(Offset(bias, d * 6 * hidden));
      const float* h_prev = static_cast<const float*>(Offset(h0, d * bh));
      for (int64_t i = 0; i < steps; ++i) {
        const int64_t t = reverse ? steps - 1 - i : i;
        const float* gx_t = gx + t * batch * 3 * hidden;
        const float* gates_h = nullptr;
        const float* gates_hh = nullptr;
        int64_t hh_stride = 0;
        if (h_prev != nullptr) {
          RETURN_IF_ERROR(mm->Run(rec, h_prev, r_d, nullptr, gh, mm_ws, mm_bytes, s));
          gates_h = gh;
          if (linear_before_reset) {
            gates_hh = gh + 2 * hidden, hh_stride = 3 * hidden;
          } else {
            RETURN_IF_ERROR(GruReset(gx_t, gh, gh_stride, b_d, h_prev, rh, batch, hidden, clip, s));
            RETURN_IF_ERROR(mm->Run(rec_h, rh, r_d + 2 * hidden * hidden, nullptr, ghh, mm_ws, mm_bytes, s));
            gates_hh = ghh, hh_stride = hidden;
          }
        }
        float* h_out = y != nullptr ? y + (t * dirs + d) * bh : h_ws[i % 2];
        RETURN_IF_ERROR(GruCell(gx_t, gates_h, gh_stride, gates_hh, hh_stride, b_d, h_prev, h_out, batch, hidden,
                                linear_before_reset, clip, s));
        h_prev = h_out;
      }
      if (y_h != nullptr) {
        RETURN_IF_ERROR(CopyDeviceToDeviceAsync(y_h + d * bh, h_prev, static_cast<size_t>(bh) * sizeof(float), s));
      }
    }
    return Status::OK();
  };
  return BuiltStep{run, mm_offset + mm_bytes};
}

}  // namespace gpuhive::cuda::executor::detail
