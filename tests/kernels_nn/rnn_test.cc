#include <cmath>
#include <string>

#include "kernels/cpu/loops/avx512_math.h"
#include "kernels/cpu/loops/lstm_avx512.h"
#include "kernels/cpu/onednn/common.h"
#include "kernels_nn/blocked_harness.h"
#include "kernels_nn/reference.h"

namespace gpuhive::testing {
namespace {

float Sig(float x) { return 1.f / (1.f + std::exp(-x)); }

enum class Cell { kLstm, kGru, kRnn };

// Which implementation the kernel must report after Prepare (kAny: not checked).
enum class Path { kAny, kOneDnn, kLoops };
constexpr char kLoops[] = "gpuhive:rnn_loops";

struct RnnSetup {
  Cell cell;
  int64_t seq = 4, batch = 3, input = 5, hidden = 4;
  int dirs = 1;
  bool reverse = false, bias = true, init = true, peephole = false, lens = false, lbr = false;
  int layout = 0;
  bool full_lens = false;        // sequence_lens given, every entry the full length
  bool no_c0 = false;            // with init: initial_h only (LSTM)
  bool constant_weights = false;  // W, R, B, P visible while preparing, as initializers are
  int outputs = 0;                // 0: all (3 for LSTM, 2 otherwise); 1: Y only
  Path path = Path::kAny;
  std::map<std::string, ir::Attribute> extra_attrs;  // attributes that do not change the result
  int threads = 1;
  std::string* implementation = nullptr;  // Path::kAny: receives the kernel's implementation()
};

// Plain per-step reference in layout 0 (x [seq, batch, input]); returns Y, Y_h, Y_c.
std::vector<Tensor> RefRnn(const RnnSetup& s, const Tensor& x, const Tensor& w, const Tensor& r, const Tensor* b,
                           const std::vector<int>& lens, const Tensor* h0, const Tensor* c0, const Tensor* p) {
  const int64_t G = s.cell == Cell::kLstm ? 4 : s.cell == Cell::kGru ? 3 : 1, H = s.hidden;
  std::vector<float> y(static_cast<size_t>(s.seq * s.dirs * s.batch * H), 0.f), yh, yc;
  yh.assign(static_cast<size_t>(s.dirs * s.batch * H), 0.f);
  yc = yh;
  for (int d = 0; d < s.dirs; ++d) {
    bool rev = s.reverse || d == 1;
    const float* W = w.as<float>() + d * G * H * s.input;
    const float* R = r.as<float>() + d * G * H * H;
    for (int64_t bi = 0; bi < s.batch; ++bi) {
      std::vector<float> h(static_cast<size_t>(H)), c(static_cast<size_t>(H));
      for (int64_t j = 0; j < H; ++j) {
        h[j] = h0 ? h0->as<float>()[(d * s.batch + bi) * H + j] : 0.f;
        c[j] = c0 ? c0->as<float>()[(d * s.batch + bi) * H + j] : 0.f;
      }
      int64_t len = lens.empty() ? s.seq : lens[bi];
      for (int64_t step = 0; step < len; ++step) {
        int64_t t = rev ? len - 1 - step : step;
        const float* xt = x.as<float>() + (t * s.batch + bi) * s.input;
        auto xw = [&](int64_t row) {
          double a = 0;
          for (int64_t k = 0; k < s.input; ++k) a += xt[k] * W[row * s.input + k];
          return a + (b ? b->as<float>()[d * 2 * G * H + row] : 0.f);
        };
        auto hr = [&](int64_t row, const std::vector<float>& hv) {
          double a = 0;
          for (int64_t k = 0; k < H; ++k) a += hv[k] * R[row * H + k];
          return a + (b ? b->as<float>()[d * 2 * G * H + G * H + row] : 0.f);
        };
        std::vector<float> nh(static_cast<size_t>(H)), nc(static_cast<size_t>(H));
        for (int64_t j = 0; j < H; ++j) {
          if (s.cell == Cell::kRnn) {
            nh[j] = std::tanh(static_cast<float>(xw(j) + hr(j, h)));
          } else if (s.cell == Cell::kGru) {
            float z = Sig(static_cast<float>(xw(j) + hr(j, h)));
            float rr = Sig(static_cast<float>(xw(H + j) + hr(H + j, h)));
            float hh;
            if (s.lbr) {
              hh = std::tanh(static_cast<float>(xw(2 * H + j) + rr * hr(2 * H + j, h)));
            } else {
              std::vector<float> rh(static_cast<size_t>(H));
              for (int64_t k = 0; k < H; ++k) rh[k] = Sig(static_cast<float>(xw(H + k) + hr(H + k, h))) * h[k];
              hh = std::tanh(static_cast<float>(xw(2 * H + j) + hr(2 * H + j, rh)));
            }
            nh[j] = (1 - z) * hh + z * h[j];
          } else {
            const float* P = p ? p->as<float>() + d * 3 * H : nullptr;
            float i = Sig(static_cast<float>(xw(j) + hr(j, h)) + (P ? P[j] * c[j] : 0.f));
            float f = Sig(static_cast<float>(xw(2 * H + j) + hr(2 * H + j, h)) + (P ? P[2 * H + j] * c[j] : 0.f));
            float g = std::tanh(static_cast<float>(xw(3 * H + j) + hr(3 * H + j, h)));
            nc[j] = f * c[j] + i * g;
            float o = Sig(static_cast<float>(xw(H + j) + hr(H + j, h)) + (P ? P[H + j] * nc[j] : 0.f));
            nh[j] = o * std::tanh(nc[j]);
          }
        }
        h = nh;
        if (s.cell == Cell::kLstm) c = nc;
        for (int64_t j = 0; j < H; ++j) y[static_cast<size_t>(((t * s.dirs + d) * s.batch + bi) * H + j)] = h[j];
      }
      for (int64_t j = 0; j < H; ++j) {
        yh[static_cast<size_t>((d * s.batch + bi) * H + j)] = h[j];
        yc[static_cast<size_t>((d * s.batch + bi) * H + j)] = c[j];
      }
    }
  }
  std::vector<Tensor> out;
  out.push_back(MakeFloat({s.seq, s.dirs, s.batch, H}, y));
  out.push_back(MakeFloat({s.dirs, s.batch, H}, yh));
  out.push_back(MakeFloat({s.dirs, s.batch, H}, yc));
  return out;
}

// Permutes a [A, B, ...rest] tensor to [B, A, ...rest] (layout 0 <-> 1 for X and states).
Tensor Swap01(const Tensor& t) {
  Shape s = t.shape();
  int64_t a = s[0], b = s[1], rest = t.num_elements() / (a * b);
  std::vector<float> out(static_cast<size_t>(t.num_elements()));
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j)
      for (int64_t k = 0; k < rest; ++k) out[static_cast<size_t>((j * a + i) * rest + k)] = t.as<float>()[(i * b + j) * rest + k];
  std::swap(s[0], s[1]);
  return MakeFloat(s, out);
}

// oneDNN 2.6's LSTM has an optimized (brgemm) implementation from AVX-512 on; below that it offers
// only "ref", its gemm-based RNN, which the kernel takes (2-2.6x faster than its own loops).
bool OneDnnHasFastLstm() {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto avx512 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core);
  return (isa & avx512) == avx512;
}

