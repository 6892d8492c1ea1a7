// ONNX LSTM on the device (layout 0, default activations, any direction). Per direction: one
// GEMM projects every time step's input at once (X [T*B, I] x W^T -> [T, B, 4H]); then each time
// step runs one GEMM for the recurrence (H_{t-1} [B, H] x R^T -> [B, 4H], skipped when H_{t-1} is
// zero) and one pointwise kernel (LstmCell) that adds the biases and peepholes, applies the gates
// and writes H_t straight into Y (or into a workspace ping-pong when Y is not used) and C_t into
// Y_c (or the workspace). The step is a fixed launch sequence, so it is captured into the plan's
// CUDA graph like every other step.
#include <algorithm>
#include <string>

#include "gpuhive/cuda_device.h"
#include "runtime/cuda/step_builders.h"

namespace gpuhive::cuda::executor::detail {
namespace {

Status CheckDefaultActivations(const ir::Node& n, int64_t directions) {
  if (!n.has_attr("activations")) return Status::OK();
  ASSIGN_OR_RETURN(std::vector<std::string> acts, n.GetStrings("activations"));
  if (acts.size() != static_cast<size_t>(3 * directions)) {
    return InvalidArgument("{}: {} activations for {} direction(s)", n.Describe(), acts.size(), directions);
  }
  for (size_t i = 0; i < acts.size(); ++i) {
    std::string a = acts[i];
    std::transform(a.begin(), a.end(), a.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (a != (i % 3 == 0 ? "sigmoid" : "tanh")) {
      return Unimplemented("{}: LSTM activation '{}' on CUDA (only Sigmoid, Tanh, Tanh)", n.Describe(), acts[i]);
    }
  }
  return Status::OK();
}

const void* Offset(const void* p, int64_t floats) {
  return p == nullptr ? nullptr : static_cast<const float*>(p) + floats;
}

}  // namespace

StatusOr<BuiltStep> BuildLstm(StepInputs& in) {
  const ir::Node& n = in.node();
  const PlannedValue* x = in.input(0);
  const PlannedValue* w = in.input(1);
  const PlannedValue* r = in.input(2);
  RETURN_IF_ERROR(NeedFloat(x, n, "X"));
  RETURN_IF_ERROR(NeedFloat(w, n, "W"));
  RETURN_IF_ERROR(NeedFloat(r, n, "R"));
  ASSIGN_OR_RETURN(int64_t layout, n.GetInt("layout", 0));
  if (layout != 0) return Unimplemented("{}: LSTM layout {} on CUDA (layout 0 only)", n.Describe(), layout);
  ASSIGN_OR_RETURN(int64_t input_forget, n.GetInt("input_forget", 0));
  if (input_forget != 0) return Unimplemented("{}: LSTM input_forget on CUDA", n.Describe());
  ASSIGN_OR_RETURN(std::string direction, n.GetString("direction", "forward"));
  const int64_t dirs = direction == "bidirectional" ? 2 : 1;
  if (direction != "forward" && direction != "reverse" && direction != "bidirectional") {
    return InvalidArgument("{}: unknown direction '{}'", n.Describe(), direction);
  }
  RETURN_IF_ERROR(CheckDefaultActivations(n, dirs));
  ASSIGN_OR_RETURN(float clip, n.GetFloat("clip", 0.f));
  if (clip < 0.f) return InvalidArgument("{}: clip must not be negative", n.Describe());
  if (x->shape.size() != 3 || w->shape.size() != 3 || r->shape.size() != 3) {
    return InvalidArgument("{}: X, W and R must be rank 3", n.Describe());
  }
  const int64_t steps = x->shape[0], batch = x->shape[1], input = x->shape[2];
  const int64_t hidden = r->shape[2];
  if (steps == 0) return Unimplemented("{}: an LSTM over zero time steps on CUDA", n.Describe());
  if (w->shape != Shape{dirs, 4 * hidden, input} || r->shape != Shape{dirs, 4 * hidden, hidden}) {
    return InvalidArgument("{}: W {} / R {} do not fit X {} and {} direction(s)", n.Describe(),
                           ShapeToString(w->shape), ShapeToString(r->shape), ShapeToString(x->shape), dirs);
  }
  // sequence_lens: only "every sequence is full length", known while planning.
  if (in.num_inputs() > 4 && in.input(4) != nullptr) {
    ASSIGN_OR_RETURN(std::vector<int64_t> lens, HostInts(in.input(4), n, "sequence_lens"));
    for (int64_t len : lens) {
      if (len != steps) return Unimplemented("{}: LSTM sequences shorter than the input on CUDA", n.Describe());
    }
  }
  auto optional_input = [&](size_t i, const char* what, const Shape& want) -> StatusOr<const void*> {
    if (in.num_inputs() <= i || in.input(i) == nullptr) return static_cast<const void*>(nullptr);
    RETURN_IF_ERROR(NeedFloat(in.input(i), n, what));
    if (in.input(i)->shape != want) {
      return InvalidArgument("{}: {} is {}, expected {}", n.Describe(), what, ShapeToString(in.input(i)->shape),
                             ShapeToString(want));
    }
    return in.DeviceInput(i);
  };
  ASSIGN_OR_RETURN(const void* bias, optional_input(3, "B", Shape{dirs, 8 * hidden}));
  ASSIGN_OR_RETURN(const void* h0, optional_input(5, "initial_h", Shape{dirs, batch, hidden}));
  ASSIGN_OR_RETURN(const void* c0, optional_input(6, "initial_c", Shape{dirs, batch, hidden}));
  ASSIGN_OR_RETURN(const void* peep, optional_input(7, "P", Shape{dirs, 3 * hidden}));
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
  const bool reverse_only = direction == "reverse";

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

}  // namespace gpuhive::cuda::executor::detail
