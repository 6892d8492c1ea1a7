// gpuhive's INT8 precision: calibration, the QDQ rewrite and the accuracy comparison (quantize.h).
#include "gpuhive/quantize.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "gpuhive/kernel.h"
#include "gpuhive/logging.h"
#include "gpuhive/onnx_import.h"
#include "gpuhive/passes.h"

namespace gpuhive {
namespace {

namespace fs = std::filesystem;

constexpr int kBins = 2048;

// Second-pass statistics of one activation: a histogram of its values over the first pass's range
// (percentile) and one of their magnitudes (entropy).
struct Histogram {
  float lo = 0, hi = 0, abs_max = 0;
  std::vector<double> values = std::vector<double>(kBins, 0.0);
  std::vector<double> magnitudes = std::vector<double>(kBins, 0.0);

  void Add(const float* v, int64_t n) {
    const float width = (hi - lo) / kBins;
    const float abs_width = abs_max / kBins;
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(v[i])) continue;
      if (width > 0) values[std::clamp(static_cast<int>((v[i] - lo) / width), 0, kBins - 1)] += 1;
      if (abs_width > 0) magnitudes[std::min(static_cast<int>(std::fabs(v[i]) / abs_width), kBins - 1)] += 1;
    }
  }

  // The values between the (100 - p)th and the pth percentile.
  ActivationRange Percentile(double p) const {
    double total = 0;
    for (double c : values) total += c;
    const double tail = total * (100.0 - p) / 100.0;
    const float width = (hi - lo) / kBins;
    int first = 0, last = kBins - 1;
    for (double seen = 0; first < kBins - 1 && seen + values[first] <= tail; ++first) seen += values[first];
    for (double seen = 0; last > first && seen + values[last] <= tail; --last) seen += values[last];
    return {lo + width * static_cast<float>(first), lo + width * static_cast<float>(last + 1)};
  }

  // The magnitude threshold whose 128-level quantization loses least information (smallest KL
  // divergence from the clipped distribution), TensorRT's calibration criterion.
  float EntropyThreshold() const {
    constexpr int kLevels = 128;
    const float width = abs_max / kBins;
    // The exact zeros a ReLU makes would dominate both distributions and favour tiny thresholds:
    // bin 0 counts as much as bin 1 (as NVIDIA's PyTorch quantization toolkit does).
    std::vector<double> hist = magnitudes;
    hist[0] = hist[1];
    double best_kl = std::numeric_limits<double>::infinity();
    int best = kBins;
    for (int i = kLevels; i <= kBins; i += 8) {
      std::vector<double> p(hist.begin(), hist.begin() + i);
      for (int k = i; k < kBins; ++k) p[i - 1] += hist[k];  // outliers clip into the last bin
      std::vector<double> q(static_cast<size_t>(i), 0.0);
      for (int j = 0; j < kLevels; ++j) {
        const int start = j * i / kLevels, end = (j + 1) * i / kLevels;
        double sum = 0;
        int nonzero = 0;
        for (int k = start; k < end; ++k) {
          sum += hist[k];
          nonzero += hist[k] > 0;
        }
        for (int k = start; k < end && nonzero > 0; ++k) q[k] = hist[k] > 0 ? sum / nonzero : 0;
      }
      double ps = 0, qs = 0;
      for (int k = 0; k < i; ++k) {
        ps += p[k];
        qs += q[k];
      }
      if (ps <= 0 || qs <= 0) continue;
      double kl = 0;
      for (int k = 0; k < i; ++k) {
        if (p[k] <= 0) continue;
        const double pk = p[k] / ps, qk = std::max(q[k] / qs, 1e-12);
        kl += pk * std::log(pk / qk);
      }
      if (kl < best_kl) {
        best_kl = kl;
        best = i;
      }
    }
    return width * static_cast<float>(best);
  }
};

const float* FloatData(const Tensor& t) { return t.dtype() == DataType::kFloat32 ? t.as<float>() : nullptr; }

}  // namespace

