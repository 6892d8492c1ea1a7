// Model configuration (config.pbtxt): Triton's common fields with Triton's meaning, plus gpuhive's
// own block (memory limit, tenant, priority, precision, preload, keep-alive). Parsed as protobuf
// text format against proto/model_config.proto; this header exposes a plain struct so callers need
// no generated code. See DESIGN.md "Conventions that users expect".
//
// All functions are thread safe (no shared state).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <memory>
#include <string>
#include <vector>

#include "gpuhive/ir.h"
#include "gpuhive/status.h"
#include "gpuhive/tensor.h"

namespace gpuhive::residency {

struct TensorConfig {
  std::string name;
  DataType dtype = DataType::kUndefined;
  // Without the batch dim when max_batch_size > 0 (Triton's convention); -1 is a dynamic dim.
  std::vector<int64_t> dims;
  bool optional = false;
  // Outputs: Triton's label_filename (a file in the model's directory, one label per line) and the
  // labels the repository read from it when the model was scanned; classification appends
  // ":<label>" to each entry whose index has one.
  std::string label_filename;
  std::shared_ptr<const std::vector<std::string>> labels;
};

// Triton's ModelQueuePolicy.
struct QueuePolicyConfig {
  bool timeout_action_delay = false;  // false: REJECT
  int64_t default_timeout_us = 0;
  bool allow_timeout_override = false;
  int max_queue_size = 0;
};

enum class InstanceKind { kAuto, kGpu, kCpu, kModel };

struct InstanceGroupConfig {
  std::string name;
  int count = 1;
  InstanceKind kind = InstanceKind::kAuto;
  std::vector<int> gpus;
};

// Triton's model_warmup: samples run before the model reports READY.
struct WarmupInputConfig {
  std::string name;
  DataType dtype = DataType::kUndefined;
  std::vector<int64_t> dims;  // without the batch dim
  bool random_data = false;   // else zeros, unless input_data_file is set
  std::string input_data_file;  // relative to the model's warmup/ directory
};

struct WarmupConfig {
  std::string name;
  int batch_size = 1;
  int count = 1;
  std::vector<WarmupInputConfig> inputs;
};

enum class VersionPolicyKind { kLatest, kAll, kSpecific };

// Keep-alive sentinel: an idle model is never unloaded for being idle.
inline constexpr int64_t kKeepAliveForever = -1;

struct ModelConfig {
  std::string name;
  std::string platform;  // "onnxruntime_onnx" or empty
  std::string backend;   // "onnxruntime", "gpuhive" or empty
  int max_batch_size = 0;
  std::vector<TensorConfig> inputs;
  std::vector<TensorConfig> outputs;

  bool dynamic_batching = false;  // a dynamic_batching block was present
  std::vector<int> preferred_batch_sizes;
  int64_t max_queue_delay_us = 0;
  int priority_levels = 0;
  int default_priority_level = 0;
  QueuePolicyConfig default_queue_policy;
  std::map<int, QueuePolicyConfig> priority_queue_policy;

  std::vector<InstanceGroupConfig> instance_groups;

  VersionPolicyKind version_policy = VersionPolicyKind::kLatest;
  int latest_num_versions = 1;
  std::vector<int64_t> specific_versions;

  std::string default_model_filename = "model.onnx";
  std::map<std::string, std::string> parameters;
  std::vector<WarmupConfig> warmups;

  // gpuhive's own fields.
  uint64_t memory_limit_bytes = 0;  // 0: no per-model limit
  std::string tenant = "default";
  int priority = 0;                 // Triton's numbering: 1 most important, 0 the default level (1)
  std::string precision = "fp32";
  std::string cpu_convolution = "auto";  // KernelOptions::conv_algorithm: auto, direct, winograd
  bool preload = false;
  std::optional<int64_t> keep_alive_us;  // nullopt: the manager's default; kKeepAliveForever

  // Fields of the text that gpuhive's schema does not know (skipped; the server warns once per
  // model when it loads it): "line:col: name".
  std::vector<std::string> skipped_fields;
  bool derived = false;  // built from the ONNX file because config.pbtxt was missing
};

// Parses config.pbtxt text. `source` names the file in messages. Unknown fields (from newer Triton
// versions or other backends) are skipped and listed in skipped_fields. Errors: kInvalidArgument
// naming the line and column of a syntax error or the offending field of an invalid config
// (see ValidateModelConfig).
StatusOr<ModelConfig> ParseModelConfig(std::string_view text, std::string_view source = "config.pbtxt");

// The config text with its name set to `name` (fields outside gpuhive's schema dropped): how a
// config.pbtxt is placed under another model name. Errors: kInvalidArgument (does not parse).
StatusOr<std::string> RenameModelConfigText(std::string_view text, std::string_view name,
                                            std::string_view source = "config.pbtxt");

// Parses Triton's JSON form of a config (what GET /v2/models/M/config returns and what a load's
// parameters.config carries), with the same checks as ParseModelConfig. Fields gpuhive's schema
// does not know are ignored. Errors: kInvalidArgument naming the problem.
StatusOr<ModelConfig> ParseModelConfigJson(std::string_view json, std::string_view source);

// Checks a config: a name, a supported platform/backend for ONNX, max_batch_size >= 0, tensor
// names unique and non-empty with known data types, dims >= -1, preferred batch sizes within
// 1..max_batch_size, priority levels consistent, version policy sane, precision known.
// Errors: kInvalidArgument naming the field.
Status ValidateModelConfig(const ModelConfig& config);

// Builds the config of a model that has no config.pbtxt from its graph: inputs and outputs with
// their dtypes and shapes; max_batch_size 0 (shapes taken as they are, batch dim included).
ModelConfig DeriveModelConfig(const std::string& name, const ir::Model& model);

// The config as Triton's ModelConfig message (proto/model_config.proto), serialized: what gRPC
// ModelConfig returns. Fields the config left out carry what gpuhive uses (Triton fills them in too).
std::string ModelConfigToProtoBytes(const ModelConfig& config);
// The same message as Triton's config JSON: proto field names, every field printed, enums by name,
// 64-bit integers as numbers.
std::string ModelConfigToJson(const ModelConfig& config);

// The versions of `available` (any order) that the config's version policy selects, ascending.
std::vector<int64_t> SelectVersions(const ModelConfig& config, std::vector<int64_t> available);

}  // namespace gpuhive::residency
