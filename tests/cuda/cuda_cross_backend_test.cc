// Cross-backend test: every CUDA operator path and the executor against the CPU kernels on the same
// small random inputs, by normalized error ||gpu - cpu|| / ||cpu|| (FP32 1e-5, TF32 1e-3, FP16/BF16
// 1e-2). Needs a CUDA device; without one every test is skipped with a message.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <thread>
#include <utility>

#include "gpuhive/cuda_compute_device.h"
#include "gpuhive/cuda_device.h"
#include "gpuhive/cuda_executor.h"
#include "gpuhive/cuda_kernels.h"
#include "gpuhive/device_discovery.h"
#include "gpuhive/memory/upstreams.h"
#include "gpuhive/onnx_import.h"
#include "gpuhive/runtime.h"
#include "support/kernel_harness.h"

namespace gpuhive {
namespace {

using testing::AttrFloat;
using testing::AttrInt;
using testing::AttrInts;
using testing::AttrString;
using testing::AttrStrings;
using testing::NodeSpec;

#define REQUIRE_GPU()                                                                         \
  do {                                                                                        \
    DiscoveryResult d = DiscoverDevices();                                                    \
    if (d.gpus.empty()) GTEST_SKIP() << "no CUDA device (" << d.gpu_unavailable_reason << ")"; \
  } while (0)

double NormalizedError(const Tensor& got, const Tensor& ref) {
  std::vector<double> a = testing::ToDoubles(got), b = testing::ToDoubles(ref);
  if (a.size() != b.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) != std::isnan(b[i])) return INFINITY;
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

struct OpCase {
  std::string name;
  NodeSpec spec;
  std::vector<Tensor> inputs;
  std::vector<int> constant_inputs;  // become initializers on the CUDA side
  double tolerance = 1e-5;
};

// One-node graph for the executor, inputs not listed as constants being graph inputs.
std::shared_ptr<ir::Graph> OneNodeGraph(const OpCase& c) {
  auto g = std::make_shared<ir::Graph>();
  std::vector<ir::Value*> in;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    ir::Value* v = g->AddValue("in" + std::to_string(i), c.inputs[i].dtype());
    bool constant = std::find(c.constant_inputs.begin(), c.constant_inputs.end(), static_cast<int>(i)) !=
                    c.constant_inputs.end();
    if (constant) {
      v->constant = std::make_shared<const Tensor>(c.inputs[i].Clone().value());
    } else {
      v->is_graph_input = true;
      g->inputs().push_back(v);
    }
    in.push_back(v);
  }
  std::vector<ir::Value*> out;
  for (int i = 0; i < c.spec.num_outputs; ++i) out.push_back(g->AddValue("out" + std::to_string(i)));
  ir::Node* n = g->AddNode(c.spec.op_type, in, out, "node", c.spec.domain);
  n->opset = c.spec.opset;
  n->attrs = c.spec.attrs;
  for (ir::Value* v : out) {
    v->is_graph_output = true;
    g->outputs().push_back(v);
  }
  return g;
}

void CheckCase(const OpCase& c, bool graphs) {
  SCOPED_TRACE(c.name);
  std::vector<const Tensor*> ptrs;
  for (const Tensor& t : c.inputs) ptrs.push_back(&t);
  testing::RunOptions ro;
  ro.constant_inputs = c.constant_inputs;
  StatusOr<std::vector<Tensor>> cpu = testing::RunNode(c.spec, ptrs, ro);
  ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
  cuda::ExecutorOptions eo;
  eo.use_cuda_graphs = graphs;
  StatusOr<std::unique_ptr<cuda::CudaExecutor>> ex = cuda::CudaExecutor::Create(OneNodeGraph(c), eo);
  ASSERT_TRUE(ex.ok()) << ex.status().ToString();
  std::vector<TensorView> views;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (std::find(c.constant_inputs.begin(), c.constant_inputs.end(), static_cast<int>(i)) == c.constant_inputs.end()) {
      views.push_back(c.inputs[i].view());
    }
  }
  // Three runs: plain, captured, replayed; each must match.
  for (int run = 0; run < 3; ++run) {
    StatusOr<std::vector<Tensor>> gpu = (*ex)->Run(views);
    ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
    ASSERT_EQ(gpu->size(), cpu->size());
    for (size_t o = 0; o < gpu->size(); ++o) {
      ASSERT_EQ((*gpu)[o].shape(), (*cpu)[o].shape()) << "output " << o;
      ASSERT_EQ((*gpu)[o].dtype(), (*cpu)[o].dtype()) << "output " << o;
      EXPECT_LE(NormalizedError((*gpu)[o], (*cpu)[o]), c.tolerance) << "output " << o << " run " << run;
    }
  }
  cuda::ExecutorStats st = (*ex)->stats();
  EXPECT_EQ(st.plans, 1u);
  if (graphs) {
    // The second run captures, the third replays: a failed capture is a failure, not a fallback.
    EXPECT_EQ(st.graph_captures, 1u);
    EXPECT_EQ(st.graph_capture_failures, 0u);
    EXPECT_GE(st.graph_replays, 1u);
  }
}

Tensor Rand(const Shape& s, uint32_t seed) { return testing::RandomFloat(s, seed); }