StatusOr<CalibrationMethod> ParseCalibrationMethod(std::string_view text) {
  if (text == "minmax" || text == "min-max") return CalibrationMethod::kMinMax;
  if (text == "percentile") return CalibrationMethod::kPercentile;
  if (text == "entropy") return CalibrationMethod::kEntropy;
  return InvalidArgument("calibration method '{}' is not one of minmax, percentile, entropy", text);
}

const char* CalibrationMethodName(CalibrationMethod m) {
  switch (m) {
    case CalibrationMethod::kMinMax: return "minmax";
    case CalibrationMethod::kPercentile: return "percentile";
    case CalibrationMethod::kEntropy: return "entropy";
  }
  return "?";
}

StatusOr<std::vector<Sample>> ReadSamples(const std::string& dir, const std::vector<TensorInfo>& inputs) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound("calibration folder '{}' does not exist", dir);
  auto pb_files = [](const fs::path& p) {
    std::vector<fs::path> files;
    std::error_code e;
    for (const auto& f : fs::directory_iterator(p, e)) {
      if (f.is_regular_file() && f.path().extension() == ".pb") files.push_back(f.path());
    }
    std::sort(files.begin(), files.end());
    return files;
  };
  std::vector<fs::path> sample_dirs;
  if (!pb_files(dir).empty()) {
    sample_dirs.push_back(dir);
  } else {
    for (const auto& f : fs::directory_iterator(dir, ec)) {
      if (f.is_directory() && !pb_files(f.path()).empty()) sample_dirs.push_back(f.path());
    }
    std::sort(sample_dirs.begin(), sample_dirs.end());
  }
  if (sample_dirs.empty()) return NotFound("calibration folder '{}' holds no .pb (TensorProto) files", dir);
  std::vector<Sample> samples;
  for (const fs::path& sd : sample_dirs) {
    Sample sample(inputs.size());
    std::vector<bool> have(inputs.size(), false);
    for (const fs::path& f : pb_files(sd)) {
      ASSIGN_OR_RETURN(auto named, ReadTensorProtoFile(f.string()));
      size_t index = inputs.size();
      for (size_t i = 0; i < inputs.size(); ++i) {
        if (inputs[i].name == named.first) index = i;
      }
      const std::string stem = f.stem().string();
      if (index == inputs.size() && named.first.empty() && stem.rfind("input_", 0) == 0) {
        index = static_cast<size_t>(std::strtoul(stem.c_str() + 6, nullptr, 10));
      }
      if (index >= inputs.size()) {
        return InvalidArgument("'{}' names input '{}', which the model does not have", f.string(), named.first);
      }
      sample[index] = std::move(named.second);
      have[index] = true;
    }
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (!have[i]) return InvalidArgument("sample '{}' has no tensor for input '{}'", sd.string(), inputs[i].name);
    }
    samples.push_back(std::move(sample));
  }
  return samples;
}

