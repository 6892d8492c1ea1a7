#include "kernels/cpu/loops/lstm_split.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "kernels/cpu/loops/avx512_math.h"

namespace gpuhive::cpu::loops {
namespace {

// ONNX's gate slots in W, R and B: i, o, f, c.
constexpr int kGateI = 0, kGateO = 1, kGateF = 2, kGateC = 3;

// A barrier for the threads of one OpenMP region that meet once per time step (a few microseconds
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

#ifdef GPUHIVE_HAVE_AVX512_PATHS
using avx512::TailMask;

// acc[g * 2 + half] += sum_k v[k] * packed[k][g][half * 16 .. +16] for one tile.
GPUHIVE_AVX512 inline void AccumulateTile(const float* packed, const float* v, int64_t k_count, __m512 acc[8]) {
  for (int64_t k = 0; k < k_count; ++k) {
    const __m512 b = _mm512_set1_ps(v[k]);
    const float* p = packed + k * 4 * LstmHiddenSplit::kTile;
    for (int j = 0; j < 8; ++j) acc[j] = _mm512_fmadd_ps(_mm512_loadu_ps(p + j * 16), b, acc[j]);
  }
}

struct DirectionArgs {
  const float *w, *r, *bias;  // this direction's packed tiles
  const float* x;
  const float *h0, *c0;       // this direction's [H] or null
  float *y, *yh, *yc;         // y at this direction's first column, or null
  bool reverse;
};

// One thread's part of one direction: tiles [tile_begin, tile_end).
GPUHIVE_AVX512 void RunDirectionSlice(const LstmHiddenSplit::Options& o, const DirectionArgs& a, int64_t tile_begin,
                                      int64_t tile_end, float* hbuf0, float* hbuf1, float* c, StepBarrier& barrier,
                                      int team) {
  constexpr int64_t T = LstmHiddenSplit::kTile;
  const int64_t H = o.hidden, I = o.input;
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    for (int half = 0; half < 2; ++half) {
      const int64_t u = tile * T + half * 16;
      const __mmask16 m = TailMask(std::max<int64_t>(0, H - u));
      _mm512_storeu_ps(c + u, a.c0 != nullptr ? _mm512_maskz_loadu_ps(m, a.c0 + u) : _mm512_setzero_ps());
    }
  }
  for (int64_t s = 0; s < o.seq; ++s) {
    const int64_t t = a.reverse ? o.seq - 1 - s : s;
    const float* h_prev = s == 0 ? a.h0 : (s & 1) ? hbuf0 : hbuf1;
    float* h_next = (s & 1) ? hbuf1 : hbuf0;
    const float* xt = a.x + t * I;
    for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
      __m512 acc[8];
      const float* bias = a.bias + tile * 4 * T;
      for (int j = 0; j < 8; ++j) acc[j] = _mm512_loadu_ps(bias + j * 16);
      AccumulateTile(a.w + tile * I * 4 * T, xt, I, acc);
      if (h_prev != nullptr) AccumulateTile(a.r + tile * H * 4 * T, h_prev, H, acc);
      for (int half = 0; half < 2; ++half) {
        const int64_t u = tile * T + half * 16;
        const __m512 gi = avx512::Sigmoid(acc[kGateI * 2 + half]);
        const __m512 go = avx512::Sigmoid(acc[kGateO * 2 + half]);
        const __m512 gf = avx512::Sigmoid(acc[kGateF * 2 + half]);
        const __m512 gc = avx512::Tanh(acc[kGateC * 2 + half]);
        const __m512 cn = _mm512_fmadd_ps(gf, _mm512_loadu_ps(c + u), _mm512_mul_ps(gi, gc));
        const __m512 hn = _mm512_mul_ps(go, avx512::Tanh(cn));
        _mm512_storeu_ps(c + u, cn);
        _mm512_storeu_ps(h_next + u, hn);
        if (a.y != nullptr) {
          _mm512_mask_storeu_ps(a.y + t * o.dirs * H + u, TailMask(std::max<int64_t>(0, H - u)), hn);
        }
      }
    }
    barrier.Wait(team);  // h_t complete in h_next for every tile
  }
  const float* h_last = o.seq == 0 ? nullptr : ((o.seq - 1) & 1) ? hbuf1 : hbuf0;
  for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
    for (int half = 0; half < 2; ++half) {
      const int64_t u = tile * T + half * 16;
      const __mmask16 m = TailMask(std::max<int64_t>(0, H - u));
      if (a.yh != nullptr) _mm512_mask_storeu_ps(a.yh + u, m, _mm512_loadu_ps(h_last + u));
      if (a.yc != nullptr) _mm512_mask_storeu_ps(a.yc + u, m, _mm512_loadu_ps(c + u));
    }
  }
}
#endif

