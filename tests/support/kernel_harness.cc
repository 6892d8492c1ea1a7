#include "support/kernel_harness.h"

#include <cmath>
#include <cstring>
#include <random>

#include "runtime/contexts.h"

namespace gpuhive::testing {

StatusOr<std::vector<Tensor>> RunNode(const NodeSpec& spec, const std::vector<const Tensor*>& inputs,
                                      const RunOptions& options) {
  ir::Graph graph;
  std::vector<ir::Value*> in_values;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i]) {
      in_values.push_back(nullptr);
      continue;
    }
    ir::Value* v = graph.AddValue("in" + std::to_string(i), inputs[i]->dtype());
    v->is_graph_input = true;
    in_values.push_back(v);
  }
  std::vector<ir::Value*> out_values;
  for (int i = 0; i < spec.num_outputs; ++i) out_values.push_back(graph.AddValue("out" + std::to_string(i)));
  ir::Node* node = graph.AddNode(spec.op_type, in_values, out_values, "node", spec.domain);
  node->opset = spec.opset;
  node->attrs = spec.attrs;

  KernelOptions opts;
  opts.num_threads = options.num_threads;
  opts.allow_blocked_layouts = false;
  opts.bf16_compute = options.bf16_compute;

  std::vector<bool> visible(inputs.size(), false);
  for (int c : options.constant_inputs) {
    if (c >= 0 && static_cast<size_t>(c) < visible.size()) visible[c] = true;
  }
  // The runtime's own contexts: what a kernel sees here is what it sees in a plan.
  auto describe = [&](const std::vector<bool>& show) {
    std::vector<runtime::InputDesc> descs(inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (!inputs[i]) continue;
      descs[i] = runtime::InputDesc{true, inputs[i]->dtype(), inputs[i]->shape(), Layout::kPlain,
                                    show[i] ? inputs[i] : nullptr};
    }
    return descs;
  };
  const AllocTag weights_tag{0, MemoryKind::kWeights};
  ASSIGN_OR_RETURN(std::unique_ptr<Kernel> kernel, CpuKernelRegistry().Create(*node));
  auto prep = std::make_unique<runtime::PrepareContextImpl>(*node, describe(visible), node->outputs.size(), opts,
                                                            DefaultHostResource(), weights_tag);
  Status st = kernel->Prepare(*prep);
  if (IsDataDependentShape(st)) {
    ASSIGN_OR_RETURN(kernel, CpuKernelRegistry().Create(*node));
    prep = std::make_unique<runtime::PrepareContextImpl>(*node, describe(std::vector<bool>(inputs.size(), true)),
                                                         node->outputs.size(), opts, DefaultHostResource(),
                                                         weights_tag);
    st = kernel->Prepare(*prep);
  }
  RETURN_IF_ERROR(st);
  if (options.implementation != nullptr) *options.implementation = std::string(kernel->implementation());

  std::vector<Tensor> outputs;
  std::vector<TensorView> out_views;
  for (size_t i = 0; i < prep->outputs().size(); ++i) {
    const runtime::OutputDesc& s = prep->outputs()[i];
    if (!s.declared) return Internal("kernel {} did not declare output {}", spec.op_type, i);
    if (s.layout != Layout::kPlain) return Internal("harness asked for plain layouts only");
    ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(s.dtype, s.shape));
    // Poison outputs so a kernel that forgets to write shows up.
    if (t.bytes()) std::memset(t.data(), 0xA5, t.bytes());
    out_views.push_back(t.view());
    outputs.push_back(std::move(t));
  }
  std::vector<TensorView> in_views;
  for (const Tensor* t : inputs) in_views.push_back(t ? t->view() : TensorView{});
  std::vector<uint8_t> ws(prep->workspace() + 64);
  void* ws_ptr = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(ws.data()) + 63) & ~uintptr_t{63});
  runtime::RunContextImpl run(in_views, out_views, ws_ptr, prep->workspace(), options.num_threads, StreamView{});
  RETURN_IF_ERROR(kernel->Run(run));
  return outputs;
}

Tensor MakeTensor(DataType dtype, const Shape& shape, const void* data) {
  auto t = Tensor::Allocate(dtype, shape);
  if (!t.ok()) {
    ADD_FAILURE() << t.status().ToString();
    return Tensor();
  }
  if (t->bytes()) std::memcpy(t->data(), data, t->bytes());
  return std::move(t).value();
}

