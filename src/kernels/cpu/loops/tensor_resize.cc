// Resize (opsets 10, 11, 13) and Upsample (opsets 7, 9): nearest / linear / cubic interpolation
// over every dimension, separable, following the ONNX reference implementation: the source
// coordinate of each output index is computed per dimension, turned into (input index, weight)
// taps (edge-clamped; cubic optionally excluding outside taps), and the output is the weighted sum
// over the product of the taps of all dimensions.
#include "kernels/cpu/loops/tensor_register.h"
#include "kernels/cpu/loops/tensor_util.h"

namespace gpuhive::cpu {
namespace {

using namespace tensor;  // NOLINT: private helpers of this kernel family

enum class Mode { kNearest, kLinear, kCubic };
enum class Coord { kHalfPixel, kPytorchHalfPixel, kAlignCorners, kAsymmetric, kTfHalfPixelForNn, kTfCropAndResize };
enum class Nearest { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil, kLegacy };

// Taps of one dimension: output index o reads taps [begin[o], begin[o+1]).
struct DimTaps {
  std::vector<int64_t> begin;
  std::vector<int64_t> offset;  // input index * stride of the dim
  std::vector<float> weight;
  std::vector<uint8_t> outside;  // tf_crop_and_resize: the coordinate is outside the input
};

class ResizeKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    const bool upsample = n.op_type == "Upsample";
    const bool legacy = upsample || ctx.opset() < 11;
    const Shape& in = ctx.input_shape(0);
    const size_t r = in.size();
    dtype_ = ctx.input_dtype(0);
    if (!IsSupportedDataType(dtype_)) {
      return InvalidArgument("{}: unsupported dtype {}", n.Describe(), DataTypeName(dtype_));
    }

    ASSIGN_OR_RETURN(std::string mode, n.GetString("mode", "nearest"));
    if (mode == "nearest") {
      mode_ = Mode::kNearest;
    } else if (mode == "linear" || mode == "bilinear" || mode == "trilinear") {
      mode_ = Mode::kLinear;
    } else if (mode == "cubic" && !legacy) {
      mode_ = Mode::kCubic;
    } else {
      return InvalidArgument("{}: unsupported mode '{}'", n.Describe(), mode);
    }
    coord_ = Coord::kAsymmetric;
    nearest_ = Nearest::kLegacy;
    float cubic_a = -0.75f;
    int64_t exclude_outside = 0;
    extrapolation_ = 0.f;
    if (!legacy) {
      ASSIGN_OR_RETURN(std::string c, n.GetString("coordinate_transformation_mode", "half_pixel"));
      if (c == "half_pixel") coord_ = Coord::kHalfPixel;
      else if (c == "pytorch_half_pixel") coord_ = Coord::kPytorchHalfPixel;
      else if (c == "align_corners") coord_ = Coord::kAlignCorners;
      else if (c == "asymmetric") coord_ = Coord::kAsymmetric;
      else if (c == "tf_half_pixel_for_nn") coord_ = Coord::kTfHalfPixelForNn;
      else if (c == "tf_crop_and_resize") coord_ = Coord::kTfCropAndResize;
      else return InvalidArgument("{}: unknown coordinate_transformation_mode '{}'", n.Describe(), c);
      ASSIGN_OR_RETURN(std::string nm, n.GetString("nearest_mode", "round_prefer_floor"));
      if (nm == "round_prefer_floor") nearest_ = Nearest::kRoundPreferFloor;
      else if (nm == "round_prefer_ceil") nearest_ = Nearest::kRoundPreferCeil;
      else if (nm == "floor") nearest_ = Nearest::kFloor;
      else if (nm == "ceil") nearest_ = Nearest::kCeil;
      else return InvalidArgument("{}: unknown nearest_mode '{}'", n.Describe(), nm);
      ASSIGN_OR_RETURN(cubic_a, n.GetFloat("cubic_coeff_a", -0.75f));
      ASSIGN_OR_RETURN(exclude_outside, n.GetInt("exclude_outside", 0));
      ASSIGN_OR_RETURN(extrapolation_, n.GetFloat("extrapolation_value", 0.f));
    }

