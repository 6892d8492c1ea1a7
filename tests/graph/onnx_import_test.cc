#include "gpuhive/onnx_import.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "onnx_test_util.h"

namespace gpuhive {
namespace {
using namespace gpuhive::testing;  // NOLINT
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("gh_import_" + std::to_string(::getpid()) + "_" +
                                         std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

void WriteFile(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// x[2,3] + w (initializer) -> y
onnx::ModelProto AddModel() {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {int64_t{2}, int64_t{3}});
  AddFloatInit(g, "w", {3}, {1.f, 2.f, 3.f});
  AddNode(g, "Add", {"x", "w"}, {"y"});
  AddOutput(g, "y", onnx::TensorProto::FLOAT, {int64_t{2}, int64_t{3}});
  return m;
}

// A Conv with strides [0, 2] killed the importer with SIGFPE inside libonnx's shape inference
// (fuzz/onnx_import_fuzzer.cc found it): it is refused with the node and attribute named, in the
// main graph and inside a subgraph, for every attribute shape inference divides by.
onnx::ModelProto ConvModel(const std::string& attr, std::vector<int64_t> values) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {int64_t{1}, int64_t{1}, int64_t{7}, int64_t{5}});
  AddFloatInit(g, "W", {1, 1, 3, 3}, std::vector<float>(9, 1.f));
  auto* n = AddNode(g, "Conv", {"x", "W"}, {"y"});
  n->set_name("conv0");
  AddIntsAttr(n, "kernel_shape", {3, 3});
  if (attr == "group") {
    AddIntAttr(n, attr, values[0]);
  } else if (attr != "kernel_shape") {
    AddIntsAttr(n, attr, values);
  } else {
    n->mutable_attribute(0)->clear_ints();
    for (int64_t v : values) n->mutable_attribute(0)->add_ints(v);
  }
  AddOutput(g, "y", onnx::TensorProto::FLOAT, {});
  return m;
}

TEST(OnnxImport, AttributesShapeInferenceDividesByMustBePositive) {
  for (const auto& [attr, values] : std::vector<std::pair<std::string, std::vector<int64_t>>>{
           {"strides", {0, 2}}, {"strides", {1, -1}}, {"dilations", {0, 1}}, {"kernel_shape", {0, 3}},
           {"group", {0}}}) {
    auto r = ImportOnnxBytes(Serialize(ConvModel(attr, values)));
    ASSERT_FALSE(r.ok()) << attr;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << attr;
    EXPECT_NE(r.status().message().find("node 'conv0' (Conv): attribute '" + attr + "' must be positive"),
              std::string::npos) << r.status().message();
  }
  EXPECT_TRUE(ImportOnnxBytes(Serialize(ConvModel("strides", {1, 2}))).ok());

  // The same Conv inside an If's branch.
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "c", onnx::TensorProto::BOOL, {int64_t{1}});
  auto* if_node = AddNode(g, "If", {"c"}, {"y"});
  for (const char* branch : {"then_branch", "else_branch"}) {
    auto inner = ConvModel("strides", {2, 0});
    auto* sub = AddGraphAttr(if_node, branch);
    *sub = inner.graph();
    sub->clear_input();
  }
  AddOutput(g, "y", onnx::TensorProto::FLOAT, {});
  auto r = ImportOnnxBytes(Serialize(m));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("attribute 'strides' must be positive"), std::string::npos)
      << r.status().message();
}