namespace {

// Which output channel element i of a quantizable op's weights belongs to, and that axis: Conv
// [M, ...] and Gemm with transB [N, K] along axis 0, MatMul and Gemm [K, N] along axis 1.
struct WeightLayout {
  int64_t axis = 0;
  int64_t channels = 0, inner = 1;  // axis 0: channel = i / inner; axis 1: channel = i % channels
  int64_t ChannelOf(int64_t i) const { return axis == 0 ? i / inner : i % channels; }
};

// The weight layout of a node QuantizeModel can quantize (nullopt: it cannot): a Conv, MatMul or
// Gemm (transA 0, alpha 1, beta 1 when C is given) with constant float32 weights and a non-constant
// input 0.
std::optional<WeightLayout> QuantizableWeights(const ir::Node& n) {
  if (!n.domain.empty() || (n.op_type != "Conv" && n.op_type != "MatMul" && n.op_type != "Gemm")) return std::nullopt;
  const ir::Value* x = n.input(0);
  const ir::Value* w = n.input(1);
  if (x == nullptr || w == nullptr || !w->is_constant() || w->constant->dtype() != DataType::kFloat32) return std::nullopt;
  if (x->is_constant() || (x->dtype != DataType::kFloat32 && x->dtype != DataType::kUndefined)) return std::nullopt;
  const Shape& s = w->constant->shape();
  WeightLayout l;
  if (n.op_type == "Conv") {
    if (s.size() < 3) return std::nullopt;
    l.channels = s[0];
    l.inner = w->constant->num_elements() / std::max<int64_t>(s[0], 1);
    return l;
  }
  if (s.size() != 2) return std::nullopt;
  int64_t trans_b = 0;
  if (n.op_type == "Gemm") {
    const std::optional<int64_t> tb = PlainGemmTransB(n);
    if (!tb) return std::nullopt;
    trans_b = *tb;
  }
  l.axis = trans_b ? 0 : 1;
  l.channels = trans_b ? s[0] : s[1];
  l.inner = trans_b ? s[1] : 1;
  return l;
}

ir::Value* AddConstant(ir::Graph& g, const std::string& base, Tensor t) {
  ir::Value* v = g.AddValue(g.UniqueName(base), t.dtype());
  v->constant = std::make_shared<const Tensor>(std::move(t));
  return v;
}

// Weights `wf` (layout `layout`) as int8, symmetric per output channel: the int8 tensor in the
// same layout and one scale per channel.
StatusOr<std::pair<Tensor, Tensor>> QuantizeWeightsPerChannel(const Tensor& wf, const WeightLayout& layout, float qmax) {
  const int64_t m = layout.channels;
  ASSIGN_OR_RETURN(Tensor wq, Tensor::Allocate(DataType::kInt8, wf.shape()));
  ASSIGN_OR_RETURN(Tensor ws, Tensor::Allocate(DataType::kFloat32, {m}));
  std::vector<float> amax(static_cast<size_t>(m), 0.f);
  for (int64_t i = 0; i < wf.num_elements(); ++i) {
    float& a = amax[static_cast<size_t>(layout.ChannelOf(i))];
    a = std::max(a, std::fabs(wf.as<float>()[i]));
  }
  for (int64_t c = 0; c < m; ++c) ws.as<float>()[c] = amax[c] > 0.f ? amax[c] / qmax : 1.f;
  for (int64_t i = 0; i < wf.num_elements(); ++i) {
    const float s = ws.as<float>()[layout.ChannelOf(i)];
    wq.as<int8_t>()[i] = static_cast<int8_t>(std::clamp(std::nearbyint(wf.as<float>()[i] / s), -qmax, qmax));
  }
  return std::make_pair(std::move(wq), std::move(ws));
}

// A MatMul / Gemm (QuantizableWeights) rewritten to quantize its input per run: y =
// Cast(MatMulInteger(xq, Wq, xz)) * (xs * ws) (+ C), with xq, xs, xz from DynamicQuantizeLinear(x)
// and Wq [K, N] int8, symmetric per output column with scales ws.
Status QuantizeDynamically(ir::Graph& g, ir::Node* op, const WeightLayout& layout, float qmax) {
  auto constant = [&](const std::string& base, Tensor t) { return AddConstant(g, base, std::move(t)); };
  auto value = [&](const std::string& base, DataType dtype) { return g.AddValue(g.UniqueName(base), dtype); };
  auto add = [&](const char* type, std::vector<ir::Value*> in, std::vector<ir::Value*> out, const std::string& base) {
    ir::Node* n = g.AddNode(type, std::move(in), std::move(out), g.UniqueName(base + "/" + type));
    n->opset = 13;
    return n;
  };
  ir::Value* x = op->input(0);
  const ir::Value* w = op->input(1);
  ASSIGN_OR_RETURN(auto quantized, QuantizeWeightsPerChannel(*w->constant, layout, qmax));
  auto& [wq, ws] = quantized;
  if (layout.axis == 0) {  // Gemm transB: W is [N, K]; MatMulInteger takes [K, N]
    const int64_t n_out = layout.channels, k = layout.inner;
    ASSIGN_OR_RETURN(Tensor kn, Tensor::Allocate(DataType::kInt8, {k, n_out}));
    for (int64_t c = 0; c < n_out; ++c) {
      for (int64_t r = 0; r < k; ++r) kn.as<int8_t>()[r * n_out + c] = wq.as<int8_t>()[c * k + r];
    }
    wq = std::move(kn);
  }
  const std::string base = op->name.empty() ? x->name : op->name;
  ir::Value* xq = value(x->name + "/dq_u8", DataType::kUint8);
  ir::Value* xs = value(x->name + "/dq_scale", DataType::kFloat32);
  ir::Value* xz = value(x->name + "/dq_zero", DataType::kUint8);
  add("DynamicQuantizeLinear", {x}, {xq, xs, xz}, base)->opset = 11;
  ir::Value* acc = value(base + "/int32", DataType::kInt32);
  add("MatMulInteger", {xq, constant(w->name + "/int8_kn", std::move(wq)), xz}, {acc}, base)->opset = 10;
  ir::Value* accf = value(base + "/float", DataType::kFloat32);
  add("Cast", {acc}, {accf}, base)->attrs["to"] = ir::Attribute(static_cast<int64_t>(DataType::kFloat32));
  ir::Value* scale = value(base + "/scale", DataType::kFloat32);
  add("Mul", {xs, constant(w->name + "/column_scale", std::move(ws))}, {scale}, base);
  ir::Value* y = op->output(0);
  ir::Value* bias = op->op_type == "Gemm" ? op->input(2) : nullptr;
  g.RemoveNode(op);
  if (bias == nullptr) {
    add("Mul", {accf, scale}, {y}, base);
  } else {
    ir::Value* scaled = value(base + "/scaled", DataType::kFloat32);
    add("Mul", {accf, scale}, {scaled}, base);
    add("Add", {scaled, bias}, {y}, base);
  }
  return Status::OK();
}

// For each quantizable activation: whether every operator quantizing it is a MatMul / Gemm with
// at least 256 KiB of weights (kept 8-bit with a per-run quantized input rather than float).
std::map<std::string, bool> LargeProductInputs(const ir::Graph& graph) {
  std::map<std::string, bool> out;
  for (const auto& n : graph.nodes()) {
    if (!QuantizableWeights(*n)) continue;
    const bool large = n->op_type != "Conv" && n->input(1)->constant->bytes() >= (256u << 10);
    auto [it, inserted] = out.emplace(n->input(0)->name, large);
    if (!inserted) it->second = it->second && large;
  }
  return out;
}

}  // namespace