std::vector<OpCase> Cases() {
  std::vector<OpCase> v;
  auto add = [&](std::string name, NodeSpec spec, std::vector<Tensor> in, std::vector<int> consts = {}) {
    OpCase c;
    c.name = std::move(name);
    c.spec = std::move(spec);
    c.inputs = std::move(in);
    c.constant_inputs = std::move(consts);
    v.push_back(std::move(c));
  };
  add("conv3x3_bias", {"Conv", "", 17, {{"pads", AttrInts({1, 1, 1, 1})}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({2, 3, 9, 9}, 1)); t.push_back(Rand({4, 3, 3, 3}, 2)); t.push_back(Rand({4}, 3)); return t; }(), {1, 2});
  add("conv_grouped_strided", {"Conv", "", 17, {{"group", AttrInt(2)}, {"strides", AttrInts({2, 2})}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({1, 4, 8, 8}, 4)); t.push_back(Rand({6, 2, 3, 3}, 5)); return t; }(), {1});
  add("fusedconv_sum_relu", {"FusedConv", "gpuhive", 1, {{"pads", AttrInts({1, 1, 1, 1})}, {"post_ops", AttrStrings({"sum", "relu"})}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({1, 3, 6, 6}, 6)); t.push_back(Rand({3, 3, 3, 3}, 7)); t.push_back(Rand({3}, 8)); t.push_back(Rand({1, 3, 6, 6}, 9)); return t; }(), {1, 2});
  add("fusedconv_hardswish", {"FusedConv", "gpuhive", 1, {{"post_ops", AttrStrings({"hardswish"})}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({1, 2, 5, 5}, 10)); t.push_back(Rand({2, 2, 1, 1}, 11)); t.push_back(Rand({2}, 12)); return t; }(), {1, 2});
  add("matmul_2d", {"MatMul", "", 17, {}}, [] { std::vector<Tensor> t; t.push_back(Rand({5, 7}, 13)); t.push_back(Rand({7, 3}, 14)); return t; }(), {1});
  add("matmul_batched", {"MatMul", "", 17, {}}, [] { std::vector<Tensor> t; t.push_back(Rand({2, 3, 4, 6}, 15)); t.push_back(Rand({2, 3, 6, 5}, 16)); return t; }());
  add("matmul_3d_x_2d", {"MatMul", "", 17, {}}, [] { std::vector<Tensor> t; t.push_back(Rand({2, 4, 8}, 17)); t.push_back(Rand({8, 3}, 18)); return t; }(), {1});
  add("fusedmatmul_bias_gelu", {"FusedMatMul", "gpuhive", 1, {{"post_ops", AttrStrings({"add", "gelu_erf"})}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({4, 8}, 19)); t.push_back(Rand({8, 6}, 20)); t.push_back(Rand({6}, 21)); return t; }(), {1, 2});
  add("gemm_transb_bias", {"Gemm", "", 17, {{"transB", AttrInt(1)}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({3, 5}, 22)); t.push_back(Rand({4, 5}, 23)); t.push_back(Rand({4}, 24)); return t; }(), {1, 2});
  add("gemm_alpha_beta_full_c", {"Gemm", "", 17, {{"alpha", AttrFloat(0.5f)}, {"beta", AttrFloat(2.f)}, {"transA", AttrInt(1)}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({5, 3}, 25)); t.push_back(Rand({5, 4}, 26)); t.push_back(Rand({3, 4}, 27)); return t; }());
  add("softmax_last", {"Softmax", "", 17, {}}, [] { std::vector<Tensor> t; t.push_back(Rand({3, 1000}, 28)); return t; }());
  add("softmax_middle", {"Softmax", "", 17, {{"axis", AttrInt(1)}}}, [] { std::vector<Tensor> t; t.push_back(Rand({2, 5, 3}, 29)); return t; }());
  add("logsoftmax", {"LogSoftmax", "", 17, {}}, [] { std::vector<Tensor> t; t.push_back(Rand({4, 10}, 30)); return t; }());
  add("layernorm", {"LayerNormalization", "", 17, {{"epsilon", AttrFloat(1e-5f)}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({2, 3, 64}, 31)); t.push_back(Rand({64}, 32)); t.push_back(Rand({64}, 33)); return t; }(), {1, 2});
  add("reducemean_last_keep", {"ReduceMean", "", 17, {{"axes", AttrInts({-1})}}}, [] { std::vector<Tensor> t; t.push_back(Rand({3, 4, 50}, 34)); return t; }());
  add("reducemax_middle", {"ReduceMax", "", 17, {{"axes", AttrInts({1})}, {"keepdims", AttrInt(0)}}}, [] { std::vector<Tensor> t; t.push_back(Rand({3, 4, 5}, 35)); return t; }());
  add("reducesum_axes_input", {"ReduceSum", "", 17, {}},
      [] { std::vector<Tensor> t; t.push_back(Rand({2, 3, 4}, 36)); t.push_back(testing::MakeInt64({2}, {1, 2})); return t; }(), {1});
  add("globalavgpool", {"GlobalAveragePool", "", 17, {}}, [] { std::vector<Tensor> t; t.push_back(Rand({2, 3, 7, 7}, 37)); return t; }());
  add("maxpool_3x3_s2_pad", {"MaxPool", "", 17, {{"kernel_shape", AttrInts({3, 3})}, {"strides", AttrInts({2, 2})}, {"pads", AttrInts({1, 1, 1, 1})}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({1, 2, 9, 9}, 38)); return t; }());
  add("avgpool_2x2", {"AveragePool", "", 17, {{"kernel_shape", AttrInts({2, 2})}, {"strides", AttrInts({2, 2})}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({1, 3, 8, 6}, 39)); return t; }());
  add("transpose_0213", {"Transpose", "", 17, {{"perm", AttrInts({0, 2, 1, 3})}}}, [] { std::vector<Tensor> t; t.push_back(Rand({2, 3, 4, 5}, 40)); return t; }());
  add("slice_steps", {"Slice", "", 17, {}},
      [] { std::vector<Tensor> t; t.push_back(Rand({4, 10}, 41)); t.push_back(testing::MakeInt64({2}, {1, -1})); t.push_back(testing::MakeInt64({2}, {4, 0}));
           t.push_back(testing::MakeInt64({2}, {0, 1})); t.push_back(testing::MakeInt64({2}, {1, -3})); return t; }(), {1, 2, 3, 4});
  add("concat_axis1", {"Concat", "", 17, {{"axis", AttrInt(1)}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({2, 3, 4}, 42)); t.push_back(Rand({2, 5, 4}, 43)); t.push_back(Rand({2, 1, 4}, 44)); return t; }());
  add("gather_axis0_embedding", {"Gather", "", 17, {{"axis", AttrInt(0)}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({10, 6}, 45)); t.push_back(testing::MakeInt64({2, 3}, {0, 9, -1, 4, 4, 2})); return t; }(), {0});
  add("gather_axis1", {"Gather", "", 17, {{"axis", AttrInt(1)}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({3, 5, 2}, 46)); t.push_back(testing::MakeInt64({2}, {4, 1})); return t; }());
  add("resize_nearest_2x", {"Resize", "", 17, {{"mode", AttrString("nearest")}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({1, 2, 4, 5}, 47)); t.push_back(Tensor()); t.push_back(testing::MakeFloat({4}, {1, 1, 2, 2})); return t; }(), {2});
  add("resize_linear_sizes", {"Resize", "", 17, {{"mode", AttrString("linear")}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({1, 2, 4, 5}, 48)); t.push_back(Tensor()); t.push_back(Tensor()); t.push_back(testing::MakeInt64({4}, {1, 2, 7, 3})); return t; }(), {3});
  add("add_broadcast", {"Add", "", 17, {}}, [] { std::vector<Tensor> t; t.push_back(Rand({3, 1, 5}, 49)); t.push_back(Rand({4, 1}, 50)); return t; }());
  add("div", {"Div", "", 17, {}}, [] { std::vector<Tensor> t; t.push_back(Rand({2, 6}, 51)); t.push_back(testing::RandomFloat({2, 6}, 52, 0.5f, 2.f)); return t; }());
  add("clip", {"Clip", "", 17, {}},
      [] { std::vector<Tensor> t; t.push_back(Rand({20}, 53)); t.push_back(testing::MakeFloat({}, {-0.3f})); t.push_back(testing::MakeFloat({}, {0.4f})); return t; }(), {1, 2});
  add("elementwise_chain", {"Elementwise", "gpuhive", 1, {{"post_ops", AttrStrings({"mul", "add", "sigmoid", "linear:2:-1", "tanh", "gelu_tanh"})}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({2, 3, 4}, 54)); t.push_back(Rand({3, 1}, 55)); t.push_back(Rand({4}, 56)); return t; }());
  add("cast_int64_to_float", {"Cast", "", 17, {{"to", AttrInt(1)}}},
      [] { std::vector<Tensor> t; t.push_back(testing::MakeInt64({2, 3}, {0, 1, 1, 0, -5, 70000})); return t; }());
  add("cast_float_to_float16", {"Cast", "", 17, {{"to", AttrInt(10)}}}, [] { std::vector<Tensor> t; t.push_back(Rand({33}, 58)); return t; }());
  add("expand", {"Expand", "", 17, {}},
      [] { std::vector<Tensor> t; t.push_back(Rand({3, 1}, 59)); t.push_back(testing::MakeInt64({3}, {2, 3, 4})); return t; }(), {1});
  add("split_uneven", {"Split", "", 17, {{"axis", AttrInt(1)}}, 2},
      [] { std::vector<Tensor> t; t.push_back(Rand({2, 7, 3}, 61)); t.push_back(testing::MakeInt64({2}, {3, 4})); return t; }(), {1});
  add("pad_constant", {"Pad", "", 17, {}},
      [] { std::vector<Tensor> t; t.push_back(Rand({1, 2, 3, 3}, 62)); t.push_back(testing::MakeInt64({8}, {0, 0, 1, 2, 0, 1, 2, 0}));
           t.push_back(testing::MakeFloat({}, {0.75f})); return t; }(), {1, 2});
  // Issue 13's operator coverage. cuDNN pads symmetrically: asymmetric pads go through an explicit
  // pad (Conv) or a crop (ConvTranspose) in the step's workspace.
  add("conv_asymmetric_pads", {"Conv", "", 17, {{"pads", AttrInts({0, 1, 2, 0})}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({2, 3, 7, 6}, 63)); t.push_back(Rand({4, 3, 3, 3}, 64)); t.push_back(Rand({4}, 65)); return t; }(), {1, 2});
  add("conv1d_same_upper_s2", {"Conv", "", 17, {{"auto_pad", AttrString("SAME_UPPER")}, {"strides", AttrInts({2})}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({1, 2, 9}, 66)); t.push_back(Rand({3, 2, 4}, 67)); return t; }(), {1});
  add("convtranspose_k2_s2_bias", {"ConvTranspose", "", 17, {{"strides", AttrInts({2, 2})}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({2, 4, 5, 5}, 68)); t.push_back(Rand({4, 3, 2, 2}, 69)); t.push_back(Rand({3}, 70)); return t; }(), {1, 2});
  add("convtranspose_pads_output_padding", {"ConvTranspose", "", 17, {{"strides", AttrInts({2, 2})}, {"pads", AttrInts({1, 1, 1, 1})}, {"output_padding", AttrInts({1, 1})}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({1, 3, 4, 6}, 71)); t.push_back(Rand({3, 2, 3, 3}, 72)); return t; }(), {1});
  add("convtranspose_asymmetric_grouped", {"ConvTranspose", "", 17, {{"strides", AttrInts({2, 1})}, {"pads", AttrInts({0, 1, 1, 0})}, {"group", AttrInt(2)}}},
      [] { std::vector<Tensor> t; t.push_back(Rand({1, 4, 5, 4}, 73)); t.push_back(Rand({4, 3, 3, 3}, 74)); t.push_back(Rand({6}, 75)); return t; }(), {1, 2});
  add("lstm_forward", {"LSTM", "", 14, {{"hidden_size", AttrInt(4)}}, 3},
      [] { std::vector<Tensor> t; t.push_back(Rand({5, 2, 3}, 76)); t.push_back(Rand({1, 16, 3}, 77)); t.push_back(Rand({1, 16, 4}, 78));
           t.push_back(Rand({1, 32}, 79)); return t; }(), {1, 2, 3});
  add("lstm_reverse_no_bias", {"LSTM", "", 14, {{"hidden_size", AttrInt(3)}, {"direction", AttrString("reverse")}}, 3},
      [] { std::vector<Tensor> t; t.push_back(Rand({4, 1, 2}, 80)); t.push_back(Rand({1, 12, 2}, 81)); t.push_back(Rand({1, 12, 3}, 82)); return t; }(), {1, 2});
  add("lstm_bidirectional_states_peephole_clip",
      {"LSTM", "", 14, {{"hidden_size", AttrInt(4)}, {"direction", AttrString("bidirectional")}, {"clip", AttrFloat(1.5f)}}, 3},
      [] { std::vector<Tensor> t; t.push_back(Rand({6, 3, 5}, 83)); t.push_back(Rand({2, 16, 5}, 84)); t.push_back(Rand({2, 16, 4}, 85));
           t.push_back(Rand({2, 32}, 86)); t.push_back(Tensor::FromVector<int32_t>(DataType::kInt32, {3}, {6, 6, 6}).value()); t.push_back(Rand({2, 3, 4}, 87));
           t.push_back(Rand({2, 3, 4}, 88)); t.push_back(Rand({2, 12}, 89)); return t; }(), {1, 2, 3, 4, 7});
  // GRU in both forms: linear_before_reset (PyTorch's export) and ONNX's default, which multiplies
  // the reset gate in before R_h.
  add("gru_forward_linear_before_reset", {"GRU", "", 14, {{"hidden_size", AttrInt(4)}, {"linear_before_reset", AttrInt(1)}}, 2},
      [] { std::vector<Tensor> t; t.push_back(Rand({5, 2, 3}, 120)); t.push_back(Rand({1, 12, 3}, 121)); t.push_back(Rand({1, 12, 4}, 122));
           t.push_back(Rand({1, 24}, 123)); return t; }(), {1, 2, 3});
  add("gru_reverse_no_bias", {"GRU", "", 14, {{"hidden_size", AttrInt(3)}, {"direction", AttrString("reverse")}}, 2},
      [] { std::vector<Tensor> t; t.push_back(Rand({4, 1, 2}, 124)); t.push_back(Rand({1, 9, 2}, 125)); t.push_back(Rand({1, 9, 3}, 126)); return t; }(), {1, 2});
  add("gru_bidirectional_initial_h_clip",
      {"GRU", "", 14, {{"hidden_size", AttrInt(4)}, {"direction", AttrString("bidirectional")}, {"clip", AttrFloat(1.5f)}}, 2},
      [] { std::vector<Tensor> t; t.push_back(Rand({6, 3, 5}, 127)); t.push_back(Rand({2, 12, 5}, 128)); t.push_back(Rand({2, 12, 4}, 129));
           t.push_back(Rand({2, 24}, 130)); t.push_back(Tensor::FromVector<int32_t>(DataType::kInt32, {3}, {6, 6, 6}).value());
           t.push_back(Rand({2, 3, 4}, 131)); return t; }(), {1, 2, 3, 4});
  // Pointwise ops outside the float chain (BERT exports: Erf, Pow, Equal, Where, ...) and a MatMul
  // whose batch dims broadcast both ways.
  add("erf", {"Erf", "", 13, {}}, [] { std::vector<Tensor> t; t.push_back(Rand({3, 17}, 90)); return t; }());
  add("pow_broadcast", {"Pow", "", 15, {}},
      [] { std::vector<Tensor> t; t.push_back(testing::RandomFloat({2, 3, 4}, 91, 0.1f, 2.f)); t.push_back(testing::MakeFloat({4}, {2.f, 0.5f, 3.f, -1.f})); return t; }(), {1});
  add("equal_int64_broadcast", {"Equal", "", 13, {}, 1},
      [] { std::vector<Tensor> t; t.push_back(testing::MakeInt64({2, 3}, {0, 1, 2, 1, 1, 0})); t.push_back(testing::MakeInt64({3}, {1, 1, 0})); return t; }());
  add("less_float", {"Less", "", 13, {}, 1}, [] { std::vector<Tensor> t; t.push_back(Rand({4, 5}, 92)); t.push_back(Rand({5}, 93)); return t; }());
  add("greater_float", {"Greater", "", 13, {}, 1}, [] { std::vector<Tensor> t; t.push_back(Rand({4, 1}, 94)); t.push_back(Rand({1, 6}, 95)); return t; }());
  add("not_after_equal", {"Not", "", 1, {}, 1},
      [] { std::vector<Tensor> t; t.push_back(Tensor::FromVector<uint8_t>(DataType::kBool, {5}, {1, 0, 0, 1, 1}).value()); return t; }());
  add("where_float_broadcast", {"Where", "", 16, {}},
      [] { std::vector<Tensor> t; t.push_back(Tensor::FromVector<uint8_t>(DataType::kBool, {1, 4}, {1, 0, 1, 0}).value());
           t.push_back(Rand({3, 4}, 96)); t.push_back(testing::MakeFloat({}, {-1e4f})); return t; }(), {2});
  add("where_int64", {"Where", "", 16, {}},
      [] { std::vector<Tensor> t; t.push_back(Tensor::FromVector<uint8_t>(DataType::kBool, {3}, {0, 1, 1}).value());
           t.push_back(testing::MakeInt64({3}, {7, 8, 9})); t.push_back(testing::MakeInt64({3}, {-1, -2, -3})); return t; }());
  add("matmul_batch_broadcast_both", {"MatMul", "", 13, {}},
      [] { std::vector<Tensor> t; t.push_back(Rand({2, 1, 3, 4}, 97)); t.push_back(Rand({1, 3, 4, 5}, 98)); return t; }());
  add("reshape_alias", {"Reshape", "", 17, {}},
      [] { std::vector<Tensor> t; t.push_back(Rand({2, 3, 4}, 57)); t.push_back(testing::MakeInt64({2}, {6, -1})); return t; }(), {1});
  return v;
}

