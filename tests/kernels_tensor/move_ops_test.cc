// Transpose, DepthToSpace, SpaceToDepth, Concat, Split, Slice, Expand, Tile, Pad, Trilu,
// ReverseSequence, each checked against a naive reference written here.
#include <chrono>
#include <cstdio>
#include <limits>

#include "tensor_test_util.h"

namespace gpuhive::testing::tensor_ops {
namespace {

std::vector<double> RefTranspose(const std::vector<double>& x, const Shape& s, const std::vector<int64_t>& perm) {
  Shape os(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) os[i] = s[perm[i]];
  std::vector<double> y(x.size());
  for (int64_t o = 0; o < NumElements(os); ++o) {
    auto oc = Unravel(o, os);
    std::vector<int64_t> ic(s.size());
    for (size_t i = 0; i < perm.size(); ++i) ic[perm[i]] = oc[i];
    y[o] = x[Ravel(ic, s)];
  }
  return y;
}

TEST(MoveOps, TransposeMatchesReference) {
  struct Case {
    Shape shape;
    std::vector<int64_t> perm;
  };
  const std::vector<Case> cases = {
      {{5, 7}, {1, 0}},
      {{67, 130}, {1, 0}},                    // tiled path with ragged tiles
      {{2, 9, 4, 8}, {0, 2, 1, 3}},           // attention [B,S,H,D] -> [B,H,S,D]
      {{2, 4, 9, 8}, {0, 1, 3, 2}},           // batched 2-D transpose
      {{2, 3, 4, 5}, {3, 1, 0, 2}},
      {{1, 3, 1, 5}, {2, 3, 0, 1}},
      {{3, 4, 5}, {}},                        // default: reversed
      {{6}, {0}},
      {{}, {}},
      {{2, 0, 3}, {2, 0, 1}},
  };
  uint32_t seed = 1;
  for (const Case& c : cases) {
    Tensor x = RandomFloat(c.shape, seed++);
    std::vector<int64_t> perm = c.perm;
    if (perm.empty()) {
      for (size_t i = c.shape.size(); i-- > 0;) perm.push_back(static_cast<int64_t>(i));
    }
    std::map<std::string, ir::Attribute> attrs;
    if (!c.perm.empty()) attrs["perm"] = AttrInts(c.perm);
    for (int threads : {1, 3}) {
      Tensor y = Run1(Node("Transpose", 13, attrs), {&x}, ConstFrom(99, 0, threads));
      auto expect = RefTranspose(ToDoubles(x), c.shape, perm);
      EXPECT_EQ(ToDoubles(y), expect) << ShapeToString(c.shape);
    }
  }
  Tensor m = Iota({2, 3});
  EXPECT_FALSE(RunNode(Node("Transpose", 13, {{"perm", AttrInts({0, 0})}}), {&m}).ok());
  EXPECT_FALSE(RunNode(Node("Transpose", 13, {{"perm", AttrInts({0})}}), {&m}).ok());
}

TEST(MoveOps, TransposeOtherElementSizes) {
  const Shape s{3, 17, 33};
  for (DataType dt : {DataType::kInt8, DataType::kFloat16, DataType::kInt64, DataType::kBool}) {
    std::vector<uint8_t> raw(static_cast<size_t>(NumElements(s)) * DataTypeSize(dt));
    for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>(i * 31 + 7);
    if (dt == DataType::kBool) {
      for (auto& b : raw) b &= 1;
    }
    if (dt == DataType::kFloat16) {
      for (size_t i = 1; i < raw.size(); i += 2) raw[i] &= 0x3b;  // keep values finite
    }
    Tensor x = MakeTensor(dt, s, raw.data());
    Tensor y = Run1(Node("Transpose", 13, {{"perm", AttrInts({2, 0, 1})}}), {&x});
    EXPECT_EQ(ToDoubles(y), RefTranspose(ToDoubles(x), s, {2, 0, 1})) << DataTypeName(dt);
  }
}

TEST(MoveOps, DepthToSpaceAndSpaceToDepth) {
  const int64_t N = 2, C = 8, H = 3, W = 2, b = 2;
  Tensor x = Iota({N, C, H, W});
  auto xv = ToDoubles(x);
  const int64_t c = C / (b * b);
  for (std::string mode : {"DCR", "CRD"}) {
    Tensor y = Run1(Node("DepthToSpace", 13, {{"blocksize", AttrInt(b)}, {"mode", AttrString(mode)}}), {&x});
    ASSERT_EQ(y.shape(), (Shape{N, c, H * b, W * b}));
    auto yv = ToDoubles(y);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t ci = 0; ci < c; ++ci)
        for (int64_t h = 0; h < H * b; ++h)
          for (int64_t w = 0; w < W * b; ++w) {
            const int64_t bh = h % b, bw = w % b;
            const int64_t src_c = mode == "DCR" ? (bh * b + bw) * c + ci : ci * b * b + bh * b + bw;
            EXPECT_EQ(yv[Ravel({n, ci, h, w}, y.shape())], xv[Ravel({n, src_c, h / b, w / b}, x.shape())]);
          }
  }
  Tensor z = Iota({1, 2, 4, 6});
  Tensor s2d = Run1(Node("SpaceToDepth", 13, {{"blocksize", AttrInt(2)}}), {&z});
  ASSERT_EQ(s2d.shape(), (Shape{1, 8, 2, 3}));
  auto zv = ToDoubles(z), sv = ToDoubles(s2d);
  for (int64_t oc = 0; oc < 8; ++oc)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t w = 0; w < 3; ++w) {
        const int64_t ci = oc % 2, bh = oc / 2 / 2, bw = oc / 2 % 2;
        EXPECT_EQ(sv[Ravel({0, oc, h, w}, s2d.shape())], zv[Ravel({0, ci, h * 2 + bh, w * 2 + bw}, z.shape())]);
      }
  EXPECT_FALSE(RunNode(Node("DepthToSpace", 13, {{"blocksize", AttrInt(3)}}), {&x}).ok());
}