double RelativeL2(const Tensor& a, const Tensor& b) {
  std::vector<double> x = ToDoubles(a), y = ToDoubles(b);
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) num += (x[i] - y[i]) * (x[i] - y[i]), den += y[i] * y[i];
  return x.size() != y.size() ? 1.0 : den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

void RunCase(const RnnSetup& s) {
  const int64_t G = s.cell == Cell::kLstm ? 4 : s.cell == Cell::kGru ? 3 : 1, H = s.hidden;
  Tensor x = RandomFloat({s.seq, s.batch, s.input}, 1);
  Tensor w = RandomFloat({s.dirs, G * H, s.input}, 2, -0.5f, 0.5f);
  Tensor r = RandomFloat({s.dirs, G * H, H}, 3, -0.5f, 0.5f);
  Tensor b = RandomFloat({s.dirs, 2 * G * H}, 4, -0.5f, 0.5f);
  Tensor h0 = RandomFloat({s.dirs, s.batch, H}, 5), c0 = RandomFloat({s.dirs, s.batch, H}, 6);
  Tensor p = RandomFloat({s.dirs, 3 * H}, 7, -0.5f, 0.5f);
  std::vector<int> lens;
  if (s.lens) {
    for (int64_t i = 0; i < s.batch; ++i) lens.push_back(static_cast<int>(s.full_lens ? s.seq : s.seq - (i % s.seq)));
  }
  auto expected = RefRnn(s, x, w, r, s.bias ? &b : nullptr, lens, s.init ? &h0 : nullptr,
                         s.init && !s.no_c0 && s.cell == Cell::kLstm ? &c0 : nullptr, s.peephole ? &p : nullptr);
  std::vector<int> lens_data = lens.empty() ? std::vector<int>(static_cast<size_t>(s.batch), 0) : lens;
  Tensor lens_t = MakeTensor(DataType::kInt32, {s.batch}, lens_data.data());
  const char* op = s.cell == Cell::kLstm ? "LSTM" : s.cell == Cell::kGru ? "GRU" : "RNN";
  NodeSpec spec{op, "", 14,
                {{"hidden_size", AttrInt(H)},
                 {"direction", AttrString(s.dirs == 2 ? "bidirectional" : s.reverse ? "reverse" : "forward")},
                 {"layout", AttrInt(s.layout)}},
                s.outputs > 0 ? s.outputs : s.cell == Cell::kLstm ? 3 : 2};
  if (s.cell == Cell::kGru) spec.attrs["linear_before_reset"] = AttrInt(s.lbr);
  for (const auto& [name, value] : s.extra_attrs) spec.attrs[name] = value;
  Tensor xl = s.layout ? Swap01(x) : MakeTensor(DataType::kFloat32, x.shape(), x.data());
  Tensor h0l = s.layout ? Swap01(h0) : MakeTensor(DataType::kFloat32, h0.shape(), h0.data());
  Tensor c0l = s.layout ? Swap01(c0) : MakeTensor(DataType::kFloat32, c0.shape(), c0.data());
  std::vector<const Tensor*> in = {&xl, &w, &r, s.bias ? &b : nullptr, s.lens ? &lens_t : nullptr, s.init ? &h0l : nullptr};
  if (s.cell == Cell::kLstm) {
    in.push_back(s.init && !s.no_c0 ? &c0l : nullptr);
    in.push_back(s.peephole ? &p : nullptr);
  }
  while (!in.empty() && in.back() == nullptr) in.pop_back();
  std::vector<int> constants;
  if (s.constant_weights) constants = {1, 2, 3, 7};
  StatusOr<std::vector<Tensor>> out = Internal("not run");
  if (s.path == Path::kAny) {
    RunOptions options;
    options.constant_inputs = constants;
    options.num_threads = s.threads;
    options.implementation = s.implementation;
    out = RunNode(spec, in, options);
  } else {
    std::string impl;
    std::vector<BlockedValue> values;
    values.reserve(in.size());
    std::vector<const BlockedValue*> value_ptrs;
    for (const Tensor* t : in) {
      if (t != nullptr) values.push_back(AsValue(*t));
      value_ptrs.push_back(t != nullptr ? &values.back() : nullptr);
    }
    auto absent = [&](int c) { return c >= static_cast<int>(in.size()) || in[c] == nullptr; };
    constants.erase(std::remove_if(constants.begin(), constants.end(), absent), constants.end());
    auto blocked = RunNodeLayouts(spec, value_ptrs, constants, [&](const Kernel& k) {
      impl = std::string(k.implementation());
    });
    ASSERT_TRUE(blocked.ok()) << blocked.status().ToString();
    if (s.path == Path::kLoops) {
      EXPECT_EQ(impl, kLoops);
    } else {
      EXPECT_NE(impl, kLoops) << "this LSTM should run on oneDNN's LSTM primitive, not the per-step loops";
      EXPECT_FALSE(impl.empty());
      // Below AVX-512 oneDNN has only its gemm-based "ref" RNN, which still beats the loops.
      if (OneDnnHasFastLstm()) {
        EXPECT_NE(impl.rfind("ref", 0), 0u) << "oneDNN reference implementation chosen: " << impl;
      }
    }
    std::vector<Tensor> tensors;
    for (const BlockedValue& v : *blocked) tensors.push_back(MakeTensor(v.dtype, v.shape, v.storage.data()));
    out = std::move(tensors);
  }
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  if (s.cell == Cell::kLstm && spec.attrs.count("clip") == 0) {
    // The per-step loops (forced by a clip no value reaches) are what the primitive replaced for
    // the common LSTM: both agree within 1e-5 relative L2 on every output.
    NodeSpec loops = spec;
    loops.attrs["clip"] = AttrFloat(1e30f);
    auto looped = RunNode(loops, in);
    ASSERT_TRUE(looped.ok()) << looped.status().ToString();
    for (size_t i = 0; i < out->size(); ++i) EXPECT_LE(RelativeL2((*out)[i], (*looped)[i]), 1e-5) << "output " << i;
  }
  Tensor y = MakeTensor(DataType::kFloat32, (*out)[0].shape(), (*out)[0].data());
  if (s.layout) {
    // [batch, seq, dirs, H] -> [seq, dirs, batch, H]
    const Tensor& yo = (*out)[0];
    std::vector<float> v(static_cast<size_t>(yo.num_elements()));
    for (int64_t bi = 0; bi < s.batch; ++bi)
      for (int64_t t = 0; t < s.seq; ++t)
        for (int d = 0; d < s.dirs; ++d)
          for (int64_t j = 0; j < H; ++j)
            v[static_cast<size_t>(((t * s.dirs + d) * s.batch + bi) * H + j)] = yo.as<float>()[((bi * s.seq + t) * s.dirs + d) * H + j];
    y = MakeFloat({s.seq, s.dirs, s.batch, H}, v);
  }
  EXPECT_TRUE(TensorNear(y, expected[0], 1e-4, 1e-4)) << "Y";
  if (out->size() < 2) return;
  Tensor yh = s.layout ? Swap01((*out)[1]) : MakeTensor(DataType::kFloat32, (*out)[1].shape(), (*out)[1].data());
  EXPECT_TRUE(TensorNear(yh, expected[1], 1e-4, 1e-4)) << "Y_h";
  if (s.cell == Cell::kLstm && out->size() > 2) {
    Tensor yc = s.layout ? Swap01((*out)[2]) : MakeTensor(DataType::kFloat32, (*out)[2].shape(), (*out)[2].data());
    EXPECT_TRUE(TensorNear(yc, expected[2], 1e-4, 1e-4)) << "Y_c";
  }
}