Tensor MakeFloat(const Shape& shape, const std::vector<float>& values) {
  if (static_cast<int64_t>(values.size()) != NumElements(shape)) {
    ADD_FAILURE() << "MakeFloat: " << values.size() << " values for shape " << ShapeToString(shape);
    return Tensor();
  }
  return MakeTensor(DataType::kFloat32, shape, values.data());
}

Tensor MakeInt64(const Shape& shape, const std::vector<int64_t>& values) {
  if (static_cast<int64_t>(values.size()) != NumElements(shape)) {
    ADD_FAILURE() << "MakeInt64: " << values.size() << " values for shape " << ShapeToString(shape);
    return Tensor();
  }
  return MakeTensor(DataType::kInt64, shape, values.data());
}

Tensor RandomFloat(const Shape& shape, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(NumElements(shape)));
  for (float& x : v) x = dist(rng);
  return MakeFloat(shape, v);
}

std::vector<double> ToDoubles(const Tensor& t) {
  std::vector<double> out(static_cast<size_t>(t.num_elements()));
  for (size_t i = 0; i < out.size(); ++i) {
    switch (t.dtype()) {
      case DataType::kFloat32: out[i] = t.as<float>()[i]; break;
      case DataType::kFloat64: out[i] = t.as<double>()[i]; break;
      case DataType::kInt64: out[i] = static_cast<double>(t.as<int64_t>()[i]); break;
      case DataType::kInt32: out[i] = t.as<int32_t>()[i]; break;
      case DataType::kInt16: out[i] = t.as<int16_t>()[i]; break;
      case DataType::kInt8: out[i] = t.as<int8_t>()[i]; break;
      case DataType::kUint8: out[i] = t.as<uint8_t>()[i]; break;
      case DataType::kUint16: out[i] = t.as<uint16_t>()[i]; break;
      case DataType::kUint32: out[i] = t.as<uint32_t>()[i]; break;
      case DataType::kUint64: out[i] = static_cast<double>(t.as<uint64_t>()[i]); break;
      case DataType::kBool: out[i] = t.as<uint8_t>()[i] ? 1 : 0; break;
      case DataType::kFloat16: {
        uint16_t h = t.as<uint16_t>()[i];
        uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
        double v = exp == 0 ? std::ldexp(mant, -24)
                   : exp == 31 ? (mant ? NAN : INFINITY)
                               : std::ldexp(mant + 1024, static_cast<int>(exp) - 25);
        out[i] = sign ? -v : v;
        break;
      }
      case DataType::kBFloat16: {
        uint32_t bits = static_cast<uint32_t>(t.as<uint16_t>()[i]) << 16;
        float f;
        std::memcpy(&f, &bits, 4);
        out[i] = f;
        break;
      }
      default: out[i] = NAN;
    }
  }
  return out;
}

::testing::AssertionResult TensorNear(const Tensor& actual, const Tensor& expected, double atol,
                                      double rtol) {
  if (actual.dtype() != expected.dtype()) {
    return ::testing::AssertionFailure() << "dtype " << DataTypeName(actual.dtype()) << " != "
                                         << DataTypeName(expected.dtype());
  }
  if (actual.shape() != expected.shape()) {
    return ::testing::AssertionFailure() << "shape " << ShapeToString(actual.shape()) << " != "
                                         << ShapeToString(expected.shape());
  }
  auto a = ToDoubles(actual), e = ToDoubles(expected);
  for (size_t i = 0; i < a.size(); ++i) {
    bool both_nan = std::isnan(a[i]) && std::isnan(e[i]);
    bool same_inf = std::isinf(a[i]) && a[i] == e[i];
    if (!both_nan && !same_inf && !(std::fabs(a[i] - e[i]) <= atol + rtol * std::fabs(e[i]))) {
      return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " vs expected " << e[i];
    }
  }
  return ::testing::AssertionSuccess();
}

double RelativeL2(const Tensor& got, const Tensor& want) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    const double d = static_cast<double>(got.as<float>()[i]) - want.as<float>()[i];
    num += d * d;
    den += static_cast<double>(want.as<float>()[i]) * want.as<float>()[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

}  // namespace gpuhive::testing
