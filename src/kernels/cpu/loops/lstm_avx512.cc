#include "kernels/cpu/loops/lstm_avx512.h"

#include <omp.h>

#include <atomic>
#include <thread>

#include "kernels/cpu/loops/avx512_math.h"

namespace gpuhive::cpu::loops {
namespace {

constexpr int64_t kTile = LstmAvx512::kTile;
// ONNX's gate slots in W, R and B: i, o, f, c.
constexpr int kGateI = 0, kGateO = 1, kGateF = 2, kGateC = 3;
// Rows whose products share each loaded weight vector (4 x 4 accumulators; with 6 GCC spilled them).
constexpr int kRowGroup = 4;
constexpr int kVecs = 4;  // accumulators per row and tile: one 16-unit vector per gate
constexpr int64_t kPrefetch = 8;  // weight rows (k) ahead that the products prefetch

// A barrier for the threads of one OpenMP region that meet once per time step (microseconds
// apart): spins, then yields so that a descheduled partner gets the core back.
class StepBarrier {
 public:
  void Wait(int n) {
    if (n <= 1) return;
    const int gen = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == n - 1) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.store(gen + 1, std::memory_order_release);
      return;
    }
    for (int spins = 0; generation_.load(std::memory_order_acquire) == gen; ++spins) {
      if (spins > 20000) std::this_thread::yield();
    }
  }

 private:
  alignas(64) std::atomic<int> arrived_{0};
  alignas(64) std::atomic<int> generation_{0};
};

// One thread's share of one direction, and where everything is.
struct Slice {
  const LstmAvx512::Options* o;
  const float *w, *r, *bias;  // this direction's packed tiles
  const float *x, *h0, *c0;   // the node's tensors (h0, c0 may be null)
  float *y, *yh, *yc;         // may be null
  float* scratch;             // [2 h buffers + c][batch][tiles * kTile], then G
  int64_t d = 0, tiles = 0;
  int64_t row_begin = 0, row_end = 0, tile_begin = 0, tile_end = 0;
  bool reverse = false;
  StepBarrier* barrier;
  int sync = 1;  // threads that meet after each step (1: none)

  int64_t XOffset(int64_t t, int64_t b) const {
    return (o->layout == 0 ? t * o->batch + b : b * o->seq + t) * o->input;
  }
  int64_t YOffset(int64_t t, int64_t b) const {
    return (o->layout == 0 ? (t * o->dirs + d) * o->batch + b : (b * o->seq + t) * o->dirs + d) * o->hidden;
  }
  int64_t StateOffset(int64_t b) const {
    return (o->layout == 0 ? d * o->batch + b : b * o->dirs + d) * o->hidden;
  }
  float* HBuf(int parity, int64_t b) const { return scratch + (parity * o->batch + b) * tiles * kTile; }
  float* Cell(int64_t b) const { return scratch + (2 * o->batch + b) * tiles * kTile; }
  // The input projection plus bias of step t, row b, tile: [4 gates][kTile].
  float* G(int64_t t, int64_t b, int64_t tile) const {
    return scratch + 3 * o->batch * tiles * kTile + ((t * o->batch + b) * tiles + tile) * 4 * kTile;
  }
};

#ifdef GPUHIVE_HAVE_AVX512_PATHS
using avx512::TailMask;

