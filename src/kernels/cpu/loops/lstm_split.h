// A batch-1 LSTM whose hidden units are split across threads (ONNX semantics for the case oneDNN's
// LSTM primitive also computes: default activations, no clip, no peepholes, input_forget = 0,
// every step of the sequence).
//
// Why: at batch 1 a step is one [1, I + H] x [I + H, 4H] product, too small for oneDNN to split,
// so its LSTM primitive runs the whole sequence on one thread however many the run has (the audio
// model: 0.46 ms on one thread or two). Here each thread owns a slice of the hidden units (all
// four gates of them, so the cell update stays local) and keeps that slice's weights hot in its own
// cache; threads meet once per step, when every slice of h_t is written. AVX-512 only: elsewhere
// the caller keeps oneDNN's primitive.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string_view>

namespace gpuhive::cpu::loops {

class LstmHiddenSplit {
 public:
  struct Options {
    int64_t dirs = 1;  // 2 = bidirectional (forward, then reverse)
    bool reverse_only = false;
    int64_t seq = 0, input = 0, hidden = 0;
  };

  // Units per tile: a tile's four gates are eight 16-float accumulators.
  static constexpr int64_t kTile = 32;

  // Floats of the packed weights Create writes (the caller allocates them, so that they count where
  // the model's other persistent bytes do, and keeps them alive as long as the object).
  static size_t PackedFloats(const Options& options);

  // w [dirs, 4H, I], r [dirs, 4H, H] and b [dirs, 8H] (may be null) in ONNX's layout and gate order
  // (i, o, f, c), packed per tile into `packed` (PackedFloats floats). Null when the AVX-512 path is
  // unavailable on this CPU.
  static std::unique_ptr<LstmHiddenSplit> Create(const Options& options, const float* w, const float* r,
                                                 const float* b, float* packed);

  // Floats of scratch Run needs (two h buffers and the cell state, tile-padded).
  size_t ScratchFloats() const { return static_cast<size_t>(3 * tiles_ * kTile); }
  // Threads a run uses at most (one tile each at least).
  int MaxThreads(int budget) const { return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(budget, tiles_))); }

  // x [seq, I]; h0, c0 [dirs, H] or null (zeros); y [seq, dirs, H], yh, yc [dirs, H] or null (not
  // wanted). The batch-1 shapes are the same in both ONNX layouts. `scratch` holds
  // ScratchFloats() floats, 64-byte aligned. Opens one OpenMP region of up to `threads` threads.
  void Run(const float* x, const float* h0, const float* c0, float* y, float* yh, float* yc, float* scratch,
           int threads) const;

  static constexpr std::string_view kImplementation = "gpuhive:lstm_avx512 [hidden units split]";

 private:
  explicit LstmHiddenSplit(const Options& o);

  Options o_;
  int64_t tiles_ = 0;
  // In the caller's buffer, per direction, per tile: W as [I][4][kTile], R as [H][4][kTile], the
  // bias (Wb + Rb) as [4][kTile].
  const float *w_ = nullptr, *r_ = nullptr, *bias_ = nullptr;
};

}  // namespace gpuhive::cpu::loops
