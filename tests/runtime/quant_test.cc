// QDQ models (DequantizeLinear -> Conv [-> Relu] -> QuantizeLinear around int8 data, the form ONNX
// quantizers write): FuseQuantizedConv turns each convolution into gpuhive.QConv on oneDNN's int8
// kernels. The optimized model must agree with the same graph run as imported (every
// DequantizeLinear, float32 Conv and QuantizeLinear executed as written) within one quantization
// step, run the int8 node, and keep its weights int8.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>

#include "gpuhive/runtime.h"

namespace gpuhive {
namespace {

template <typename T>
ir::ConstTensor Const(DataType t, Shape s, const std::vector<T>& v) {
  return std::make_shared<const Tensor>(Tensor::FromVector<T>(t, std::move(s), v).value());
}

// A graph being written by hand: values, constants and opset-13 nodes named after their output.
struct GraphWriter {
  std::unique_ptr<ir::Model> m = std::make_unique<ir::Model>();
  ir::Graph* g;
  GraphWriter() {
    m->graph = std::make_shared<ir::Graph>();
    m->opsets[""] = 13;
    g = m->graph.get();
  }
  ir::Value* value(const std::string& n, DataType t) { return g->AddValue(n, t); }
  ir::Value* constant(const std::string& n, DataType t, ir::ConstTensor c) {
    ir::Value* v = g->AddValue(n, t);
    v->constant = std::move(c);
    return v;
  }
  ir::Node* node(const char* op, std::vector<ir::Value*> in, ir::Value* out) {
    ir::Node* n = g->AddNode(op, std::move(in), {out}, std::string(op) + "_" + out->name);
    n->opset = 13;
    return n;
  }
};

// Weights within 7 bits, so the int8 kernels run at every ISA (see qconv.cc).
// x:f32[N,8,10,10] -> Q(0.02, 128) -> DQ -> Conv(W int8 per-channel [16,8,3,3], B int32, pads 1)
//   -> Relu -> Q(0.05, 10) -> DQ -> y:f32             (the fused form's quantized output)
//   ... DQ -> Conv(W2 int8 per-tensor [4,16,1,1]) -> z:f32   (its float output: no Q after it)
std::unique_ptr<ir::Model> BuildQdq(uint32_t seed) {
  std::mt19937 rng(seed);
  auto ints = [&](size_t n, int lo, int hi) {
    std::uniform_int_distribution<int> d(lo, hi);
    std::vector<int8_t> v(n);
    for (auto& e : v) e = static_cast<int8_t>(d(rng));
    return v;
  };
  GraphWriter gw;
  ir::Graph& g = *gw.g;
  auto value = [&](const std::string& n, DataType t) { return gw.value(n, t); };
  auto constant = [&](const std::string& n, DataType t, ir::ConstTensor c) { return gw.constant(n, t, std::move(c)); };
  auto node = [&](const char* op, std::vector<ir::Value*> in, ir::Value* out) { return gw.node(op, std::move(in), out); };
  ir::Value* x = value("x", DataType::kFloat32);
  x->shape = std::vector<ir::Dim>{ir::Dim{-1, "N"}, ir::Dim{8, ""}, ir::Dim{10, ""}, ir::Dim{10, ""}};
  x->is_graph_input = true;
  g.inputs().push_back(x);
  ir::Value* sx = constant("sx", DataType::kFloat32, Const<float>(DataType::kFloat32, {}, {0.02f}));
  ir::Value* zx = constant("zx", DataType::kUint8, Const<uint8_t>(DataType::kUint8, {}, {128}));
  std::vector<float> w_scale(16);
  for (int c = 0; c < 16; ++c) w_scale[static_cast<size_t>(c)] = 0.003f + 0.0004f * static_cast<float>(c);
  ir::Value* w = constant("w", DataType::kInt8, Const<int8_t>(DataType::kInt8, {16, 8, 3, 3}, ints(16 * 8 * 9, -64, 63)));
  ir::Value* sw = constant("sw", DataType::kFloat32, Const<float>(DataType::kFloat32, {16}, w_scale));
  std::vector<int32_t> bq(16);
  for (int c = 0; c < 16; ++c) bq[static_cast<size_t>(c)] = (c * 997) % 4001 - 2000;
  std::vector<float> sb(16);
  for (int c = 0; c < 16; ++c) sb[static_cast<size_t>(c)] = 0.02f * w_scale[static_cast<size_t>(c)];
  ir::Value* b = constant("b", DataType::kInt32, Const<int32_t>(DataType::kInt32, {16}, bq));
  ir::Value* s_b = constant("sb", DataType::kFloat32, Const<float>(DataType::kFloat32, {16}, sb));
  ir::Value* sy = constant("sy", DataType::kFloat32, Const<float>(DataType::kFloat32, {}, {0.05f}));
  ir::Value* zy = constant("zy", DataType::kUint8, Const<uint8_t>(DataType::kUint8, {}, {10}));
  ir::Value* w2 = constant("w2", DataType::kInt8, Const<int8_t>(DataType::kInt8, {4, 16, 1, 1}, ints(64, -64, 63)));
  ir::Value* sw2 = constant("sw2", DataType::kFloat32, Const<float>(DataType::kFloat32, {}, {0.01f}));

  ir::Value *xq = value("xq", DataType::kUint8), *xd = value("xd", DataType::kFloat32),
            *wd = value("wd", DataType::kFloat32), *bd = value("bd", DataType::kFloat32),
            *c = value("c", DataType::kFloat32), *r = value("r", DataType::kFloat32),
            *yq = value("yq", DataType::kUint8), *y = value("y", DataType::kFloat32),
            *w2d = value("w2d", DataType::kFloat32), *z = value("z", DataType::kFloat32);
  node("QuantizeLinear", {x, sx, zx}, xq);
  node("DequantizeLinear", {xq, sx, zx}, xd);
  node("DequantizeLinear", {w, sw}, wd)->attrs["axis"] = ir::Attribute(int64_t{0});
  node("DequantizeLinear", {b, s_b}, bd)->attrs["axis"] = ir::Attribute(int64_t{0});
  node("Conv", {xd, wd, bd}, c)->attrs["pads"] = ir::Attribute(std::vector<int64_t>{1, 1, 1, 1});
  node("Relu", {c}, r);
  node("QuantizeLinear", {r, sy, zy}, yq);
  node("DequantizeLinear", {yq, sy, zy}, y);
  node("DequantizeLinear", {w2, sw2}, w2d);
  node("Conv", {y, w2d}, z);
  for (ir::Value* o : {y, z}) {
    o->is_graph_output = true;
    g.outputs().push_back(o);
  }
  return std::move(gw.m);
}

// One profiled run of `model` on x, as imported (every node as written) or optimized.
struct ProfiledRun {
  std::vector<Tensor> outputs;
  std::vector<ExecutionContext::StepTime> steps;
  size_t weight_bytes = 0;
};
ProfiledRun CompileAndRun(std::unique_ptr<ir::Model> model, bool optimize, const Tensor& x) {
  CompileOptions co;
  co.optimize = optimize;
  auto compiled = CompiledModel::Create(std::move(model), co);
  if (!compiled.ok()) {
    ADD_FAILURE() << compiled.status().ToString();
    return {};
  }
  ExecutionContext::Options eo;
  eo.profile = true;
  ExecutionContext ctx(eo);
  auto out = (*compiled)->Run(ctx, {x.view()});
  if (!out.ok()) {
    ADD_FAILURE() << out.status().ToString();
    return {};
  }
  return {std::move(*out), ctx.step_times(), (*compiled)->weight_bytes()};
}

TEST(RuntimeQdq, ConvolutionsRunOnInt8AndMatchTheGraphAsWritten) {
  const int64_t n = 2;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-2.5f, 2.5f);
  auto x = Tensor::Allocate(DataType::kFloat32, {n, 8, 10, 10});
  for (int64_t i = 0; i < x->num_elements(); ++i) x->as<float>()[i] = u(rng);