TEST(MoveOps, ConcatAndSplit) {
  Tensor a = Iota({2, 1, 3}), b = Iota({2, 2, 3}, 100), c = Iota({2, 0, 3});
  Tensor y = Run1(Node("Concat", 13, {{"axis", AttrInt(-2)}}), {&a, &c, &b});
  EXPECT_TRUE(TensorNear(y, F({2, 3, 3}, {0, 1, 2, 100, 101, 102, 103, 104, 105,
                                          3, 4, 5, 106, 107, 108, 109, 110, 111})));
  Tensor bad = Iota({3, 1, 3});
  EXPECT_FALSE(RunNode(Node("Concat", 13, {{"axis", AttrInt(1)}}), {&a, &bad}).ok());

  // Split back with each opset's way of giving sizes.
  auto check = [&](const StatusOr<std::vector<Tensor>>& r) {
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->size(), 2u);
    EXPECT_TRUE(TensorNear((*r)[0], a));
    EXPECT_TRUE(TensorNear((*r)[1], b));
  };
  check(RunNode(Node("Split", 11, {{"axis", AttrInt(1)}, {"split", AttrInts({1, 2})}}, 2), {&y}));
  Tensor sizes = I64({2}, {1, 2});
  check(RunNode(Node("Split", 13, {{"axis", AttrInt(1)}}, 2), {&y, &sizes}, ConstFrom(1)));
  check(RunNode(Node("Split", 13, {{"axis", AttrInt(1)}}, 2), {&y, &sizes}));  // data-dependent
  auto even = RunNode(Node("Split", 13, {{"axis", AttrInt(1)}}, 3), {&y});
  ASSERT_TRUE(even.ok());
  EXPECT_TRUE(TensorNear((*even)[2], F({2, 1, 3}, {103, 104, 105, 109, 110, 111})));
  EXPECT_FALSE(RunNode(Node("Split", 13, {{"axis", AttrInt(1)}}, 2), {&y}).ok());  // 3 into 2
  Tensor wrong = I64({2}, {2, 2});
  EXPECT_FALSE(RunNode(Node("Split", 13, {{"axis", AttrInt(1)}}, 2), {&y, &wrong}).ok());
}

