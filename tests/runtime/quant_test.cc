// QDQ models (DequantizeLinear -> Conv [-> Relu] -> QuantizeLinear around int8 data, the form ONNX
// quantizers write): FuseQuantizedConv turns each convolution into gpuhive.QConv on oneDNN's int8
// kernels. The optimized model must agree with the same graph run as imported (every
// DequantizeLinear, float32 Conv and QuantizeLinear executed as written) within one quantization
// step, run the int8 node, and keep its weights int8.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "gpuhive/runtime.h"

namespace gpuhive {
namespace {

template <typename T>
ir::ConstTensor Const(DataType t, Shape s, const std::vector<T>& v) {
  return std::make_shared<const Tensor>(Tensor::FromVector<T>(t, std::move(s), v).value());
}

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
  auto m = std::make_unique<ir::Model>();
  m->graph = std::make_shared<ir::Graph>();
  m->opsets[""] = 13;
  ir::Graph& g = *m->graph;
  auto value = [&](const std::string& n, DataType t) { return g.AddValue(n, t); };
  auto constant = [&](const std::string& n, DataType t, ir::ConstTensor c) {
    ir::Value* v = g.AddValue(n, t);
    v->constant = std::move(c);
    return v;
  };
  auto node = [&](const char* op, std::vector<ir::Value*> in, ir::Value* out) {
    ir::Node* n = g.AddNode(op, std::move(in), {out}, std::string(op) + "_" + out->name);
    n->opset = 13;
    return n;
  };
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
  return m;
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
    CompileOptions co;
    co.optimize = optimize;
    auto model = CompiledModel::Create(BuildQdq(3), co);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    ExecutionContext::Options eo;
    eo.profile = true;
    ExecutionContext ctx(eo);
    auto out = (*model)->Run(ctx, {x->view()});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    results[optimize] = std::move(*out);
    int qconvs = 0, float_convs = 0;
    for (const auto& step : ctx.step_times()) {
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
      EXPECT_LT((*model)->weight_bytes(), 4864u) << (*model)->weight_bytes();
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

}  // namespace
}  // namespace gpuhive