std::vector<std::string> QuantizableActivations(ir::Model& model) {
  std::vector<std::string> names;
  if (!model.graph) return names;
  (void)FoldBatchNorm(*model.graph);  // a BN the export left unfolded would stop the int8 fusion
  std::set<std::string> seen;
  for (const auto& n : model.graph->nodes()) {
    if (!QuantizableWeights(*n)) continue;
    if (seen.insert(n->input(0)->name).second) names.push_back(n->input(0)->name);
  }
  return names;
}

StatusOr<CalibrationTable> Calibrate(std::string_view onnx_bytes, const std::vector<Sample>& samples,
                                     const Int8Options& options) {
  if (samples.empty()) return InvalidArgument("calibration needs at least one sample");
  ASSIGN_OR_RETURN(std::unique_ptr<ir::Model> model, ImportOnnxBytes(onnx_bytes));
  const std::vector<std::string> names = QuantizableActivations(*model);
  ir::Graph& g = *model->graph;
  for (const std::string& name : names) {  // each becomes an output the runs hand back
    ir::Value* v = g.FindValue(name);
    if (v != nullptr && !v->is_graph_output) {
      v->is_graph_output = true;
      g.outputs().push_back(v);
    }
  }
  CompileOptions co;
  co.num_threads = options.num_threads;
  ASSIGN_OR_RETURN(std::unique_ptr<CompiledModel> compiled, CompiledModel::Create(std::move(model), co));
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < compiled->outputs().size(); ++i) index[compiled->outputs()[i].name] = i;
  ExecutionContext ctx(ExecutionContext::Options{options.num_threads});
  auto run = [&](const Sample& s) -> StatusOr<std::vector<Tensor>> {
    std::vector<TensorView> views;
    for (const Tensor& t : s) views.push_back(t.view());
    return compiled->Run(ctx, views);
  };
  CalibrationTable table;
  for (const Sample& s : samples) {  // pass 1: min and max
    ASSIGN_OR_RETURN(std::vector<Tensor> out, run(s));
    for (const std::string& name : names) {
      const Tensor& t = out[index.at(name)];
      const float* v = FloatData(t);
      if (v == nullptr) continue;
      auto [it, fresh] = table.try_emplace(name, ActivationRange{std::numeric_limits<float>::infinity(),
                                                                 -std::numeric_limits<float>::infinity()});
      for (int64_t i = 0; i < t.num_elements(); ++i) {
        if (!std::isfinite(v[i])) continue;
        it->second.lo = std::min(it->second.lo, v[i]);
        it->second.hi = std::max(it->second.hi, v[i]);
      }
    }
  }
  std::erase_if(table, [](const auto& e) { return !(e.second.lo <= e.second.hi); });
  if (options.method == CalibrationMethod::kMinMax) return table;
  std::map<std::string, Histogram> hists;  // pass 2
  for (const auto& [name, r] : table) {
    Histogram& h = hists[name];
    h.lo = r.lo;
    h.hi = r.hi;
    h.abs_max = std::max(std::fabs(r.lo), std::fabs(r.hi));
  }
  for (const Sample& s : samples) {
    ASSIGN_OR_RETURN(std::vector<Tensor> out, run(s));
    for (auto& [name, h] : hists) h.Add(FloatData(out[index.at(name)]), out[index.at(name)].num_elements());
  }
  for (auto& [name, r] : table) {
    const Histogram& h = hists.at(name);
    if (options.method == CalibrationMethod::kPercentile) {
      const ActivationRange p = h.Percentile(options.percentile);
      r = {std::max(r.lo, p.lo), std::min(r.hi, p.hi)};
    } else {
      const float t = h.EntropyThreshold();
      r = {std::max(r.lo, -t), std::min(r.hi, t)};
    }
  }
  return table;
}