// ONNX rows of gate g, unit u: src + (g * H + u) * k_count; packed [tile][k][g][j].
void PackTiles(const float* src, int64_t hidden, int64_t k_count, int64_t tiles, float* out) {
  constexpr int64_t T = LstmHiddenSplit::kTile;
  for (int64_t tile = 0; tile < tiles; ++tile) {
    for (int64_t k = 0; k < k_count; ++k) {
      for (int64_t g = 0; g < 4; ++g) {
        for (int64_t j = 0; j < T; ++j) {
          const int64_t u = tile * T + j;
          out[((tile * k_count + k) * 4 + g) * T + j] = u < hidden ? src[(g * hidden + u) * k_count + k] : 0.f;
        }
      }
    }
  }
}

}  // namespace

LstmHiddenSplit::LstmHiddenSplit(const Options& o) : o_(o), tiles_((o.hidden + kTile - 1) / kTile) {}

size_t LstmHiddenSplit::PackedFloats(const Options& o) {
  const int64_t tiles = (o.hidden + kTile - 1) / kTile;
  return static_cast<size_t>(o.dirs * tiles * (o.input + o.hidden + 1) * 4 * kTile);
}

std::unique_ptr<LstmHiddenSplit> LstmHiddenSplit::Create(const Options& options, const float* w, const float* r,
                                                         const float* b, float* packed) {
  if (!Avx512Usable() || options.seq <= 0 || options.input <= 0 || options.hidden <= 0) return nullptr;
  std::unique_ptr<LstmHiddenSplit> p(new LstmHiddenSplit(options));
  const int64_t D = options.dirs, H = options.hidden, I = options.input, tiles = p->tiles_;
  const size_t w_per_dir = static_cast<size_t>(tiles * I * 4 * kTile), r_per_dir = static_cast<size_t>(tiles * H * 4 * kTile);
  const size_t b_per_dir = static_cast<size_t>(tiles * 4 * kTile);
  float* pw = packed;
  float* pr = pw + w_per_dir * D;
  float* pb = pr + r_per_dir * D;
  std::fill(pb, pb + b_per_dir * D, 0.f);
  for (int64_t d = 0; d < D; ++d) {
    PackTiles(w + d * 4 * H * I, H, I, tiles, pw + d * w_per_dir);
    PackTiles(r + d * 4 * H * H, H, H, tiles, pr + d * r_per_dir);
    if (b == nullptr) continue;
    float* bias = pb + d * b_per_dir;
    for (int64_t tile = 0; tile < tiles; ++tile) {
      for (int64_t g = 0; g < 4; ++g) {
        for (int64_t j = 0; j < kTile && tile * kTile + j < H; ++j) {
          const int64_t u = tile * kTile + j;
          bias[(tile * 4 + g) * kTile + j] = b[d * 8 * H + g * H + u] + b[d * 8 * H + 4 * H + g * H + u];
        }
      }
    }
  }
  p->w_ = pw, p->r_ = pr, p->bias_ = pb;
  return p;
}

void LstmHiddenSplit::Run(const float* x, const float* h0, const float* c0, float* y, float* yh, float* yc,
                          float* scratch, int threads) const {
#ifdef GPUHIVE_HAVE_AVX512_PATHS
  const int64_t D = o_.dirs, H = o_.hidden, I = o_.input, padded = tiles_ * kTile;
  float* hbuf0 = scratch;
  float* hbuf1 = scratch + padded;
  float* c = scratch + 2 * padded;
  StepBarrier barrier;
#pragma omp parallel num_threads(MaxThreads(threads))
  {
    const int team = omp_get_num_threads(), me = omp_get_thread_num();
    const int64_t begin = tiles_ * me / team, end = tiles_ * (me + 1) / team;
    for (int64_t d = 0; d < D; ++d) {
      DirectionArgs a;
      a.w = w_ + d * tiles_ * I * 4 * kTile;
      a.r = r_ + d * tiles_ * H * 4 * kTile;
      a.bias = bias_ + d * tiles_ * 4 * kTile;
      a.x = x;
      a.h0 = h0 != nullptr ? h0 + d * H : nullptr;
      a.c0 = c0 != nullptr ? c0 + d * H : nullptr;
      a.y = y != nullptr ? y + d * H : nullptr;
      a.yh = yh != nullptr ? yh + d * H : nullptr;
      a.yc = yc != nullptr ? yc + d * H : nullptr;
      a.reverse = o_.reverse_only || d == 1;
      RunDirectionSlice(o_, a, begin, end, hbuf0, hbuf1, c, barrier, team);
    }
  }
#else
  (void)x, (void)h0, (void)c0, (void)y, (void)yh, (void)yc, (void)scratch, (void)threads;
#endif
}

}  // namespace gpuhive::cpu::loops
