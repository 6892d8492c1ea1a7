#include "gpuhive/residency/model_config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <set>

#include "gpuhive/kernel.h"
#include "gpuhive/logging.h"
#include "gpuhive/units.h"
#include "model_config.pb.h"

namespace gpuhive::residency {
namespace {

namespace pb = ::gpuhive::config;

// Collects TextFormat errors and the "ignoring unknown field" warnings.
class Collector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first_error.empty()) first_error = fmt::format("{}:{}: {}", line + 1, column + 1, message);
  }
  void AddWarning(int line, int column, const std::string& message) override {
    warnings.push_back(fmt::format("{}:{}: {}", line + 1, column + 1, message));
  }
  std::string first_error;
  std::vector<std::string> warnings;
};

StatusOr<DataType> FromPbType(pb::DataType t, const std::string& tensor) {
  switch (t) {
    case pb::TYPE_BOOL: return DataType::kBool;
    case pb::TYPE_UINT8: return DataType::kUint8;
    case pb::TYPE_UINT16: return DataType::kUint16;
    case pb::TYPE_UINT32: return DataType::kUint32;
    case pb::TYPE_UINT64: return DataType::kUint64;
    case pb::TYPE_INT8: return DataType::kInt8;
    case pb::TYPE_INT16: return DataType::kInt16;
    case pb::TYPE_INT32: return DataType::kInt32;
    case pb::TYPE_INT64: return DataType::kInt64;
    case pb::TYPE_FP16: return DataType::kFloat16;
    case pb::TYPE_FP32: return DataType::kFloat32;
    case pb::TYPE_FP64: return DataType::kFloat64;
    case pb::TYPE_STRING: return DataType::kString;
    case pb::TYPE_BF16: return DataType::kBFloat16;
    default: break;
  }
  return InvalidArgument("tensor '{}': data_type missing or TYPE_INVALID", tensor);
}

QueuePolicyConfig FromPbQueue(const pb::ModelQueuePolicy& q) {
  QueuePolicyConfig c;
  c.timeout_action_delay = q.timeout_action() == pb::ModelQueuePolicy::DELAY;
  c.default_timeout_us = static_cast<int64_t>(q.default_timeout_microseconds());
  c.allow_timeout_override = q.allow_timeout_override();
  c.max_queue_size = static_cast<int>(q.max_queue_size());
  return c;
}

StatusOr<std::optional<int64_t>> ParseKeepAlive(const std::string& text) {
  if (text.empty()) return std::optional<int64_t>();
  if (text == "-1" || text == "forever" || (!text.empty() && text[0] == '-')) {
    return std::optional<int64_t>(kKeepAliveForever);
  }
  if (text == "0") return std::optional<int64_t>(0);
  // Ollama accepts a bare number of seconds.
  if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    // Up to ~292,000 years in microseconds; a larger number is an error, not an exception.
    int64_t seconds = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (ec != std::errc() || end != text.data() + text.size() || seconds > INT64_MAX / 1'000'000) {
      return InvalidArgument("gpuhive.keep_alive: {} seconds is out of range", text);
    }
    return std::optional<int64_t>(seconds * 1'000'000);
  }
  auto us = ParseDurationUs(text);
  if (!us.ok()) return InvalidArgument("gpuhive.keep_alive: {}", us.status().message());
  return std::optional<int64_t>(*us);
}

// Blanks out (keeping newlines, so positions in later errors stay right) every field the schema
// does not know, at any depth. TextFormat's own unknown-field skipping cannot skip lists of
// messages ("model_warmup [ { ... } ]"), which real Triton configs use.
class UnknownFieldStripper {
 public:
  explicit UnknownFieldStripper(std::string text) : s_(std::move(text)) {}

  // False on a lexical problem (left for TextFormat to report).
  bool Run(const google::protobuf::Descriptor* d) {
    Fields(d, '\0');
    return ok_;
  }
  std::string& text() { return s_; }
  std::vector<std::string>& skipped() { return skipped_; }

