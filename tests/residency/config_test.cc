#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "gpuhive/onnx_import.h"
#include "gpuhive/residency/model_config.h"
#include "gpuhive/residency/repository.h"
#include "gpuhive/residency/synthetic_models.h"

namespace gpuhive::residency {
namespace {

namespace fs = std::filesystem;

// Triton's densenet_onnx example (docs/examples/model_repository) plus fields gpuhive skips.
constexpr const char* kDensenet = R"(
name: "densenet_onnx"
platform: "onnxruntime_onnx"
max_batch_size : 0
input [
  {
    name: "data_0"
    data_type: TYPE_FP32
    format: FORMAT_NCHW
    dims: [ 3, 224, 224 ]
    reshape { shape: [ 1, 3, 224, 224 ] }
  }
]
output [
  {
    name: "fc6_1"
    data_type: TYPE_FP32
    dims: [ 1000 ]
    reshape { shape: [ 1, 1000, 1, 1 ] }
    label_filename: "densenet_labels.txt"
  }
]
)";

constexpr const char* kBatched = R"(
name: "resnet"
backend: "onnxruntime"
max_batch_size: 8
version_policy: { latest: { num_versions: 2 } }
input [ { name: "x" data_type: TYPE_FP16 dims: [ 3, -1, -1 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 10 ] } ]
dynamic_batching {
  preferred_batch_size: [ 4, 8 ]
  max_queue_delay_microseconds: 100
  priority_levels: 3
  default_priority_level: 2
  default_queue_policy { timeout_action: DELAY default_timeout_microseconds: 5000 allow_timeout_override: true max_queue_size: 16 }
  priority_queue_policy { key: 1 value { max_queue_size: 4 } }
}
instance_group [ { count: 2 kind: KIND_GPU gpus: [ 0, 1 ] } ]
parameters { key: "intra_op_thread_count" value: { string_value: "2" } }
optimization { execution_accelerators { gpu_execution_accelerator : [ { name : "tensorrt" } ] } }
model_warmup [ { name: "w" batch_size: 1 } ]
gpuhive {
  memory_limit: "512MiB"
  tenant: "team-a"
  priority: 1
  precision: "fp16"
  cpu_convolution: "direct"
  preload: true
  keep_alive: "5m"
}
)";

TEST(ModelConfig, ParsesTritonDensenetExample) {
  auto c = ParseModelConfig(kDensenet);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->name, "densenet_onnx");
  EXPECT_EQ(c->platform, "onnxruntime_onnx");
  EXPECT_EQ(c->max_batch_size, 0);
  ASSERT_EQ(c->inputs.size(), 1u);
  EXPECT_EQ(c->inputs[0].name, "data_0");
  EXPECT_EQ(c->inputs[0].dtype, DataType::kFloat32);
  EXPECT_EQ(c->inputs[0].dims, (std::vector<int64_t>{3, 224, 224}));
  ASSERT_EQ(c->outputs.size(), 1u);
  EXPECT_EQ(c->outputs[0].dims, (std::vector<int64_t>{1000}));
  EXPECT_FALSE(c->dynamic_batching);
  EXPECT_TRUE(c->skipped_fields.empty());
  EXPECT_FALSE(c->keep_alive_us.has_value());
}

TEST(ModelConfig, ParsesEveryFieldAndSkipsUnknownOnes) {
  auto c = ParseModelConfig(kBatched);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->backend, "onnxruntime");
  EXPECT_EQ(c->max_batch_size, 8);
  EXPECT_EQ(c->version_policy, VersionPolicyKind::kLatest);
  EXPECT_EQ(c->latest_num_versions, 2);
  EXPECT_EQ(c->inputs[0].dtype, DataType::kFloat16);
  EXPECT_EQ(c->inputs[0].dims, (std::vector<int64_t>{3, -1, -1}));
  EXPECT_TRUE(c->dynamic_batching);
  EXPECT_EQ(c->preferred_batch_sizes, (std::vector<int>{4, 8}));
  EXPECT_EQ(c->max_queue_delay_us, 100);
  EXPECT_EQ(c->priority_levels, 3);
  EXPECT_EQ(c->default_priority_level, 2);
  EXPECT_TRUE(c->default_queue_policy.timeout_action_delay);
  EXPECT_EQ(c->default_queue_policy.default_timeout_us, 5000);
  EXPECT_TRUE(c->default_queue_policy.allow_timeout_override);
  EXPECT_EQ(c->default_queue_policy.max_queue_size, 16);
  ASSERT_EQ(c->priority_queue_policy.count(1), 1u);
  EXPECT_EQ(c->priority_queue_policy.at(1).max_queue_size, 4);
  ASSERT_EQ(c->instance_groups.size(), 1u);
  EXPECT_EQ(c->instance_groups[0].count, 2);
  EXPECT_EQ(c->instance_groups[0].kind, InstanceKind::kGpu);
  EXPECT_EQ(c->instance_groups[0].gpus, (std::vector<int>{0, 1}));
  EXPECT_EQ(c->parameters.at("intra_op_thread_count"), "2");
  EXPECT_EQ(c->memory_limit_bytes, 512ull << 20);
  EXPECT_EQ(c->tenant, "team-a");
  EXPECT_EQ(c->priority, 1);
  EXPECT_EQ(c->precision, "fp16");
  EXPECT_EQ(c->cpu_convolution, "direct");
  EXPECT_TRUE(c->preload);
  ASSERT_TRUE(c->keep_alive_us.has_value());
  EXPECT_EQ(*c->keep_alive_us, 300'000'000);
  // optimization is a Triton field gpuhive does not model; model_warmup is parsed.
  ASSERT_EQ(c->skipped_fields.size(), 1u);
  EXPECT_NE(c->skipped_fields[0].find("optimization"), std::string::npos);
  ASSERT_EQ(c->warmups.size(), 1u);
}

