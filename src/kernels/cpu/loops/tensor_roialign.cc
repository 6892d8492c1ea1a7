// RoiAlign (opsets 10, 16): average or max of bilinear samples over each bin of each region.
// Follows ONNX Runtime's CPU implementation (the ONNX tests' reference), including its "max" mode
// (max over samples of the largest weighted corner).
#include "kernels/cpu/loops/tensor_register.h"
#include "kernels/cpu/loops/tensor_util.h"

namespace gpuhive::cpu {
namespace {

using namespace tensor;  // NOLINT: private helpers of this kernel family

class RoiAlignKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    const Shape& x = ctx.input_shape(0);
    const Shape& rois = ctx.input_shape(1);
    const Shape& idx = ctx.input_shape(2);
    if (x.size() != 4 || rois.size() != 2 || rois[1] != 4 || idx != Shape{rois[0]}) {
      return InvalidArgument("{}: expected X [N,C,H,W], rois [R,4], batch_indices [R]; got {} {} {}",
                             n.Describe(), ShapeToString(x), ShapeToString(rois), ShapeToString(idx));
    }
    if (ctx.input_dtype(0) != DataType::kFloat32 || ctx.input_dtype(1) != DataType::kFloat32) {
      return Unimplemented("{}: only float32 is supported", n.Describe());
    }
    ASSIGN_OR_RETURN(std::string mode, n.GetString("mode", "avg"));
    if (mode != "avg" && mode != "max") return InvalidArgument("{}: unknown mode '{}'", n.Describe(), mode);
    max_mode_ = mode == "max";
    ASSIGN_OR_RETURN(out_h_, n.GetInt("output_height", 1));
    ASSIGN_OR_RETURN(out_w_, n.GetInt("output_width", 1));
    ASSIGN_OR_RETURN(sampling_ratio_, n.GetInt("sampling_ratio", 0));
    ASSIGN_OR_RETURN(spatial_scale_, n.GetFloat("spatial_scale", 1.f));
    ASSIGN_OR_RETURN(std::string ctm, n.GetString("coordinate_transformation_mode",
                                                  ctx.opset() >= 16 ? "half_pixel" : "output_half_pixel"));
    if (ctm != "half_pixel" && ctm != "output_half_pixel") {
      return InvalidArgument("{}: unknown coordinate_transformation_mode '{}'", n.Describe(), ctm);
    }
    half_pixel_ = ctm == "half_pixel";
    if (out_h_ <= 0 || out_w_ <= 0 || sampling_ratio_ < 0) {
      return InvalidArgument("{}: output sizes must be positive and sampling_ratio >= 0", n.Describe());
    }
    ctx.SetOutput(0, DataType::kFloat32, {rois[0], x[1], out_h_, out_w_});
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    const TensorView& X = ctx.input(0);
    const int64_t N = X.shape[0], C = X.shape[1], H = X.shape[2], W = X.shape[3];
    const float* rois = ctx.input(1).as<float>();
    ASSIGN_OR_RETURN(std::vector<int64_t> batch, ReadInts(ctx.input(2), "batch_indices"));
    for (int64_t b : batch) {
      if (b < 0 || b >= N) return InvalidArgument("RoiAlign: batch index {} out of range [0, {})", b, N);
    }
    const int64_t R = static_cast<int64_t>(batch.size());
    for (int64_t i = 0; i < R * 4; ++i) {
      if (!std::isfinite(rois[i])) return InvalidArgument("RoiAlign: roi coordinates must be finite");
    }
    float* out = ctx.output(0).as<float>();
    if (H == 0 || W == 0) {
      std::fill(out, out + ctx.output(0).num_elements(), 0.f);
      return Status::OK();
    }
    const float* x = X.as<float>();
    ParallelFor(ctx.num_threads(), R, C * out_h_ * out_w_ * 16, [&](int64_t rb, int64_t re) {
      for (int64_t r = rb; r < re; ++r) {
        const float* roi = rois + r * 4;
        const float offset = half_pixel_ ? 0.5f : 0.f;
        const float sw = roi[0] * spatial_scale_ - offset, sh = roi[1] * spatial_scale_ - offset;
        const float ew = roi[2] * spatial_scale_ - offset, eh = roi[3] * spatial_scale_ - offset;
        float rw = ew - sw, rh = eh - sh;
        if (!half_pixel_) {
          rw = std::max(rw, 1.f);
          rh = std::max(rh, 1.f);
        }
        const float bh = rh / static_cast<float>(out_h_), bw = rw / static_cast<float>(out_w_);
        const int64_t gh = sampling_ratio_ > 0 ? sampling_ratio_ : static_cast<int64_t>(std::ceil(rh / out_h_));
        const int64_t gw = sampling_ratio_ > 0 ? sampling_ratio_ : static_cast<int64_t>(std::ceil(rw / out_w_));
        const float count = static_cast<float>(std::max<int64_t>(gh * gw, 1));
        for (int64_t c = 0; c < C; ++c) {
          const float* img = x + (batch[r] * C + c) * H * W;
          for (int64_t ph = 0; ph < out_h_; ++ph) {
            for (int64_t pw = 0; pw < out_w_; ++pw) {
              float acc = 0.f;
              bool first = true;
              for (int64_t iy = 0; iy < gh; ++iy) {
                const float yy = sh + static_cast<float>(ph) * bh + (static_cast<float>(iy) + 0.5f) * bh / static_cast<float>(gh);
                for (int64_t ix = 0; ix < gw; ++ix) {
                  const float xx = sw + static_cast<float>(pw) * bw + (static_cast<float>(ix) + 0.5f) * bw / static_cast<float>(gw);
                  float w1 = 0, w2 = 0, w3 = 0, w4 = 0;
                  int64_t p1 = 0, p2 = 0, p3 = 0, p4 = 0;
                  if (!(yy < -1.f || yy > static_cast<float>(H) || xx < -1.f || xx > static_cast<float>(W))) {
                    float y = std::max(yy, 0.f), xv = std::max(xx, 0.f);
                    int64_t yl = static_cast<int64_t>(y), xl = static_cast<int64_t>(xv), yh, xh;
                    if (yl >= H - 1) {
                      yh = yl = H - 1;
                      y = static_cast<float>(yl);
                    } else {
                      yh = yl + 1;
                    }
                    if (xl >= W - 1) {
                      xh = xl = W - 1;
                      xv = static_cast<float>(xl);
                    } else {
                      xh = xl + 1;
                    }
                    const float ly = y - static_cast<float>(yl), lx = xv - static_cast<float>(xl);
                    const float hy = 1 - ly, hx = 1 - lx;
                    w1 = hy * hx;
                    w2 = hy * lx;
                    w3 = ly * hx;
                    w4 = ly * lx;
                    p1 = yl * W + xl;
                    p2 = yl * W + xh;
                    p3 = yh * W + xl;
                    p4 = yh * W + xh;
                  }
                  if (max_mode_) {
                    const float v = std::max(std::max(w1 * img[p1], w2 * img[p2]), std::max(w3 * img[p3], w4 * img[p4]));
                    acc = first ? v : std::max(acc, v);
                    first = false;
                  } else {
                    acc += w1 * img[p1] + w2 * img[p2] + w3 * img[p3] + w4 * img[p4];
                  }
                }
              }
              out[((r * C + c) * out_h_ + ph) * out_w_ + pw] = max_mode_ ? acc : acc / count;
            }
          }
        }
      }
    });
    return Status::OK();
  }

 private:
  bool max_mode_ = false, half_pixel_ = true;
  int64_t out_h_ = 1, out_w_ = 1, sampling_ratio_ = 0;
  float spatial_scale_ = 1.f;
};

}  // namespace

void RegisterTensorRoiAlignKernels(KernelRegistry& registry) {
  registry.Register("", "RoiAlign", MakeFactory<RoiAlignKernel>(), 10);
}

}  // namespace gpuhive::cpu