 private:
  void SkipSpace() {
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c == '#') {
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
      } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
        ++i_;
      } else {
        break;
      }
    }
  }
  static bool IdentChar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-' || c == '+';
  }
  // Skips one token: a string, an identifier/number, or one punctuation character.
  void SkipToken() {
    SkipSpace();
    if (i_ >= s_.size()) return;
    char c = s_[i_];
    if (c == '"' || c == '\'') {
      ++i_;
      while (i_ < s_.size() && s_[i_] != c) {
        if (s_[i_] == '\\') ++i_;
        ++i_;
      }
      if (i_ >= s_.size()) ok_ = false;
      ++i_;
    } else if (IdentChar(c)) {
      while (i_ < s_.size() && IdentChar(s_[i_])) ++i_;
    } else {
      ++i_;
    }
  }
  char Peek() {
    SkipSpace();
    return i_ < s_.size() ? s_[i_] : '\0';
  }
  // Skips a value: a bracketed group (balanced) or a scalar (adjacent strings concatenate).
  void SkipValue() {
    char c = Peek();
    if (c == '{' || c == '<' || c == '[') {
      int depth = 0;
      do {
        char t = Peek();
        if (t == '\0') {
          ok_ = false;
          return;
        }
        if (t == '{' || t == '<' || t == '[') ++depth;
        if (t == '}' || t == '>' || t == ']') --depth;
        SkipToken();
      } while (depth > 0 && ok_);
      return;
    }
    if (c == '"' || c == '\'') {
      while (Peek() == '"' || Peek() == '\'') SkipToken();
      return;
    }
    SkipToken();
  }
  void Message(const google::protobuf::Descriptor* d) {
    char open = Peek();
    if (open != '{' && open != '<') {
      SkipValue();
      return;
    }
    ++i_;
    Fields(d, open == '{' ? '}' : '>');
    if (Peek() == (open == '{' ? '}' : '>')) ++i_;
  }
  void Fields(const google::protobuf::Descriptor* d, char close) {
    while (ok_) {
      char c = Peek();
      if (c == '\0' || c == close) return;
      if (c == ',' || c == ';') {
        ++i_;
        continue;
      }
      size_t begin = i_;
      const google::protobuf::FieldDescriptor* f = nullptr;
      std::string name;
      if (c == '[') {
        SkipValue();  // extension or Any syntax: never part of our schema
        name = s_.substr(begin, i_ - begin);
      } else if (IdentChar(c)) {
        SkipToken();
        name = s_.substr(begin, i_ - begin);
        f = d->FindFieldByName(name);
      } else {
        ok_ = false;
        return;
      }
      if (Peek() == ':') ++i_;
      if (f != nullptr && f->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE) {
        if (Peek() == '[') {
          ++i_;
          while (ok_ && Peek() != ']' && Peek() != '\0') {
            if (Peek() == ',') {
              ++i_;
              continue;
            }
            Message(f->message_type());
          }
          if (Peek() == ']') ++i_;
        } else {
          Message(f->message_type());
        }
      } else {
        SkipValue();
      }
      if (f == nullptr && ok_) {
        skipped_.push_back(fmt::format("{}:{}: {}", LineOf(begin), ColumnOf(begin), name));
        for (size_t k = begin; k < i_; ++k) {
          if (s_[k] != '\n') s_[k] = ' ';
        }
      }
    }
  }
  int LineOf(size_t pos) const { return 1 + static_cast<int>(std::count(s_.begin(), s_.begin() + pos, '\n')); }
  int ColumnOf(size_t pos) const {
    size_t nl = s_.rfind('\n', pos == 0 ? 0 : pos - 1);
    return static_cast<int>(nl == std::string::npos || pos == 0 ? pos + 1 : pos - nl);
  }

  std::string s_;
  size_t i_ = 0;
  bool ok_ = true;
  std::vector<std::string> skipped_;
};

}  // namespace