TEST(ModelConfig, SkipsNestedAndListShapedUnknownFields) {
  constexpr const char* kText = R"(
name: "seq"  # a comment
max_batch_size: 4
sequence_batching {
  max_sequence_idle_microseconds: 5000000
  control_input [
    { name: "START" control [ { kind: CONTROL_SEQUENCE_START fp32_false_true: [ 0, 1 ] } ] }
  ]
}
dynamic_batching { max_queue_delay_microseconds: 7 some_future_field: "x; y" }
input [ { name: "x" data_type: TYPE_INT64 dims: [ 1 ] } ]
response_cache { enable: true }
)";
  auto c = ParseModelConfig(kText);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->name, "seq");
  EXPECT_EQ(c->max_batch_size, 4);
  EXPECT_EQ(c->max_queue_delay_us, 7);
  ASSERT_EQ(c->inputs.size(), 1u);
  EXPECT_EQ(c->inputs[0].dtype, DataType::kInt64);
  ASSERT_EQ(c->skipped_fields.size(), 3u);
  EXPECT_NE(c->skipped_fields[0].find("4:1: sequence_batching"), std::string::npos) << c->skipped_fields[0];
  EXPECT_NE(c->skipped_fields[1].find("some_future_field"), std::string::npos);
  EXPECT_NE(c->skipped_fields[2].find("response_cache"), std::string::npos);
}

TEST(ModelConfig, KeepAliveForms) {
  auto parse = [](const std::string& ka) {
    return ParseModelConfig("name: \"m\" gpuhive { keep_alive: \"" + ka + "\" }");
  };
  EXPECT_EQ(*parse("-1")->keep_alive_us, kKeepAliveForever);
  EXPECT_EQ(*parse("0")->keep_alive_us, 0);
  EXPECT_EQ(*parse("30")->keep_alive_us, 30'000'000);
  EXPECT_EQ(*parse("30s")->keep_alive_us, 30'000'000);
  EXPECT_EQ(*parse("1h")->keep_alive_us, 3'600'000'000ll);
  auto bad = parse("soon");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("keep_alive"), std::string::npos);
}

struct BadConfig {
  const char* text;
  const char* expect;  // a substring of the error message
};

class BadConfigs : public ::testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigs, RefusedWithAClearError) {
  auto c = ParseModelConfig(GetParam().text, "m/config.pbtxt");
  ASSERT_FALSE(c.ok()) << GetParam().text;
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find(GetParam().expect), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("m/config.pbtxt"), std::string::npos) << c.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Config, BadConfigs,
    ::testing::Values(
        BadConfig{"name: \"m\"\nmax_batch_size: [", "2:"},                      // syntax error with its line
        BadConfig{"name: \"m\" input [ { name: \"x\" data_type: TYPE_NOPE } ]", "TYPE_NOPE"},
        BadConfig{"max_batch_size: 1", "no name"},
        BadConfig{"name: \"m\" platform: \"tensorflow_graphdef\"", "platform 'tensorflow_graphdef'"},
        BadConfig{"name: \"m\" backend: \"python\"", "backend 'python'"},
        BadConfig{"name: \"m\" max_batch_size: -1", "max_batch_size -1"},
        BadConfig{"name: \"m\" input [ { name: \"x\" data_type: TYPE_FP32 }, { name: \"x\" data_type: TYPE_FP32 } ]",
                  "'x' appears twice"},
        BadConfig{"name: \"m\" input [ { name: \"x\" dims: [1] } ]", "data_type"},
        BadConfig{"name: \"m\" output [ { name: \"y\" data_type: TYPE_FP32 dims: [ -2 ] } ]", "dim -2"},
        BadConfig{"name: \"m\" max_batch_size: 4 dynamic_batching { preferred_batch_size: [ 8 ] }",
                  "preferred_batch_size 8"},
        BadConfig{"name: \"m\" dynamic_batching { priority_levels: 2 default_priority_level: 3 }",
                  "default_priority_level 3"},
        BadConfig{"name: \"m\" version_policy { specific { } }", "lists no versions"},
        BadConfig{"name: \"m\" instance_group [ { count: -1 } ]", "count -1"},
        BadConfig{"name: \"m\" gpuhive { memory_limit: \"lots\" }", "memory_limit"},
        BadConfig{"name: \"m\" gpuhive { precision: \"fp8\" }", "precision 'fp8'"},
        BadConfig{"name: \"m\" gpuhive { priority: -2 }", "priority -2"},
        BadConfig{"name: \"m\" gpuhive { cpu_convolution: \"fft\" }", "cpu_convolution 'fft'"},
        BadConfig{"name: \"m\" gpuhive { memory_limit: \"1KiB\" memory_limit_bytes: 5 }", "disagree"}));