// acc[i][g] += sum_k v[i][k] * packed[k][g][0..16] for R rows of one tile. Up to two rows keep a
// second set of accumulators for odd k, so that eight independent chains hide the FMA latency.
// Not inlined: inlined into the gate math, whose constants GCC hoists into registers, four rows'
// accumulators no longer fit and one of them went through the stack on every k (the audio model at
// batch 8 on two threads: 1.00 -> 0.82-0.86 ms).
template <int R>
__attribute__((noinline)) GPUHIVE_AVX512 void AccumulateRows(const float* packed, const float* const* v,
                                                             int64_t k_count, __m512 (&io)[R][kVecs]) {
  constexpr int64_t kStride = 4 * kTile;
  __m512 acc[R][kVecs];  // in registers: `io` may alias the float loads as far as the compiler knows
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < kVecs; ++j) acc[i][j] = io[i][j];
  int64_t k = 0;
  if constexpr (R <= 2) {
    __m512 odd[R][kVecs];
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < kVecs; ++j) odd[i][j] = _mm512_setzero_ps();
    for (; k + 2 <= k_count; k += 2) {
      const float* p = packed + k * kStride;
      for (int line = 0; line < 8; ++line) _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetch * kStride + line * 16), _MM_HINT_T0);
      __m512 b0[R], b1[R];
      for (int i = 0; i < R; ++i) b0[i] = _mm512_set1_ps(v[i][k]), b1[i] = _mm512_set1_ps(v[i][k + 1]);
      for (int j = 0; j < kVecs; ++j) {
        const __m512 w0 = _mm512_loadu_ps(p + j * 16), w1 = _mm512_loadu_ps(p + kStride + j * 16);
        for (int i = 0; i < R; ++i) {
          acc[i][j] = _mm512_fmadd_ps(w0, b0[i], acc[i][j]);
          odd[i][j] = _mm512_fmadd_ps(w1, b1[i], odd[i][j]);
        }
      }
    }
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < kVecs; ++j) acc[i][j] = _mm512_add_ps(acc[i][j], odd[i][j]);
  }
  for (; k < k_count; ++k) {
    __m512 b[R];
    for (int i = 0; i < R; ++i) b[i] = _mm512_set1_ps(v[i][k]);
    const float* p = packed + k * kStride;
    for (int line = 0; line < 4; ++line) _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetch * kStride + line * 16), _MM_HINT_T0);
    __m512 wv[kVecs];
    for (int j = 0; j < kVecs; ++j) wv[j] = _mm512_loadu_ps(p + j * 16);
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < kVecs; ++j) acc[i][j] = _mm512_fmadd_ps(wv[j], b[i], acc[i][j]);
  }
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < kVecs; ++j) io[i][j] = acc[i][j];
}

// G = bias + W x for R (step, row) pairs of one tile: the input projection, before the recurrence.
template <int R>
GPUHIVE_AVX512 void ProjectRows(const Slice& s, const int64_t* t, const int64_t* b, int64_t tile) {
  __m512 acc[R][kVecs];
  const float* bias = s.bias + tile * 4 * kTile;
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < kVecs; ++j) acc[i][j] = _mm512_loadu_ps(bias + j * 16);
  const float* v[R];
  for (int i = 0; i < R; ++i) v[i] = s.x + s.XOffset(t[i], b[i]);
  AccumulateRows<R>(s.w + tile * s.o->input * 4 * kTile, v, s.o->input, acc);
  for (int i = 0; i < R; ++i) {
    float* g = s.G(t[i], b[i], tile);
    for (int j = 0; j < kVecs; ++j) _mm512_storeu_ps(g + j * 16, acc[i][j]);
  }
}

// One step of rows [row, row + R) on one tile: the recurrent product, gates, cell and hidden state.
template <int R>
GPUHIVE_AVX512 void StepRows(const Slice& s, int64_t step, int64_t t, int64_t tile, int64_t row) {
  const int64_t H = s.o->hidden;
  __m512 acc[R][kVecs];
  for (int i = 0; i < R; ++i) {
    const float* g = s.G(t, row + i, tile);
    for (int j = 0; j < kVecs; ++j) acc[i][j] = _mm512_loadu_ps(g + j * 16);
  }
  if (step > 0 || s.h0 != nullptr) {  // h_{-1} = 0 without initial_h
    const float* v[R];
    for (int i = 0; i < R; ++i) v[i] = step == 0 ? s.h0 + s.StateOffset(row + i) : s.HBuf((step - 1) & 1, row + i);
    AccumulateRows<R>(s.r + tile * H * 4 * kTile, v, H, acc);
  }
  const int64_t u = tile * kTile;
  const __mmask16 valid = TailMask(std::max<int64_t>(0, H - u));
  for (int i = 0; i < R; ++i) {
    float* c = s.Cell(row + i);
    const __m512 gi = avx512::Sigmoid(acc[i][kGateI]);
    const __m512 go = avx512::Sigmoid(acc[i][kGateO]);
    const __m512 gf = avx512::Sigmoid(acc[i][kGateF]);
    const __m512 gc = avx512::Tanh(acc[i][kGateC]);
    const __m512 cn = _mm512_fmadd_ps(gf, _mm512_loadu_ps(c + u), _mm512_mul_ps(gi, gc));
    const __m512 hn = _mm512_mul_ps(go, avx512::Tanh(cn));
    _mm512_storeu_ps(c + u, cn);
    _mm512_storeu_ps(s.HBuf(step & 1, row + i) + u, hn);
    if (s.y != nullptr) _mm512_mask_storeu_ps(s.y + s.YOffset(t, row + i) + u, valid, hn);
  }
}