StatusOr<int> QuantizeModel(ir::Model& model, const CalibrationTable& table, const Int8Options& options) {
  if (!model.graph) return InvalidArgument("model has no graph");
  const int bits = options.weight_bits > 0 ? options.weight_bits : CpuExactInt8WeightBits();
  if (bits < 2 || bits > 8) return InvalidArgument("weight bits {} is not within 2..8", bits);
  const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
  const std::vector<std::string> names = QuantizableActivations(model);
  const std::set<std::string> quantizable(names.begin(), names.end());
  ir::Graph& g = *model.graph;
  auto constant = [&](const std::string& base, Tensor t) { return AddConstant(g, base, std::move(t)); };
  auto add_node = [&](const char* op, std::vector<ir::Value*> in, ir::Value* out) {
    ir::Node* n = g.AddNode(op, std::move(in), {out}, g.UniqueName(out->name + "/" + op));
    n->opset = 13;
    return n;
  };
  std::map<std::string, ir::Value*> dequantized;  // activation -> its Q/DQ output
  std::vector<std::pair<ir::Node*, WeightLayout>> ops;
  for (const auto& n : g.nodes()) {
    auto layout = QuantizableWeights(*n);
    if (layout && quantizable.count(n->input(0)->name)) ops.emplace_back(n.get(), *layout);
  }
  int count = 0;
  for (auto& [conv, layout] : ops) {
    ir::Value* x = conv->input(0);
    if (conv->op_type != "Conv" && options.dynamic_activations.count(x->name)) {
      RETURN_IF_ERROR(QuantizeDynamically(g, conv, layout, qmax));
      ++count;
      continue;
    }
    auto range = table.find(x->name);
    if (range == table.end()) continue;
    const float lo = std::min(range->second.lo, 0.f), hi = std::max(range->second.hi, 0.f);
    if (!(hi - lo > 0.f) || !std::isfinite(hi - lo)) continue;
    ir::Value*& xd = dequantized[x->name];
    if (xd == nullptr) {  // uint8, asymmetric over the calibrated range
      const float scale = (hi - lo) / 255.f;
      const auto zero = static_cast<uint8_t>(std::clamp(std::nearbyint(-lo / scale), 0.f, 255.f));
      ir::Value* s = constant(x->name + "/scale", *Tensor::FromVector<float>(DataType::kFloat32, {}, {scale}));
      ir::Value* z = constant(x->name + "/zero", *Tensor::FromVector<uint8_t>(DataType::kUint8, {}, {zero}));
      ir::Value* xq = g.AddValue(g.UniqueName(x->name + "/q"), DataType::kUint8);
      xq->shape = x->shape;
      xd = g.AddValue(g.UniqueName(x->name + "/dq"), DataType::kFloat32);
      xd->shape = x->shape;
      add_node("QuantizeLinear", {x, s, z}, xq);
      add_node("DequantizeLinear", {xq, s, z}, xd);
    }
    // int8 weights, symmetric per output channel.
    const ir::Value* w = conv->input(1);
    ASSIGN_OR_RETURN(auto quantized, QuantizeWeightsPerChannel(*w->constant, layout, qmax));
    auto& [wq, ws] = quantized;
    ir::Value* wqv = constant(w->name + "/int8", std::move(wq));
    ir::Value* wsv = constant(w->name + "/scale", std::move(ws));
    ir::Value* wd = g.AddValue(g.UniqueName(w->name + "/dq"), DataType::kFloat32);
    add_node("DequantizeLinear", {wqv, wsv}, wd)->attrs["axis"] = ir::Attribute(layout.axis);
    g.SetNodeInput(conv, 0, xd);
    g.SetNodeInput(conv, 1, wd);
    ++count;
  }
  // Embedding tables (Gather along axis 0 of a constant float32 [V, D] of at least 1 MiB): int8
  // rows with one scale per row, gathered and scaled back: Gather(Wq) -> Cast -> Mul(Gather(scale)).
  std::vector<ir::Node*> gathers;
  for (const auto& n : g.nodes()) {
    if (n->op_type != "Gather" || !n->domain.empty() || n->input(0) == nullptr || n->input(1) == nullptr) continue;
    const ir::Value* table = n->input(0);
    auto axis = n->GetInt("axis", 0);
    if (!table->is_constant() || table->constant->dtype() != DataType::kFloat32 || table->constant->shape().size() != 2 ||
        !axis.ok() || (*axis != 0 && *axis != -2) || table->constant->bytes() < (1u << 20) || n->input(1)->is_constant()) {
      continue;
    }
    gathers.push_back(n.get());
  }
  for (ir::Node* gather : gathers) {
    const Tensor& table = *gather->input(0)->constant;
    const int64_t rows = table.shape()[0], cols = table.shape()[1];
    ASSIGN_OR_RETURN(Tensor tq, Tensor::Allocate(DataType::kInt8, table.shape()));
    ASSIGN_OR_RETURN(Tensor ts, Tensor::Allocate(DataType::kFloat32, {rows, 1}));
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = table.as<float>() + r * cols;
      float amax = 0.f;
      for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(row[c]));
      const float scale = amax > 0.f ? amax / 127.f : 1.f;
      ts.as<float>()[r] = scale;
      for (int64_t c = 0; c < cols; ++c) {
        tq.as<int8_t>()[r * cols + c] = static_cast<int8_t>(std::clamp(std::nearbyint(row[c] / scale), -127.f, 127.f));
      }
    }
    ir::Value* ids = gather->input(1);
    ir::Value* out = gather->output(0);
    const std::string base = gather->input(0)->name;
    ir::Value* tqv = constant(base + "/int8", std::move(tq));
    ir::Value* tsv = constant(base + "/row_scale", std::move(ts));
    ir::Value* rows_q = g.AddValue(g.UniqueName(out->name + "/int8"), DataType::kInt8);
    ir::Value* rows_f = g.AddValue(g.UniqueName(out->name + "/float"), DataType::kFloat32);
    ir::Value* scales = g.AddValue(g.UniqueName(out->name + "/scale"), DataType::kFloat32);
    g.RemoveNode(gather);
    add_node("Gather", {tqv, ids}, rows_q);
    add_node("Gather", {tsv, ids}, scales);
    add_node("Cast", {rows_q}, rows_f)->attrs["to"] = ir::Attribute(static_cast<int64_t>(DataType::kFloat32));
    add_node("Mul", {rows_f, scales}, out);
    ++count;
  }
  g.RemoveUnusedValues();  // the float32 weights
  RETURN_IF_ERROR(g.TopologicalSort());
  return count;
}