// Naive slice reference over one axis list.
std::vector<double> RefSlice(const std::vector<double>& x, const Shape& s, const std::vector<int64_t>& starts,
                             const std::vector<int64_t>& ends, const std::vector<int64_t>& axes,
                             const std::vector<int64_t>& steps, Shape* out_shape) {
  const size_t r = s.size();
  std::vector<std::vector<int64_t>> picks(r);
  for (size_t d = 0; d < r; ++d) {
    for (int64_t i = 0; i < s[d]; ++i) picks[d].push_back(i);
  }
  for (size_t k = 0; k < starts.size(); ++k) {
    const int64_t d = axes[k] < 0 ? axes[k] + static_cast<int64_t>(r) : axes[k];
    const int64_t n = s[d], step = steps[k];
    picks[d].clear();
    // Walk every candidate index and keep the ones ONNX's clamped range selects.
    int64_t st = starts[k] < 0 ? starts[k] + n : starts[k];
    int64_t en = ends[k] < 0 ? ends[k] + n : ends[k];
    if (step > 0) {
      st = std::clamp<int64_t>(st, 0, n);
      en = std::clamp<int64_t>(en, 0, n);
      for (int64_t i = st; i < en; i += step) picks[d].push_back(i);
    } else {
      st = std::clamp<int64_t>(st, 0, n - 1);
      en = std::clamp<int64_t>(en, -1, n - 1);
      for (int64_t i = st; i > en; i += step) picks[d].push_back(i);
    }
  }
  out_shape->clear();
  for (size_t d = 0; d < r; ++d) out_shape->push_back(static_cast<int64_t>(picks[d].size()));
  std::vector<double> y;
  for (int64_t o = 0; o < NumElements(*out_shape); ++o) {
    auto c = Unravel(o, *out_shape);
    for (size_t d = 0; d < r; ++d) c[d] = picks[d][c[d]];
    y.push_back(x[Ravel(c, s)]);
  }
  return y;
}

TEST(MoveOps, SliceMatchesReference) {
  const Shape s{4, 5, 6};
  Tensor x = Iota(s);
  struct Case {
    std::vector<int64_t> starts, ends, axes, steps;
  };
  const int64_t big = std::numeric_limits<int64_t>::max(), small = std::numeric_limits<int64_t>::min();
  const std::vector<Case> cases = {
      {{1, 0}, {3, 10}, {0, 1}, {1, 1}},
      {{0}, {-1}, {2}, {2}},
      {{-1}, {small}, {1}, {-1}},               // reverse an axis
      {{big}, {0}, {-1}, {-2}},                  // clamped start with negative step
      {{2, 1, 5}, {big, 4, 0}, {0, 1, 2}, {1, 2, -3}},
      {{3}, {1}, {0}, {1}},                      // empty
      {{-100}, {100}, {0}, {3}},
      {{0}, {big}, {1}, {big / 2}},              // huge steps select one element
      {{-1}, {small}, {2}, {small + 1}},
  };
  for (const Case& c : cases) {
    Shape es;
    auto expect = RefSlice(ToDoubles(x), s, c.starts, c.ends, c.axes, c.steps, &es);
    const int64_t k = static_cast<int64_t>(c.starts.size());
    Tensor st = I64({k}, c.starts), en = I64({k}, c.ends), ax = I64({k}, c.axes), sp = I64({k}, c.steps);
    for (int threads : {1, 2}) {
      Tensor y = Run1(Node("Slice", 13), {&x, &st, &en, &ax, &sp}, ConstFrom(1, 4, threads));
      EXPECT_EQ(y.shape(), es);
      EXPECT_EQ(ToDoubles(y), expect);
    }
  }
  // Opset 1..9: attributes, steps of 1.
  Tensor y = Run1(Node("Slice", 9, {{"starts", AttrInts({1, -3})}, {"ends", AttrInts({3, 100})},
                                    {"axes", AttrInts({0, 2})}}),
                  {&x});
  Shape es;
  EXPECT_EQ(ToDoubles(y), RefSlice(ToDoubles(x), s, {1, -3}, {3, 100}, {0, 2}, {1, 1}, &es));
  EXPECT_EQ(y.shape(), es);
  // int32 starts/ends without axes.
  Tensor st = I32({2}, {1, 1}), en = I32({2}, {2, 3});
  EXPECT_EQ(Run1(Node("Slice", 11), {&x, &st, &en}).shape(), (Shape{1, 2, 6}));
  Tensor zero = I64({1}, {0}), one = I64({1}, {1}), ax = I64({1}, {0});
  EXPECT_FALSE(RunNode(Node("Slice", 13), {&x, &zero, &one, &ax, &zero}).ok());  // step 0
}