// Runs without a device: the case table itself is valid (every case runs on the CPU reference), so
// a GPU run fails only for the CUDA side.
TEST(CudaCrossBackendCases, EveryCaseRunsOnTheCpu) {
  for (const OpCase& c : Cases()) {
    SCOPED_TRACE(c.name);
    std::vector<const Tensor*> ptrs;
    for (const Tensor& t : c.inputs) ptrs.push_back(t.dtype() == DataType::kUndefined ? nullptr : &t);
    testing::RunOptions ro;
    ro.constant_inputs = c.constant_inputs;
    StatusOr<std::vector<Tensor>> cpu = testing::RunNode(c.spec, ptrs, ro);
    ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
    ASSERT_FALSE(cpu->empty());
    EXPECT_GT((*cpu)[0].num_elements(), 0);
    EXPECT_TRUE(cuda::CudaSupportsOp(c.spec.domain, c.spec.op_type));
    // The executor's step builders accept the case (checked on the host, no device needed).
    bool has_omitted = false;
    for (const Tensor& t : c.inputs) has_omitted = has_omitted || t.dtype() == DataType::kUndefined;
    if (has_omitted) continue;
    std::vector<TensorView> views;
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      if (std::find(c.constant_inputs.begin(), c.constant_inputs.end(), static_cast<int>(i)) == c.constant_inputs.end()) {
        views.push_back(c.inputs[i].view());
      }
    }
    std::shared_ptr<ir::Graph> g = OneNodeGraph(c);
    StatusOr<cuda::PlanPreview> plan = cuda::PreviewCudaSteps(*g, views);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    EXPECT_EQ(plan->steps_built, plan->device_steps);
  }
}