void KeepMostSensitive(const std::vector<Int8Sensitivity>& ranked, int count, CalibrationTable* table,
                       Int8Options* options, std::vector<std::string>* kept) {
  for (size_t i = 0; i < ranked.size() && i < static_cast<size_t>(std::max(count, 0)); ++i) {
    if (ranked[i].large_weights) {
      options->dynamic_activations.insert(ranked[i].activation);
      if (kept != nullptr) kept->push_back(ranked[i].activation + " (per-run INT8)");
      continue;
    }
    table->erase(ranked[i].activation);
    if (kept != nullptr) kept->push_back(ranked[i].activation);
  }
}

StatusOr<std::unique_ptr<ir::Model>> QuantizeOnnx(std::string_view onnx_bytes, const std::vector<Sample>& calibration,
                                                  const Int8Options& options, int* quantized,
                                                  std::vector<std::string>* kept_float) {
  ASSIGN_OR_RETURN(CalibrationTable table, Calibrate(onnx_bytes, calibration, options));
  if (options.keep_float > 0) {
    ASSIGN_OR_RETURN(std::vector<Int8Sensitivity> ranked, RankInt8Sensitivity(onnx_bytes, table, calibration, options));
    Int8Options chosen = options;
    KeepMostSensitive(ranked, options.keep_float, &table, &chosen, kept_float);
    ASSIGN_OR_RETURN(std::unique_ptr<ir::Model> model, ImportOnnxBytes(onnx_bytes));
    ASSIGN_OR_RETURN(int n, QuantizeModel(*model, table, chosen));
    if (quantized != nullptr) *quantized = n;
    return model;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<ir::Model> model, ImportOnnxBytes(onnx_bytes));
  ASSIGN_OR_RETURN(int n, QuantizeModel(*model, table, options));
  if (quantized != nullptr) *quantized = n;
  return model;
}

