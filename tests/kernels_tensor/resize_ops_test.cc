// Resize and Upsample: the examples of the ONNX operator documentation (values computed by hand
// there), and cubic/linear on random data against a reference that follows the ONNX reference
// implementation's "n nearest neighbours of an edge-padded row" definition.
#include <cmath>

#include "tensor_test_util.h"

namespace gpuhive::testing::tensor_ops {
namespace {

Tensor Empty() { return F({0}, {}); }

StatusOr<std::vector<Tensor>> Resize13(const std::map<std::string, ir::Attribute>& attrs, const Tensor& x,
                                       const std::vector<float>& scales, const std::vector<int64_t>& sizes,
                                       const std::vector<float>& roi = {}, std::string* implementation = nullptr,
                                       int threads = 1) {
  Tensor r = roi.empty() ? Empty() : F({static_cast<int64_t>(roi.size())}, roi);
  Tensor s = scales.empty() ? Empty() : F({static_cast<int64_t>(scales.size())}, scales);
  Tensor z = I64({static_cast<int64_t>(sizes.size())}, sizes);
  std::vector<const Tensor*> in = {&x, &r, &s};
  if (!sizes.empty()) in.push_back(&z);
  RunOptions opts = ConstFrom(1, 3);
  opts.implementation = implementation;
  opts.num_threads = threads;
  return RunNode(Node("Resize", 13, attrs), in, opts);
}

Tensor Resize13Ok(const std::map<std::string, ir::Attribute>& attrs, const Tensor& x,
                  const std::vector<float>& scales, const std::vector<int64_t>& sizes,
                  const std::vector<float>& roi = {}, std::string* implementation = nullptr, int threads = 1) {
  auto r = Resize13(attrs, x, scales, sizes, roi, implementation, threads);
  if (!r.ok()) {
    ADD_FAILURE() << r.status().ToString();
    return Tensor();
  }
  return std::move((*r)[0]);
}

TEST(ResizeOps, DocumentedNearestAndLinearExamples) {
  Tensor x = F({1, 1, 2, 2}, {1, 2, 3, 4});
  EXPECT_TRUE(TensorNear(Resize13Ok({{"mode", AttrString("nearest")}}, x, {1, 1, 2, 3}, {}),
                         F({1, 1, 4, 6}, {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4})));
  EXPECT_TRUE(TensorNear(Resize13Ok({{"mode", AttrString("linear")}}, x, {1, 1, 2, 2}, {}),
                         F({1, 1, 4, 4}, {1, 1.25f, 1.75f, 2, 1.5f, 1.75f, 2.25f, 2.5f, 2.5f, 2.75f, 3.25f,
                                          3.5f, 3, 3.25f, 3.75f, 4})));
  const float a = 1.f / 3, b = 2.f / 3;
  EXPECT_TRUE(TensorNear(
      Resize13Ok({{"mode", AttrString("linear")}, {"coordinate_transformation_mode", AttrString("align_corners")}},
                 x, {1, 1, 2, 2}, {}),
      F({1, 1, 4, 4}, {1, 1 + a, 1 + b, 2, 1 + b, 2, 2 + a, 2 + b, 2 + a, 2 + b, 3, 3 + a, 3, 3 + a, 3 + b, 4}),
      1e-5, 1e-5));

  Tensor y = F({1, 1, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
  EXPECT_TRUE(TensorNear(Resize13Ok({{"mode", AttrString("nearest")}}, y, {1, 1, 0.6f, 0.6f}, {}),
                         F({1, 1, 1, 2}, {1, 3})));
  EXPECT_TRUE(TensorNear(Resize13Ok({{"mode", AttrString("linear")}}, y, {1, 1, 0.6f, 0.6f}, {}),
                         F({1, 1, 1, 2}, {2.6666665f, 4.3333331f}), 1e-5, 1e-5));
  EXPECT_TRUE(TensorNear(
      Resize13Ok({{"mode", AttrString("linear")}, {"coordinate_transformation_mode", AttrString("align_corners")}},
                 y, {1, 1, 0.6f, 0.6f}, {}),
      F({1, 1, 1, 2}, {1, 3.142857f}), 1e-5, 1e-5));
  // Sizes instead of scales.
  EXPECT_TRUE(TensorNear(Resize13Ok({{"mode", AttrString("nearest")}}, y, {}, {1, 1, 1, 3}),
                         F({1, 1, 1, 3}, {1, 2, 4})));
}

TEST(ResizeOps, TfCropAndResize) {
  Tensor x = Iota({1, 1, 4, 4}, 1);
  Tensor y = Resize13Ok({{"mode", AttrString("linear")}, {"coordinate_transformation_mode", AttrString("tf_crop_and_resize")}},
                        x, {}, {1, 1, 3, 3}, {0, 0, 0.4f, 0.6f, 1, 1, 0.6f, 0.8f});
  EXPECT_TRUE(TensorNear(y, F({1, 1, 3, 3}, {7.6f, 7.9f, 8.2f, 8.8f, 9.1f, 9.4f, 10, 10.3f, 10.6f}), 1e-4, 1e-5));
  Tensor z = Resize13Ok({{"mode", AttrString("linear")},
                         {"coordinate_transformation_mode", AttrString("tf_crop_and_resize")},
                         {"extrapolation_value", AttrFloat(10)}},
                        x, {}, {1, 1, 3, 3}, {0, 0, 0.4f, 0.6f, 1, 1, 1.2f, 1.7f});
  EXPECT_TRUE(TensorNear(z, F({1, 1, 3, 3}, {7.6f, 10, 10, 12.4f, 10, 10, 10, 10, 10}), 1e-4, 1e-5));
}

TEST(ResizeOps, UpsampleOpsets) {
  Tensor x = F({1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor expect = F({1, 1, 4, 6}, {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4});
  EXPECT_TRUE(TensorNear(Run1(Node("Upsample", 7, {{"scales", AttrFloats({1, 1, 2, 3})}}), {&x}), expect));
  Tensor scales = F({4}, {1, 1, 2, 3});
  EXPECT_TRUE(TensorNear(Run1(Node("Upsample", 9), {&x, &scales}, ConstFrom(1)), expect));
  EXPECT_TRUE(TensorNear(Run1(Node("Resize", 10), {&x, &scales}), expect));
  // Opset 10 linear is asymmetric: x_orig = x / scale.
  Tensor s2 = F({4}, {1, 1, 1, 2});
  EXPECT_TRUE(TensorNear(Run1(Node("Resize", 10, {{"mode", AttrString("linear")}}), {&x, &s2}),
                         F({1, 1, 2, 4}, {1, 1.5f, 2, 2, 3, 3.5f, 4, 4})));
}

// Reference taps of one output coordinate, as the ONNX reference computes them: the n nearest
// indices of the edge-padded row (ties to the lower index), coefficients from the ratio.
std::vector<std::pair<int64_t, double>> RefTaps(double x, int64_t len, const std::string& mode, double A,
                                                bool exclude_outside) {
  const int64_t n = mode == "cubic" ? 4 : 2, pad = (n + 1) / 2;
  const double xp = x + static_cast<double>(pad);
  std::vector<int64_t> cand;
  for (int64_t i = 0; i < len + 2 * pad; ++i) cand.push_back(i);
  std::stable_sort(cand.begin(), cand.end(), [&](int64_t a, int64_t b) {
    return std::fabs(xp - a) < std::fabs(xp - b) || (std::fabs(xp - a) == std::fabs(xp - b) && a < b);
  });
  cand.resize(static_cast<size_t>(n));
  std::sort(cand.begin(), cand.end());
  double ratio = x - std::floor(x);
  if (ratio == 0) ratio = 1;
  std::vector<double> c;
  if (mode == "cubic") {
    auto k = [A](double t) {  // Keys kernel
      t = std::fabs(t);
      if (t <= 1) return ((A + 2) * t - (A + 3)) * t * t + 1;
      if (t < 2) return ((A * t - 5 * A) * t + 8 * A) * t - 4 * A;
      return 0.0;
    };
    c = {k(ratio + 1), k(ratio), k(1 - ratio), k(2 - ratio)};
  } else {
    c = {1 - ratio, ratio};
  }
  std::vector<std::pair<int64_t, double>> taps;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t idx = cand[i] - pad;
    if (exclude_outside && (idx < 0 || idx >= len)) c[i] = 0;
    sum += c[i];
    taps.emplace_back(std::clamp<int64_t>(idx, 0, len - 1), c[i]);
  }
  if (exclude_outside) {
    for (auto& t : taps) t.second /= sum;
  }
  return taps;
}

struct InterpCase {
  std::string mode, coord;
  float scale_h, scale_w;
  double A;
  bool exclude;
};

// The ONNX reference's separable definition over the last two dims of x {1, C, H, W}.
Tensor ReferenceInterp(const Tensor& x, const InterpCase& c) {
  const int64_t C = x.shape()[1], H = x.shape()[2], W = x.shape()[3];
  auto xv = ToDoubles(x);
  const double sh = c.scale_h, sw = c.scale_w;
  const int64_t OH = static_cast<int64_t>(std::floor(sh * H)), OW = static_cast<int64_t>(std::floor(sw * W));
  auto coord = [&](int64_t o, double scale, int64_t len) {
    const double ow = scale * static_cast<double>(len);
    if (c.coord == "half_pixel") return (o + 0.5) / scale - 0.5;
    if (c.coord == "pytorch_half_pixel") return ow > 1 ? (o + 0.5) / scale - 0.5 : -0.5;
    if (c.coord == "align_corners") return ow == 1 ? 0.0 : o * (len - 1.0) / (ow - 1);
    return o / scale;
  };
  std::vector<float> expect;
  for (int64_t ch = 0; ch < C; ++ch)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        double v = 0;
        for (auto [ih, wh] : RefTaps(coord(oh, sh, H), H, c.mode, c.A, c.exclude))
          for (auto [iw, ww] : RefTaps(coord(ow, sw, W), W, c.mode, c.A, c.exclude))
            v += wh * ww * xv[(ch * H + ih) * W + iw];
        expect.push_back(static_cast<float>(v));
      }
  return F({1, C, OH, OW}, expect);
}

std::map<std::string, ir::Attribute> InterpAttrs(const InterpCase& c) {
  return {{"mode", AttrString(c.mode)},
          {"coordinate_transformation_mode", AttrString(c.coord)},
          {"cubic_coeff_a", AttrFloat(static_cast<float>(c.A))},
          {"exclude_outside", AttrInt(c.exclude)}};
}

// Resizing H and W only takes the separable path (each input row resampled once); the checks
// against the reference cover its row cache (cubic reads 4 rows per output row, downscaling skips
// rows, upscaling shares them).
TEST(ResizeOps, CubicAndLinearMatchReference) {
  const std::vector<InterpCase> cases = {
      {"cubic", "half_pixel", 2.f, 1.5f, -0.75, false},
      {"cubic", "half_pixel", 0.8f, 0.6f, -0.5, true},
      {"cubic", "align_corners", 1.7f, 2.f, -0.75, false},
      {"cubic", "asymmetric", 2.f, 3.f, -0.75, false},
      {"cubic", "pytorch_half_pixel", 0.5f, 1.25f, -0.75, false},
      {"linear", "half_pixel", 1.5f, 0.7f, -0.75, false},
      {"linear", "asymmetric", 2.5f, 1.f, -0.75, false},
  };
  Tensor x = RandomFloat({1, 2, 5, 6}, 11);
  for (const InterpCase& c : cases) {
    std::string impl;
    Tensor y = Resize13Ok(InterpAttrs(c), x, {1, 1, c.scale_h, c.scale_w}, {}, {}, &impl);
    EXPECT_TRUE(TensorNear(y, ReferenceInterp(x, c), 1e-5, 1e-4)) << c.mode << " " << c.coord;
    EXPECT_EQ(impl, "separable_2d") << c.mode << " " << c.coord;
  }
}

// LRASPP's final upsampling (21 classes, 28x28 -> 224x224, bilinear, half_pixel) took 65 % of its
// time on the generic path (a vector of taps built per output row); split over two threads here.
TEST(ResizeOps, LargeBilinearUpsamplingOnTwoThreadsMatchesReference) {
  const InterpCase c{"linear", "half_pixel", 8.f, 8.f, -0.75, false};
  Tensor x = RandomFloat({1, 3, 28, 28}, 5);
  std::string impl;
  Tensor y = Resize13Ok(InterpAttrs(c), x, {1, 1, 8.f, 8.f}, {}, {}, &impl, 2);
  EXPECT_TRUE(TensorNear(y, ReferenceInterp(x, c), 1e-5, 1e-4));
  EXPECT_EQ(impl, "separable_2d");
}

// Interpolating a channel dimension, or coordinates outside the input, take the generic path.
TEST(ResizeOps, OuterDimensionsOrOutsideCoordinatesTakeTheGenericPath) {
  Tensor x = RandomFloat({1, 2, 3, 4}, 3);
  std::string impl;
  Tensor y = Resize13Ok({{"mode", AttrString("linear")}}, x, {1, 2, 2, 2}, {}, {}, &impl);
  EXPECT_EQ(y.shape(), (Shape{1, 4, 6, 8}));
  EXPECT_EQ(impl, "generic");
  Tensor z = Resize13Ok({{"mode", AttrString("linear")}, {"coordinate_transformation_mode", AttrString("tf_crop_and_resize")}},
                        x, {1, 1, 2, 2}, {}, {0, 0, -0.5f, 0, 1, 1, 1.5f, 1}, &impl);
  EXPECT_EQ(impl, "generic");
  Resize13Ok({{"mode", AttrString("nearest")}}, x, {1, 1, 2, 2}, {}, {}, &impl);
  EXPECT_EQ(impl, "nearest");
}

TEST(ResizeOps, NearestModesAndDtypes) {
  Tensor x = F({1, 5}, {10, 11, 12, 13, 14});
  // Upsample 5 -> 10, asymmetric: x_orig = o / 2, so every odd output is a .5 tie.
  struct Case {
    std::string nearest;
    std::vector<float> expect;
  };
  const std::vector<Case> cases = {
      {"round_prefer_floor", {10, 10, 11, 11, 12, 12, 13, 13, 14, 14}},
      {"round_prefer_ceil", {10, 11, 11, 12, 12, 13, 13, 14, 14, 14}},
      {"floor", {10, 10, 11, 11, 12, 12, 13, 13, 14, 14}},
      {"ceil", {10, 11, 11, 12, 12, 13, 13, 14, 14, 14}},
  };
  for (const Case& c : cases) {
    Tensor y = Resize13Ok({{"mode", AttrString("nearest")}, {"nearest_mode", AttrString(c.nearest)},
                           {"coordinate_transformation_mode", AttrString("asymmetric")}},
                          x, {1, 2}, {});
    EXPECT_TRUE(TensorNear(y, F({1, 10}, c.expect))) << c.nearest;
  }
  // half_pixel 5 -> 8 (scale 1.6): x_orig = (o + 0.5) / 1.6 - 0.5, default round_prefer_floor.
  Tensor y8 = Resize13Ok({{"mode", AttrString("nearest")}}, x, {1, 1.6f}, {});
  EXPECT_TRUE(TensorNear(y8, F({1, 8}, {10, 10, 11, 12, 12, 13, 14, 14})));
  // Nearest moves raw elements: uint8 and fp16 come through bit-exact.
  Tensor u8 = Make(DataType::kUint8, {1, 2}, std::vector<uint8_t>{7, 250});
  Tensor yu = Resize13Ok({{"mode", AttrString("nearest")}}, u8, {1, 2}, {});
  EXPECT_TRUE(TensorNear(yu, Make(DataType::kUint8, {1, 4}, std::vector<uint8_t>{7, 7, 250, 250})));
  Tensor h = Make(DataType::kFloat16, {1, 2}, std::vector<uint16_t>{0x3c00, 0x4000});  // 1, 2
  Tensor yh = Resize13Ok({{"mode", AttrString("linear")}}, h, {1, 2}, {});
  EXPECT_TRUE(TensorNear(yh, Make(DataType::kFloat16, {1, 4}, std::vector<uint16_t>{0x3c00, 0x3d00, 0x3f00, 0x4000})));
}

TEST(ResizeOps, Errors) {
  Tensor x = F({1, 2}, {1, 2});
  EXPECT_FALSE(Resize13({{"mode", AttrString("nearest")}}, x, {1, 2, 3}, {}).ok());
  EXPECT_FALSE(Resize13({{"mode", AttrString("nearest")}}, x, {}, {}).ok());
  EXPECT_FALSE(Resize13({{"mode", AttrString("area")}}, x, {1, 2}, {}).ok());
  EXPECT_FALSE(Resize13({{"mode", AttrString("nearest")}}, x, {1, -2}, {}).ok());
}

}  // namespace
}  // namespace gpuhive::testing::tensor_ops
