// ONNX LSTM on oneDNN's lstm_forward primitive, for the attribute combinations the primitive
// computes exactly as ONNX does: default activations (sigmoid, tanh, tanh), no clip,
// input_forget = 0, with or without peepholes, any direction, layout, batch and sizes, every
// sequence running the full length. rnn.cc keeps its per-step loops for everything else.
//
// Why: the loop path makes one OpenMP-parallel sgemm per time step; with passive OpenMP waiting
// each of those regions costs a wake-up that dwarfs the step's work (audio_lstm: 98 steps of a
// [batch, 128] x [128, 512] product). The primitive does the input projection, the recurrent
// products and JIT-compiled gate math in one call, single-threaded unless a step is large.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/onednn/common.h"

namespace gpuhive::cpu::onednn {

// Below this many multiply-adds per recurrent step (batch x gates*hidden x hidden) an RNN runs its
// steps on the calling thread: every step opens OpenMP regions, and with passive waiting their
// wake-ups cost more than the step (audio_lstm's [8, 128] x [128, 512] steps in oneDNN's LSTM:
// one thread 0.8 ms, two 2.2 ms per run).
constexpr int64_t kRnnParallelStepMacs = int64_t{1} << 23;

// The batch rows of an LSTM are independent: when the steps are too small to split across threads
// (above) but a run has several threads and rows, the rows are split into one slice per thread
// and each thread runs a primitive over its slice (strided views of the node's tensors), single-
// threaded, in one OpenMP region per direction. audio_lstm at batch 8, 2 threads: 1.12 ms as one
// single-threaded primitive, 0.79 ms split (gpuhive perf, docs/benchmarks.md). Not below AVX-512,
// where the primitive is oneDNN's gemm-based "ref" RNN.
class LstmPrimitive {
 public:
  // Shapes and present inputs/outputs of one prepared LSTM node (ONNX input/output indices).
  struct Options {
    int64_t dirs = 1;  // 2 = bidirectional
    bool reverse_only = false;
    int64_t layout = 0;
    int64_t seq = 0, batch = 0, input = 0, hidden = 0;
    bool has_b = false, has_h0 = false, has_c0 = false, has_p = false;
    bool want_y = false, want_yh = false, want_yc = false;
  };

  // Builds the primitive(s) and reorders constant weights (W, R, B, P read through
  // ctx.input_value) into persistent buffers; weights that are not constant are reordered on every
  // Run. Adds Run's scratch memory to `ws`. Returns kUnimplemented when oneDNN offers only its
  // reference implementation or rejects the configuration; the caller then uses its loops.
  static StatusOr<std::unique_ptr<LstmPrimitive>> Create(const PrepareContext& ctx, const Options& options,
                                                         WorkspacePlan& ws);

  // oneDNN's implementation name ("brgemm", ...), with " [rows split N ways]" when the batch is split
  // across N threads.
  const std::string& implementation() const { return implementation_; }

  // Computes Y, Y_h and Y_c (those requested) from the node's inputs. sequence_lens must be absent
  // or all equal to the sequence length (the caller checks). Thread safe like Kernel::Run.
  Status Run(const RunContext& ctx) const;

 private:
  // The memory descriptors of a slice of batch rows: views with the whole batch's strides.
  struct SliceMds {
    memory::desc src, y, h0, c0, yh, yc;
  };
  // One direction's primitives (one per slice size: the last slice may be smaller) and its weights
  // in the primitives' formats.
  struct Direction {
    int64_t index = 0;  // ONNX direction slot (0 forward, 1 reverse of a bidirectional node)
    std::vector<dnnl::lstm_forward> prims;  // by slice size index (SliceSize)
    Buffer weights_layer, weights_iter, bias, peephole;  // empty when W/R/B/P are not constant
  };

  explicit LstmPrimitive(const Options& o) : o_(o) {}
  Status Init(const PrepareContext& ctx, WorkspacePlan& ws);
  // Builds each direction's primitives for `slices` slices (1: the whole batch); returns whether
  // they all got the same weight formats and, when `avoid_ref`, an implementation other than ref.
  StatusOr<bool> BuildPrimitives(int64_t slices, bool avoid_ref, size_t* scratch);
  Status RunSlice(const RunContext& ctx, const Direction& dir, int64_t slice, const ArgMap& shared) const;
  SliceMds MdsFor(int64_t rows) const;
  int64_t SliceStart(int64_t slice) const { return slice * slice_rows_; }
  int64_t SliceRows(int64_t slice) const { return std::min(slice_rows_, o_.batch - SliceStart(slice)); }
  size_t SliceSize(int64_t slice) const { return SliceRows(slice) == slice_rows_ ? 0 : 1; }
  // Element offsets of direction d and batch row b in Y, in the states and in X.
  int64_t YOffset(int64_t d, int64_t b) const {
    return o_.layout == 0 ? (d * o_.batch + b) * o_.hidden : (b * o_.seq * o_.dirs + d) * o_.hidden;
  }
  int64_t StateOffset(int64_t d, int64_t b) const {
    return o_.layout == 0 ? (d * o_.batch + b) * o_.hidden : (b * o_.dirs + d) * o_.hidden;
  }
  int64_t SrcOffset(int64_t b) const { return o_.layout == 0 ? b * o_.input : b * o_.seq * o_.input; }

  Options o_;
  std::vector<Direction> dirs_;
  std::string implementation_;
  int threads_ = 1;  // OpenMP team size the primitive was created for and runs with
  int64_t slices_ = 1, slice_rows_ = 0;  // the batch split (1 slice: the whole batch)
  std::vector<SliceMds> slice_mds_;      // by slice size index
  memory::desc wl_user_md_, wi_user_md_, bias_md_, peephole_md_;  // plain ldigo / ldgo
  memory::desc wl_md_, wi_md_, scratch_md_;                         // the primitive's choice
  dnnl::reorder wl_reorder_, wi_reorder_;                           // for weights known only at run time
  bool weights_at_run_ = false, bias_at_run_ = false, peephole_at_run_ = false;
  // oneDNN wants h and c states in pairs: a missing partner of initial_h/c (zeros) or of Y_h/Y_c
  // (discarded) lives in the workspace, as does Y when the node does not output it.
  size_t ws_scratch_ = 0, scratch_bytes_ = 0, ws_y_ = 0, ws_state_in_ = 0, ws_state_out_ = 0;
  size_t ws_stage_ = 0, ws_wl_ = 0, ws_wi_ = 0, ws_bias_ = 0, ws_peephole_ = 0;
};

}  // namespace gpuhive::cpu::onednn