std::string AccuracyReport::Summary() const {
  std::string s;
  for (const Output& o : outputs) {
    if (!s.empty()) s += "; ";
    s += fmt::format("output '{}': rel L2 {:.4g}", o.name, o.rel_l2);
    if (o.top1_agreement >= 0) {
      s += fmt::format(", top-1 {:.1f}% ({}/{})", 100.0 * o.top1_agreement,
                       static_cast<int64_t>(std::llround(o.top1_agreement * static_cast<double>(o.rows))), o.rows);
    }
  }
  return s;
}

StatusOr<AccuracyReport> CompareOutputs(Executable& reference, Executable& candidate,
                                        const std::vector<Sample>& samples, int num_threads) {
  if (reference.outputs().size() != candidate.outputs().size()) {
    return InvalidArgument("the models have {} and {} outputs", reference.outputs().size(), candidate.outputs().size());
  }
  const size_t n = reference.outputs().size();
  std::vector<double> diff(n, 0.0), norm(n, 0.0);
  std::vector<int64_t> agree(n, 0), rows(n, 0);
  ExecutionContext ctx(ExecutionContext::Options{num_threads});
  for (const Sample& s : samples) {
    std::vector<TensorView> views;
    for (const Tensor& t : s) views.push_back(t.view());
    ASSIGN_OR_RETURN(std::vector<Tensor> a, reference.Run(ctx, views));
    ASSIGN_OR_RETURN(std::vector<Tensor> b, candidate.Run(ctx, views));
    for (size_t o = 0; o < n; ++o) {
      const float* x = FloatData(a[o]);
      const float* y = FloatData(b[o]);
      if (x == nullptr || y == nullptr || a[o].shape() != b[o].shape()) {
        return InvalidArgument("output '{}' is not float32 of the same shape in both models", reference.outputs()[o].name);
      }
      for (int64_t i = 0; i < a[o].num_elements(); ++i) {
        diff[o] += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
        norm[o] += double(x[i]) * x[i];
      }
      const Shape& sh = a[o].shape();
      if (sh.size() == 2 && sh[1] > 1) {  // classifier-shaped: [rows, classes]
        for (int64_t r = 0; r < sh[0]; ++r) {
          const float* xr = x + r * sh[1];
          const float* yr = y + r * sh[1];
          agree[o] += std::max_element(xr, xr + sh[1]) - xr == std::max_element(yr, yr + sh[1]) - yr;
          ++rows[o];
        }
      }
    }
  }
  AccuracyReport report;
  for (size_t o = 0; o < n; ++o) {
    AccuracyReport::Output out;
    out.name = reference.outputs()[o].name;
    out.rel_l2 = norm[o] > 0 ? std::sqrt(diff[o] / norm[o]) : std::sqrt(diff[o]);
    out.rows = rows[o];
    if (rows[o] > 0) {
      out.top1_agreement = static_cast<double>(agree[o]) / static_cast<double>(rows[o]);
      report.worst_top1 = std::min(report.worst_top1, out.top1_agreement);
    }
    report.worst_rel_l2 = std::max(report.worst_rel_l2, out.rel_l2);
    report.outputs.push_back(out);
  }
  return report;
}