template <int R>
GPUHIVE_AVX512 void ProjectGroup(const Slice& s, const int64_t* t, const int64_t* b, int64_t tile, int n) {
  if constexpr (R > 1) {
    if (n < R) return ProjectGroup<R - 1>(s, t, b, tile, n);
  }
  ProjectRows<R>(s, t, b, tile);
}

template <int R>
GPUHIVE_AVX512 void StepGroup(const Slice& s, int64_t step, int64_t t, int64_t tile, int64_t row, int n) {
  if constexpr (R > 1) {
    if (n < R) return StepGroup<R - 1>(s, step, t, tile, row, n);
  }
  StepRows<R>(s, step, t, tile, row);
}

GPUHIVE_AVX512 void RunSlice(const Slice& s) {
  const int64_t H = s.o->hidden, T = s.o->seq, rows = s.row_end - s.row_begin;
  for (int64_t b = s.row_begin; b < s.row_end; ++b) {
    for (int64_t tile = s.tile_begin; tile < s.tile_end; ++tile) {
      const int64_t u = tile * kTile;
      const __mmask16 m = TailMask(std::max<int64_t>(0, H - u));
      _mm512_storeu_ps(s.Cell(b) + u,
                       s.c0 != nullptr ? _mm512_maskz_loadu_ps(m, s.c0 + s.StateOffset(b) + u) : _mm512_setzero_ps());
    }
  }
  // The input projection of every step of these rows and tiles, kRowGroup (step, row) pairs a pass.
  for (int64_t tile = s.tile_begin; tile < s.tile_end; ++tile) {
    for (int64_t q = 0; q < T * rows; q += kRowGroup) {
      int64_t t[kRowGroup], b[kRowGroup];
      const int n = static_cast<int>(std::min<int64_t>(kRowGroup, T * rows - q));
      for (int i = 0; i < n; ++i) t[i] = (q + i) / rows, b[i] = s.row_begin + (q + i) % rows;
      ProjectGroup<kRowGroup>(s, t, b, tile, n);
    }
  }
  for (int64_t step = 0; step < T; ++step) {
    const int64_t t = s.reverse ? T - 1 - step : step;
    for (int64_t tile = s.tile_begin; tile < s.tile_end; ++tile) {
      for (int64_t row = s.row_begin; row < s.row_end; row += kRowGroup) {
        StepGroup<kRowGroup>(s, step, t, tile, row, static_cast<int>(std::min<int64_t>(kRowGroup, s.row_end - row)));
      }
    }
    s.barrier->Wait(s.sync);  // h_t complete for every tile of these rows
  }
  for (int64_t b = s.row_begin; b < s.row_end; ++b) {
    const float* h_last = s.HBuf((T - 1) & 1, b);
    for (int64_t tile = s.tile_begin; tile < s.tile_end; ++tile) {
      const int64_t u = tile * kTile;
      const __mmask16 m = TailMask(std::max<int64_t>(0, H - u));
      if (s.yh != nullptr) _mm512_mask_storeu_ps(s.yh + s.StateOffset(b) + u, m, _mm512_loadu_ps(h_last + u));
      if (s.yc != nullptr) _mm512_mask_storeu_ps(s.yc + s.StateOffset(b) + u, m, _mm512_loadu_ps(s.Cell(b) + u));
    }
  }
}
#endif

// ONNX rows of gate g, unit u: src + (g * H + u) * k_count; packed [tile][k][g][j].
void PackTiles(const float* src, int64_t hidden, int64_t k_count, int64_t tiles, float* out) {
  for (int64_t tile = 0; tile < tiles; ++tile) {
    for (int64_t k = 0; k < k_count; ++k) {
      for (int64_t g = 0; g < 4; ++g) {
        for (int64_t j = 0; j < kTile; ++j) {
          const int64_t u = tile * kTile + j;
          out[((tile * k_count + k) * 4 + g) * kTile + j] = u < hidden ? src[(g * hidden + u) * k_count + k] : 0.f;
        }
      }
    }
  }
}

}  // namespace