TEST(OnnxImport, SimpleGraphStructure) {
  auto model = ImportOnnxBytes(Serialize(AddModel()));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const ir::Graph& g = *(*model)->graph;
  EXPECT_EQ((*model)->opsets.at(""), 13);
  EXPECT_EQ((*model)->producer_name, "gpuhive-test");
  ASSERT_EQ(g.nodes().size(), 1u);
  const ir::Node& n = *g.nodes()[0];
  EXPECT_EQ(n.op_type, "Add");
  EXPECT_EQ(n.name, "Add_0");
  EXPECT_EQ(n.opset, 13);
  ASSERT_EQ(g.inputs().size(), 1u);
  EXPECT_EQ(g.inputs()[0]->name, "x");
  EXPECT_TRUE(g.inputs()[0]->is_graph_input);
  EXPECT_EQ(g.inputs()[0]->dtype, DataType::kFloat32);
  ASSERT_TRUE(g.inputs()[0]->shape.has_value());
  EXPECT_EQ((*g.inputs()[0]->shape)[1].value, 3);
  ir::Value* w = g.FindValue("w");
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->is_constant());
  EXPECT_EQ(w->constant->as<float>()[2], 3.f);
  EXPECT_EQ(n.inputs[1], w);
  ASSERT_EQ(g.outputs().size(), 1u);
  EXPECT_EQ(g.outputs()[0]->producer, &n);
  EXPECT_TRUE(g.outputs()[0]->is_graph_output);
}