// Which path each padding (and broadcast) case takes, pinned by the step workspace it plans (host
// only): an asymmetric Conv pads its input into the workspace (here [2, 3, 9, 7] floats, 1,512
// bytes, aligned to 1,536); a ConvTranspose whose crop is symmetric, output_padding included, runs
// as one cuDNN call (no workspace of its own); an asymmetric one computes the uncropped
// [1, 6, 11, 6] output in the workspace (1,584 bytes, aligned to 1,792) and crops it. A MatMul
// whose batch dims broadcast both ways expands each operand in the workspace ([2, 3, 3, 4] and
// [2, 3, 4, 5] floats, 288 and 480 bytes, each aligned to 512). A GRU of 5 steps, batch 2, hidden 4
// holds its input gates [5, 2, 12] (480 -> 512), recurrent gates [2, 12] (96 -> 256) and four
// [2, 4] states (32 -> 256 each): 1,792 bytes.
TEST(CudaCrossBackendCases, WorkspacePathsArePinned) {
  const std::map<std::string, size_t> expected = {{"conv3x3_bias", 0},
                                                  {"conv_asymmetric_pads", 1536},
                                                  {"convtranspose_k2_s2_bias", 0},
                                                  {"convtranspose_pads_output_padding", 0},
                                                  {"convtranspose_asymmetric_grouped", 1792},
                                                  {"matmul_batch_broadcast_both", 1024},
                                                  {"gru_forward_linear_before_reset", 1792}};
  size_t seen = 0;
  for (const OpCase& c : Cases()) {
    auto it = expected.find(c.name);
    if (it == expected.end()) continue;
    SCOPED_TRACE(c.name);
    std::vector<TensorView> views;
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      if (std::find(c.constant_inputs.begin(), c.constant_inputs.end(), static_cast<int>(i)) == c.constant_inputs.end()) {
        views.push_back(c.inputs[i].view());
      }
    }
    StatusOr<cuda::PlanPreview> plan = cuda::PreviewCudaSteps(*OneNodeGraph(c), views);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    EXPECT_EQ(plan->step_workspace_bytes, it->second);
    ++seen;
  }
  EXPECT_EQ(seen, expected.size());
}