TEST(ModelConfig, SelectVersionsFollowsPolicy) {
  ModelConfig c;
  c.name = "m";
  EXPECT_EQ(SelectVersions(c, {3, 1, 2}), (std::vector<int64_t>{3}));
  c.latest_num_versions = 2;
  EXPECT_EQ(SelectVersions(c, {3, 1, 2}), (std::vector<int64_t>{2, 3}));
  c.version_policy = VersionPolicyKind::kAll;
  EXPECT_EQ(SelectVersions(c, {3, 1, 2}), (std::vector<int64_t>{1, 2, 3}));
  c.version_policy = VersionPolicyKind::kSpecific;
  c.specific_versions = {1, 7};
  EXPECT_EQ(SelectVersions(c, {3, 1, 2}), (std::vector<int64_t>{1}));
  EXPECT_TRUE(SelectVersions(c, {}).empty());
}

TEST(ModelConfig, DerivedFromTheGraph) {
  auto model = ImportOnnxBytes(MakeMatMulChainOnnx({.dim = 32, .layers = 2}));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  ModelConfig c = DeriveModelConfig("chain", **model);
  EXPECT_TRUE(c.derived);
  EXPECT_EQ(c.name, "chain");
  ASSERT_EQ(c.inputs.size(), 1u);
  EXPECT_EQ(c.inputs[0].name, "x");
  EXPECT_EQ(c.inputs[0].dtype, DataType::kFloat32);
  EXPECT_EQ(c.inputs[0].dims, (std::vector<int64_t>{-1, 32}));
  ASSERT_EQ(c.outputs.size(), 1u);
  EXPECT_EQ(c.outputs[0].name, "y");
  EXPECT_TRUE(ValidateModelConfig(c).ok());
}

class RepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("gh_repo_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  void Write(const fs::path& rel, const std::string& data) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel, std::ios::binary) << data;
  }
  fs::path root_;
};

TEST_F(RepositoryTest, ScansLayoutVersionsAndIsolatesBrokenModels) {
  std::string onnx = MakeMatMulChainOnnx({.dim = 16, .layers = 1});
  Write("a/config.pbtxt", "name: \"a\" platform: \"onnxruntime_onnx\" version_policy { all { } }");
  Write("a/1/model.onnx", onnx);
  Write("a/3/model.onnx", onnx);
  Write("a/notaversion/model.onnx", onnx);
  Write("b/2/model.onnx", onnx);                      // no config: derived
  Write("c/config.pbtxt", "name: \"c\" max_batch_size: [");  // broken config
  Write("c/1/model.onnx", onnx);
  Write("d/config.pbtxt", "name: \"other\"");         // name differs from the directory
  Write("d/1/model.onnx", onnx);
  Write("e/config.pbtxt", "name: \"e\"");              // no version
  Write("f/config.pbtxt", "max_batch_size: 0");       // name omitted, as Triton allows
  Write("f/1/model.onnx", onnx);
  auto repo = ModelRepository::Open(root_.string());
  ASSERT_TRUE(repo.ok());
  ScanResult r = (*repo)->Scan();
  ASSERT_EQ(r.models.size(), 3u);
  ASSERT_EQ(r.models.count("a"), 1u);
  ASSERT_EQ(r.models.at("a").versions.size(), 2u);
  EXPECT_EQ(r.models.at("a").versions[0].version, 1);
  EXPECT_EQ(r.models.at("a").versions[1].version, 3);
  EXPECT_EQ(r.models.at("a").versions[1].file_bytes, onnx.size());
  ASSERT_EQ(r.models.count("b"), 1u);
  EXPECT_TRUE(r.models.at("b").config.derived);
  EXPECT_EQ(r.models.at("b").config.inputs.size(), 1u);
  EXPECT_EQ(r.models.count("f"), 1u);
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_EQ(r.errors.at("c").code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.errors.at("d").message().find("differs"), std::string::npos);
  EXPECT_EQ(r.errors.at("e").code(), StatusCode::kNotFound);
}