TEST(OnnxImport, DomainAliasAndMissingDomain) {
  auto m = AddModel();
  m.mutable_opset_import(0)->set_domain("ai.onnx");
  m.mutable_graph()->mutable_node(0)->set_domain("ai.onnx");
  auto model = ImportOnnxBytes(Serialize(m));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ((*model)->graph->nodes()[0]->domain, "");
  EXPECT_EQ((*model)->opsets.count(""), 1u);

  m.mutable_graph()->mutable_node(0)->set_domain("com.example");
  auto bad = ImportOnnxBytes(Serialize(m));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

TEST(OnnxImport, OpsetRange) {
  for (int opset : {6, 18}) {
    auto r = ImportOnnxBytes(Serialize([&] {
      auto m = AddModel();
      m.mutable_opset_import(0)->set_version(opset);
      return m;
    }()));
    ASSERT_FALSE(r.ok()) << opset;
    EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  }
  for (int opset : {7, 17}) {
    auto m = AddModel();
    m.mutable_opset_import(0)->set_version(opset);
    EXPECT_TRUE(ImportOnnxBytes(Serialize(m)).ok()) << opset;
  }
}

template <typename T>
std::vector<T> Values(const Tensor& t) {
  return std::vector<T>(t.as<T>(), t.as<T>() + t.num_elements());
}

TEST(OnnxImport, InitializerStorageKinds) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  auto add = [&](const std::string& name, int type) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(type);
    t->add_dims(3);
    AddOutputName(g, name);
    return t;
  };
  auto* f = add("f32", onnx::TensorProto::FLOAT);
  for (float v : {1.5f, -2.f, 3.25f}) f->add_float_data(v);
  for (auto [name, type] : std::vector<std::pair<std::string, int>>{{"i8", onnx::TensorProto::INT8},
                                                                     {"i16", onnx::TensorProto::INT16},
                                                                     {"u8", onnx::TensorProto::UINT8},
                                                                     {"u16", onnx::TensorProto::UINT16},
                                                                     {"i32", onnx::TensorProto::INT32},
                                                                     {"b", onnx::TensorProto::BOOL}}) {
    auto* t = add(name, type);
    for (int v : {0, 1, 100}) t->add_int32_data(v);
  }
  auto* h = add("f16", onnx::TensorProto::FLOAT16);
  for (int v : {0x3c00, 0xc000, 0x7bff}) h->add_int32_data(v);  // 1, -2, 65504
  auto* bf = add("bf16", onnx::TensorProto::BFLOAT16);
  for (int v : {0x3f80, 0x4000, 0xbf80}) bf->add_int32_data(v);
  auto* i64 = add("i64", onnx::TensorProto::INT64);
  for (int64_t v : {int64_t{-1}, int64_t{1} << 40, int64_t{7}}) i64->add_int64_data(v);
  auto* d = add("f64", onnx::TensorProto::DOUBLE);
  for (double v : {0.125, -1e300, 2.0}) d->add_double_data(v);
  auto* u32 = add("u32", onnx::TensorProto::UINT32);
  for (uint64_t v : {1ull, 4000000000ull, 3ull}) u32->add_uint64_data(v);
  auto* u64 = add("u64", onnx::TensorProto::UINT64);
  for (uint64_t v : {1ull, 1ull << 63, 3ull}) u64->add_uint64_data(v);
  auto* raw = add("raw_i32", onnx::TensorProto::INT32);
  std::vector<int32_t> rv = {5, -6, 7};
  raw->set_raw_data(rv.data(), rv.size() * 4);

  auto model = ImportOnnxBytes(Serialize(m));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const ir::Graph& gr = *(*model)->graph;
  auto c = [&](const std::string& n) -> const Tensor& { return *gr.FindValue(n)->constant; };
  EXPECT_EQ(Values<float>(c("f32")), (std::vector<float>{1.5f, -2.f, 3.25f}));
  EXPECT_EQ(Values<int8_t>(c("i8")), (std::vector<int8_t>{0, 1, 100}));
  EXPECT_EQ(Values<int16_t>(c("i16")), (std::vector<int16_t>{0, 1, 100}));
  EXPECT_EQ(Values<uint8_t>(c("u8")), (std::vector<uint8_t>{0, 1, 100}));
  EXPECT_EQ(Values<uint16_t>(c("u16")), (std::vector<uint16_t>{0, 1, 100}));
  EXPECT_EQ(Values<int32_t>(c("i32")), (std::vector<int32_t>{0, 1, 100}));
  EXPECT_EQ(Values<uint8_t>(c("b")), (std::vector<uint8_t>{0, 1, 1}));
  EXPECT_EQ(c("b").dtype(), DataType::kBool);
  EXPECT_EQ(Values<uint16_t>(c("f16")), (std::vector<uint16_t>{0x3c00, 0xc000, 0x7bff}));
  EXPECT_EQ(c("f16").dtype(), DataType::kFloat16);
  EXPECT_EQ(Values<uint16_t>(c("bf16")), (std::vector<uint16_t>{0x3f80, 0x4000, 0xbf80}));
  EXPECT_EQ(Values<int64_t>(c("i64")), (std::vector<int64_t>{-1, int64_t{1} << 40, 7}));
  EXPECT_EQ(Values<double>(c("f64")), (std::vector<double>{0.125, -1e300, 2.0}));
  EXPECT_EQ(Values<uint32_t>(c("u32")), (std::vector<uint32_t>{1u, 4000000000u, 3u}));
  EXPECT_EQ(Values<uint64_t>(c("u64")), (std::vector<uint64_t>{1ull, 1ull << 63, 3ull}));
  EXPECT_EQ(Values<int32_t>(c("raw_i32")), rv);
  EXPECT_EQ(gr.FindValue("i64")->dtype, DataType::kInt64);
  ASSERT_TRUE(gr.FindValue("i64")->shape.has_value());
  EXPECT_EQ((*gr.FindValue("i64")->shape)[0].value, 3);
}

TEST(OnnxImport, InitializerWithWrongAmountOfDataIsRefused) {
  auto m = AddModel();
  m.mutable_graph()->mutable_initializer(0)->set_raw_data(std::string(8, '\0'));  // needs 12
  auto r = ImportOnnxBytes(Serialize(m));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("'w'"), std::string::npos) << r.status().message();

  auto m2 = AddModel();
  auto* t = m2.mutable_graph()->mutable_initializer(0);
  t->clear_raw_data();
  t->add_float_data(1.f);
  EXPECT_EQ(ImportOnnxBytes(Serialize(m2)).status().code(), StatusCode::kInvalidArgument);

  auto m3 = AddModel();
  m3.mutable_graph()->mutable_initializer(0)->set_dims(0, -3);
  EXPECT_EQ(ImportOnnxBytes(Serialize(m3)).status().code(), StatusCode::kInvalidArgument);

  auto m4 = AddModel();  // a shape whose size overflows must not allocate
  auto* huge = m4.mutable_graph()->mutable_initializer(0);
  huge->set_dims(0, int64_t{1} << 40);
  huge->add_dims(int64_t{1} << 40);
  EXPECT_EQ(ImportOnnxBytes(Serialize(m4)).status().code(), StatusCode::kInvalidArgument);
}