TEST(MoveOps, ExpandAndTile) {
  Tensor x = F({3, 1}, {1, 2, 3});
  Tensor shape = I64({3}, {2, 1, 4});
  Tensor y = Run1(Node("Expand", 13), {&x, &shape});
  ASSERT_EQ(y.shape(), (Shape{2, 3, 4}));
  auto yv = ToDoubles(y);
  for (int64_t i = 0; i < 24; ++i) EXPECT_EQ(yv[i], 1 + (i / 4) % 3);
  Tensor small = I64({1}, {1});
  EXPECT_EQ(Run1(Node("Expand", 13), {&x, &small}).shape(), (Shape{3, 1}));
  Tensor bad = I64({2}, {2, 4});
  EXPECT_FALSE(RunNode(Node("Expand", 13), {&x, &bad}).ok());

  Tensor t = Iota({2, 3});
  Tensor reps = I64({2}, {2, 3});
  Tensor z = Run1(Node("Tile", 13), {&t, &reps});
  ASSERT_EQ(z.shape(), (Shape{4, 9}));
  auto zv = ToDoubles(z);
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 9; ++j) EXPECT_EQ(zv[i * 9 + j], (i % 2) * 3 + j % 3);
  Tensor wrong = I64({1}, {2});
  EXPECT_FALSE(RunNode(Node("Tile", 13), {&t, &wrong}).ok());
}

double RefPadValue(const std::vector<double>& x, const Shape& s, const std::vector<int64_t>& oc,
                   const std::vector<int64_t>& pads, const std::string& mode, double cv) {
  const size_t r = s.size();
  std::vector<int64_t> ic(r);
  for (size_t d = 0; d < r; ++d) {
    int64_t i = oc[d] - pads[d];
    const int64_t n = s[d];
    if (i < 0 || i >= n) {
      if (mode == "constant") return cv;
      if (mode == "edge") i = i < 0 ? 0 : n - 1;
      if (mode == "reflect") i = i < 0 ? -i : 2 * (n - 1) - i;
    }
    ic[d] = i;
  }
  return x[Ravel(ic, s)];
}

TEST(MoveOps, PadModesAndOpsets) {
  const Shape s{2, 3, 4};
  Tensor x = Iota(s, 1);
  struct Case {
    std::vector<int64_t> pads;
    std::string mode;
  };
  const std::vector<Case> cases = {
      {{0, 1, 2, 1, 0, 3}, "constant"}, {{1, 2, 3, 0, 2, 1}, "edge"},  {{1, 2, 3, 1, 2, 3}, "reflect"},
      {{0, -1, 1, 0, 1, -2}, "constant"}, {{0, 0, -1, 0, 0, -1}, "edge"}, {{0, 0, 0, 0, 0, 0}, "reflect"},
  };
  for (const Case& c : cases) {
    Shape os(3);
    for (size_t d = 0; d < 3; ++d) os[d] = s[d] + c.pads[d] + c.pads[d + 3];
    std::vector<double> expect;
    for (int64_t o = 0; o < NumElements(os); ++o) {
      expect.push_back(RefPadValue(ToDoubles(x), s, Unravel(o, os), c.pads, c.mode, 2.5));
    }
    Tensor pads = I64({6}, c.pads), cv = F({}, {2.5f});
    Tensor y = Run1(Node("Pad", 13, {{"mode", AttrString(c.mode)}}), {&x, &pads, &cv}, ConstFrom(1));
    EXPECT_EQ(y.shape(), os) << c.mode;
    EXPECT_EQ(ToDoubles(y), expect) << c.mode;
    Tensor y2 = Run1(Node("Pad", 2, {{"mode", AttrString(c.mode)}, {"pads", AttrInts(c.pads)},
                                      {"value", AttrFloat(2.5f)}}),
                     {&x});
    EXPECT_EQ(ToDoubles(y2), expect) << c.mode << " opset 2";
  }
  // The constant value converts to the data dtype before opset 11.
  Tensor xi = I32({2}, {1, 2});
  Tensor yi = Run1(Node("Pad", 2, {{"pads", AttrInts({1, 2})}, {"value", AttrFloat(7)}}), {&xi});
  EXPECT_TRUE(TensorNear(yi, I32({5}, {7, 1, 2, 7, 7})));
  Tensor too_big = I64({6}, {0, 0, 4, 0, 0, 0});
  EXPECT_FALSE(RunNode(Node("Pad", 13, {{"mode", AttrString("reflect")}}), {&x, &too_big}).ok());
  Tensor wrong_len = I64({2}, {1, 1});
  EXPECT_FALSE(RunNode(Node("Pad", 13), {&x, &wrong_len}).ok());
}