  std::vector<Tensor> results[2];
  for (bool optimize : {false, true}) {
    SCOPED_TRACE(optimize ? "optimized" : "as imported");
    ProfiledRun run = CompileAndRun(BuildQdq(3), optimize, *x);
    ASSERT_FALSE(run.outputs.empty());
    results[optimize] = std::move(run.outputs);
    int qconvs = 0, float_convs = 0;
    for (const auto& step : run.steps) {
      if (step.op == "gpuhive.QConv") {
        ++qconvs;
        EXPECT_EQ(step.implementation.find("ref"), std::string::npos) << step.implementation;
        EXPECT_NE(step.implementation.rfind("dequantized:", 0), 0u) << step.implementation;
      }
      float_convs += step.op == "Conv" || step.op == "gpuhive.FusedConv";
    }
    EXPECT_EQ(qconvs, optimize ? 2 : 0);
    EXPECT_EQ(float_convs, optimize ? 0 : 2);
    // int8 weights (1,216 bytes) with scales and biases, each constant 64-byte aligned: 3,086 bytes
    // measured; W and W2 folded into float32 would take 4,864 bytes by themselves.
    if (optimize) {
      EXPECT_LT(run.weight_bytes, 4864u) << run.weight_bytes;
    }
  }
  // y: within one step of y_scale (0.05), nearly all equal; z: float, from the same y.
  const Tensor &y0 = results[0][0], &y1 = results[1][0];
  ASSERT_EQ(y0.shape(), y1.shape());
  int64_t equal = 0;
  for (int64_t i = 0; i < y0.num_elements(); ++i) {
    const float d = std::fabs(y0.as<float>()[i] - y1.as<float>()[i]);
    EXPECT_LE(d, 0.05f * 1.001f) << i;
    equal += d == 0.f;
  }
  EXPECT_GE(static_cast<double>(equal) / static_cast<double>(y0.num_elements()), 0.99);
  double max_rel = 0;
  const Tensor &z0 = results[0][1], &z1 = results[1][1];
  ASSERT_EQ(z0.shape(), z1.shape());
  double norm = 0, diff = 0;
  for (int64_t i = 0; i < z0.num_elements(); ++i) {
    diff += std::pow(z0.as<float>()[i] - z1.as<float>()[i], 2);
    norm += std::pow(z0.as<float>()[i], 2);
  }
  max_rel = std::sqrt(diff / norm);
  EXPECT_LT(max_rel, 0.01);  // a y element one step off moves z by at most 16 * 0.05 * 0.01 * 100
}


// The int8 chain as gpuhive's INT8 precision and ONNX quantizers write it, with what sits between
// the convolutions in MobileNetV3 and ResNet blocks:
//
//   x:f32[N,8,10,10] -> Conv0 (float32, 3x3)                                  -> c0 (channel-blocked)
//   c0 -> Q(0.05, 128) -> DQ -> Conv1 (int8 [16,8,3,3]) -> HardSwish -> Q(0.04, 20) -> yq:u8 (output)
//   yq -> DQ -> Conv2 (int8 [8,16,1,1]) -> Add(c0) -> Relu                   -> r:f32 (output)
//   r -> Q(0.03, 0) -> DQ -> Conv3 (int8 [4,8,1,1]) -> GlobalAveragePool     -> z:f32 (output)
//
// Optimized, every QuantizeLinear folds into a QConv: into Conv1's output (after its HardSwish
// post-op) and into Conv1's and Conv3's input reorders (from c0's blocked layout and r's
// channels-last one); Conv2 takes the residual Add as a "sum" post-op and the Relu after it. The
// int8 value yq passes channels-last from Conv1 to Conv2; only the two outputs that leave in
// channels-last (yq, r) are reordered, to plain. `dequantized_conv1` gives Conv1 uint8 weights
// with zero point 100 spanning more than int8, which take the exact float32 path (plain layouts).
std::unique_ptr<ir::Model> BuildInt8Chain(uint32_t seed, bool dequantized_conv1) {
  std::mt19937 rng(seed);
  auto ints = [&](size_t n, int lo, int hi, int shift) {
    std::uniform_int_distribution<int> d(lo, hi);
    std::vector<int32_t> v(n);
    for (auto& e : v) e = d(rng) + shift;
    return v;
  };
  auto floats = [&](size_t n, float amp) {
    std::uniform_real_distribution<float> d(-amp, amp);
    std::vector<float> v(n);
    for (auto& e : v) e = d(rng);
    return v;
  };
  GraphWriter gw;
  ir::Graph& g = *gw.g;
  auto value = [&](const std::string& n, DataType t) { return gw.value(n, t); };
  auto constant = [&](const std::string& n, DataType t, ir::ConstTensor c) { return gw.constant(n, t, std::move(c)); };
  auto int8s = [&](const std::string& n, Shape shape, const std::vector<int32_t>& v, bool u8) {
    if (u8) {
      std::vector<uint8_t> b(v.begin(), v.end());
      return constant(n, DataType::kUint8, Const<uint8_t>(DataType::kUint8, std::move(shape), b));
    }
    std::vector<int8_t> b(v.begin(), v.end());
    return constant(n, DataType::kInt8, Const<int8_t>(DataType::kInt8, std::move(shape), b));
  };
  auto scalar = [&](const std::string& n, float f) {
    return constant(n, DataType::kFloat32, Const<float>(DataType::kFloat32, {}, {f}));
  };
  auto zero = [&](const std::string& n, uint8_t z) {
    return constant(n, DataType::kUint8, Const<uint8_t>(DataType::kUint8, {}, {z}));
  };
  auto node = [&](const char* op, std::vector<ir::Value*> in, ir::Value* out) { return gw.node(op, std::move(in), out); };
  auto qdq = [&](ir::Value* v, float scale, uint8_t z, ir::Value* q_out = nullptr) {
    ir::Value* s = scalar(v->name + "_s", scale);
    ir::Value* zp = zero(v->name + "_z", z);
    ir::Value* q = q_out != nullptr ? q_out : value(v->name + "_q", DataType::kUint8);
    ir::Value* d = value(v->name + "_dq", DataType::kFloat32);
    node("QuantizeLinear", {v, s, zp}, q);
    node("DequantizeLinear", {q, s, zp}, d);
    return d;
  };
  auto int8_weights = [&](const std::string& n, Shape shape, float scale, bool u8_zero_100) {
    size_t count = 1;
    for (int64_t d : shape) count *= static_cast<size_t>(d);
    // uint8 around zero point 100: W - 100 spans -100..155, beyond int8 (the exact float32 path).
    ir::Value* w = int8s(n, shape, u8_zero_100 ? ints(count, -100, 155, 100) : ints(count, -64, 63, 0), u8_zero_100);
    std::vector<ir::Value*> in{w, scalar(n + "_s", scale)};
    if (u8_zero_100) in.push_back(zero(n + "_z", 100));
    ir::Value* d = value(n + "_dq", DataType::kFloat32);
    node("DequantizeLinear", std::move(in), d);
    return d;
  };
  ir::Value* x = value("x", DataType::kFloat32);
  x->shape = std::vector<ir::Dim>{ir::Dim{-1, "N"}, ir::Dim{8, ""}, ir::Dim{10, ""}, ir::Dim{10, ""}};
  x->is_graph_input = true;
  g.inputs().push_back(x);
  const auto pads = ir::Attribute(std::vector<int64_t>{1, 1, 1, 1});

  ir::Value* w0 = constant("w0", DataType::kFloat32, Const<float>(DataType::kFloat32, {8, 8, 3, 3}, floats(576, 0.3f)));
  // Shapes as the importer's inference gives them (the residual Add fuses only between equal shapes).
  auto shaped = [&](const std::string& n, int64_t c) {
    ir::Value* v = value(n, DataType::kFloat32);
    v->shape = std::vector<ir::Dim>{ir::Dim{-1, "N"}, ir::Dim{c, ""}, ir::Dim{10, ""}, ir::Dim{10, ""}};
    return v;
  };
  ir::Value* c0 = shaped("c0", 8);
  node("Conv", {x, w0}, c0)->attrs["pads"] = pads;
  ir::Value* c1 = value("c1", DataType::kFloat32);
  node("Conv", {qdq(c0, 0.05f, 128), int8_weights("w1", {16, 8, 3, 3}, 0.004f, dequantized_conv1)}, c1)->attrs["pads"] = pads;
  ir::Value* h1 = value("h1", DataType::kFloat32);
  node("HardSwish", {c1}, h1);
  ir::Value* yq = value("yq", DataType::kUint8);
  ir::Value* y = qdq(h1, 0.04f, 20, yq);
  ir::Value* c2 = shaped("c2", 8);
  node("Conv", {y, int8_weights("w2", {8, 16, 1, 1}, 0.01f, false)}, c2);
  ir::Value* sum = shaped("sum", 8);
  node("Add", {c2, c0}, sum);
  ir::Value* r = value("r", DataType::kFloat32);
  node("Relu", {sum}, r);
  ir::Value* c3 = value("c3", DataType::kFloat32);
  node("Conv", {qdq(r, 0.03f, 0), int8_weights("w3", {4, 8, 1, 1}, 0.01f, false)}, c3);
  ir::Value* z = value("z", DataType::kFloat32);
  node("GlobalAveragePool", {c3}, z);
  for (ir::Value* o : {yq, r, z}) {
    o->is_graph_output = true;
    g.outputs().push_back(o);
  }
  return std::move(gw.m);
}

double RelL2(const Tensor& a, const Tensor& b) {
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    diff += std::pow(a.as<float>()[i] - b.as<float>()[i], 2);
    norm += std::pow(a.as<float>()[i], 2);
  }
  return std::sqrt(diff / norm);
}