TEST(OnnxImport, StringTensorIsUnimplementedAndNamed) {
  auto m = AddModel();
  auto* t = m.mutable_graph()->add_initializer();
  t->set_name("vocab");
  t->set_data_type(onnx::TensorProto::STRING);
  t->add_dims(1);
  t->add_string_data("hello");
  auto r = ImportOnnxBytes(Serialize(m));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(r.status().message().find("vocab"), std::string::npos) << r.status().message();
}

TEST(OnnxImport, SparseInitializerIsRefused) {
  auto m = AddModel();
  auto* s = m.mutable_graph()->add_sparse_initializer();
  s->mutable_values()->set_name("sp");
  s->mutable_values()->set_data_type(onnx::TensorProto::FLOAT);
  s->add_dims(4);
  auto r = ImportOnnxBytes(Serialize(m));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(r.status().message().find("sparse"), std::string::npos);
}

TEST(OnnxImport, ExternalData) {
  TempDir dir;
  std::vector<float> payload = {9.f, 8.f, 7.f};
  std::string blob(16, 'x');  // 16 bytes of padding, then the tensor
  blob.append(reinterpret_cast<const char*>(payload.data()), 12);
  fs::create_directories(dir.path() / "data");
  WriteFile(dir.path() / "data" / "weights.bin", blob);

  auto make = [&](const std::string& location, const std::string& offset, const std::string& length) {
    auto m = AddModel();
    auto* t = m.mutable_graph()->mutable_initializer(0);
    t->clear_raw_data();
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto kv = [&](const char* k, const std::string& v) {
      if (v.empty()) return;
      auto* e = t->add_external_data();
      e->set_key(k);
      e->set_value(v);
    };
    kv("location", location);
    kv("offset", offset);
    kv("length", length);
    WriteFile(dir.path() / "model.onnx", Serialize(m));
    return ImportOnnxFile((dir.path() / "model.onnx").string());
  };
  auto ok = make("data/weights.bin", "16", "12");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  const Tensor& w = *(*ok)->graph->FindValue("w")->constant;
  EXPECT_EQ(Values<float>(w), payload);
  EXPECT_TRUE(make("data/weights.bin", "16", "").ok());  // length defaults to the tensor's size

  EXPECT_EQ(make("../weights.bin", "0", "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(make("data/../../x.bin", "0", "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(make((dir.path() / "data/weights.bin").string(), "16", "").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(make("data/weights.bin", "20", "12").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(make("data/weights.bin", "16", "8").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(make("data/weights.bin", "abc", "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(make("data/missing.bin", "0", "").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(make("", "0", "").status().code(), StatusCode::kInvalidArgument);

  // In-memory bytes have no directory unless the caller names one.
  std::string bytes = Serialize([&] {
    auto m = AddModel();
    auto* t = m.mutable_graph()->mutable_initializer(0);
    t->clear_raw_data();
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* e = t->add_external_data();
    e->set_key("location");
    e->set_value("data/weights.bin");
    e = t->add_external_data();
    e->set_key("offset");
    e->set_value("16");
    return m;
  }());
  EXPECT_EQ(ImportOnnxBytes(bytes).status().code(), StatusCode::kInvalidArgument);
  ImportOptions opt;
  opt.base_dir = dir.path().string();
  EXPECT_TRUE(ImportOnnxBytes(bytes, opt).ok());
}

TEST(OnnxImport, ConstantNodes) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  auto constant = [&](const std::string& out, auto fill) {
    auto* n = AddNode(g, "Constant", {}, {out});
    auto* a = n->add_attribute();
    fill(a);
    AddOutputName(g, out);
  };
  constant("c_tensor", [](onnx::AttributeProto* a) {
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    a->mutable_t()->set_data_type(onnx::TensorProto::INT64);
    a->mutable_t()->add_dims(2);
    a->mutable_t()->add_int64_data(4);
    a->mutable_t()->add_int64_data(5);
  });
  constant("c_float", [](onnx::AttributeProto* a) {
    a->set_name("value_float");
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(2.5f);
  });
  constant("c_floats", [](onnx::AttributeProto* a) {
    a->set_name("value_floats");
    a->set_type(onnx::AttributeProto::FLOATS);
    a->add_floats(1.f);
    a->add_floats(-1.f);
  });
  constant("c_int", [](onnx::AttributeProto* a) {
    a->set_name("value_int");
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(-7);
  });
  constant("c_ints", [](onnx::AttributeProto* a) {
    a->set_name("value_ints");
    a->set_type(onnx::AttributeProto::INTS);
    a->add_ints(3);
  });
  auto model = ImportOnnxBytes(Serialize(m));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const ir::Graph& gr = *(*model)->graph;
  EXPECT_TRUE(gr.nodes().empty());
  EXPECT_EQ(Values<int64_t>(*gr.FindValue("c_tensor")->constant), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(gr.FindValue("c_float")->constant->shape(), Shape{});
  EXPECT_EQ(Values<float>(*gr.FindValue("c_float")->constant), std::vector<float>{2.5f});
  EXPECT_EQ(Values<float>(*gr.FindValue("c_floats")->constant), (std::vector<float>{1.f, -1.f}));
  EXPECT_EQ(gr.FindValue("c_int")->constant->dtype(), DataType::kInt64);
  EXPECT_EQ(Values<int64_t>(*gr.FindValue("c_int")->constant), std::vector<int64_t>{-7});
  EXPECT_EQ(Values<int64_t>(*gr.FindValue("c_ints")->constant), std::vector<int64_t>{3});
  EXPECT_EQ(gr.FindValue("c_ints")->dtype, DataType::kInt64);

  constant("c_str", [](onnx::AttributeProto* a) {
    a->set_name("value_string");
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s("x");
  });
  auto r = ImportOnnxBytes(Serialize(m));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
}

TEST(OnnxImport, SymbolicDimsAndShapeInference) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {std::string("N"), int64_t{3}, std::string("?")});
  AddNode(g, "Relu", {"x"}, {"r"});
  AddNode(g, "Sigmoid", {"r"}, {"y"});
  AddOutputName(g, "y");  // no declared type: ONNX shape inference provides it
  auto model = ImportOnnxBytes(Serialize(m));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const ir::Graph& gr = *(*model)->graph;
  const auto& xs = *gr.FindValue("x")->shape;
  ASSERT_EQ(xs.size(), 3u);
  EXPECT_FALSE(xs[0].is_known());
  EXPECT_EQ(xs[0].symbol, "N");
  EXPECT_EQ(xs[1].value, 3);
  EXPECT_FALSE(xs[2].is_known());
  EXPECT_TRUE(xs[2].symbol.empty());
  for (const char* name : {"r", "y"}) {
    const ir::Value* v = gr.FindValue(name);
    EXPECT_EQ(v->dtype, DataType::kFloat32) << name;
    ASSERT_TRUE(v->shape.has_value()) << name;
    ASSERT_EQ(v->shape->size(), 3u);
    EXPECT_EQ((*v->shape)[0].symbol, "N");
    EXPECT_EQ((*v->shape)[1].value, 3);
  }
}

TEST(OnnxImport, CustomDomainNodesPassThroughWithTypesElsewhere) {
  auto m = MakeModel(13);
  auto* o = m.add_opset_import();
  o->set_domain("com.example");
  o->set_version(2);
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {int64_t{2}});
  AddNode(g, "Relu", {"x"}, {"r"});
  AddNode(g, "Frobnicate", {"r"}, {"y"})->set_domain("com.example");
  AddOutput(g, "y", onnx::TensorProto::FLOAT, {int64_t{2}});
  auto model = ImportOnnxBytes(Serialize(m));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const ir::Graph& gr = *(*model)->graph;
  ASSERT_EQ(gr.nodes().size(), 2u);
  EXPECT_EQ(gr.nodes()[1]->domain, "com.example");
  EXPECT_EQ(gr.nodes()[1]->opset, 2);
  EXPECT_EQ((*model)->opsets.at("com.example"), 2);
  EXPECT_EQ(gr.FindValue("r")->dtype, DataType::kFloat32);  // shape inference still ran
}

TEST(OnnxImport, InitializerListedAsInputBecomesConstant) {
  auto m = AddModel();
  m.set_ir_version(3);
  AddInput(m.mutable_graph(), "w", onnx::TensorProto::FLOAT, {int64_t{3}});
  auto model = ImportOnnxBytes(Serialize(m));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const ir::Graph& g = *(*model)->graph;
  ASSERT_EQ(g.inputs().size(), 1u);
  EXPECT_EQ(g.inputs()[0]->name, "x");
  EXPECT_TRUE(g.FindValue("w")->is_constant());
  EXPECT_FALSE(g.FindValue("w")->is_graph_input);
}

TEST(OnnxImport, UnsortedNodesAreSortedAndNamed) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "x", onnx::TensorProto::FLOAT, {int64_t{4}});
  AddNode(g, "Neg", {"a"}, {"b"});  // consumes a value produced by the next node
  AddNode(g, "Relu", {"x"}, {"a"}, "first");
  AddOutput(g, "b", onnx::TensorProto::FLOAT, {int64_t{4}});
  auto model = ImportOnnxBytes(Serialize(m));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const auto& nodes = (*model)->graph->nodes();
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0]->name, "first");
  EXPECT_EQ(nodes[1]->name, "Neg_0");
}