TEST(CudaCrossBackend, EveryOperatorMatchesTheCpu) {
  REQUIRE_GPU();
  for (const OpCase& c : Cases()) {
    bool has_omitted = false;
    for (const Tensor& t : c.inputs) has_omitted = has_omitted || t.dtype() == DataType::kUndefined;
    if (has_omitted) continue;  // covered by the test below
    CheckCase(c, false);
    CheckCase(c, true);
  }
}

TEST(CudaCrossBackend, ResizeWithOmittedInputsMatchesTheCpu) {
  REQUIRE_GPU();
  for (const OpCase& c : Cases()) {
    if (c.spec.op_type != "Resize") continue;
    SCOPED_TRACE(c.name);
    // Build both sides with the omitted inputs as nullptr.
    std::vector<const Tensor*> ptrs;
    for (const Tensor& t : c.inputs) ptrs.push_back(t.dtype() == DataType::kUndefined ? nullptr : &t);
    testing::RunOptions ro;
    ro.constant_inputs = c.constant_inputs;
    auto cpu = testing::RunNode(c.spec, ptrs, ro);
    ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
    auto g = std::make_shared<ir::Graph>();
    std::vector<ir::Value*> in;
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      if (ptrs[i] == nullptr) {
        in.push_back(nullptr);
        continue;
      }
      ir::Value* v = g->AddValue("in" + std::to_string(i), c.inputs[i].dtype());
      if (i == 0) {
        v->is_graph_input = true;
        g->inputs().push_back(v);
      } else {
        v->constant = std::make_shared<const Tensor>(c.inputs[i].Clone().value());
      }
      in.push_back(v);
    }
    ir::Value* y = g->AddValue("y");
    ir::Node* n = g->AddNode("Resize", in, {y}, "node");
    n->opset = 17;
    n->attrs = c.spec.attrs;
    y->is_graph_output = true;
    g->outputs().push_back(y);
    auto ex = cuda::CudaExecutor::Create(g, {});
    ASSERT_TRUE(ex.ok()) << ex.status().ToString();
    auto gpu = (*ex)->Run({c.inputs[0].view()});
    ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
    ASSERT_EQ((*gpu)[0].shape(), (*cpu)[0].shape());
    EXPECT_LE(NormalizedError((*gpu)[0], (*cpu)[0]), 1e-5);
  }
}