// Squeeze-excitation after an int8 convolution (MobileNetV3 / EfficientNet blocks): the
// convolution's float32 result stays channels-last, pooling reads it there, and the scaling by
// [N, C, 1, 1] runs as gpuhive's own row loop over the nhwc rows (each batch row its own scales).
//   x:f32[2,8,6,6] -> Q -> DQ -> Conv (int8 [16,8,3,3]) -> c -> GlobalAveragePool -> Sigmoid -> s
//   Mul(c, s) -> y (output)
TEST(RuntimeQdq, SqueezeExcitationScalesTheChannelsLastResultRowByRow) {
  GraphWriter gw;
  ir::Graph& g = *gw.g;
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> wd(-64, 63);
  std::vector<int8_t> w(16 * 8 * 9);
  for (auto& e : w) e = static_cast<int8_t>(wd(rng));
  ir::Value* x = gw.value("x", DataType::kFloat32);
  x->shape = std::vector<ir::Dim>{ir::Dim{-1, "N"}, ir::Dim{8, ""}, ir::Dim{6, ""}, ir::Dim{6, ""}};
  x->is_graph_input = true;
  g.inputs().push_back(x);
  ir::Value* sx = gw.constant("sx", DataType::kFloat32, Const<float>(DataType::kFloat32, {}, {0.02f}));
  ir::Value* zx = gw.constant("zx", DataType::kUint8, Const<uint8_t>(DataType::kUint8, {}, {128}));
  ir::Value* wq = gw.constant("w", DataType::kInt8, Const<int8_t>(DataType::kInt8, {16, 8, 3, 3}, w));
  ir::Value* sw = gw.constant("sw", DataType::kFloat32, Const<float>(DataType::kFloat32, {}, {0.01f}));
  ir::Value *xq = gw.value("xq", DataType::kUint8), *xd = gw.value("xd", DataType::kFloat32),
            *wdq = gw.value("wdq", DataType::kFloat32), *c = gw.value("c", DataType::kFloat32),
            *p = gw.value("p", DataType::kFloat32), *sc = gw.value("sc", DataType::kFloat32),
            *y = gw.value("y", DataType::kFloat32);
  c->shape = std::vector<ir::Dim>{ir::Dim{-1, "N"}, ir::Dim{16, ""}, ir::Dim{6, ""}, ir::Dim{6, ""}};
  sc->shape = std::vector<ir::Dim>{ir::Dim{-1, "N"}, ir::Dim{16, ""}, ir::Dim{1, ""}, ir::Dim{1, ""}};
  gw.node("QuantizeLinear", {x, sx, zx}, xq);
  gw.node("DequantizeLinear", {xq, sx, zx}, xd);
  gw.node("DequantizeLinear", {wq, sw}, wdq);
  gw.node("Conv", {xd, wdq}, c)->attrs["pads"] = ir::Attribute(std::vector<int64_t>{1, 1, 1, 1});
  gw.node("GlobalAveragePool", {c}, p);
  gw.node("Sigmoid", {p}, sc);
  gw.node("Mul", {c, sc}, y);
  y->is_graph_output = true;
  g.outputs().push_back(y);

  auto input = Tensor::Allocate(DataType::kFloat32, {2, 8, 6, 6});
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  for (int64_t i = 0; i < input->num_elements(); ++i) input->as<float>()[i] = u(rng);
  ProfiledRun optimized = CompileAndRun(std::move(gw.m), true, *input);
  ASSERT_FALSE(optimized.outputs.empty());
  std::map<std::string, std::string> impl;
  for (const auto& step : optimized.steps) impl[step.op] = step.implementation;
  EXPECT_EQ(impl["gpuhive.Elementwise"], "gpuhive:rowwise");
  EXPECT_EQ(impl.count("gpuhive.QConv"), 1u);
  EXPECT_EQ(impl.count("gpuhive.Reorder"), 1u);  // y leaves channels-last; nothing else moves
  // The same result computed here from the float model's definition, on the int8 operands.
  const Tensor& got = optimized.outputs[0];
  ASSERT_EQ(got.shape(), (Shape{2, 16, 6, 6}));
  std::vector<float> conv(2 * 16 * 36, 0.f);
  for (int n = 0; n < 2; ++n) {
    for (int k = 0; k < 16; ++k) {
      for (int h = 0; h < 6; ++h) {
        for (int wi = 0; wi < 6; ++wi) {
          float acc = 0.f;
          for (int ci = 0; ci < 8; ++ci) {
            for (int r = 0; r < 3; ++r) {
              for (int q = 0; q < 3; ++q) {
                const int ih = h + r - 1, iw = wi + q - 1;
                if (ih < 0 || ih >= 6 || iw < 0 || iw >= 6) continue;
                const float v = input->as<float>()[((n * 8 + ci) * 6 + ih) * 6 + iw];
                const float xq_v = std::clamp(std::nearbyint(v / 0.02f) + 128.f, 0.f, 255.f);
                acc += (xq_v - 128.f) * 0.02f * static_cast<float>(w[((k * 8 + ci) * 3 + r) * 3 + q]) * 0.01f;
              }
            }
          }
          conv[((n * 16 + k) * 6 + h) * 6 + wi] = acc;
        }
      }
    }
  }
  double diff = 0, norm = 0;
  for (int n = 0; n < 2; ++n) {
    for (int k = 0; k < 16; ++k) {
      double mean = 0;
      for (int i = 0; i < 36; ++i) mean += conv[(n * 16 + k) * 36 + i] / 36.0;
      const double scale = 1.0 / (1.0 + std::exp(-mean));
      for (int i = 0; i < 36; ++i) {
        const double want = conv[(n * 16 + k) * 36 + i] * scale;
        diff += std::pow(got.as<float>()[(n * 16 + k) * 36 + i] - want, 2);
        norm += want * want;
      }
    }
  }
  EXPECT_LT(std::sqrt(diff / norm), 1e-4);
}