TEST(Lstm, Forward) { RunCase({Cell::kLstm}); }
TEST(Lstm, BidirectionalPeepholesSequenceLens) {
  RnnSetup s{Cell::kLstm};
  s.dirs = 2;
  s.peephole = true;
  s.lens = true;
  RunCase(s);
}
TEST(Lstm, ReverseLayout1NoBiasNoInit) {
  RnnSetup s{Cell::kLstm};
  s.reverse = true;
  s.layout = 1;
  s.bias = false;
  s.init = false;
  RunCase(s);
}
// The common LSTM (default activations, no clip, input_forget 0) must run on oneDNN's LSTM primitive
// in every direction, layout, batch size, with or without bias, initial states and peepholes, with
// weights known while preparing or only at run time: the per-step loops are several times slower.
TEST(LstmOneDnn, CommonCasesTakeThePrimitive) {
  int n = 0;
  for (int dirs : {1, 2}) {
    for (bool reverse : {false, true}) {
      if (dirs == 2 && reverse) continue;
      for (int layout : {0, 1}) {
        for (bool peephole : {false, true}) {
          for (int64_t batch : {1, 3}) {
            for (bool constant : {false, true}) {
              RnnSetup s{Cell::kLstm};
              s.dirs = dirs, s.reverse = reverse, s.layout = layout, s.peephole = peephole, s.batch = batch;
              s.constant_weights = constant;
              s.bias = n % 3 != 1;
              s.init = n % 4 != 2;
              s.outputs = n % 5 == 3 ? 1 : n % 5 == 4 ? 2 : 0;
              s.no_c0 = n % 7 == 5;
              s.path = Path::kOneDnn;
              ++n;
              SCOPED_TRACE(::testing::Message() << "dirs " << dirs << " reverse " << reverse << " layout " << layout
                                                << " peephole " << peephole << " batch " << batch << " constant "
                                                << constant << " bias " << s.bias << " init " << s.init
                                                << " outputs " << s.outputs << " no_c0 " << s.no_c0);
              RunCase(s);
            }
          }
        }
      }
    }
  }
}