TEST(CudaCrossBackend, GatherOutOfRangeIsAnErrorNotACrash) {
  REQUIRE_GPU();
  OpCase c;
  c.spec = {"Gather", "", 17, {{"axis", AttrInt(0)}}};
  c.inputs.push_back(Rand({4, 2}, 60));
  c.inputs.push_back(testing::MakeInt64({1}, {0}));
  auto ex = cuda::CudaExecutor::Create(OneNodeGraph(c), {});
  ASSERT_TRUE(ex.ok()) << ex.status().ToString();
  Tensor bad = testing::MakeInt64({1}, {7});
  auto out = (*ex)->Run({c.inputs[0].view(), bad.view()});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << out.status().ToString();
}

// --- 16-bit and TF32 math through the runners directly -------------------------------------------

class DeviceMem {
 public:
  DeviceMem() : mr_(CreateCudaDeviceResource(0).value()) {}
  void* Upload(const std::vector<float>& host, DataType as, StreamView s) {
    void* f = Alloc(host.size() * 4);
    EXPECT_TRUE(cuda::CopyHostToDeviceAsync(f, host.data(), host.size() * 4, s).ok());
    if (as == DataType::kFloat32) return f;
    void* h = Alloc(host.size() * 2);
    EXPECT_TRUE(cuda::ConvertFromFloat(static_cast<float*>(f), h, as, static_cast<int64_t>(host.size()), s).ok());
    return h;
  }
  std::vector<float> Download(const void* d, DataType as, size_t n, const cuda::Stream& stream) {
    StreamView s = stream.view();
    const void* f = d;
    if (as != DataType::kFloat32) {
      void* tmp = Alloc(n * 4);
      EXPECT_TRUE(cuda::ConvertToFloat(d, as, static_cast<float*>(tmp), static_cast<int64_t>(n), s).ok());
      f = tmp;
    }
    std::vector<float> out(n);
    EXPECT_TRUE(cuda::CopyDeviceToHostAsync(out.data(), f, n * 4, s).ok());
    EXPECT_TRUE(stream.Synchronize().ok());
    return out;
  }
  void* Alloc(size_t bytes) {
    bufs_.push_back(Buffer::Allocate(mr_.get(), std::max<size_t>(bytes, 1)).value());
    return bufs_.back().data();
  }

 private:
  std::unique_ptr<MemoryResource> mr_;
  std::vector<Buffer> bufs_;
};

std::vector<float> HostRand(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

double NormErr(const std::vector<float>& got, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (std::isnan(got[i])) return INFINITY;
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / den);
}

TEST(CudaCrossBackend, MatmulRunnerPrecisionsAndEpilogues) {
  REQUIRE_GPU();
  auto stream = cuda::Stream::Create({0, 0});
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  StreamView s = (*stream)->view();
  auto runner = cuda::MatmulRunner::Create({});
  ASSERT_TRUE(runner.ok()) << runner.status().ToString();
  const int64_t m = 33, n = 64, k = 96;
  std::vector<float> a = HostRand(m * k, 1), b = HostRand(k * n, 2), bias = HostRand(n, 3);
  std::vector<float> ref(m * n);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = bias[j];
      for (int64_t p = 0; p < k; ++p) acc += static_cast<double>(a[i * k + p]) * b[p * n + j];
      ref[i * n + j] = acc > 0 ? static_cast<float>(acc) : 0.f;
    }
  }
  struct Mode {
    cuda::MathMode math;
    DataType storage;
    double tol;
  };
  for (Mode mode : {Mode{cuda::MathMode::kFloat32, DataType::kFloat32, 1e-5}, Mode{cuda::MathMode::kTF32, DataType::kFloat32, 1e-3},
                    Mode{cuda::MathMode::kFloat16, DataType::kFloat16, 1e-2},
                    Mode{cuda::MathMode::kBFloat16, DataType::kBFloat16, 1e-2}}) {
    SCOPED_TRACE(static_cast<int>(mode.math));
    DeviceMem mem;
    cuda::MatmulDesc d;
    d.m = m, d.n = n, d.k = k, d.has_bias = true, d.epilogue = cuda::Epilogue::kRelu, d.math = mode.math;
    void* da = mem.Upload(a, mode.storage, s);
    void* db = mem.Upload(b, mode.storage, s);
    void* dbias = mem.Upload(bias, mode.storage, s);
    void* dd = mem.Alloc(m * n * 4);
    auto ws = (*runner)->WorkspaceBytes(d);
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    void* w = mem.Alloc(*ws);
    Status st = (*runner)->Run(d, da, db, dbias, dd, w, *ws, s);
    ASSERT_TRUE(st.ok()) << st.ToString();
    std::vector<float> got = mem.Download(dd, mode.storage, m * n, **stream);
    ASSERT_TRUE((*stream)->Synchronize().ok());
    EXPECT_LE(NormErr(got, ref), mode.tol);
  }
  EXPECT_EQ((*runner)->cached_algorithms(), 4u);  // one per distinct desc, chosen once
  cuda::MatmulDesc again;
  again.m = m, again.n = n, again.k = k, again.has_bias = true, again.epilogue = cuda::Epilogue::kRelu;
  ASSERT_TRUE((*runner)->WorkspaceBytes(again).ok());
  EXPECT_EQ((*runner)->cached_algorithms(), 4u);
}

