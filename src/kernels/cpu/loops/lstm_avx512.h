// The LSTM of small steps on AVX-512, its work split across threads by batch rows or, when there
// are fewer rows than threads, by hidden units (ONNX semantics for the case oneDNN's LSTM primitive
// also computes: default activations, no clip, no peepholes, input_forget = 0, every step of the
// sequence; constant weights, packed once).
//
// Why: a step of a small LSTM is one [B, I + H] x [I + H, 4H] product, too small for oneDNN to
// split across threads, so its primitive runs a batch-1 sequence on one thread (the audio model:
// 0.46 ms on one thread or two) and larger batches as one primitive per slice of rows. Here
// each thread owns rows (no synchronization at all) or, at batch 1, a slice of the hidden units with
// all four gates of each (the cell update stays local; the threads meet once per step, when every
// slice of h_t is written). The products load each packed weight vector once for up to four rows.
// Elsewhere (no AVX-512, large steps) the caller keeps oneDNN's primitive.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

namespace gpuhive::cpu::loops {

class LstmAvx512 {
 public:
  struct Options {
    int64_t dirs = 1;  // 2 = bidirectional (forward, then reverse)
    bool reverse_only = false;
    int64_t layout = 0;  // ONNX layout: 0 = [seq, batch, ...], 1 = [batch, seq, ...]
    int64_t seq = 0, batch = 0, input = 0, hidden = 0;
  };

  // Units per tile: a tile's four gates are four 16-float accumulators per row.
  static constexpr int64_t kTile = 16;

  // Floats of the packed weights Create writes (the caller allocates them, so that they count where
  // the model's other persistent bytes do, and keeps them alive as long as the object).
  static size_t PackedFloats(const Options& options);

  // w [dirs, 4H, I], r [dirs, 4H, H] and b [dirs, 8H] (may be null) in ONNX's layout and gate order
  // (i, o, f, c), packed per tile into `packed` (PackedFloats floats). Null when the AVX-512 path is
  // unavailable on this CPU.
  static std::unique_ptr<LstmAvx512> Create(const Options& options, const float* w, const float* r, const float* b,
                                            float* packed);

  // Floats of scratch Run needs (two h buffers and the cell state per row, tile-padded, and the
  // input projection of every step and row, [seq][batch][tiles][4][kTile]).
  size_t ScratchFloats() const { return static_cast<size_t>((3 + 4 * o_.seq) * o_.batch * tiles_ * kTile); }

  // What a run on `threads` threads does, for Kernel::implementation():
  // "gpuhive:lstm_avx512 [rows split 2 ways]", "... [hidden units split 2 ways]" or "... [1 thread]".
  std::string Implementation(int threads) const;

  // x, h0, c0 (null: zeros), y, yh, yc (null: not wanted) are the ONNX node's tensors in the options'
  // layout. `scratch` holds ScratchFloats() floats. Opens one OpenMP region of up to `threads`.
  void Run(const float* x, const float* h0, const float* c0, float* y, float* yh, float* yc, float* scratch,
           int threads) const;

 private:
  explicit LstmAvx512(const Options& o) : o_(o), tiles_((o.hidden + kTile - 1) / kTile) {}
  // Threads a run uses and whether they split rows (else hidden units).
  int TeamSize(int threads) const;
  bool SplitsRows(int team) const { return o_.batch >= team; }

  Options o_;
  int64_t tiles_ = 0;
  // In the caller's buffer, per direction, per tile: W as [I][4][kTile], R as [H][4][kTile], the
  // bias (Wb + Rb) as [4][kTile].
  const float *w_ = nullptr, *r_ = nullptr, *bias_ = nullptr;
};

}  // namespace gpuhive::cpu::loops