// audio_lstm's layers: 49 steps, 40 and 128 inputs, 128 hidden, batch 1 and 8.
TEST(LstmOneDnn, AudioLstmShapes) {
  for (int64_t input : {40, 128}) {
    for (int64_t batch : {1, 8}) {
      RnnSetup s{Cell::kLstm};
      s.seq = 49, s.batch = batch, s.input = input, s.hidden = 128;
      s.constant_weights = true;
      s.path = Path::kOneDnn;
      SCOPED_TRACE(::testing::Message() << "input " << input << " batch " << batch);
      RunCase(s);
    }
  }
}

// Explicitly given default activations are still the primitive's.
TEST(LstmOneDnn, ExplicitDefaultActivations) {
  RnnSetup s{Cell::kLstm};
  s.dirs = 2;
  s.extra_attrs["activations"] = AttrStrings({"Sigmoid", "Tanh", "Tanh", "sigmoid", "tanh", "tanh"});
  s.path = Path::kOneDnn;
  RunCase(s);
}

// sequence_lens all equal to the sequence length: the primitive; unequal lengths fall back to the
// loops at run time (the prepared kernel still reports the primitive).
TEST(LstmOneDnn, SequenceLens) {
  RnnSetup s{Cell::kLstm};
  s.dirs = 2, s.peephole = true, s.lens = true, s.full_lens = true;
  s.path = Path::kOneDnn;
  RunCase(s);
  s.full_lens = false;
  RunCase(s);
  s.layout = 1;
  RunCase(s);
}