TEST(OnnxImport, UndefinedInputAndDuplicateDefinitionAreRefused) {
  auto m = AddModel();
  m.mutable_graph()->mutable_node(0)->set_input(0, "nope");
  auto r = ImportOnnxBytes(Serialize(m));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("nope"), std::string::npos);

  auto m2 = AddModel();
  AddNode(m2.mutable_graph(), "Relu", {"x"}, {"y"});
  EXPECT_EQ(ImportOnnxBytes(Serialize(m2)).status().code(), StatusCode::kInvalidArgument);
}

// main: If(cond) { then: y = x + one ; else: y = Neg(x) }
TEST(OnnxImport, IfSubgraphOuterReferences) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "cond", onnx::TensorProto::BOOL, {});
  AddInput(g, "x", onnx::TensorProto::FLOAT, {int64_t{2}});
  AddFloatInit(g, "one", {2}, {1.f, 1.f});
  auto* iff = AddNode(g, "If", {"cond"}, {"y"});
  auto* then_g = AddGraphAttr(iff, "then_branch");
  AddNode(then_g, "Add", {"x", "one"}, {"t"});
  AddOutput(then_g, "t", onnx::TensorProto::FLOAT, {int64_t{2}});
  auto* else_g = AddGraphAttr(iff, "else_branch");
  AddNode(else_g, "Neg", {"x"}, {"e"});
  AddOutput(else_g, "e", onnx::TensorProto::FLOAT, {int64_t{2}});
  AddOutput(g, "y", onnx::TensorProto::FLOAT, {int64_t{2}});

  auto model = ImportOnnxBytes(Serialize(m));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const ir::Graph& gr = *(*model)->graph;
  ASSERT_EQ(gr.nodes().size(), 1u);
  const ir::Node& node = *gr.nodes()[0];
  ir::Value* x = gr.FindValue("x");
  ir::Value* one = gr.FindValue("one");
  ASSERT_EQ(node.implicit_inputs.size(), 2u);
  EXPECT_NE(std::find(node.implicit_inputs.begin(), node.implicit_inputs.end(), x), node.implicit_inputs.end());
  EXPECT_NE(std::find(node.implicit_inputs.begin(), node.implicit_inputs.end(), one), node.implicit_inputs.end());
  EXPECT_NE(std::find(x->consumers.begin(), x->consumers.end(), &node), x->consumers.end());

  auto then_branch = node.GetGraph("then_branch");
  ASSERT_TRUE(then_branch.ok());
  const ir::Graph& tg = **then_branch;
  EXPECT_TRUE(tg.inputs().empty());
  ASSERT_EQ(tg.outer_refs().size(), 2u);
  for (ir::Value* ref : tg.outer_refs()) {
    EXPECT_TRUE(ref->is_outer_ref);
    EXPECT_FALSE(ref->is_constant());  // bound by the runtime from the enclosing graph
  }
  EXPECT_EQ(tg.FindValue("x")->dtype, DataType::kFloat32);
  ASSERT_EQ(tg.nodes().size(), 1u);
  EXPECT_EQ(tg.nodes()[0]->inputs[0], tg.FindValue("x"));
  ASSERT_EQ(tg.outputs().size(), 1u);
  EXPECT_EQ(tg.outputs()[0]->name, "t");
  auto else_branch = node.GetGraph("else_branch");
  ASSERT_TRUE(else_branch.ok());
  EXPECT_EQ((*else_branch)->outer_refs().size(), 1u);
}

