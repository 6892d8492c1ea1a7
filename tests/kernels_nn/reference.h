// Naive reference implementations used by the kernel tests (straight loops, no oneDNN).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "gpuhive/post_ops.h"
#include "support/kernel_harness.h"

namespace gpuhive::testing::ref {

// Spatial dims padded to 3 (d, h, w) so one loop nest covers 1-D..3-D.
inline std::vector<int64_t> Pad3(const std::vector<int64_t>& v, int64_t fill) {
  std::vector<int64_t> r(3 - v.size(), fill);
  r.insert(r.end(), v.begin(), v.end());
  return r;
}

struct ConvParams {
  std::vector<int64_t> strides, dilations, pads_begin, pads_end;
  int64_t group = 1;
};

// x [N, C, *in], w [M, C/g, *k], optional bias [M]; output size from explicit pads.
inline Tensor Conv(const Tensor& x, const Tensor& w, const Tensor* b, const ConvParams& p) {
  const Shape& xs = x.shape();
  const Shape& ws = w.shape();
  size_t sp = xs.size() - 2;
  auto in = Pad3({xs.begin() + 2, xs.end()}, 1);
  auto k = Pad3({ws.begin() + 2, ws.end()}, 1);
  auto s = Pad3(p.strides, 1), d = Pad3(p.dilations, 1), pb = Pad3(p.pads_begin, 0), pe = Pad3(p.pads_end, 0);
  std::vector<int64_t> out(3);
  for (int i = 0; i < 3; ++i) out[i] = (in[i] + pb[i] + pe[i] - ((k[i] - 1) * d[i] + 1)) / s[i] + 1;
  int64_t n = xs[0], c = xs[1], m = ws[0], g = p.group, cg = c / g, mg = m / g;
  Shape os = {n, m};
  for (size_t i = 0; i < sp; ++i) os.push_back(out[3 - sp + i]);
  std::vector<float> r(static_cast<size_t>(NumElements(os)));
  const float* X = x.as<float>();
  const float* W = w.as<float>();
  for (int64_t in_ = 0; in_ < n; ++in_)
    for (int64_t oc = 0; oc < m; ++oc) {
      int64_t grp = oc / mg;
      for (int64_t od = 0; od < out[0]; ++od)
        for (int64_t oh = 0; oh < out[1]; ++oh)
          for (int64_t ow = 0; ow < out[2]; ++ow) {
            double acc = b ? b->as<float>()[oc] : 0.0;
            for (int64_t ic = 0; ic < cg; ++ic)
              for (int64_t kd = 0; kd < k[0]; ++kd)
                for (int64_t kh = 0; kh < k[1]; ++kh)
                  for (int64_t kw = 0; kw < k[2]; ++kw) {
                    int64_t id = od * s[0] - pb[0] + kd * d[0];
                    int64_t ih = oh * s[1] - pb[1] + kh * d[1];
                    int64_t iw = ow * s[2] - pb[2] + kw * d[2];
                    if (id < 0 || id >= in[0] || ih < 0 || ih >= in[1] || iw < 0 || iw >= in[2]) continue;
                    int64_t xc = grp * cg + ic;
                    acc += static_cast<double>(X[(((in_ * c + xc) * in[0] + id) * in[1] + ih) * in[2] + iw]) *
                           W[(((oc * cg + ic) * k[0] + kd) * k[1] + kh) * k[2] + kw];
                  }
            r[static_cast<size_t>((((in_ * m + oc) * out[0] + od) * out[1] + oh) * out[2] + ow)] =
                static_cast<float>(acc);
          }
    }
  return MakeFloat(os, r);
}

// Applies f elementwise (in place) to a tensor.
template <typename F>
inline void Map(Tensor& t, F f) {
  float* p = t.as<float>();
  for (int64_t i = 0; i < t.num_elements(); ++i) p[i] = f(p[i]);
}

// out[i] = f(out[i], e[broadcast(i)]) with numpy broadcasting of e against out's shape.
template <typename F>
inline void BroadcastApply(Tensor& out, const Tensor& e, F f) {
  const Shape& os = out.shape();
  Shape es(os.size() - e.shape().size(), 1);
  es.insert(es.end(), e.shape().begin(), e.shape().end());
  std::vector<int64_t> idx(os.size(), 0);
  float* o = out.as<float>();
  const float* ep = e.as<float>();
  for (int64_t i = 0; i < out.num_elements(); ++i) {
    int64_t rem = i, off = 0, stride = 1;
    for (int a = static_cast<int>(os.size()) - 1; a >= 0; --a) {
      int64_t coord = rem % os[a];
      rem /= os[a];
      off += (es[a] == 1 ? 0 : coord) * stride;
      stride *= es[a];
    }
    o[i] = f(o[i], ep[off]);
  }
}

// Applies a post-op chain (text form) to `out`, binary entries consuming `extras` in order.
inline void ApplyPostOps(Tensor& out, const std::vector<std::string>& texts, const std::vector<Tensor>& extras) {
  size_t e = 0;
  for (const auto& text : texts) {
    auto op = ParsePostOp(text);
    if (!op.ok()) {
      ADD_FAILURE() << op.status().ToString();
      return;
    }
    if (op->is_binary()) {
      const Tensor& t = extras[e++];
      switch (op->kind) {
        case PostOp::Kind::kSum:
        case PostOp::Kind::kAdd: BroadcastApply(out, t, [](float a, float v) { return a + v; }); break;
        case PostOp::Kind::kMul: BroadcastApply(out, t, [](float a, float v) { return a * v; }); break;
        case PostOp::Kind::kSub: BroadcastApply(out, t, [](float a, float v) { return a - v; }); break;
        case PostOp::Kind::kDiv: BroadcastApply(out, t, [](float a, float v) { return a / v; }); break;
        case PostOp::Kind::kMax: BroadcastApply(out, t, [](float a, float v) { return std::max(a, v); }); break;
        case PostOp::Kind::kMin: BroadcastApply(out, t, [](float a, float v) { return std::min(a, v); }); break;
        default: break;
      }
    } else {
      PostOp u = *op;
      Map(out, [&](float v) { return ApplyUnaryPostOp(u, v); });
    }
  }
}

}  // namespace gpuhive::testing::ref