TEST_F(RepositoryTest, MissingRootAndModel) {
  EXPECT_EQ(ModelRepository::Open((root_ / "nope").string()).status().code(), StatusCode::kNotFound);
  auto repo = ModelRepository::Open(root_.string());
  ASSERT_TRUE(repo.ok());
  EXPECT_EQ((*repo)->ScanModel("ghost").status().code(), StatusCode::kNotFound);
  EXPECT_EQ((*repo)->ScanModel("../x").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(RepositoryTest, ModelNamesAreValidatedBeforeAnyPathIsBuilt) {
  EXPECT_TRUE(ValidateModelName("resnet50").ok());
  EXPECT_TRUE(ValidateModelName("mod\xC3\xA8le-v2_1").ok());
  for (const std::string& bad : {std::string(), std::string("."), std::string(".."), std::string(".hidden"),
                                 std::string("a/b"), std::string("../x"), std::string("a\0b", 3), std::string("x\ny"),
                                 std::string("bad\xFF\xFE"), std::string(256, 'a')}) {
    EXPECT_EQ(ValidateModelName(bad).code(), StatusCode::kInvalidArgument) << bad;
  }
  // A NUL ends the C path early: "b\0x" must not scan as the config-less model "b".
  Write("b/1/model.onnx", MakeMatMulChainOnnx({.dim = 16, .layers = 1}));
  auto repo = ModelRepository::Open(root_.string());
  ASSERT_TRUE(repo.ok());
  EXPECT_TRUE((*repo)->ScanModel("b").ok());
  EXPECT_EQ((*repo)->ScanModel(std::string("b\0x", 3)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE((*repo)->HasModelDirectory("b"));
  EXPECT_FALSE((*repo)->HasModelDirectory(std::string("b\0x", 3)));
  EXPECT_FALSE((*repo)->HasModelDirectory("ghost"));
  EXPECT_FALSE((*repo)->HasModelDirectory(".."));
}

TEST_F(RepositoryTest, ScanSkipsDirectoriesNoRequestCouldName) {
  const std::string onnx = MakeMatMulChainOnnx({.dim = 16, .layers = 1});
  Write("ok/1/model.onnx", onnx);
  Write("bad\xFF\xFE/1/model.onnx", onnx);
  Write("tab\there/1/model.onnx", onnx);
  auto repo = ModelRepository::Open(root_.string());
  ASSERT_TRUE(repo.ok());
  ScanResult r = (*repo)->Scan();
  ASSERT_EQ(r.models.size(), 1u);
  EXPECT_EQ(r.models.begin()->first, "ok");
  EXPECT_TRUE(r.errors.empty());
}

TEST_F(RepositoryTest, CorruptOnnxWithoutConfigIsDataLoss) {
  Write("bad/1/model.onnx", "this is not a protobuf");
  auto repo = ModelRepository::Open(root_.string());
  ASSERT_TRUE(repo.ok());
  auto m = (*repo)->ScanModel("bad");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("bad"), std::string::npos);
}

TEST(ReadModelFile, ReadsWholeFilesAndRefusesOthers) {
  EXPECT_EQ(ReadModelFile("/nonexistent/file").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadModelFile(fs::temp_directory_path().string()).status().code(), StatusCode::kInvalidArgument);
  fs::path p = fs::temp_directory_path() / ("gh_read_" + std::to_string(::getpid()));
  std::ofstream(p, std::ios::binary) << "hello";
  auto f = ReadModelFile(p.string());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(*f, "hello");
  EXPECT_EQ(ReadModelFile(p.string(), 4).status().code(), StatusCode::kInvalidArgument);
  std::ofstream(p, std::ios::binary | std::ios::trunc);
  auto empty = ReadModelFile(p.string());
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  fs::remove(p);
}

}  // namespace
}  // namespace gpuhive::residency

namespace gpuhive::residency {
namespace {

// Found by the config.pbtxt fuzzer: a keep_alive of more digits than int64 holds threw
// std::out_of_range out of the parser (a crash on a bad config file); it is a clear error now.
TEST(ModelConfig, KeepAliveSecondsOutOfRangeIsAnError) {
  auto ok = ParseModelConfig("name: \"m\"\ngpuhive { keep_alive: \"120\" }\n");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok->keep_alive_us, 120'000'000);
  for (const char* big : {"99999999999999999999999", "9223372036855"}) {
    auto c = ParseModelConfig(std::string("name: \"m\"\ngpuhive { keep_alive: \"") + big + "\" }\n");
    ASSERT_FALSE(c.ok()) << big;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find("out of range"), std::string::npos) << c.status().message();
  }
}

}  // namespace
}  // namespace gpuhive::residency