TEST(MoveOps, Trilu) {
  Tensor x = Iota({2, 3, 4}, 1);
  auto xv = ToDoubles(x);
  for (int upper : {0, 1}) {
    for (int64_t k : {-4, -1, 0, 2, 5}) {
      Tensor kt = I64({}, {k});
      Tensor y = Run1(Node("Trilu", 14, {{"upper", AttrInt(upper)}}), {&x, &kt});
      auto yv = ToDoubles(y);
      for (int64_t i = 0; i < 24; ++i) {
        const int64_t row = (i / 4) % 3, col = i % 4;
        const bool keep = upper ? col - row >= k : col - row <= k;
        EXPECT_EQ(yv[i], keep ? xv[i] : 0) << upper << " " << k << " " << i;
      }
    }
  }
}

TEST(MoveOps, ReverseSequence) {
  Tensor x = Iota({4, 2, 3});  // [T, B, D]
  Tensor lens = I64({2}, {3, 1});
  Tensor y = Run1(Node("ReverseSequence", 10), {&x, &lens});
  auto xv = ToDoubles(x), yv = ToDoubles(y);
  for (int64_t t = 0; t < 4; ++t)
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t d = 0; d < 3; ++d) {
        const int64_t l = b == 0 ? 3 : 1, ts = t < l ? l - 1 - t : t;
        EXPECT_EQ(yv[(t * 2 + b) * 3 + d], xv[(ts * 2 + b) * 3 + d]);
      }
  Tensor bad = I64({2}, {5, 1});
  EXPECT_EQ(RunNode(Node("ReverseSequence", 10), {&x, &bad}).status().code(), StatusCode::kInvalidArgument);
}

// Throughput of the Transpose fast paths; run with --gtest_also_run_disabled_tests.
TEST(MoveOpsPerf, DISABLED_TransposeThroughput) {
  struct Case {
    const char* name;
    Shape shape;
    std::vector<int64_t> perm;
  };
  const std::vector<Case> cases = {
      {"2-D 4096x4096", {4096, 4096}, {1, 0}},
      {"attention [8,512,12,64]->[8,12,512,64]", {8, 512, 12, 64}, {0, 2, 1, 3}},
      {"key [8,12,512,64]->[8,12,64,512]", {8, 12, 512, 64}, {0, 1, 3, 2}},
      {"NCHW->NHWC [8,64,112,112]", {8, 64, 112, 112}, {0, 2, 3, 1}},
  };
  for (const Case& c : cases) {
    Tensor x = RandomFloat(c.shape, 3);
    for (int threads : {1, 2}) {
      RunOptions opts;
      opts.num_threads = threads;
      Run1(Node("Transpose", 13, {{"perm", AttrInts(c.perm)}}), {&x}, opts);  // warm up
      const int reps = 5;
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < reps; ++i) Run1(Node("Transpose", 13, {{"perm", AttrInts(c.perm)}}), {&x}, opts);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
      std::printf("%-45s threads %d: %8.2f ms, %6.2f GB/s (read + write)\n", c.name, threads, s * 1e3,
                  2.0 * static_cast<double>(x.bytes()) / s / 1e9);
    }
  }
}

}  // namespace
}  // namespace gpuhive::testing::tensor_ops