// Small steps with several threads and rows: the rows are split, one slice per thread, each a
// primitive over strided views of the node's tensors (the last slice smaller when the batch does
// not divide), in every direction, layout and combination of states and outputs.
TEST(LstmOneDnn, RowsSplitAcrossThreads) {
  int n = 0;
  for (int dirs : {1, 2}) {
    for (int layout : {0, 1}) {
      for (int64_t batch : {9, 11}) {  // over four rows per thread: gpuhive's LSTM leaves them to oneDNN
        for (bool constant : {false, true}) {
          RnnSetup s{Cell::kLstm};
          s.dirs = dirs, s.layout = layout, s.batch = batch, s.constant_weights = constant;
          s.seq = 6, s.input = 7, s.hidden = 16;
          s.peephole = n % 2 == 1;
          s.init = n % 3 != 2;
          s.no_c0 = n % 5 == 3;
          s.outputs = n % 4 == 3 ? 1 : n % 4 == 2 ? 2 : 0;
          s.threads = 2;
          std::string impl;
          s.implementation = &impl;
          ++n;
          SCOPED_TRACE(::testing::Message() << "dirs " << dirs << " layout " << layout << " batch " << batch
                                            << " constant " << constant << " peephole " << s.peephole << " init "
                                            << s.init << " no_c0 " << s.no_c0 << " outputs " << s.outputs);
          RunCase(s);
          if (OneDnnHasFastLstm()) {
            EXPECT_NE(impl.find("[rows split 2 ways]"), std::string::npos) << impl;
          }
        }
      }
    }
  }
  // One thread: the whole batch in one primitive.
  for (auto [threads, batch] : {std::pair{1, int64_t{5}}}) {
    RnnSetup s{Cell::kLstm};
    s.batch = batch, s.threads = threads, s.hidden = 16;
    std::string impl;
    s.implementation = &impl;
    RunCase(s);
    EXPECT_EQ(impl.find("rows split"), std::string::npos) << impl;
  }
}