StatusOr<ModelConfig> ParseModelConfig(std::string_view text, std::string_view source) {
  pb::ModelConfig m;
  UnknownFieldStripper stripper{std::string(text)};
  std::vector<std::string> skipped;
  std::string cleaned(text);
  if (stripper.Run(pb::ModelConfig::descriptor())) {
    cleaned = std::move(stripper.text());
    skipped = std::move(stripper.skipped());
  }
  google::protobuf::TextFormat::Parser parser;
  Collector collector;
  parser.RecordErrorsTo(&collector);
  parser.AllowUnknownField(true);
  if (!parser.ParseFromString(cleaned, &m)) {
    return InvalidArgument("{}: {}", source, collector.first_error.empty() ? "parse error" : collector.first_error);
  }
  ModelConfig c;
  for (auto& w : collector.warnings) skipped.push_back(std::move(w));
  for (auto& w : skipped) {
    // Listed, not logged: configs are parsed on every scan; the core warns once per model at load.
    GH_LOG_DEBUG("residency", "{}: {} (not in gpuhive's schema, skipped)", source, w);
    c.skipped_fields.push_back(std::move(w));
  }
  c.name = m.name();
  c.platform = m.platform();
  c.backend = m.backend();
  c.max_batch_size = m.max_batch_size();
  for (const auto& in : m.input()) {
    TensorConfig t;
    t.name = in.name();
    auto dt = FromPbType(in.data_type(), in.name());
    if (!dt.ok()) return dt.status().WithContext(source);
    t.dtype = *dt;
    t.dims.assign(in.dims().begin(), in.dims().end());
    t.optional = in.optional();
    c.inputs.push_back(std::move(t));
  }
  for (const auto& out : m.output()) {
    TensorConfig t;
    t.name = out.name();
    auto dt = FromPbType(out.data_type(), out.name());
    if (!dt.ok()) return dt.status().WithContext(source);
    t.dtype = *dt;
    t.dims.assign(out.dims().begin(), out.dims().end());
    t.label_filename = out.label_filename();
    c.outputs.push_back(std::move(t));
  }
  if (m.has_dynamic_batching()) {
    const auto& db = m.dynamic_batching();
    c.dynamic_batching = true;
    c.preferred_batch_sizes.assign(db.preferred_batch_size().begin(), db.preferred_batch_size().end());
    c.max_queue_delay_us = static_cast<int64_t>(db.max_queue_delay_microseconds());
    if (db.priority_levels() > 1'000'000 || db.default_priority_level() > 1'000'000) {
      return InvalidArgument("{}: dynamic_batching.priority_levels out of range", source);
    }
    c.priority_levels = static_cast<int>(db.priority_levels());
    c.default_priority_level = static_cast<int>(db.default_priority_level());
    if (db.has_default_queue_policy()) c.default_queue_policy = FromPbQueue(db.default_queue_policy());
    for (const auto& [level, q] : db.priority_queue_policy()) {
      if (level > 1'000'000) return InvalidArgument("{}: priority_queue_policy level {} out of range", source, level);
      c.priority_queue_policy[static_cast<int>(level)] = FromPbQueue(q);
    }
  }
  for (const auto& g : m.instance_group()) {
    InstanceGroupConfig ig;
    ig.name = g.name();
    ig.count = g.count() == 0 ? 1 : g.count();
    switch (g.kind()) {
      case pb::ModelInstanceGroup::KIND_GPU: ig.kind = InstanceKind::kGpu; break;
      case pb::ModelInstanceGroup::KIND_CPU: ig.kind = InstanceKind::kCpu; break;
      case pb::ModelInstanceGroup::KIND_MODEL: ig.kind = InstanceKind::kModel; break;
      default: ig.kind = InstanceKind::kAuto; break;
    }
    ig.gpus.assign(g.gpus().begin(), g.gpus().end());
    c.instance_groups.push_back(std::move(ig));
  }
  if (m.has_version_policy()) {
    const auto& vp = m.version_policy();
    if (vp.has_all()) {
      c.version_policy = VersionPolicyKind::kAll;
    } else if (vp.has_specific()) {
      c.version_policy = VersionPolicyKind::kSpecific;
      c.specific_versions.assign(vp.specific().versions().begin(), vp.specific().versions().end());
    } else if (vp.has_latest()) {
      c.version_policy = VersionPolicyKind::kLatest;
      c.latest_num_versions = static_cast<int>(std::min<uint32_t>(vp.latest().num_versions(), 1'000'000));
    }
  }
  if (!m.default_model_filename().empty()) c.default_model_filename = m.default_model_filename();
  for (const auto& [k, v] : m.parameters()) c.parameters[k] = v.string_value();
  for (const auto& w : m.model_warmup()) {
    WarmupConfig wc;
    wc.name = w.name();
    wc.batch_size = static_cast<int>(std::min<uint32_t>(w.batch_size(), 1'000'000));
    wc.count = static_cast<int>(std::min<uint32_t>(std::max<uint32_t>(w.count(), 1), 1'000));
    for (const auto& [name, in] : w.inputs()) {
      WarmupInputConfig wi;
      wi.name = name;
      auto dt = FromPbType(in.data_type(), "model_warmup '" + w.name() + "' input '" + name + "'");
      if (!dt.ok()) return dt.status().WithContext(source);
      wi.dtype = *dt;
      wi.dims.assign(in.dims().begin(), in.dims().end());
      wi.random_data = in.random_data();
      wi.input_data_file = in.input_data_file();
      wc.inputs.push_back(std::move(wi));
    }
    c.warmups.push_back(std::move(wc));
  }
  if (m.has_gpuhive()) {
    const auto& g = m.gpuhive();
    if (!g.memory_limit().empty()) {
      auto bytes = ParseBytes(g.memory_limit());
      if (!bytes.ok()) return InvalidArgument("{}: gpuhive.memory_limit: {}", source, bytes.status().message());
      c.memory_limit_bytes = *bytes;
    }
    if (g.memory_limit_bytes() != 0) {
      if (!g.memory_limit().empty() && c.memory_limit_bytes != g.memory_limit_bytes()) {
        return InvalidArgument("{}: gpuhive.memory_limit '{}' and memory_limit_bytes {} disagree", source,
                               g.memory_limit(), g.memory_limit_bytes());
      }
      c.memory_limit_bytes = g.memory_limit_bytes();
    }
    if (!g.tenant().empty()) c.tenant = g.tenant();
    c.priority = g.priority();
    if (!g.precision().empty()) c.precision = g.precision();
    if (!g.cpu_convolution().empty()) c.cpu_convolution = g.cpu_convolution();
    c.preload = g.preload();
    auto ka = ParseKeepAlive(g.keep_alive());
    if (!ka.ok()) return ka.status().WithContext(source);
    c.keep_alive_us = *ka;
  }
  RETURN_IF_ERROR(ValidateModelConfig(c).WithContext(source));
  return c;
}

StatusOr<std::string> RenameModelConfigText(std::string_view text, std::string_view name, std::string_view source) {
  pb::ModelConfig m;
  UnknownFieldStripper stripper{std::string(text)};
  std::string cleaned(text);
  if (stripper.Run(pb::ModelConfig::descriptor())) cleaned = std::move(stripper.text());
  google::protobuf::TextFormat::Parser parser;
  Collector collector;
  parser.RecordErrorsTo(&collector);
  parser.AllowUnknownField(true);
  if (!parser.ParseFromString(cleaned, &m)) {
    return InvalidArgument("{}: {}", source, collector.first_error.empty() ? "parse error" : collector.first_error);
  }
  m.set_name(std::string(name));
  std::string out;
  if (!google::protobuf::TextFormat::PrintToString(m, &out)) return Internal("{}: cannot print the config", source);
  return out;
}

Status ValidateModelConfig(const ModelConfig& c) {
  if (c.name.empty()) return InvalidArgument("model config has no name");
  if (c.name.find('/') != std::string::npos || c.name == "." || c.name == "..") {
    return InvalidArgument("model name '{}' is not a valid directory name", c.name);
  }
  static const std::set<std::string> kPlatforms = {"", "onnxruntime_onnx"};
  static const std::set<std::string> kBackends = {"", "onnxruntime", "gpuhive"};
  if (!kPlatforms.count(c.platform)) {
    return InvalidArgument("model '{}': platform '{}' is not supported (gpuhive runs ONNX models: "
                           "onnxruntime_onnx)", c.name, c.platform);
  }
  if (!kBackends.count(c.backend)) {
    return InvalidArgument("model '{}': backend '{}' is not supported (onnxruntime or gpuhive)", c.name, c.backend);
  }
  if (c.max_batch_size < 0) return InvalidArgument("model '{}': max_batch_size {} < 0", c.name, c.max_batch_size);
  for (const auto* list : {&c.inputs, &c.outputs}) {
    const char* what = list == &c.inputs ? "input" : "output";
    std::set<std::string> seen;
    for (const auto& t : *list) {
      if (t.name.empty()) return InvalidArgument("model '{}': an {} has no name", c.name, what);
      if (!seen.insert(t.name).second) {
        return InvalidArgument("model '{}': {} '{}' appears twice", c.name, what, t.name);
      }
      if (t.dtype == DataType::kUndefined) {
        return InvalidArgument("model '{}': {} '{}' has no data_type", c.name, what, t.name);
      }
      for (int64_t d : t.dims) {
        if (d < -1) return InvalidArgument("model '{}': {} '{}' has dim {} (must be >= -1)", c.name, what, t.name, d);
      }
    }
  }
  for (int b : c.preferred_batch_sizes) {
    if (b < 1 || (c.max_batch_size > 0 && b > c.max_batch_size)) {
      return InvalidArgument("model '{}': preferred_batch_size {} outside 1..max_batch_size {}", c.name, b,
                             c.max_batch_size);
    }
  }
  if (c.dynamic_batching && c.max_batch_size == 0 && !c.preferred_batch_sizes.empty()) {
    return InvalidArgument("model '{}': dynamic_batching with preferred sizes needs max_batch_size > 0", c.name);
  }
  if (c.priority_levels > 0) {
    if (c.default_priority_level < 1 || c.default_priority_level > c.priority_levels) {
      return InvalidArgument("model '{}': default_priority_level {} outside 1..priority_levels {}", c.name,
                             c.default_priority_level, c.priority_levels);
    }
    for (const auto& [level, q] : c.priority_queue_policy) {
      if (level < 1 || level > c.priority_levels) {
        return InvalidArgument("model '{}': priority_queue_policy level {} outside 1..{}", c.name, level,
                               c.priority_levels);
      }
    }
  } else if (!c.priority_queue_policy.empty()) {
    return InvalidArgument("model '{}': priority_queue_policy without priority_levels", c.name);
  }
  for (const auto& g : c.instance_groups) {
    if (g.count < 1) return InvalidArgument("model '{}': instance_group count {} < 1", c.name, g.count);
    for (int gpu : g.gpus) {
      if (gpu < 0) return InvalidArgument("model '{}': instance_group gpu {} < 0", c.name, gpu);
    }
  }
  if (c.version_policy == VersionPolicyKind::kLatest && c.latest_num_versions < 1) {
    return InvalidArgument("model '{}': version_policy latest num_versions must be >= 1", c.name);
  }
  if (c.version_policy == VersionPolicyKind::kSpecific) {
    if (c.specific_versions.empty()) return InvalidArgument("model '{}': version_policy specific lists no versions", c.name);
    for (int64_t v : c.specific_versions) {
      if (v < 1) return InvalidArgument("model '{}': version {} < 1", c.name, v);
    }
  }
  static const std::set<std::string> kPrecisions = {"fp32", "tf32", "fp16", "bf16", "int8"};
  if (!kPrecisions.count(c.precision)) {
    return InvalidArgument("model '{}': gpuhive.precision '{}' is not one of fp32, tf32, fp16, bf16, int8", c.name,
                           c.precision);
  }
  if (!ParseConvAlgorithm(c.cpu_convolution)) {
    return InvalidArgument("model '{}': gpuhive.cpu_convolution '{}' is not one of auto, direct, winograd", c.name,
                           c.cpu_convolution);
  }
  if (c.priority < 0) return InvalidArgument("model '{}': gpuhive.priority {} < 0", c.name, c.priority);
  if (c.keep_alive_us && *c.keep_alive_us < kKeepAliveForever) {
    return InvalidArgument("model '{}': gpuhive.keep_alive must not be negative", c.name);
  }
  return Status::OK();
}

ModelConfig DeriveModelConfig(const std::string& name, const ir::Model& model) {
  ModelConfig c;
  c.name = name;
  c.platform = "onnxruntime_onnx";
  c.derived = true;
  auto convert = [](const ir::Value* v) {
    TensorConfig t;
    t.name = v->name;
    t.dtype = v->dtype;
    if (v->shape) {
      for (const auto& d : *v->shape) t.dims.push_back(d.is_known() ? d.value : -1);
    }
    return t;
  };
  if (model.graph) {
    for (const ir::Value* v : model.graph->inputs()) {
      if (!v->is_constant()) c.inputs.push_back(convert(v));
    }
    for (const ir::Value* v : model.graph->outputs()) c.outputs.push_back(convert(v));
  }
  return c;
}

std::vector<int64_t> SelectVersions(const ModelConfig& config, std::vector<int64_t> available) {
  std::sort(available.begin(), available.end());
  available.erase(std::unique(available.begin(), available.end()), available.end());
  switch (config.version_policy) {
    case VersionPolicyKind::kAll:
      return available;
    case VersionPolicyKind::kSpecific: {
      std::vector<int64_t> out;
      for (int64_t v : available) {
        if (std::count(config.specific_versions.begin(), config.specific_versions.end(), v)) out.push_back(v);
      }
      return out;
    }
    case VersionPolicyKind::kLatest:
    default: {
      size_t n = std::min<size_t>(available.size(), static_cast<size_t>(std::max(1, config.latest_num_versions)));
      return std::vector<int64_t>(available.end() - static_cast<std::ptrdiff_t>(n), available.end());
    }
  }
}

}  // namespace gpuhive::residency
