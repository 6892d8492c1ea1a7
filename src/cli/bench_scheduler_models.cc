#include "cli/bench_scheduler_models.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <string_view>
#include <thread>

#include "gpuhive/onnx_import.h"
#include "gpuhive/units.h"

namespace gpuhive::cli {
namespace {

// Minimal protobuf writer for the handful of ONNX messages the bench models need.
class Pb {
 public:
  Pb& Int(int field, int64_t v) {
    Tag(field, 0);
    Varint(static_cast<uint64_t>(v));
    return *this;
  }
  Pb& Str(int field, std::string_view b) {
    Tag(field, 2);
    Varint(b.size());
    s_.append(b.data(), b.size());
    return *this;
  }
  Pb& Msg(int field, const Pb& m) { return Str(field, m.s_); }
  const std::string& bytes() const { return s_; }

 private:
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      s_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    s_.push_back(static_cast<char>(v));
  }
  void Tag(int field, int wire) { Varint(static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(wire)); }
  std::string s_;
};

constexpr int kFloat = 1;

// ValueInfoProto for a float tensor; dim -1 becomes the symbolic batch dim "N".
Pb ValueInfo(const std::string& name, const std::vector<int64_t>& shape) {
  Pb dims;
  for (int64_t d : shape) {
    Pb dim;
    if (d < 0) {
      dim.Str(2, "N");
    } else {
      dim.Int(1, d);
    }
    dims.Msg(1, dim);
  }
  Pb tensor_type;
  tensor_type.Int(1, kFloat).Msg(2, dims);
  Pb type;
  type.Msg(1, tensor_type);
  Pb vi;
  vi.Str(1, name).Msg(2, type);
  return vi;
}

class GraphBuilder {
 public:
  explicit GraphBuilder(uint32_t seed) : rng_(seed) {}

  // A float initializer with values uniform in +-scale.
  std::string Weight(const std::string& name, const std::vector<int64_t>& shape, float scale) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    std::uniform_real_distribution<float> dist(-scale, scale);
    for (auto& x : v) x = dist(rng_);
    Pb t;
    for (int64_t d : shape) t.Int(1, d);
    t.Int(2, kFloat).Str(8, name);
    t.Str(9, std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
    graph_.Msg(5, t);
    return name;
  }

  std::string Node(const std::string& op, const std::vector<std::string>& inputs,
                   const std::vector<std::pair<std::string, std::vector<int64_t>>>& int_attrs = {},
                   const std::vector<std::pair<std::string, int64_t>>& scalar_attrs = {}) {
    std::string out = op + "_" + std::to_string(counter_++);
    Pb node;
    for (const auto& in : inputs) node.Str(1, in);
    node.Str(2, out).Str(3, out).Str(4, op);
    for (const auto& [name, ints] : int_attrs) {
      Pb a;
      a.Str(1, name);
      for (int64_t i : ints) a.Int(8, i);
      a.Int(20, 7);  // INTS
      node.Msg(5, a);
    }
    for (const auto& [name, i] : scalar_attrs) {
      Pb a;
      a.Str(1, name).Int(3, i).Int(20, 2);  // INT
      node.Msg(5, a);
    }
    graph_.Msg(1, node);
    return out;
  }

  std::string Finish(const std::string& name, const std::string& input, const std::vector<int64_t>& in_shape,
                     const std::string& output, const std::vector<int64_t>& out_shape) {
    // Rename the last node's output to "y" through an Identity so the graph output is stable.
    Pb id;
    id.Str(1, output).Str(2, "y").Str(3, "output_identity").Str(4, "Identity");
    graph_.Msg(1, id);
    graph_.Str(2, name);
    graph_.Msg(11, ValueInfo(input, in_shape));
    graph_.Msg(12, ValueInfo("y", out_shape));
    Pb opset;
    opset.Str(1, "").Int(2, 13);
    Pb model;
    model.Int(1, 8).Str(2, "gpuhive-bench").Msg(7, graph_).Msg(8, opset);
    return model.bytes();
  }

 private:
  std::mt19937 rng_;
  Pb graph_;
  int counter_ = 0;
};

}  // namespace