// The same squeeze-excitation feeding an int8 convolution (MobileNetV3's and EfficientNet's project
// convolutions): Mul(c, s) -> Q -> DQ -> Conv2 (int8 [8,16,1,1]) -> z. The scaling folds into
// Conv2's quantizing reorder (per-(N, C) scales of the run): no Mul / Elementwise step is left.
TEST(RuntimeQdq, SqueezeExcitationFoldsIntoTheNextInt8ConvolutionsQuantization) {
  auto build = [] {
    GraphWriter gw;
    ir::Graph& g = *gw.g;
    std::mt19937 rng(4);
    std::uniform_int_distribution<int> wd(-64, 63);
    auto weights = [&](const std::string& n, Shape shape) {
      std::vector<int8_t> v(static_cast<size_t>(NumElements(shape)));
      for (auto& e : v) e = static_cast<int8_t>(wd(rng));
      return gw.constant(n, DataType::kInt8, Const<int8_t>(DataType::kInt8, std::move(shape), v));
    };
    auto scalar = [&](const std::string& n, float f) {
      return gw.constant(n, DataType::kFloat32, Const<float>(DataType::kFloat32, {}, {f}));
    };
    auto shaped = [&](const std::string& n, int64_t c, int64_t hw) {
      ir::Value* v = gw.value(n, DataType::kFloat32);
      v->shape = std::vector<ir::Dim>{ir::Dim{-1, "N"}, ir::Dim{c, ""}, ir::Dim{hw, ""}, ir::Dim{hw, ""}};
      return v;
    };
    ir::Value* x = shaped("x", 8, 6);
    x->is_graph_input = true;
    g.inputs().push_back(x);
    ir::Value* zx = gw.constant("zx", DataType::kUint8, Const<uint8_t>(DataType::kUint8, {}, {128}));
    ir::Value* zy = gw.constant("zy", DataType::kUint8, Const<uint8_t>(DataType::kUint8, {}, {0}));
    ir::Value *sx = scalar("sx", 0.02f), *sy = scalar("sy", 0.01f);
    ir::Value *xq = gw.value("xq", DataType::kUint8), *xd = shaped("xd", 8, 6), *w1 = gw.value("w1d", DataType::kFloat32),
              *c = shaped("c", 16, 6), *p = shaped("p", 16, 1), *sc = shaped("sc", 16, 1), *y = shaped("y", 16, 6),
              *yq = gw.value("yq", DataType::kUint8), *yd = shaped("yd", 16, 6), *w2 = gw.value("w2d", DataType::kFloat32),
              *z = shaped("z", 8, 6);
    gw.node("QuantizeLinear", {x, sx, zx}, xq);
    gw.node("DequantizeLinear", {xq, sx, zx}, xd);
    gw.node("DequantizeLinear", {weights("w1", {16, 8, 3, 3}), scalar("sw1", 0.01f)}, w1);
    gw.node("Conv", {xd, w1}, c)->attrs["pads"] = ir::Attribute(std::vector<int64_t>{1, 1, 1, 1});
    gw.node("GlobalAveragePool", {c}, p);
    gw.node("Sigmoid", {p}, sc);
    gw.node("Mul", {sc, c}, y);  // the scale first: the fold must find X either way
    gw.node("QuantizeLinear", {y, sy, zy}, yq);
    gw.node("DequantizeLinear", {yq, sy, zy}, yd);
    gw.node("DequantizeLinear", {weights("w2", {8, 16, 1, 1}), scalar("sw2", 0.01f)}, w2);
    gw.node("Conv", {yd, w2}, z);
    z->is_graph_output = true;
    g.outputs().push_back(z);
    return std::move(gw.m);
  };
  auto input = Tensor::Allocate(DataType::kFloat32, {2, 8, 6, 6});
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  for (int64_t i = 0; i < input->num_elements(); ++i) input->as<float>()[i] = u(rng);
  ProfiledRun written = CompileAndRun(build(), false, *input);
  ProfiledRun optimized = CompileAndRun(build(), true, *input);
  ASSERT_FALSE(written.outputs.empty());
  ASSERT_FALSE(optimized.outputs.empty());
  std::map<std::string, int> steps;
  for (const auto& step : optimized.steps) ++steps[step.op];
  std::string listed;
  for (const auto& [op, count] : steps) listed += op + " x" + std::to_string(count) + " ";
  EXPECT_EQ(steps["gpuhive.QConv"], 2) << listed;
  for (const char* gone : {"Mul", "gpuhive.Elementwise", "QuantizeLinear"}) EXPECT_EQ(steps.count(gone), 0u) << gone << ": " << listed;
  ASSERT_EQ(written.outputs[0].shape(), optimized.outputs[0].shape());
  EXPECT_LT(RelL2(written.outputs[0], optimized.outputs[0]), 1e-2);
}