    // Scales, sizes and roi.
    std::vector<double> scales;
    Shape out(r);
    std::vector<double> roi;
    bool sizes_given = false;
    auto value_of = [&](size_t i) -> const Tensor* {
      return ctx.num_inputs() > i && ctx.has_input(i) ? ctx.input_value(i) : nullptr;
    };
    auto present = [&](size_t i) { return ctx.num_inputs() > i && ctx.has_input(i); };
    if (upsample && ctx.opset() < 9) {
      ASSIGN_OR_RETURN(std::vector<float> s, n.GetFloats("scales"));
      scales.assign(s.begin(), s.end());
    } else {
      const size_t si = legacy ? 1 : 2;
      const bool scales_given = present(si) && NumElements(ctx.input_shape(si)) > 0;
      if (scales_given) {
        const Tensor* v = value_of(si);
        if (v == nullptr) return DataDependentShape(n, si);
        ASSIGN_OR_RETURN(std::vector<float> s, ReadFloats(v->view(), "scales"));
        scales.assign(s.begin(), s.end());
      } else if (!legacy && present(3) && NumElements(ctx.input_shape(3)) > 0) {
        const Tensor* v = value_of(3);
        if (v == nullptr) return DataDependentShape(n, 3);
        ASSIGN_OR_RETURN(std::vector<int64_t> sizes, ReadInts(*v, "sizes"));
        sizes_given = true;
        if (sizes.size() != r) {
          return InvalidArgument("{}: {} sizes for rank {}", n.Describe(), sizes.size(), r);
        }
        for (size_t d = 0; d < r; ++d) {
          if (sizes[d] < 0) return InvalidArgument("{}: negative size", n.Describe());
          if (in[d] == 0 && sizes[d] != 0) {
            return InvalidArgument("{}: cannot resize an empty dimension", n.Describe());
          }
          out[d] = sizes[d];
          scales.push_back(in[d] == 0 ? 1.0 : static_cast<double>(sizes[d]) / static_cast<double>(in[d]));
        }
      } else {
        return InvalidArgument("{}: one of scales or sizes must be given", n.Describe());
      }
      if (!legacy && coord_ == Coord::kTfCropAndResize) {
        if (!present(1)) return InvalidArgument("{}: tf_crop_and_resize needs roi", n.Describe());
        const Tensor* v = value_of(1);
        if (v == nullptr) return DataDependentShape(n, 1);
        ASSIGN_OR_RETURN(std::vector<float> rv, ReadFloats(v->view(), "roi"));
        if (rv.size() != 2 * r) return InvalidArgument("{}: roi must have 2*rank values", n.Describe());
        roi.assign(rv.begin(), rv.end());
      }
    }
    if (scales.size() != r) {
      return InvalidArgument("{}: {} scales for rank {}", n.Describe(), scales.size(), r);
    }
    for (size_t d = 0; d < r; ++d) {
      if (sizes_given) continue;
      if (!(scales[d] > 0) || !std::isfinite(scales[d])) {
        return InvalidArgument("{}: scales must be positive", n.Describe());
      }
      out[d] = static_cast<int64_t>(std::floor(scales[d] * static_cast<double>(in[d])));
    }
    if (NumElements(out) > (int64_t{1} << 36)) return InvalidArgument("{}: output too large", n.Describe());