size_t LstmAvx512::PackedFloats(const Options& o) {
  const int64_t tiles = (o.hidden + kTile - 1) / kTile;
  return static_cast<size_t>(o.dirs * tiles * (o.input + o.hidden + 1) * 4 * kTile);
}

std::unique_ptr<LstmAvx512> LstmAvx512::Create(const Options& options, const float* w, const float* r,
                                               const float* b, float* packed) {
  if (!Avx512Usable() || options.seq <= 0 || options.batch <= 0 || options.input <= 0 || options.hidden <= 0) {
    return nullptr;
  }
  std::unique_ptr<LstmAvx512> p(new LstmAvx512(options));
  const int64_t D = options.dirs, H = options.hidden, I = options.input, tiles = p->tiles_;
  const int64_t w_per_dir = tiles * I * 4 * kTile, r_per_dir = tiles * H * 4 * kTile, b_per_dir = tiles * 4 * kTile;
  float* pw = packed;
  float* pr = pw + w_per_dir * D;
  float* pb = pr + r_per_dir * D;
  std::fill(pb, pb + b_per_dir * D, 0.f);
  for (int64_t d = 0; d < D; ++d) {
    PackTiles(w + d * 4 * H * I, H, I, tiles, pw + d * w_per_dir);
    PackTiles(r + d * 4 * H * H, H, H, tiles, pr + d * r_per_dir);
    if (b == nullptr) continue;
    float* bias = pb + d * b_per_dir;
    for (int64_t g = 0; g < 4; ++g) {
      for (int64_t u = 0; u < H; ++u) {
        bias[((u / kTile) * 4 + g) * kTile + u % kTile] = b[d * 8 * H + g * H + u] + b[d * 8 * H + 4 * H + g * H + u];
      }
    }
  }
  p->w_ = pw, p->r_ = pr, p->bias_ = pb;
  return p;
}

int LstmAvx512::TeamSize(int threads) const {
  if (threads <= 1) return 1;
  if (o_.batch >= threads) return threads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, tiles_)));
}

std::string LstmAvx512::Implementation(int threads) const {
  const int team = TeamSize(threads);
  if (team == 1) return "gpuhive:lstm_avx512 [1 thread]";
  return "gpuhive:lstm_avx512 [" + std::string(SplitsRows(team) ? "rows" : "hidden units") + " split " +
         std::to_string(team) + " ways]";
}

void LstmAvx512::Run(const float* x, const float* h0, const float* c0, float* y, float* yh, float* yc, float* scratch,
                     int threads) const {
#ifdef GPUHIVE_HAVE_AVX512_PATHS
  StepBarrier barrier;
#pragma omp parallel num_threads(TeamSize(threads))
  {
    const int team = omp_get_num_threads(), me = omp_get_thread_num();
    Slice s;
    s.o = &o_;
    s.x = x, s.h0 = h0, s.c0 = c0, s.y = y, s.yh = yh, s.yc = yc, s.scratch = scratch;
    s.tiles = tiles_;
    s.barrier = &barrier;
    if (SplitsRows(team)) {
      s.row_begin = o_.batch * me / team, s.row_end = o_.batch * (me + 1) / team;
      s.tile_begin = 0, s.tile_end = tiles_;
    } else {
      s.row_begin = 0, s.row_end = o_.batch;
      s.tile_begin = tiles_ * me / team, s.tile_end = tiles_ * (me + 1) / team;
      s.sync = team;
    }
    for (int64_t d = 0; d < o_.dirs; ++d) {
      s.d = d;
      s.w = w_ + d * tiles_ * o_.input * 4 * kTile;
      s.r = r_ + d * tiles_ * o_.hidden * 4 * kTile;
      s.bias = bias_ + d * tiles_ * 4 * kTile;
      s.reverse = o_.reverse_only || d == 1;
      RunSlice(s);
    }
  }
#else
  (void)x, (void)h0, (void)c0, (void)y, (void)yh, (void)yc, (void)scratch, (void)threads;
#endif
}

}  // namespace gpuhive::cpu::loops