// At most four rows per thread, constant weights, no peepholes: gpuhive's AVX-512 LSTM
// (lstm_avx512.h) on AVX-512 CPUs, split by hidden units below a row per thread (partial tiles with 40 units, one
// tile with 16: one thread does all, several with 128, the audio model's) and by rows otherwise, in
// every direction and layout, with and without bias, initial states and each output; results
// against the reference and the per-step loops.
TEST(LstmAvx512, SmallBatchesSplitAcrossThreads) {
  const bool avx512 = cpu::loops::Avx512Usable();
  int n = 0;
  for (int dirs : {1, 2}) {
    for (bool reverse : {false, true}) {
      if (dirs == 2 && reverse) continue;
      for (int layout : {0, 1}) {
        for (int64_t hidden : {16, 40, 128}) {
          for (auto [batch, threads] : {std::pair{int64_t{1}, 2}, std::pair{int64_t{1}, 3}, std::pair{int64_t{2}, 2},
                                        std::pair{int64_t{3}, 3}, std::pair{int64_t{1}, 1}, std::pair{int64_t{4}, 2},
                                        std::pair{int64_t{2}, 1}, std::pair{int64_t{8}, 2}, std::pair{int64_t{7}, 2},
                                        std::pair{int64_t{4}, 1}}) {
            RnnSetup s{Cell::kLstm};
            s.dirs = dirs, s.reverse = reverse, s.layout = layout, s.batch = batch, s.hidden = hidden;
            s.seq = 9, s.input = hidden == 128 ? 40 : 7;
            s.constant_weights = true;
            s.bias = n % 3 != 1;
            s.init = n % 4 != 2;
            s.no_c0 = n % 5 == 3;
            s.outputs = n % 4 == 3 ? 1 : n % 4 == 1 ? 2 : 0;
            s.threads = threads;
            std::string impl;
            s.implementation = &impl;
            ++n;
            SCOPED_TRACE(::testing::Message() << "dirs " << dirs << " reverse " << reverse << " layout " << layout
                                              << " hidden " << hidden << " batch " << batch << " threads " << threads
                                              << " bias " << s.bias << " init " << s.init << " no_c0 " << s.no_c0
                                              << " outputs " << s.outputs);
            RunCase(s);
            if (!avx512) {
              EXPECT_EQ(impl.find("gpuhive:lstm_avx512"), std::string::npos) << impl;
              continue;
            }
            const int64_t tiles = (hidden + cpu::loops::LstmAvx512::kTile - 1) / cpu::loops::LstmAvx512::kTile;
            const int team = threads == 1 ? 1 : batch >= threads ? threads : static_cast<int>(std::min<int64_t>(threads, tiles));
            const std::string want = team == 1 ? "gpuhive:lstm_avx512 [1 thread]"
                                     : batch >= threads
                                         ? "gpuhive:lstm_avx512 [rows split " + std::to_string(team) + " ways]"
                                         : "gpuhive:lstm_avx512 [hidden units split " + std::to_string(team) + " ways]";
            EXPECT_EQ(impl, want);
          }
        }
      }
    }
  }
  // Full sequence_lens keep it; weights known only at run time, peepholes and more than four rows
  // per thread do not take it.
  RnnSetup s{Cell::kLstm};
  s.batch = 1, s.hidden = 40, s.threads = 2, s.constant_weights = true, s.lens = true, s.full_lens = true;
  std::string impl;
  s.implementation = &impl;
  RunCase(s);
  if (avx512) {
    EXPECT_EQ(impl, "gpuhive:lstm_avx512 [hidden units split 2 ways]");
  }
  for (int variant = 0; variant < 3; ++variant) {
    RnnSetup o{Cell::kLstm};
    o.batch = variant == 2 ? 9 : 1, o.hidden = 40, o.threads = 2;
    o.constant_weights = variant != 0;
    o.peephole = variant == 1;
    o.implementation = &impl;
    SCOPED_TRACE(::testing::Message() << "variant " << variant);
    RunCase(o);
    EXPECT_EQ(impl.find("gpuhive:lstm_avx512"), std::string::npos) << impl;
  }
}