    // Taps per dimension.
    const Shape strides = Strides(in);
    taps_.assign(r, DimTaps{});
    for (size_t d = 0; d < r; ++d) {
      DimTaps& t = taps_[d];
      const int64_t len = in[d];
      const double scale = scales[d];
      const double out_width = scale * static_cast<double>(len);
      t.begin.push_back(0);
      for (int64_t o = 0; o < out[d]; ++o) {
        const double x = static_cast<double>(o);
        double xo = 0;
        bool outside = false;
        switch (coord_) {
          case Coord::kHalfPixel: xo = (x + 0.5) / scale - 0.5; break;
          case Coord::kPytorchHalfPixel: xo = out_width == 1 ? -0.5 : (x + 0.5) / scale - 0.5; break;
          case Coord::kAlignCorners:
            xo = out_width == 1 ? 0.0 : x * static_cast<double>(len - 1) / (out_width - 1);
            break;
          case Coord::kAsymmetric: xo = x / scale; break;
          case Coord::kTfHalfPixelForNn: xo = (x + 0.5) / scale; break;
          case Coord::kTfCropAndResize: {
            const double s = roi[d], e = roi[d + r];
            xo = out_width == 1 ? (e - s) * static_cast<double>(len - 1) / 2
                                : x * (e - s) * static_cast<double>(len - 1) / (out_width - 1);
            xo += s * static_cast<double>(len - 1);
            outside = xo < 0 || xo > static_cast<double>(len - 1);
            break;
          }
        }
        t.outside.push_back(outside);
        auto add = [&](int64_t idx, float w) {
          t.offset.push_back(std::clamp<int64_t>(idx, 0, len - 1) * strides[d]);
          t.weight.push_back(w);
        };
        if (outside) {
          add(0, 0.f);
        } else if (mode_ == Mode::kNearest) {
          int64_t idx;
          const double f = std::floor(xo), frac = xo - f;
          switch (nearest_) {
            case Nearest::kRoundPreferFloor: idx = static_cast<int64_t>(frac <= 0.5 ? f : f + 1); break;
            case Nearest::kRoundPreferCeil: idx = static_cast<int64_t>(frac < 0.5 ? f : f + 1); break;
            case Nearest::kFloor: idx = static_cast<int64_t>(f); break;
            case Nearest::kCeil: idx = static_cast<int64_t>(std::ceil(xo)); break;
            default: idx = static_cast<int64_t>(scale < 1 ? std::ceil(xo) : f); break;
          }
          add(idx, 1.f);
        } else {
          double f = std::floor(xo), ratio = xo - f;
          if (ratio == 0) {  // the reference prefers the left neighbour with ratio 1
            f -= 1;
            ratio = 1;
          }
          const int64_t fi = static_cast<int64_t>(f);
          std::vector<int64_t> idx;
          std::vector<double> w;
          if (mode_ == Mode::kLinear) {
            idx = {fi, fi + 1};
            w = {1 - ratio, ratio};
          } else {
            const double A = cubic_a, p = ratio + 1, q = 1 - ratio, s = 2 - ratio;
            idx = {fi - 1, fi, fi + 1, fi + 2};
            w = {((A * p - 5 * A) * p + 8 * A) * p - 4 * A,
                 ((A + 2) * ratio - (A + 3)) * ratio * ratio + 1,
                 ((A + 2) * q - (A + 3)) * q * q + 1,
                 ((A * s - 5 * A) * s + 8 * A) * s - 4 * A};
          }
          if (exclude_outside != 0) {
            double sum = 0;
            for (size_t k = 0; k < idx.size(); ++k) {
              if (idx[k] < 0 || idx[k] >= len) w[k] = 0;
              sum += w[k];
            }
            if (sum != 0) {
              for (double& v : w) v /= sum;
            }
          }
          bool any = false;
          for (size_t k = 0; k < idx.size(); ++k) {
            if (w[k] != 0) {
              add(idx[k], static_cast<float>(w[k]));
              any = true;
            }
          }
          if (!any) add(0, 0.f);
        }
        t.begin.push_back(static_cast<int64_t>(t.offset.size()));
      }
    }
    separable_ = mode_ != Mode::kNearest && IsSeparable2d();
    if (dtype_ != DataType::kFloat32 && mode_ != Mode::kNearest) {
      RequestWorkspaceFor(ctx, in, out);
    }
    ctx.SetOutput(0, dtype_, std::move(out));
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    const TensorView& in = ctx.input(0);
    const TensorView& out = ctx.output(0);
    if (out.num_elements() == 0) return Status::OK();
    if (mode_ == Mode::kNearest) {
      unsigned char extrap[8] = {};
      StoreFromDouble(extrap, dtype_, 0, extrapolation_);
      DispatchBySize(DataTypeSize(dtype_), [&](auto tag) {
        using T = decltype(tag);
        T e;
        std::memcpy(&e, extrap, sizeof(T));
        RunNearest<T>(in.as<T>(), out.as<T>(), out.shape, e, ctx.num_threads());
      });
      return Status::OK();
    }
    if (dtype_ == DataType::kFloat32) {
      RunInterp(in.as<float>(), out.as<float>(), out.shape, ctx.num_threads());
      return Status::OK();
    }
    // Other dtypes go through float: convert, interpolate, convert back.
    const int64_t ni = in.num_elements(), no = out.num_elements();
    if (ctx.workspace_bytes() < static_cast<size_t>(ni + no) * sizeof(float)) {
      return Internal("Resize: workspace too small");
    }
    float* fin = static_cast<float*>(ctx.workspace());
    float* fout = fin + ni;
    for (int64_t i = 0; i < ni; ++i) fin[i] = static_cast<float>(ElementAsDouble(in.data, dtype_, i));
    RunInterp(fin, fout, out.shape, ctx.num_threads());
    for (int64_t i = 0; i < no; ++i) StoreFromDouble(out.data, dtype_, i, fout[i]);
    return Status::OK();
  }