StatusOr<std::vector<Int8Sensitivity>> RankInt8Sensitivity(std::string_view onnx_bytes, const CalibrationTable& table,
                                                           const std::vector<Sample>& samples,
                                                           const Int8Options& options) {
  if (samples.empty()) return InvalidArgument("ranking INT8 sensitivity needs at least one sample");
  CompileOptions co;
  co.num_threads = std::max(1, options.num_threads);
  ASSIGN_OR_RETURN(std::unique_ptr<ir::Model> reference_ir, ImportOnnxBytes(onnx_bytes));
  const std::map<std::string, bool> large_products = LargeProductInputs(*reference_ir->graph);
  ASSIGN_OR_RETURN(std::unique_ptr<CompiledModel> reference, CompiledModel::Create(std::move(reference_ir), co));
  std::vector<Int8Sensitivity> ranked;
  for (const auto& [activation, range] : table) {
    ASSIGN_OR_RETURN(std::unique_ptr<ir::Model> one, ImportOnnxBytes(onnx_bytes));
    ASSIGN_OR_RETURN(int quantized, QuantizeModel(*one, CalibrationTable{{activation, range}}, options));
    if (quantized == 0) continue;  // nothing reads it as a quantizable input
    ASSIGN_OR_RETURN(std::unique_ptr<CompiledModel> candidate, CompiledModel::Create(std::move(one), co));
    ASSIGN_OR_RETURN(AccuracyReport report, CompareOutputs(*reference, *candidate, samples, co.num_threads));
    auto large = large_products.find(activation);
    ranked.push_back({activation, report.worst_rel_l2, large != large_products.end() && large->second});
  }
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const Int8Sensitivity& a, const Int8Sensitivity& b) { return a.rel_l2 > b.rel_l2; });
  return ranked;
}

}  // namespace gpuhive
