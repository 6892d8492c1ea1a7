// Runs ONNX's backend node tests (/usr/share/libonnx-testdata/data/node/test_<op>*) for the
// tensor_*.cc operators straight through the kernel harness: the single node of model.onnx with
// its attributes and opset, inputs from test_data_set_*/input_*.pb, outputs compared with
// output_*.pb at ONNX's tolerances. Skipped where the test data is not installed.
#include <filesystem>

#include "gpuhive/onnx_import.h"
#include "tensor_test_util.h"

namespace gpuhive::testing::tensor_ops {
namespace {
namespace fs = std::filesystem;

const char* kNodeTestRoot = "/usr/share/libonnx-testdata/data/node";

// Prefixes of the test directories this kernel family owns.
const std::vector<std::string> kPrefixes = {
    "test_reshape", "test_transpose", "test_slice", "test_gather", "test_scatter", "test_resize",
    "test_upsample", "test_pad", "test_constant_pad", "test_edge_pad", "test_reflect_pad",
    "test_concat", "test_split", "test_squeeze", "test_unsqueeze", "test_expand", "test_tile",
    "test_onehot", "test_nonzero", "test_range", "test_shape", "test_size", "test_depthtospace",
    "test_spacetodepth", "test_trilu", "test_tril", "test_triu", "test_compress", "test_nonmaxsuppression",
    "test_flatten", "test_identity", "test_dropout", "test_constantofshape", "test_constant",
    "test_eyelike", "test_reversesequence", "test_unique", "test_gridsample", "test_roialign",
};

struct Outcome {
  bool skipped = false;
  std::string failure;  // empty: passed
};

std::vector<fs::path> Sorted(const fs::path& dir, const std::string& prefix) {
  std::vector<std::pair<int, fs::path>> found;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(prefix, 0) == 0) found.emplace_back(std::atoi(n.c_str() + prefix.size()), e.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

Outcome RunDir(const fs::path& dir) {
  auto model = ImportOnnxFile((dir / "model.onnx").string());
  if (!model.ok()) return {true, "import: " + model.status().ToString()};
  const ir::Graph& g = *(*model)->graph;
  if (g.nodes().size() != 1) return {true, "not a single-node model"};
  const ir::Node& node = *g.nodes()[0];
  NodeSpec spec;
  spec.op_type = node.op_type;
  spec.domain = node.domain;
  spec.opset = node.opset;
  spec.attrs = node.attrs;
  spec.num_outputs = static_cast<int>(node.outputs.size());
  if (!node.domain.empty() || !CpuKernelRegistry().Supports(node.domain, node.op_type, node.opset)) {
    return {true, "operator not registered"};
  }
  for (const fs::path& set : Sorted(dir, "test_data_set_")) {
    std::map<std::string, Tensor> feeds;
    std::vector<Tensor> expected;
    const auto ins = Sorted(set, "input_"), outs = Sorted(set, "output_");
    // Graph inputs without initializers, in order, match input_<k>.pb.
    std::vector<const ir::Value*> graph_inputs;
    for (const ir::Value* v : g.inputs()) {
      if (!v->is_constant()) graph_inputs.push_back(v);
    }
    for (size_t k = 0; k < ins.size(); ++k) {
      auto t = ReadTensorProtoFile(ins[k].string());
      if (!t.ok()) return {true, "input: " + t.status().ToString()};
      const std::string name = k < graph_inputs.size() ? graph_inputs[k]->name : t->first;
      feeds[name] = std::move(t->second);
    }
    for (const fs::path& p : outs) {
      auto t = ReadTensorProtoFile(p.string());
      if (!t.ok()) return {true, "output: " + t.status().ToString()};
      expected.push_back(std::move(t->second));
    }
    std::vector<const Tensor*> inputs;
    for (const ir::Value* v : node.inputs) {
      if (v == nullptr) {
        inputs.push_back(nullptr);
      } else if (v->is_constant()) {
        inputs.push_back(v->constant.get());
      } else {
        auto it = feeds.find(v->name);
        if (it == feeds.end()) return {true, "unbound input " + v->name};
        inputs.push_back(&it->second);
      }
    }
    auto result = RunNode(spec, inputs);
    if (!result.ok()) return {false, result.status().ToString()};
    // Graph outputs name node outputs; output_<k>.pb follows graph output order.
    for (size_t k = 0; k < expected.size() && k < g.outputs().size(); ++k) {
      size_t slot = 0;
      while (slot < node.outputs.size() && node.outputs[slot] != g.outputs()[k]) ++slot;
      if (slot >= result->size()) return {false, "graph output is not a node output"};
      auto near = TensorNear((*result)[slot], expected[k], 1e-5, 1e-3);
      if (!near) return {false, "output " + std::to_string(k) + ": " + near.message()};
    }
  }
  return {};
}

TEST(OnnxNodeTests, TensorOperators) {
  if (!fs::exists(kNodeTestRoot)) GTEST_SKIP() << "ONNX backend test data not installed";
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(kNodeTestRoot)) {
    const std::string n = e.path().filename().string();
    if (n.find("_expanded") != std::string::npos) continue;
    for (const std::string& p : kPrefixes) {
      if (n.rfind(p, 0) == 0) {
        dirs.push_back(e.path());
        break;
      }
    }
  }
  std::sort(dirs.begin(), dirs.end());
  int passed = 0, skipped = 0;
  for (const fs::path& d : dirs) {
    Outcome o = RunDir(d);
    if (o.skipped) {
      ++skipped;
      std::printf("skipped %s: %s\n", d.filename().c_str(), o.failure.c_str());
      continue;
    }
    if (o.failure.empty()) {
      ++passed;
    } else {
      ADD_FAILURE() << d.filename().string() << ": " << o.failure;
    }
  }
  std::printf("onnx node tests: %d passed, %d skipped (other families or unsupported), %zu dirs\n",
              passed, skipped, dirs.size());
  EXPECT_GT(passed, 100);
}

}  // namespace
}  // namespace gpuhive::testing::tensor_ops