 private:
  static void RequestWorkspaceFor(PrepareContext& ctx, const Shape& in, const Shape& out) {
    ctx.RequestWorkspace(static_cast<size_t>(NumElements(in) + NumElements(out)) * sizeof(float));
  }

  template <typename T>
  void RunNearest(const T* in, T* out, const Shape& os, T extrap, int threads) const {
    const size_t r = os.size();
    if (r == 0) {
      out[0] = in[0];
      return;
    }
    const int64_t ol = os[r - 1], rows = NumElements(os) / ol;
    const DimTaps& last = taps_[r - 1];
    ParallelFor(threads, rows, ol, [&](int64_t b, int64_t e) {
      for (int64_t row = b; row < e; ++row) {
        int64_t rem = row, off = 0;
        bool outside = false;
        for (size_t d = r - 1; d-- > 0;) {
          const int64_t o = rem % os[d];
          rem /= os[d];
          off += taps_[d].offset[taps_[d].begin[o]];
          outside = outside || taps_[d].outside[o];
        }
        T* dst = out + row * ol;
        if (outside) {
          std::fill(dst, dst + ol, extrap);
          continue;
        }
        const T* src = in + off;
        for (int64_t o = 0; o < ol; ++o) {
          dst[o] = last.outside[o] ? extrap : src[last.offset[last.begin[o]]];
        }
      }
    });
  }

  std::string_view implementation() const override {
    if (mode_ == Mode::kNearest) return "nearest";
    return separable_ ? "separable_2d" : "generic";
  }

  // Whether only the last two dimensions interpolate: every outer dimension maps each output index
  // to one input index with weight 1 (within 1e-6), and no coordinate falls outside
  // (tf_crop_and_resize). Then an output row is a blend of a few input rows each resampled along
  // the last dimension, and an input row resampled once serves every output row that reads it
  // (RunSeparable2d).
  bool IsSeparable2d() const {
    const size_t r = taps_.size();
    if (r < 2) return false;
    for (size_t d = 0; d < r; ++d) {
      const DimTaps& t = taps_[d];
      for (uint8_t o : t.outside) {
        if (o) return false;
      }
      if (d + 2 >= r) continue;
      for (size_t o = 0; o + 1 < t.begin.size(); ++o) {
        // One input index: a single tap, or several clamped onto it (a length-1 dimension under
        // pytorch_half_pixel reads index -1 and 0) whose weights sum to 1.
        float sum = 0.f;
        for (int64_t k = t.begin[o]; k < t.begin[o + 1]; ++k) {
          if (t.offset[k] != t.offset[t.begin[o]]) return false;
          sum += t.weight[k];
        }
        if (std::fabs(sum - 1.f) > 1e-6f) return false;
      }
    }
    return true;
  }