BenchModelSpec SmallMlpModel() {
  GraphBuilder g(1);
  std::string h = g.Node("Gemm", {"x", g.Weight("w1", {256, 1024}, 0.06f), g.Weight("b1", {1024}, 0.01f)});
  h = g.Node("Relu", {h});
  h = g.Node("Gemm", {h, g.Weight("w2", {1024, 1024}, 0.03f), g.Weight("b2", {1024}, 0.01f)});
  h = g.Node("Relu", {h});
  h = g.Node("Gemm", {h, g.Weight("w3", {1024, 16}, 0.03f), g.Weight("b3", {16}, 0.01f)});
  return {"mlp", g.Finish("mlp", "x", {-1, 256}, h, {-1, 16}), {1, 256}};
}

BenchModelSpec MediumConvModel() {
  GraphBuilder g(2);
  std::string h = g.Node("Conv", {"x", g.Weight("c1", {16, 3, 3, 3}, 0.2f), g.Weight("cb1", {16}, 0.01f)},
                         {{"kernel_shape", {3, 3}}, {"pads", {1, 1, 1, 1}}});
  h = g.Node("Relu", {h});
  h = g.Node("MaxPool", {h}, {{"kernel_shape", {2, 2}}, {"strides", {2, 2}}});
  h = g.Node("Conv", {h, g.Weight("c2", {32, 16, 3, 3}, 0.08f), g.Weight("cb2", {32}, 0.01f)},
             {{"kernel_shape", {3, 3}}, {"pads", {1, 1, 1, 1}}});
  h = g.Node("Relu", {h});
  h = g.Node("MaxPool", {h}, {{"kernel_shape", {2, 2}}, {"strides", {2, 2}}});
  h = g.Node("Flatten", {h}, {}, {{"axis", 1}});
  h = g.Node("Gemm", {h, g.Weight("w1", {2048, 1024}, 0.02f), g.Weight("b1", {1024}, 0.01f)});
  h = g.Node("Relu", {h});
  h = g.Node("Gemm", {h, g.Weight("w2", {1024, 10}, 0.03f), g.Weight("b2", {10}, 0.01f)});
  return {"convnet", g.Finish("convnet", "x", {-1, 3, 32, 32}, h, {-1, 10}), {1, 3, 32, 32}};
}

StatusOr<std::shared_ptr<CompiledModelRunner>> CompiledModelRunner::Create(const BenchModelSpec& spec,
                                                                           int num_workers) {
  ASSIGN_OR_RETURN(auto ir, ImportOnnxBytes(spec.onnx_bytes));
  CompileOptions opts;
  opts.num_threads = 1;
  ASSIGN_OR_RETURN(auto model, CompiledModel::Create(std::move(ir), opts));
  auto runner = std::shared_ptr<CompiledModelRunner>(new CompiledModelRunner());
  runner->model_ = std::move(model);
  runner->contexts_.resize(static_cast<size_t>(num_workers));
  for (int i = 0; i < num_workers; ++i) runner->created_.push_back(std::make_unique<std::once_flag>());
  return runner;
}

StatusOr<std::vector<Tensor>> CompiledModelRunner::RunBatch(const std::vector<TensorView>& inputs,
                                                            const sched::WorkerContext& worker) {
  auto w = static_cast<size_t>(worker.worker_index);
  if (w >= contexts_.size()) return InvalidArgument("worker {} outside the runner's {} contexts", w, contexts_.size());
  std::call_once(*created_[w], [&] {
    ExecutionContext::Options o;
    o.num_threads = worker.num_threads;
    contexts_[w] = std::make_unique<ExecutionContext>(o);
  });
  return model_->Run(*contexts_[w], inputs);
}

std::vector<std::string> CompiledModelRunner::input_names() const {
  std::vector<std::string> names;
  for (const auto& t : model_->inputs()) names.push_back(t.name);
  return names;
}

std::vector<std::string> CompiledModelRunner::output_names() const {
  std::vector<std::string> names;
  for (const auto& t : model_->outputs()) names.push_back(t.name);
  return names;
}

StatusOr<std::vector<Tensor>> SlowDeviceRunner::RunBatch(const std::vector<TensorView>& inputs,
                                                         const sched::WorkerContext& worker) {
  int64_t start = NowNs();
  auto out = inner_->RunBatch(inputs, worker);
  if (std::find(slow_.begin(), slow_.end(), worker.device_index) != slow_.end()) {
    auto extra = static_cast<int64_t>(static_cast<double>(NowNs() - start) * (factor_ - 1.0));
    if (extra > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(extra));
  }
  return out;
}

}  // namespace gpuhive::cli
