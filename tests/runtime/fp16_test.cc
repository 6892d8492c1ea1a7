// FP16 ONNX models computed in FP32 (ComputeFloat16InFloat32, run by CompiledModel::Create): float16
// initializers, inputs and outputs and Cast chains, checked against a float reference computed from
// the same float16 values with the compiler's own _Float16 conversions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "gpuhive/runtime.h"

namespace gpuhive {
namespace {

uint16_t ToHalf(float f) {
  _Float16 h = static_cast<_Float16>(f);
  uint16_t bits;
  std::memcpy(&bits, &h, sizeof bits);
  return bits;
}

float FromHalf(uint16_t bits) {
  _Float16 h;
  std::memcpy(&h, &bits, sizeof h);
  return static_cast<float>(h);
}

std::vector<uint16_t> RandomHalves(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<uint16_t> v(n);
  for (auto& h : v) h = ToHalf(u(rng));
  return v;
}

ir::ConstTensor HalfConst(Shape s, const std::vector<uint16_t>& v) {
  return std::make_shared<const Tensor>(Tensor::FromVector<uint16_t>(DataType::kFloat16, std::move(s), v).value());
}

// x:f16[N,8] -> MatMul(w:f16[8,16]) -> Add(b:f16[16]) -> Relu -> y:f16
//   y -> Cast(float) -> Mul(s:f32[16]) -> Cast(float16) -> z:f16
struct Fp16Model {
  std::vector<uint16_t> w = RandomHalves(8 * 16, 1, 0.5f), b = RandomHalves(16, 2, 0.2f);
  std::vector<float> s = std::vector<float>(16, 0.f);

  std::unique_ptr<ir::Model> Build() const {
    auto m = std::make_unique<ir::Model>();
    m->graph = std::make_shared<ir::Graph>();
    m->opsets[""] = 17;
    ir::Graph& g = *m->graph;
    ir::Value* x = g.AddValue("x", DataType::kFloat16);
    x->shape = std::vector<ir::Dim>{ir::Dim{-1, "N"}, ir::Dim{8, ""}};
    x->is_graph_input = true;
    g.inputs().push_back(x);
    ir::Value* wv = g.AddValue("w", DataType::kFloat16);
    wv->constant = HalfConst({8, 16}, w);
    ir::Value* bv = g.AddValue("b", DataType::kFloat16);
    bv->constant = HalfConst({16}, b);
    ir::Value* sv = g.AddValue("s", DataType::kFloat32);
    sv->constant = std::make_shared<const Tensor>(Tensor::FromVector<float>(DataType::kFloat32, {16}, s).value());
    auto val = [&](const char* n, DataType t) { return g.AddValue(n, t); };
    ir::Value *mm = val("mm", DataType::kFloat16), *add = val("add", DataType::kFloat16),
              *y = val("y", DataType::kFloat16), *yf = val("yf", DataType::kFloat32),
              *sc = val("sc", DataType::kFloat32), *z = val("z", DataType::kFloat16);
    g.AddNode("MatMul", {x, wv}, {mm})->opset = 17;
    g.AddNode("Add", {mm, bv}, {add})->opset = 17;
    g.AddNode("Relu", {add}, {y})->opset = 17;
    ir::Node* c1 = g.AddNode("Cast", {y}, {yf});
    c1->opset = 17;
    c1->attrs["to"] = ir::Attribute(int64_t{1});
    g.AddNode("Mul", {yf, sv}, {sc})->opset = 17;
    ir::Node* c2 = g.AddNode("Cast", {sc}, {z});
    c2->opset = 17;
    c2->attrs["to"] = ir::Attribute(int64_t{10});
    for (ir::Value* o : {y, z}) {
      o->is_graph_output = true;
      g.outputs().push_back(o);
    }
    return m;
  }
};

TEST(RuntimeFp16, Float16ModelRunsInFloat32WithItsOwnTypesOutside) {
  Fp16Model spec;
  for (int i = 0; i < 16; ++i) spec.s[static_cast<size_t>(i)] = 0.25f * static_cast<float>(i - 8);
  for (bool optimize : {false, true}) {
    SCOPED_TRACE(optimize ? "optimized" : "as imported");
    CompileOptions co;
    co.optimize = optimize;
    auto model = CompiledModel::Create(spec.Build(), co);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    ASSERT_EQ((*model)->inputs().size(), 1u);
    EXPECT_EQ((*model)->inputs()[0].dtype, DataType::kFloat16);
    ASSERT_EQ((*model)->outputs().size(), 2u);
    EXPECT_EQ((*model)->outputs()[0].dtype, DataType::kFloat16);
    EXPECT_EQ((*model)->outputs()[1].dtype, DataType::kFloat16);
    const int64_t n = 5;
    std::vector<uint16_t> x = RandomHalves(static_cast<size_t>(n * 8), 3, 1.f);
    auto xt = Tensor::FromVector<uint16_t>(DataType::kFloat16, {n, 8}, x);
    ExecutionContext ctx({1});
    // A float32 input is refused: the model's input type is float16.
    auto wrong = Tensor::Allocate(DataType::kFloat32, {n, 8});
    EXPECT_EQ((*model)->Run(ctx, {wrong->view()}).status().code(), StatusCode::kInvalidArgument);
    auto out = (*model)->Run(ctx, {xt->view()});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ASSERT_EQ(out->size(), 2u);
    ASSERT_EQ((*out)[0].dtype(), DataType::kFloat16);
    ASSERT_EQ((*out)[1].dtype(), DataType::kFloat16);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < 16; ++j) {
        double acc = FromHalf(spec.b[static_cast<size_t>(j)]);
        for (int64_t q = 0; q < 8; ++q) {
          acc += double(FromHalf(x[static_cast<size_t>(i * 8 + q)])) * FromHalf(spec.w[static_cast<size_t>(q * 16 + j)]);
        }
        const double y = std::max(acc, 0.0);
        const double z = y * spec.s[static_cast<size_t>(j)];
        const size_t k = static_cast<size_t>(i * 16 + j);
        // Within one float16 rounding of the float32 result (relative 2^-10, plus a floor near 0).
        EXPECT_NEAR(FromHalf((*out)[0].as<uint16_t>()[k]), y, 1e-3 * std::abs(y) + 1e-3) << i << "," << j;
        EXPECT_NEAR(FromHalf((*out)[1].as<uint16_t>()[k]), z, 1e-3 * std::abs(z) + 1e-3) << i << "," << j;
      }
    }
  }
}

}  // namespace
}  // namespace gpuhive