// main: Loop(M, cond, v) body { If(c) { then: out = v_in + y_outer } }: depth-2 outer reference.
TEST(OnnxImport, NestedLoopIfOuterReferences) {
  auto m = MakeModel(13);
  auto* g = m.mutable_graph();
  AddInput(g, "M", onnx::TensorProto::INT64, {});
  AddInput(g, "cond", onnx::TensorProto::BOOL, {});
  AddInput(g, "v0", onnx::TensorProto::FLOAT, {int64_t{2}});
  AddInput(g, "y", onnx::TensorProto::FLOAT, {int64_t{2}});
  auto* loop = AddNode(g, "Loop", {"M", "cond", "v0"}, {"v_final"});
  auto* body = AddGraphAttr(loop, "body");
  AddInput(body, "iter", onnx::TensorProto::INT64, {});
  AddInput(body, "c_in", onnx::TensorProto::BOOL, {});
  AddInput(body, "v_in", onnx::TensorProto::FLOAT, {int64_t{2}});
  AddNode(body, "Identity", {"c_in"}, {"c_out"});
  auto* iff = AddNode(body, "If", {"c_in"}, {"v_out"});
  auto* then_g = AddGraphAttr(iff, "then_branch");
  AddNode(then_g, "Add", {"v_in", "y"}, {"s"});
  AddOutput(then_g, "s", onnx::TensorProto::FLOAT, {int64_t{2}});
  auto* else_g = AddGraphAttr(iff, "else_branch");
  AddNode(else_g, "Identity", {"v_in"}, {"k"});
  AddOutput(else_g, "k", onnx::TensorProto::FLOAT, {int64_t{2}});
  AddOutput(body, "c_out", onnx::TensorProto::BOOL, {});
  AddOutput(body, "v_out", onnx::TensorProto::FLOAT, {int64_t{2}});
  AddOutput(g, "v_final", onnx::TensorProto::FLOAT, {int64_t{2}});

  auto model = ImportOnnxBytes(Serialize(m));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const ir::Graph& gr = *(*model)->graph;
  const ir::Node& loop_node = *gr.nodes()[0];
  ir::Value* y_main = gr.FindValue("y");
  ASSERT_EQ(loop_node.implicit_inputs.size(), 1u);
  EXPECT_EQ(loop_node.implicit_inputs[0], y_main);

  const ir::Graph& bg = **loop_node.GetGraph("body");
  EXPECT_EQ(bg.inputs().size(), 3u);
  ASSERT_EQ(bg.outer_refs().size(), 1u);
  ir::Value* y_body = bg.outer_refs()[0];
  EXPECT_EQ(y_body->name, "y");
  EXPECT_TRUE(y_body->is_outer_ref);
  const ir::Node* if_node = nullptr;
  for (const auto& n : bg.nodes()) {
    if (n->op_type == "If") if_node = n.get();
  }
  ASSERT_NE(if_node, nullptr);
  // v_in is a body input (the If's scope), y comes from the main graph through the body.
  ASSERT_EQ(if_node->implicit_inputs.size(), 2u);
  EXPECT_NE(std::find(if_node->implicit_inputs.begin(), if_node->implicit_inputs.end(), y_body),
            if_node->implicit_inputs.end());
  EXPECT_NE(std::find(if_node->implicit_inputs.begin(), if_node->implicit_inputs.end(), bg.FindValue("v_in")),
            if_node->implicit_inputs.end());
  const ir::Graph& tg = **if_node->GetGraph("then_branch");
  EXPECT_EQ(tg.outer_refs().size(), 2u);
  EXPECT_TRUE(tg.FindValue("y")->is_outer_ref);
}

