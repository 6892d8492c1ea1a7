// GridSample (opset 16, 4-D): samples X [N,C,H,W] at the normalized (x, y) positions of
// grid [N,Ho,Wo,2]; modes bilinear / nearest / bicubic, padding zeros / border / reflection,
// align_corners. Follows ONNX Runtime's CPU implementation (the ONNX tests' reference).
#include "kernels/cpu/loops/tensor_register.h"
#include "kernels/cpu/loops/tensor_util.h"

namespace gpuhive::cpu {
namespace {

using namespace tensor;  // NOLINT: private helpers of this kernel family

enum class GsMode { kBilinear, kNearest, kBicubic };
enum class GsPad { kZeros, kBorder, kReflection };

float Reflect(float x, float lo, float hi) {
  const float range = hi - lo;
  if (range <= 0) return lo;
  if (x < lo) {
    const float d = lo - x;
    const int64_t n = static_cast<int64_t>(d / range);
    const float r = d - static_cast<float>(n) * range;
    return n % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const float d = x - hi;
    const int64_t n = static_cast<int64_t>(d / range);
    const float r = d - static_cast<float>(n) * range;
    return n % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

void CubicCoeffs(float x, float c[4]) {
  constexpr float A = -0.75f;
  x = std::fabs(x);
  c[0] = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A;
  c[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
  c[2] = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1;
  c[3] = ((A * (2 - x) - 5 * A) * (2 - x) + 8 * A) * (2 - x) - 4 * A;
}

class GridSampleKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    const Shape& x = ctx.input_shape(0);
    const Shape& g = ctx.input_shape(1);
    if (x.size() != 4 || g.size() != 4 || g[3] != 2 || g[0] != x[0]) {
      return InvalidArgument("{}: X must be [N,C,H,W] and grid [N,Ho,Wo,2], got {} and {}", n.Describe(),
                             ShapeToString(x), ShapeToString(g));
    }
    if (ctx.input_dtype(0) != DataType::kFloat32 || ctx.input_dtype(1) != DataType::kFloat32) {
      return Unimplemented("{}: only float32 X and grid are supported", n.Describe());
    }
    ASSIGN_OR_RETURN(std::string mode, n.GetString("mode", "bilinear"));
    ASSIGN_OR_RETURN(std::string pad, n.GetString("padding_mode", "zeros"));
    ASSIGN_OR_RETURN(int64_t ac, n.GetInt("align_corners", 0));
    align_corners_ = ac != 0;
    if (mode == "bilinear" || mode == "linear") mode_ = GsMode::kBilinear;
    else if (mode == "nearest") mode_ = GsMode::kNearest;
    else if (mode == "bicubic" || mode == "cubic") mode_ = GsMode::kBicubic;
    else return InvalidArgument("{}: unknown mode '{}'", n.Describe(), mode);
    if (pad == "zeros") pad_ = GsPad::kZeros;
    else if (pad == "border") pad_ = GsPad::kBorder;
    else if (pad == "reflection") pad_ = GsPad::kReflection;
    else return InvalidArgument("{}: unknown padding_mode '{}'", n.Describe(), pad);
    ctx.SetOutput(0, DataType::kFloat32, {x[0], x[1], g[1], g[2]});
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    const TensorView& X = ctx.input(0);
    const TensorView& G = ctx.input(1);
    const TensorView& Y = ctx.output(0);
    const int64_t N = X.shape[0], C = X.shape[1], H = X.shape[2], W = X.shape[3];
    const int64_t Ho = G.shape[1], Wo = G.shape[2];
    if (Y.num_elements() == 0) return Status::OK();
    const float* x = X.as<float>();
    const float* grid = G.as<float>();
    float* y = Y.as<float>();
    const float x_min = align_corners_ ? 0.f : -0.5f, y_min = x_min;
    const float x_max = align_corners_ ? static_cast<float>(W - 1) : static_cast<float>(W) - 0.5f;
    const float y_max = align_corners_ ? static_cast<float>(H - 1) : static_cast<float>(H) - 0.5f;
    auto denorm = [&](float v, int64_t len) {
      return align_corners_ ? (v + 1) / 2 * static_cast<float>(len - 1)
                            : ((v + 1) * static_cast<float>(len) - 1) / 2;
    };
    auto pixel = [&](const float* img, int64_t r, int64_t c) -> float {
      switch (pad_) {
        case GsPad::kZeros:
          return (r >= 0 && r < H && c >= 0 && c < W) ? img[r * W + c] : 0.f;
        case GsPad::kBorder:
          return img[std::clamp<int64_t>(r, 0, H - 1) * W + std::clamp<int64_t>(c, 0, W - 1)];
        case GsPad::kReflection: {
          int64_t rr = static_cast<int64_t>(Reflect(static_cast<float>(r), y_min, y_max));
          int64_t cc = static_cast<int64_t>(Reflect(static_cast<float>(c), x_min, x_max));
          return img[std::clamp<int64_t>(rr, 0, H - 1) * W + std::clamp<int64_t>(cc, 0, W - 1)];
        }
      }
      return 0.f;
    };
    ParallelFor(ctx.num_threads(), N * C, Ho * Wo * 8, [&](int64_t b, int64_t e) {
      for (int64_t nc = b; nc < e; ++nc) {
        const int64_t n = nc / C;
        const float* img = x + nc * H * W;
        const float* gp = grid + n * Ho * Wo * 2;
        float* out = y + nc * Ho * Wo;
        for (int64_t i = 0; i < Ho * Wo; ++i) {
          float fx = denorm(gp[2 * i], W), fy = denorm(gp[2 * i + 1], H);
          if (mode_ == GsMode::kNearest) {
            fx = std::nearbyint(fx);
            fy = std::nearbyint(fy);
          }
          if (mode_ != GsMode::kBicubic) {
            if (pad_ == GsPad::kBorder) {
              fx = std::clamp(fx, 0.f, static_cast<float>(W - 1));
              fy = std::clamp(fy, 0.f, static_cast<float>(H - 1));
            } else if (pad_ == GsPad::kReflection) {
              fx = Reflect(fx, x_min, x_max);
              fy = Reflect(fy, y_min, y_max);
            }
          }
          if (!std::isfinite(fx) || !std::isfinite(fy)) {
            out[i] = 0.f;
            continue;
          }
          if (mode_ == GsMode::kNearest) {
            out[i] = pixel(img, static_cast<int64_t>(fy), static_cast<int64_t>(fx));
          } else if (mode_ == GsMode::kBilinear) {
            const int64_t x1 = static_cast<int64_t>(std::floor(fx)), y1 = static_cast<int64_t>(std::floor(fy));
            const float dx1 = fx - static_cast<float>(x1), dx2 = 1 - dx1;
            const float dy1 = fy - static_cast<float>(y1), dy2 = 1 - dy1;
            out[i] = dy2 * (dx2 * pixel(img, y1, x1) + dx1 * pixel(img, y1, x1 + 1)) +
                     dy1 * (dx2 * pixel(img, y1 + 1, x1) + dx1 * pixel(img, y1 + 1, x1 + 1));
          } else {
            const int64_t x0 = static_cast<int64_t>(std::floor(fx)) - 1, y0 = static_cast<int64_t>(std::floor(fy)) - 1;
            float cx[4], cy[4];
            CubicCoeffs(fx - static_cast<float>(x0) - 1, cx);
            CubicCoeffs(fy - static_cast<float>(y0) - 1, cy);
            float acc = 0;
            for (int64_t h = 0; h < 4; ++h) {
              float row = 0;
              for (int64_t w = 0; w < 4; ++w) row += cx[w] * pixel(img, y0 + h, x0 + w);
              acc += cy[h] * row;
            }
            out[i] = acc;
          }
        }
      }
    });
    return Status::OK();
  }

 private:
  GsMode mode_ = GsMode::kBilinear;
  GsPad pad_ = GsPad::kZeros;
  bool align_corners_ = false;
};

}  // namespace

void RegisterTensorGridSampleKernels(KernelRegistry& registry) {
  registry.Register("", "GridSample", MakeFactory<GridSampleKernel>(), 16);
}

}  // namespace gpuhive::cpu