class RuntimeQdqChain : public ::testing::TestWithParam<bool> {};

TEST_P(RuntimeQdqChain, QuantizeLinearFoldsIntoTheConvolutionsAndInt8StaysChannelsLast) {
  const bool dequantized_conv1 = GetParam();
  const int64_t n = 2;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  auto x = Tensor::Allocate(DataType::kFloat32, {n, 8, 10, 10});
  for (int64_t i = 0; i < x->num_elements(); ++i) x->as<float>()[i] = u(rng);

  std::vector<Tensor> results[2];
  for (bool optimize : {false, true}) {
    SCOPED_TRACE(optimize ? "optimized" : "as imported");
    ProfiledRun run = CompileAndRun(BuildInt8Chain(5, dequantized_conv1), optimize, *x);
    ASSERT_FALSE(run.outputs.empty());
    results[optimize] = std::move(run.outputs);
    if (!optimize) continue;
    std::map<std::string, int> steps;
    int dequantized = 0;
    for (const auto& step : run.steps) {
      ++steps[step.op];
      if (step.op != "gpuhive.QConv") continue;
      EXPECT_EQ(step.implementation.find("ref"), std::string::npos) << step.implementation;
      dequantized += step.implementation.rfind("dequantized:", 0) == 0;
    }
    std::string listed;
    for (const auto& [op, count] : steps) listed += op + " x" + std::to_string(count) + " ";
    SCOPED_TRACE(listed);
    EXPECT_EQ(steps["gpuhive.QConv"], 3);
    EXPECT_EQ(dequantized, dequantized_conv1 ? 1 : 0);
    EXPECT_EQ(steps["Conv"], 1);  // Conv0, float32
    for (const char* gone : {"QuantizeLinear", "DequantizeLinear", "HardSwish", "Add", "Relu"}) {
      EXPECT_EQ(steps.count(gone), 0u) << gone;
    }
    // yq and r leave channels-last; the dequantized Conv1 writes yq plain.
    EXPECT_EQ(steps["gpuhive.Reorder"], dequantized_conv1 ? 1 : 2);
  }
  // yq: uint8, within one step of the graph as written and nearly always equal (a value exactly
  // between two steps may round the other way: the reorder multiplies by 1 / scale).
  const Tensor &y0 = results[0][0], &y1 = results[1][0];
  ASSERT_EQ(y1.dtype(), DataType::kUint8);
  ASSERT_EQ(y0.shape(), y1.shape());
  int64_t equal = 0;
  for (int64_t i = 0; i < y0.num_elements(); ++i) {
    const int d = std::abs(int{y0.as<uint8_t>()[i]} - int{y1.as<uint8_t>()[i]});
    EXPECT_LE(d, 1) << i;
    equal += d == 0;
  }
  EXPECT_GE(static_cast<double>(equal) / static_cast<double>(y0.num_elements()), 0.99);
  ASSERT_EQ(results[0][1].shape(), results[1][1].shape());
  ASSERT_EQ(results[0][2].shape(), results[1][2].shape());
  EXPECT_LT(RelL2(results[0][1], results[1][1]), 1e-2);
  EXPECT_LT(RelL2(results[0][2], results[1][2]), 2e-2);
}

INSTANTIATE_TEST_SUITE_P(Int8AndDequantized, RuntimeQdqChain, ::testing::Bool());

}  // namespace
}  // namespace gpuhive
