#include <cmath>

#include "kernels_nn/reference.h"

namespace gpuhive::testing {
namespace {

float Sig(float x) { return 1.f / (1.f + std::exp(-x)); }

enum class Cell { kLstm, kGru, kRnn };

struct RnnSetup {
  Cell cell;
  int64_t seq = 4, batch = 3, input = 5, hidden = 4;
  int dirs = 1;
  bool reverse = false, bias = true, init = true, peephole = false, lens = false, lbr = false;
  int layout = 0;
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
    for (int64_t i = 0; i < s.batch; ++i) lens.push_back(static_cast<int>(s.seq - (i % s.seq)));
  }
  auto expected = RefRnn(s, x, w, r, s.bias ? &b : nullptr, lens, s.init ? &h0 : nullptr,
                         s.init && s.cell == Cell::kLstm ? &c0 : nullptr, s.peephole ? &p : nullptr);
  std::vector<int> lens_data = lens.empty() ? std::vector<int>(static_cast<size_t>(s.batch), 0) : lens;
  Tensor lens_t = MakeTensor(DataType::kInt32, {s.batch}, lens_data.data());
  const char* op = s.cell == Cell::kLstm ? "LSTM" : s.cell == Cell::kGru ? "GRU" : "RNN";
  NodeSpec spec{op, "", 14,
                {{"hidden_size", AttrInt(H)},
                 {"direction", AttrString(s.dirs == 2 ? "bidirectional" : s.reverse ? "reverse" : "forward")},
                 {"layout", AttrInt(s.layout)}},
                s.cell == Cell::kLstm ? 3 : 2};
  if (s.cell == Cell::kGru) spec.attrs["linear_before_reset"] = AttrInt(s.lbr);
  Tensor xl = s.layout ? Swap01(x) : MakeTensor(DataType::kFloat32, x.shape(), x.data());
  Tensor h0l = s.layout ? Swap01(h0) : MakeTensor(DataType::kFloat32, h0.shape(), h0.data());
  Tensor c0l = s.layout ? Swap01(c0) : MakeTensor(DataType::kFloat32, c0.shape(), c0.data());
  std::vector<const Tensor*> in = {&xl, &w, &r, s.bias ? &b : nullptr, s.lens ? &lens_t : nullptr, s.init ? &h0l : nullptr};
  if (s.cell == Cell::kLstm) {
    in.push_back(s.init ? &c0l : nullptr);
    in.push_back(s.peephole ? &p : nullptr);
  }
  while (!in.empty() && in.back() == nullptr) in.pop_back();
  auto out = RunNode(spec, in);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
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
  Tensor yh = s.layout ? Swap01((*out)[1]) : MakeTensor(DataType::kFloat32, (*out)[1].shape(), (*out)[1].data());
  EXPECT_TRUE(TensorNear(yh, expected[1], 1e-4, 1e-4)) << "Y_h";
  if (s.cell == Cell::kLstm) {
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
TEST(Gru, DefaultAndLinearBeforeReset) {
  RnnSetup s{Cell::kGru};
  RunCase(s);
  s.lbr = true;
  s.dirs = 2;
  s.lens = true;
  RunCase(s);
}
TEST(Rnn, ForwardReverseLayout1) {
  RnnSetup s{Cell::kRnn};
  RunCase(s);
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
