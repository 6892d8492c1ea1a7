// The served configuration in Triton's two forms (the model configuration extension): the
// ModelConfig message for gRPC ModelConfig and its JSON for GET /v2/models/M/config.
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <set>

#include "gpuhive/residency/model_config.h"
#include "model_config.pb.h"

namespace gpuhive::residency {
namespace {

namespace pb = ::gpuhive::config;

pb::DataType ToPbType(DataType t) {
  switch (t) {
    case DataType::kBool: return pb::TYPE_BOOL;
    case DataType::kUint8: return pb::TYPE_UINT8;
    case DataType::kUint16: return pb::TYPE_UINT16;
    case DataType::kUint32: return pb::TYPE_UINT32;
    case DataType::kUint64: return pb::TYPE_UINT64;
    case DataType::kInt8: return pb::TYPE_INT8;
    case DataType::kInt16: return pb::TYPE_INT16;
    case DataType::kInt32: return pb::TYPE_INT32;
    case DataType::kInt64: return pb::TYPE_INT64;
    case DataType::kFloat16: return pb::TYPE_FP16;
    case DataType::kFloat32: return pb::TYPE_FP32;
    case DataType::kFloat64: return pb::TYPE_FP64;
    case DataType::kString: return pb::TYPE_STRING;
    case DataType::kBFloat16: return pb::TYPE_BF16;
    default: return pb::TYPE_INVALID;
  }
}

void ToPbQueue(const QueuePolicyConfig& q, pb::ModelQueuePolicy* out) {
  out->set_timeout_action(q.timeout_action_delay ? pb::ModelQueuePolicy::DELAY : pb::ModelQueuePolicy::REJECT);
  out->set_default_timeout_microseconds(static_cast<uint64_t>(std::max<int64_t>(0, q.default_timeout_us)));
  out->set_allow_timeout_override(q.allow_timeout_override);
  out->set_max_queue_size(static_cast<uint32_t>(std::max(0, q.max_queue_size)));
}

pb::ModelConfig ToProto(const ModelConfig& c) {
  pb::ModelConfig m;
  m.set_name(c.name);
  // Triton fills in what a config leaves out; clients (perf_analyzer) read platform or backend.
  m.set_platform(c.platform.empty() ? "onnxruntime_onnx" : c.platform);
  m.set_backend(c.backend.empty() ? "onnxruntime" : c.backend);
  m.set_max_batch_size(c.max_batch_size);
  switch (c.version_policy) {
    case VersionPolicyKind::kAll: m.mutable_version_policy()->mutable_all(); break;
    case VersionPolicyKind::kSpecific:
      for (int64_t v : c.specific_versions) m.mutable_version_policy()->mutable_specific()->add_versions(v);
      break;
    case VersionPolicyKind::kLatest:
      m.mutable_version_policy()->mutable_latest()->set_num_versions(static_cast<uint32_t>(c.latest_num_versions));
      break;
  }
  for (const auto& t : c.inputs) {
    auto* in = m.add_input();
    in->set_name(t.name);
    in->set_data_type(ToPbType(t.dtype));
    for (int64_t d : t.dims) in->add_dims(d);
    in->set_optional(t.optional);
  }
  for (const auto& t : c.outputs) {
    auto* out = m.add_output();
    out->set_name(t.name);
    out->set_data_type(ToPbType(t.dtype));
    for (int64_t d : t.dims) out->add_dims(d);
    if (!t.label_filename.empty()) out->set_label_filename(t.label_filename);
  }
  if (c.dynamic_batching) {
    auto* db = m.mutable_dynamic_batching();
    for (int s : c.preferred_batch_sizes) db->add_preferred_batch_size(s);
    db->set_max_queue_delay_microseconds(static_cast<uint64_t>(std::max<int64_t>(0, c.max_queue_delay_us)));
    db->set_priority_levels(static_cast<uint64_t>(std::max(0, c.priority_levels)));
    db->set_default_priority_level(static_cast<uint64_t>(std::max(0, c.default_priority_level)));
    ToPbQueue(c.default_queue_policy, db->mutable_default_queue_policy());
    for (const auto& [level, q] : c.priority_queue_policy) {
      ToPbQueue(q, &(*db->mutable_priority_queue_policy())[static_cast<uint64_t>(level)]);
    }
  }
  for (const auto& g : c.instance_groups) {
    auto* ig = m.add_instance_group();
    ig->set_name(g.name.empty() ? c.name : g.name);
    ig->set_count(g.count);
    switch (g.kind) {
      case InstanceKind::kGpu: ig->set_kind(pb::ModelInstanceGroup::KIND_GPU); break;
      case InstanceKind::kCpu: ig->set_kind(pb::ModelInstanceGroup::KIND_CPU); break;
      case InstanceKind::kModel: ig->set_kind(pb::ModelInstanceGroup::KIND_MODEL); break;
      case InstanceKind::kAuto: ig->set_kind(pb::ModelInstanceGroup::KIND_AUTO); break;
    }
    for (int gpu : g.gpus) ig->add_gpus(gpu);
  }
  if (c.instance_groups.empty()) {
    // What this build runs: one CPU instance (Triton reports the group it created).
    auto* ig = m.add_instance_group();
    ig->set_name(c.name);
    ig->set_count(1);
    ig->set_kind(pb::ModelInstanceGroup::KIND_CPU);
  }
  m.set_default_model_filename(c.default_model_filename);
  for (const auto& [k, v] : c.parameters) (*m.mutable_parameters())[k].set_string_value(v);
  for (const auto& w : c.warmups) {
    auto* mw = m.add_model_warmup();
    mw->set_name(w.name);
    mw->set_batch_size(static_cast<uint32_t>(w.batch_size));
    mw->set_count(static_cast<uint32_t>(w.count));
    for (const auto& in : w.inputs) {
      auto& pi = (*mw->mutable_inputs())[in.name];
      pi.set_data_type(ToPbType(in.dtype));
      for (int64_t d : in.dims) pi.add_dims(d);
      if (in.random_data) {
        pi.set_random_data(true);
      } else if (!in.input_data_file.empty()) {
        pi.set_input_data_file(in.input_data_file);
      } else {
        pi.set_zero_data(true);
      }
    }
  }
  auto* g = m.mutable_gpuhive();
  g->set_memory_limit_bytes(c.memory_limit_bytes);
  g->set_tenant(c.tenant);
  g->set_priority(c.priority);
  g->set_precision(c.precision);
  g->set_cpu_convolution(c.cpu_convolution);
  g->set_preload(c.preload);
  if (c.keep_alive_us) {
    g->set_keep_alive(*c.keep_alive_us == kKeepAliveForever ? "-1" : std::to_string(*c.keep_alive_us / 1'000'000) + "s");
  }
  return m;
}

// Protobuf's JSON writes 64-bit integers as strings; Triton's config JSON has them as numbers
// (clients index "dims" and "max_queue_delay_microseconds" as numbers).
void NumbersFromStrings(nlohmann::json& j, bool numeric_context) {
  static const std::set<std::string> kInt64Fields = {
      "dims", "shape", "versions", "max_queue_delay_microseconds", "default_timeout_microseconds",
      "priority_levels", "default_priority_level", "memory_limit_bytes"};
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) NumbersFromStrings(it.value(), kInt64Fields.count(it.key()) > 0);
  } else if (j.is_array()) {
    for (auto& e : j) NumbersFromStrings(e, numeric_context);
  } else if (numeric_context && j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && p == s.data() + s.size()) {
      j = v;
    } else {
      uint64_t u = 0;
      auto [pu, ecu] = std::from_chars(s.data(), s.data() + s.size(), u);
      if (ecu == std::errc() && pu == s.data() + s.size()) j = u;
    }
  }
}

}  // namespace

StatusOr<ModelConfig> ParseModelConfigJson(std::string_view json, std::string_view source) {
  pb::ModelConfig m;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto st = google::protobuf::util::JsonStringToMessage(std::string(json), &m, options);
  if (!st.ok()) return InvalidArgument("{}: not a model config in JSON: {}", source, std::string(st.message()));
  std::string text;
  if (!google::protobuf::TextFormat::PrintToString(m, &text)) return InvalidArgument("{}: cannot convert", source);
  return ParseModelConfig(text, source);
}

std::string ModelConfigToProtoBytes(const ModelConfig& config) { return ToProto(config).SerializeAsString(); }

std::string ModelConfigToJson(const ModelConfig& config) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(ToProto(config), &text, options).ok()) return "{}";
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return text;
  NumbersFromStrings(j, false);
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace gpuhive::residency