TEST(OnnxImport, CorruptAndTruncatedBytesAreErrors) {
  std::string good = Serialize(AddModel());
  ASSERT_TRUE(ImportOnnxBytes(good).ok());
  for (size_t len = 0; len < good.size(); ++len) {
    auto r = ImportOnnxBytes(std::string_view(good).substr(0, len));
    EXPECT_FALSE(r.ok()) << "prefix of " << len << " bytes imported";
  }
  std::mt19937 rng(42);
  for (int i = 0; i < 200; ++i) {
    std::string bad = good;
    for (int k = 0; k < 3; ++k) bad[rng() % bad.size()] = static_cast<char>(rng());
    auto r = ImportOnnxBytes(bad);  // may or may not parse; must not crash
    if (!r.ok()) {
      EXPECT_FALSE(r.status().message().empty());
    }
  }
  std::string garbage(1000, '\xff');
  auto r = ImportOnnxBytes(garbage);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);

  ImportOptions small;
  small.max_model_bytes = 10;
  EXPECT_EQ(ImportOnnxBytes(good, small).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ImportOnnxFile("/nonexistent/model.onnx").status().code(), StatusCode::kNotFound);
}

TEST(OnnxImport, TensorProtoFileRoundTrip) {
  TempDir dir;
  std::vector<float> v = {1.f, 2.f, 3.f, 4.f, 5.f, 6.f};
  auto t = Tensor::FromVector(DataType::kFloat32, {2, 3}, v);
  ASSERT_TRUE(t.ok());
  std::string path = (dir.path() / "input_0.pb").string();
  ASSERT_TRUE(WriteTensorProtoFile(path, "x", *t).ok());
  auto back = ReadTensorProtoFile(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->first, "x");
  EXPECT_EQ(back->second.shape(), (Shape{2, 3}));
  EXPECT_EQ(Values<float>(back->second), v);

  WriteFile(dir.path() / "bad.pb", "\x0a\xff\xff");
  EXPECT_EQ(ReadTensorProtoFile((dir.path() / "bad.pb").string()).status().code(), StatusCode::kDataLoss);

  // A real ONNX test-data file, when the Debian package is there.
  const std::string real = "/usr/share/libonnx-testdata/data/node/test_relu/test_data_set_0/input_0.pb";
  if (fs::exists(real)) {
    auto r = ReadTensorProtoFile(real);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->first, "x");
    EXPECT_EQ(r->second.dtype(), DataType::kFloat32);
    EXPECT_EQ(r->second.shape(), (Shape{3, 4, 5}));
  }
}

}  // namespace
}  // namespace gpuhive