TEST(CudaCrossBackend, ConvRunnerPrecisions) {
  REQUIRE_GPU();
  auto stream = cuda::Stream::Create({0, 0});
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  StreamView s = (*stream)->view();
  const int64_t N = 2, C = 8, H = 10, W = 10, K = 16;
  std::vector<float> x = HostRand(N * C * H * W, 4), w = HostRand(K * C * 9, 5), bias = HostRand(K, 6);
  std::vector<float> ref(N * K * H * W);
  for (int64_t nn = 0; nn < N; ++nn)
    for (int64_t kk = 0; kk < K; ++kk)
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < W; ++j) {
          double acc = bias[kk];
          for (int64_t c = 0; c < C; ++c)
            for (int64_t r = 0; r < 3; ++r)
              for (int64_t q = 0; q < 3; ++q) {
                int64_t ii = i + r - 1, jj = j + q - 1;
                if (ii < 0 || ii >= H || jj < 0 || jj >= W) continue;
                acc += static_cast<double>(x[((nn * C + c) * H + ii) * W + jj]) * w[((kk * C + c) * 3 + r) * 3 + q];
              }
          ref[((nn * K + kk) * H + i) * W + j] = acc > 0 ? static_cast<float>(acc) : 0.f;
        }
  struct Mode {
    cuda::MathMode math;
    DataType storage;
    double tol;
  };
  for (Mode mode : {Mode{cuda::MathMode::kFloat32, DataType::kFloat32, 1e-5}, Mode{cuda::MathMode::kTF32, DataType::kFloat32, 1e-3},
                    Mode{cuda::MathMode::kFloat16, DataType::kFloat16, 1e-2},
                    Mode{cuda::MathMode::kBFloat16, DataType::kBFloat16, 1e-2}}) {
    SCOPED_TRACE(static_cast<int>(mode.math));
    cuda::ConvDesc d;
    d.n = N, d.c = C, d.in_h = H, d.in_w = W, d.k = K, d.kernel_h = 3, d.kernel_w = 3;
    d.pad_top = d.pad_left = d.pad_bottom = d.pad_right = 1;
    d.has_bias = true, d.epilogue = cuda::Epilogue::kRelu, d.math = mode.math;
    auto conv = cuda::ConvRunner::Create(d);
    ASSERT_TRUE(conv.ok()) << conv.status().ToString();
    EXPECT_EQ((*conv)->out_h(), H);
    DeviceMem mem;
    void* dx = mem.Upload(x, mode.storage, s);
    void* dw = mem.Upload(w, mode.storage, s);
    void* db = mem.Upload(bias, mode.storage, s);
    void* dy = mem.Alloc(ref.size() * 4);
    void* ws = mem.Alloc((*conv)->workspace_bytes());
    Status st = (*conv)->Run(dx, dw, db, nullptr, dy, ws, s);
    ASSERT_TRUE(st.ok()) << st.ToString();
    std::vector<float> got = mem.Download(dy, mode.storage, ref.size(), **stream);
    ASSERT_TRUE((*stream)->Synchronize().ok());
    EXPECT_LE(NormErr(got, ref), mode.tol);
  }
}

// The CUDA backend's LoadLibraries: the warm-up runs (a convolution and a product in every math
// mode, some own kernels), frees its buffers, and a second one loads nothing new, so the engine's
// reading of the drop in free memory is the libraries' reserve (printed for the GPU check's log).
TEST(CudaDevice, LibraryWarmUpRunsAndItsReserveIsMeasured) {
  REQUIRE_GPU();
  auto dev = CreateCudaComputeDevice({.device_index = 0});
  ASSERT_TRUE(dev.ok()) << dev.status().ToString();
  const uint64_t before = (*dev)->memory_free_bytes();
  ASSERT_GT(before, 0u);
  Status first = cuda::WarmUpLibraries(0);
  ASSERT_TRUE(first.ok()) << first.ToString();
  const uint64_t after = (*dev)->memory_free_bytes();
  EXPECT_LE(after, before);
  Status second = cuda::WarmUpLibraries(0);
  ASSERT_TRUE(second.ok()) << second.ToString();
  const uint64_t again = (*dev)->memory_free_bytes();
  EXPECT_LE(after - std::min(after, again), uint64_t{8} << 20) << "a second warm-up took more device memory";
  std::printf("library reserve measured: %.1f MiB\n", static_cast<double>(before - after) / (1 << 20));
}

TEST(CudaDevice, StreamsEventsCopiesAndBandwidth) {
  REQUIRE_GPU();
  auto range = cuda::GetStreamPriorityRange(0);
  ASSERT_TRUE(range.ok()) << range.status().ToString();
  auto urgent = cuda::Stream::Create({0, 0});
  auto background = cuda::Stream::Create({0, 100});
  ASSERT_TRUE(urgent.ok() && background.ok());
  EXPECT_EQ((*urgent)->cuda_priority(), range->greatest);
  EXPECT_EQ((*background)->cuda_priority(), range->least);
  auto start = cuda::Event::Create(0);
  auto stop = cuda::Event::Create(0);
  ASSERT_TRUE(start.ok() && stop.ok());
  auto mr = CreateCudaDeviceResource(0);
  ASSERT_TRUE(mr.ok());
  std::vector<uint8_t> src(1 << 20), dst(1 << 20, 0);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint8_t>(i * 31 + 7);
  auto buf = Buffer::Allocate(mr->get(), src.size());
  ASSERT_TRUE(buf.ok());
  StreamView s = (*urgent)->view();
  ASSERT_TRUE((*start)->Record(s).ok());
  ASSERT_TRUE(cuda::CopyHostToDeviceAsync(buf->data(), src.data(), src.size(), s).ok());
  ASSERT_TRUE(cuda::CopyDeviceToHostAsync(dst.data(), buf->data(), dst.size(), s).ok());
  ASSERT_TRUE((*stop)->Record(s).ok());
  ASSERT_TRUE((*stop)->Synchronize().ok());
  EXPECT_EQ(src, dst);
  auto ms = (*stop)->ElapsedMsSince(**start);
  ASSERT_TRUE(ms.ok()) << ms.status().ToString();
  EXPECT_GT(*ms, 0.f);
  auto bw = cuda::MeasureHostToDeviceBandwidth(0, 16 << 20, 3);
  ASSERT_TRUE(bw.ok()) << bw.status().ToString();
  EXPECT_GT(*bw, 1e9) << "below 1 GB/s host-to-device";
}