// Large enough steps run the primitive on the run's threads.
TEST(LstmOneDnn, LargeStepsOnTwoThreads) {
  RnnSetup s{Cell::kLstm};
  s.seq = 3, s.batch = 130, s.input = 8, s.hidden = 128, s.dirs = 2, s.layout = 1;
  s.constant_weights = true;
  s.threads = 2;
  RunCase(s);
}

// What oneDNN's LSTM cannot compute stays on the loops.
TEST(LstmOneDnn, OtherAttributesTakeTheLoops) {
  RnnSetup s{Cell::kLstm};
  s.path = Path::kLoops;
  s.extra_attrs["clip"] = AttrFloat(100.f);  // large enough to leave the reference's values alone
  RunCase(s);
  using Attrs = std::map<std::string, ir::Attribute>;
  Tensor x = RandomFloat({2, 1, 3}, 1), w = RandomFloat({1, 16, 3}, 2), r = RandomFloat({1, 16, 4}, 3);
  for (const Attrs& attrs : {Attrs{{"input_forget", AttrInt(1)}},
                             Attrs{{"activations", AttrStrings({"HardSigmoid", "Tanh", "Tanh"})}},
                             Attrs{{"activations", AttrStrings({"Sigmoid", "Tanh", "Relu"})}}}) {
    NodeSpec spec{"LSTM", "", 14, attrs, 3};
    spec.attrs["hidden_size"] = AttrInt(4);
    BlockedValue vx = AsValue(x), vw = AsValue(w), vr = AsValue(r);
    std::string impl;
    auto out = RunNodeLayouts(spec, {&vx, &vw, &vr}, {1, 2}, [&](const Kernel& k) {
      impl = std::string(k.implementation());
    });
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(impl, kLoops) << attrs.begin()->first;
  }
}

TEST(Gru, DefaultAndLinearBeforeReset) {
  RnnSetup s{Cell::kGru};
  s.path = Path::kLoops;
  RunCase(s);
  s.path = Path::kAny;
  s.lbr = true;
  s.dirs = 2;
  s.lens = true;
  RunCase(s);
}
TEST(Rnn, ForwardReverseLayout1) {
  RnnSetup s{Cell::kRnn};
  s.path = Path::kLoops;
  RunCase(s);
  s.path = Path::kAny;
  s.reverse = true;
  s.layout = 1;
  RunCase(s);
}

TEST(RnnErrors, BadActivationIsUnimplementedAndBadShapesInvalid) {
  Tensor x = RandomFloat({2, 1, 3}, 1), w = RandomFloat({1, 4, 3}, 2), r = RandomFloat({1, 4, 4}, 3);
  auto bad = RunNode({"RNN", "", 14, {{"hidden_size", AttrInt(4)}, {"activations", AttrStrings({"Gelu"})}}, 2}, {&x, &w, &r});
  EXPECT_EQ(bad.status().code(), StatusCode::kUnimplemented);
  auto shape = RunNode({"RNN", "", 14, {{"hidden_size", AttrInt(5)}}, 2}, {&x, &w, &r});
  EXPECT_EQ(shape.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gpuhive::testing