  // Output rows [b, e) of the separable case. Each input row is resampled along the last dimension
  // into a small cache of recent rows (linear reads 2 rows per output row, cubic 4, and neighbouring
  // output rows share them); an output row is then the weighted sum of its cached rows, a
  // contiguous loop the compiler vectorizes. Sums in the generic path's order.
  void RunSeparable2d(const float* in, float* out, const Shape& os, int64_t b, int64_t e) const {
    const size_t r = os.size();
    const int64_t ol = os[r - 1], oh = os[r - 2];
    const DimTaps& ty = taps_[r - 2];
    const DimTaps& tx = taps_[r - 1];
    constexpr int kSlots = 8;
    std::vector<float> cache(static_cast<size_t>(kSlots * ol));
    int64_t cached[kSlots];
    std::fill(cached, cached + kSlots, int64_t{-1});
    int next_slot = 0;
    auto resampled = [&](int64_t src_off) -> const float* {
      for (int s = 0; s < kSlots; ++s) {
        if (cached[s] == src_off) return cache.data() + s * ol;
      }
      float* h = cache.data() + next_slot * ol;
      cached[next_slot] = src_off;
      next_slot = (next_slot + 1) % kSlots;
      const float* src = in + src_off;
      for (int64_t o = 0; o < ol; ++o) {
        float inner = 0.f;
        for (int64_t k = tx.begin[o]; k < tx.begin[o + 1]; ++k) inner += tx.weight[k] * src[tx.offset[k]];
        h[o] = inner;
      }
      return h;
    };
    for (int64_t row = b; row < e; ++row) {
      const int64_t oy = row % oh;
      int64_t plane = row / oh, base = 0;
      for (size_t d = r - 2; d-- > 0;) {
        const int64_t o = plane % os[d];
        plane /= os[d];
        base += taps_[d].offset[taps_[d].begin[o]];
      }
      float* dst = out + row * ol;
      const int64_t k0 = ty.begin[oy], k1 = ty.begin[oy + 1];
      // At most kSlots - 1 taps per output row (cubic has 4), so a row's taps never evict each other.
      const float* h0 = resampled(base + ty.offset[k0]);
      const float w0 = ty.weight[k0];
      for (int64_t o = 0; o < ol; ++o) dst[o] = w0 * h0[o];
      for (int64_t k = k0 + 1; k < k1; ++k) {
        const float* h = resampled(base + ty.offset[k]);
        const float w = ty.weight[k];
        for (int64_t o = 0; o < ol; ++o) dst[o] += w * h[o];
      }
    }
  }

  void RunInterp(const float* in, float* out, const Shape& os, int threads) const {
    const size_t r = os.size();
    if (r == 0) {
      out[0] = in[0];
      return;
    }
    if (separable_) {
      const int64_t rows = NumElements(os) / os[r - 1];
      ParallelFor(threads, rows, os[r - 1] * 4,
                  [&](int64_t b, int64_t e) { RunSeparable2d(in, out, os, b, e); });
      return;
    }
    const int64_t ol = os[r - 1], rows = NumElements(os) / ol;
    const DimTaps& last = taps_[r - 1];
    const float extrap = extrapolation_;
    ParallelFor(threads, rows, ol * 4, [&](int64_t b, int64_t e) {
      std::vector<int64_t> offs, offs2;
      std::vector<float> ws, ws2;
      for (int64_t row = b; row < e; ++row) {
        // Product of the taps of the outer dims for this row.
        offs.assign(1, 0);
        ws.assign(1, 1.f);
        bool outside = false;
        int64_t rem = row;
        std::vector<int64_t> coord(r - 1);
        for (size_t d = r - 1; d-- > 0;) {
          coord[d] = rem % os[d];
          rem /= os[d];
        }
        for (size_t d = 0; d + 1 < r; ++d) {
          const DimTaps& t = taps_[d];
          const int64_t o = coord[d];
          outside = outside || t.outside[o];
          offs2.clear();
          ws2.clear();
          for (size_t c = 0; c < offs.size(); ++c) {
            for (int64_t k = t.begin[o]; k < t.begin[o + 1]; ++k) {
              offs2.push_back(offs[c] + t.offset[k]);
              ws2.push_back(ws[c] * t.weight[k]);
            }
          }
          offs.swap(offs2);
          ws.swap(ws2);
        }
        float* dst = out + row * ol;
        if (outside) {
          std::fill(dst, dst + ol, extrap);
          continue;
        }
        for (int64_t o = 0; o < ol; ++o) {
          if (last.outside[o]) {
            dst[o] = extrap;
            continue;
          }
          float acc = 0.f;
          for (size_t c = 0; c < offs.size(); ++c) {
            float inner = 0.f;
            for (int64_t k = last.begin[o]; k < last.begin[o + 1]; ++k) {
              inner += last.weight[k] * in[offs[c] + last.offset[k]];
            }
            acc += ws[c] * inner;
          }
          dst[o] = acc;
        }
      }
    });
  }

  DataType dtype_ = DataType::kFloat32;
  Mode mode_ = Mode::kNearest;
  Coord coord_ = Coord::kAsymmetric;
  Nearest nearest_ = Nearest::kLegacy;
  float extrapolation_ = 0.f;
  std::vector<DimTaps> taps_;
  bool separable_ = false;
};

}  // namespace

void RegisterTensorResizeKernels(KernelRegistry& registry) {
  registry.Register("", "Resize", MakeFactory<ResizeKernel>());
  registry.Register("", "Upsample", MakeFactory<ResizeKernel>());
}

}  // namespace gpuhive::cpu