// BERT-style integer inputs within their ranges (token types 0/1, mask all ones, ids < 1000).
Tensor ModelInput(const TensorInfo& info, const Shape& shape, uint32_t seed) {
  if (info.dtype == DataType::kFloat32) return testing::RandomFloat(shape, seed);
  std::vector<int64_t> ids(static_cast<size_t>(NumElements(shape)));
  for (size_t i = 0; i < ids.size(); ++i) {
    if (info.name.find("token_type") != std::string::npos) ids[i] = static_cast<int64_t>(i % 2);
    else if (info.name.find("mask") != std::string::npos) ids[i] = 1;
    else ids[i] = static_cast<int64_t>((i * 37 + seed) % 1000);
  }
  return Tensor::FromVector<int64_t>(DataType::kInt64, shape, ids).value();
}

// Every benchmark and built-in model that is present: CUDA executor against the CPU runtime, FP32
// (TF32 off: 1e-5), TF32, and 16-bit plans (FP16 / BF16 convolutions and products: 1e-2, issue 14's
// tolerance), at batch 2, three runs each (plain, captured, replayed), the graph capture asserted. TF32 gets 2e-3 for whole models: one TF32 product lands near 3e-4, and through
// EfficientNet-B0's 80 convolutions the H200 run measured 1.06e-3 (ResNet-50 5e-4, BERT 3.7e-4).
TEST(CudaCrossBackend, ModelsMatchTheCpu) {
  REQUIRE_GPU();
  const char* dir = std::getenv("GPUHIVE_MODELS_DIR");
  std::filesystem::path root = dir != nullptr ? std::filesystem::path(dir) : std::filesystem::path(GPUHIVE_SOURCE_DIR) / "models" / "generated";
  const char* repo_env = std::getenv("GPUHIVE_REPOSITORY_DIR");
  std::filesystem::path repo = repo_env != nullptr ? std::filesystem::path(repo_env)
                                                   : std::filesystem::path(GPUHIVE_SOURCE_DIR) / "models" / "repository";
  std::vector<std::pair<std::string, std::filesystem::path>> models;
  for (const char* name : {"mobilenet_v3_large", "efficientnet_b0", "resnet50", "lraspp_mobilenet_v3", "bert_base", "audio_lstm"}) {
    models.emplace_back(name, root / (std::string(name) + ".onnx"));
  }
  // The built-in repository's models that are not benchmark models under another name.
  for (const char* name : {"text_detector", "tiny_mlp"}) {
    models.emplace_back(std::string("repository/") + name, repo / name / "1" / "model.onnx");
  }
  int ran = 0;
  for (const auto& [model_name, p] : models) {
    const char* name = model_name.c_str();
    if (!std::filesystem::exists(p)) continue;
    SCOPED_TRACE(name);
    auto cpu_model = ImportOnnxFile(p.string());
    ASSERT_TRUE(cpu_model.ok()) << cpu_model.status().ToString();
    CompileOptions co;
    co.num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    auto compiled = CompiledModel::Create(std::move(*cpu_model), co);
    ASSERT_TRUE(compiled.ok()) << compiled.status().ToString();
    std::vector<Tensor> inputs;
    std::vector<TensorView> views;
    for (const TensorInfo& info : (*compiled)->inputs()) {
      Shape shape;
      for (size_t d = 0; d < info.shape.size(); ++d) shape.push_back(info.shape[d] < 0 ? (d == 0 ? 2 : 64) : info.shape[d]);
      inputs.push_back(ModelInput(info, shape, 7));
    }
    for (const Tensor& t : inputs) views.push_back(t.view());
    ExecutionContext ctx({});
    auto ref = (*compiled)->Run(ctx, views);
    ASSERT_TRUE(ref.ok()) << ref.status().ToString();
    const auto math_name = [](cuda::MathMode m) {
      return m == cuda::MathMode::kTF32 ? "tf32" : m == cuda::MathMode::kFloat16 ? "fp16"
                                                 : m == cuda::MathMode::kBFloat16 ? "bf16" : "fp32";
    };
    for (auto [math, tol] : {std::pair{cuda::MathMode::kFloat32, 1e-5}, std::pair{cuda::MathMode::kTF32, 2e-3},
                             std::pair{cuda::MathMode::kFloat16, 1e-2}, std::pair{cuda::MathMode::kBFloat16, 1e-2}}) {
      SCOPED_TRACE(math_name(math));
      auto gpu_model = ImportOnnxFile(p.string());
      ASSERT_TRUE(gpu_model.ok());
      cuda::ExecutorOptions eo;
      eo.math = math;
      auto ex = cuda::CreateCudaExecutorForModel(std::move(*gpu_model), eo);
      if (!ex.ok() && ex.status().code() == StatusCode::kUnimplemented) {
        ADD_FAILURE() << name << " falls back to the CPU: " << ex.status().ToString();
        continue;
      }
      ASSERT_TRUE(ex.ok()) << ex.status().ToString();
      for (int run = 0; run < 3; ++run) {
        auto got = (*ex)->Run(views);
        ASSERT_TRUE(got.ok()) << got.status().ToString();
        ASSERT_EQ(got->size(), ref->size());
        for (size_t o = 0; o < got->size(); ++o) {
          double err = NormalizedError((*got)[o], (*ref)[o]);
          EXPECT_LE(err, tol) << "output " << o << " run " << run;
          if (run == 0) std::printf("[ model ] %s %s output %zu: normalized error %.3e\n", name, math_name(math), o, err);
        }
      }
      cuda::ExecutorStats st = (*ex)->stats();
      EXPECT_EQ(st.graph_captures, 1u);
      EXPECT_EQ(st.graph_capture_failures, 0u);
    }
    ++ran;
  }
  if (ran == 0) GTEST_SKIP() << "no benchmark model under " << root << " (set GPUHIVE_MODELS_DIR)";
}

}  // namespace
}  // namespace gpuhive
