#include "server/kserve_json.h"

#include "server/classification.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "gpuhive/utf8.h"
#include "server/binary_tensor.h"
#include "server/request_validation.h"

namespace gpuhive::server {

namespace dom = simdjson::dom;

namespace {

dom::parser& ThreadParser() {
  thread_local dom::parser parser;
  return parser;
}

std::string_view TypeName(dom::element_type t) {
  switch (t) {
    case dom::element_type::ARRAY: return "array";
    case dom::element_type::OBJECT: return "object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE: return "number";
    case dom::element_type::STRING: return "string";
    case dom::element_type::BOOL: return "bool";
    case dom::element_type::NULL_VALUE: return "null";
  }
  return "value";
}

// Request-level and tensor-level parameters we understand.
struct Params {
  std::optional<int64_t> priority, timeout, binary_data_size, classification;
  std::optional<bool> binary_data, binary_data_output;
  std::optional<std::string> tenant;
  std::optional<std::string> shm_region;
  std::optional<int64_t> shm_offset, shm_byte_size;
};

Status ParseParams(dom::element e, std::string_view where, Params* p) {
  dom::object obj;
  if (e.get_object().get(obj)) return InvalidArgument("{}: 'parameters' must be an object", where);
  for (dom::key_value_pair kv : obj) {
    const std::string_view key = kv.key;
    const dom::element value = kv.value;
    auto need_int = [&](std::optional<int64_t>* out) -> Status {
      int64_t v;
      if (value.get_int64().get(v))
        return InvalidArgument("{}: parameter '{}' must be an integer", where, key);
      *out = v;
      return Status::OK();
    };
    auto need_bool = [&](std::optional<bool>* out) -> Status {
      bool v;
      if (value.get_bool().get(v))
        return InvalidArgument("{}: parameter '{}' must be a boolean", where, key);
      *out = v;
      return Status::OK();
    };
    if (key == "priority") {
      RETURN_IF_ERROR(need_int(&p->priority));
    } else if (key == "timeout") {
      RETURN_IF_ERROR(need_int(&p->timeout));
    } else if (key == "tenant") {
      std::string_view t;
      if (value.get_string().get(t) || t.empty() || t.size() > 128)
        return InvalidArgument("{}: parameter 'tenant' must be a non-empty string of at most 128 bytes", where);
      p->tenant = std::string(t);
    } else if (key == "binary_data_size") {
      RETURN_IF_ERROR(need_int(&p->binary_data_size));
    } else if (key == "binary_data") {
      RETURN_IF_ERROR(need_bool(&p->binary_data));
    } else if (key == "binary_data_output") {
      RETURN_IF_ERROR(need_bool(&p->binary_data_output));
    } else if (key == "shared_memory_region") {
      std::string_view region;
      if (value.get_string().get(region) || region.empty()) {
        return InvalidArgument("{}: parameter 'shared_memory_region' must be a non-empty string", where);
      }
      p->shm_region = std::string(region);
    } else if (key == "shared_memory_offset" || key == "shared_memory_byte_size") {
      std::optional<int64_t>& field = key == "shared_memory_offset" ? p->shm_offset : p->shm_byte_size;
      RETURN_IF_ERROR(need_int(&field));
      if (*field < 0) return InvalidArgument("{}: parameter '{}' must be >= 0", where, key);
    } else if (key == "classification" || key == "class_count") {
      RETURN_IF_ERROR(need_int(&p->classification));
      if (*p->classification < 1 || *p->classification > 1'000'000) {
        return InvalidArgument("{}: parameter '{}' must be between 1 and 1000000", where, key);
      }
    }
    // Other parameters (e.g. sequence ids, headers forwarded by proxies) are ignored, as Triton does.
  }
  return Status::OK();
}

// Flattens (possibly nested) "data" into dst, checking each element's JSON type and range.
template <typename T>
Status AppendValues(dom::element e, const std::string& name, std::vector<T>* dst, int64_t limit,
                    int depth) {
  if (depth > 32) return InvalidArgument("input '{}': 'data' is nested too deeply", name);
  if (e.type() == dom::element_type::ARRAY) {
    dom::array arr;
    if (e.get_array().get(arr)) return InvalidArgument("input '{}': bad 'data' array", name);
    for (dom::element child : arr) RETURN_IF_ERROR(AppendValues(child, name, dst, limit, depth + 1));
    return Status::OK();
  }
  if (static_cast<int64_t>(dst->size()) >= limit)
    return InvalidArgument("input '{}': 'data' has more elements than its shape", name);
  if constexpr (std::is_same_v<T, bool>) {
    bool b;
    if (e.get_bool().get(b))
      return InvalidArgument("input '{}': expected a boolean, got {}", name, TypeName(e.type()));
    dst->push_back(b);
  } else if constexpr (std::is_floating_point_v<T>) {
    double d;
    if (e.get_double().get(d))
      return InvalidArgument("input '{}': expected a number, got {}", name, TypeName(e.type()));
    dst->push_back(static_cast<T>(d));
  } else if constexpr (std::is_signed_v<T>) {
    int64_t v;
    if (e.get_int64().get(v))
      return InvalidArgument("input '{}': expected an integer, got {}", name,
                             e.type() == dom::element_type::DOUBLE ? "a fraction or out of range" : TypeName(e.type()));
    if constexpr (sizeof(T) < sizeof(int64_t)) {
      if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max())
        return InvalidArgument("input '{}': value {} out of range for its datatype", name, v);
    }
    dst->push_back(static_cast<T>(v));
  } else {
    uint64_t v;
    if (e.get_uint64().get(v))
      return InvalidArgument("input '{}': expected a non-negative integer, got {}", name,
                             TypeName(e.type()));
    if constexpr (sizeof(T) < sizeof(uint64_t)) {
      if (v > std::numeric_limits<T>::max())
        return InvalidArgument("input '{}': value {} out of range for its datatype", name, v);
    }
    dst->push_back(static_cast<T>(v));
  }
  return Status::OK();
}

template <typename T, typename Stored = T>
StatusOr<Tensor> TensorFromJson(dom::element data, const std::string& name, DataType dtype,
                                const Shape& shape, int64_t count) {
  std::vector<T> values;
  values.reserve(static_cast<size_t>(std::min<int64_t>(count, 1 << 20)));
  RETURN_IF_ERROR(AppendValues<T>(data, name, &values, count, 0));
  if (static_cast<int64_t>(values.size()) != count)
    return InvalidArgument("input '{}': shape {} needs {} elements, 'data' has {}", name,
                           ShapeToString(shape), count, values.size());
  ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(dtype, shape));
  Stored* out = t.as<Stored>();
  for (size_t i = 0; i < values.size(); ++i) {
    if constexpr (std::is_same_v<T, bool>) {
      out[i] = values[i] ? 1 : 0;
    } else if (dtype == DataType::kFloat16) {
      out[i] = static_cast<Stored>(FloatToHalf(static_cast<float>(values[i])));
    } else if (dtype == DataType::kBFloat16) {
      out[i] = static_cast<Stored>(FloatToBFloat16(static_cast<float>(values[i])));
    } else {
      out[i] = static_cast<Stored>(values[i]);
    }
  }
  return t;
}

StatusOr<Tensor> DecodeJsonData(dom::element data, const std::string& name, DataType dtype,
                                const Shape& shape, int64_t count) {
  switch (dtype) {
    case DataType::kBool: return TensorFromJson<bool, uint8_t>(data, name, dtype, shape, count);
    case DataType::kUint8: return TensorFromJson<uint8_t>(data, name, dtype, shape, count);
    case DataType::kUint16: return TensorFromJson<uint16_t>(data, name, dtype, shape, count);
    case DataType::kUint32: return TensorFromJson<uint32_t>(data, name, dtype, shape, count);
    case DataType::kUint64: return TensorFromJson<uint64_t>(data, name, dtype, shape, count);
    case DataType::kInt8: return TensorFromJson<int8_t>(data, name, dtype, shape, count);
    case DataType::kInt16: return TensorFromJson<int16_t>(data, name, dtype, shape, count);
    case DataType::kInt32: return TensorFromJson<int32_t>(data, name, dtype, shape, count);
    case DataType::kInt64: return TensorFromJson<int64_t>(data, name, dtype, shape, count);
    case DataType::kFloat32: return TensorFromJson<float>(data, name, dtype, shape, count);
    case DataType::kFloat64: return TensorFromJson<double>(data, name, dtype, shape, count);
    case DataType::kFloat16:
    case DataType::kBFloat16: return TensorFromJson<float, uint16_t>(data, name, dtype, shape, count);
    default: return Unimplemented("input '{}': datatype not supported in JSON", name);
  }
}

StatusOr<Shape> ParseShape(dom::element e, const std::string& name) {
  dom::array arr;
  if (e.get_array().get(arr)) return InvalidArgument("input '{}': 'shape' must be an array", name);
  Shape shape;
  for (dom::element d : arr) {
    int64_t v;
    if (d.get_int64().get(v) || v < 0)
      return InvalidArgument("input '{}': 'shape' must hold non-negative integers", name);
    shape.push_back(v);
  }
  return shape;
}

}  // namespace

StatusOr<ParsedInferRequest> ParseInferRequest(std::string_view body,
                                               std::optional<size_t> header_length,
                                               const ModelMetadata& meta,
                                               const SharedMemoryRegistry* shm) {
  size_t json_len = body.size();
  if (header_length) {
    if (*header_length > body.size())
      return InvalidArgument("Inference-Header-Content-Length {} exceeds the body size {}",
                             *header_length, body.size());
    json_len = *header_length;
  }
  dom::element doc;
  auto err = ThreadParser().parse(body.data(), json_len, true).get(doc);
  if (err) return InvalidArgument("malformed JSON request: {}", simdjson::error_message(err));
  dom::object root;
  if (doc.get_object().get(root)) return InvalidArgument("request must be a JSON object");

  ParsedInferRequest out;
  out.request = std::make_unique<InferenceRequest>();
  InferenceRequest& req = *out.request;
  req.model_name = meta.name;
  std::string_view sv;
  dom::element e;
  if (!root["id"].get(e)) {
    if (e.get_string().get(sv)) return InvalidArgument("'id' must be a string");
    req.id = std::string(sv);
  }
  Params rp;
  if (!root["parameters"].get(e)) RETURN_IF_ERROR(ParseParams(e, "request", &rp));
  if (rp.priority) { ASSIGN_OR_RETURN(req.priority, PriorityFromTriton(*rp.priority)); }
  if (rp.tenant) req.tenant = *rp.tenant;
  if (rp.timeout) { ASSIGN_OR_RETURN(req.deadline_ns, DeadlineFromTimeoutUs(*rp.timeout)); }
  out.binary_output_default = rp.binary_data_output.value_or(false);

  dom::array inputs;
  if (root["inputs"].get(e) || e.get_array().get(inputs))
    return InvalidArgument("request needs an 'inputs' array");
  size_t binary_offset = json_len;
  std::set<std::string> seen;
  for (dom::element in : inputs) {
    dom::object obj;
    if (in.get_object().get(obj)) return InvalidArgument("each input must be an object");
    if (obj["name"].get(e) || e.get_string().get(sv)) return InvalidArgument("input without a 'name'");
    std::string name(sv);
    if (!seen.insert(name).second) return InvalidArgument("duplicate input '{}'", name);
    if (obj["datatype"].get(e) || e.get_string().get(sv))
      return InvalidArgument("input '{}': missing 'datatype'", name);
    ASSIGN_OR_RETURN(DataType dtype, ParseKServeDatatype(sv));
    if (obj["shape"].get(e)) return InvalidArgument("input '{}': missing 'shape'", name);
    ASSIGN_OR_RETURN(Shape shape, ParseShape(e, name));
    RETURN_IF_ERROR(ValidateInput(meta, name, dtype, shape));
    ASSIGN_OR_RETURN(int64_t count, CheckedElementCount(name, shape));
    Params ip;
    if (!obj["parameters"].get(e)) RETURN_IF_ERROR(ParseParams(e, "input '" + name + "'", &ip));
    dom::element data;
    bool has_data = !obj["data"].get(data);
    Tensor t;
    if (ip.shm_region) {
      if (has_data || ip.binary_data_size) {
        return InvalidArgument("input '{}': shared memory and 'data' or binary_data_size together", name);
      }
      if (shm == nullptr) return InvalidArgument("input '{}': shared memory is not enabled on this endpoint", name);
      ASSIGN_OR_RETURN(auto region, shm->Find(*ip.shm_region));
      const uint64_t want = static_cast<uint64_t>(count) * DataTypeSize(dtype);
      if (!ip.shm_byte_size || static_cast<uint64_t>(*ip.shm_byte_size) != want) {
        return InvalidArgument("input '{}': shared_memory_byte_size must be {} for shape {} of {}", name, want,
                               ShapeToString(shape), DataTypeKServeName(dtype));
      }
      ASSIGN_OR_RETURN(char* src, region->Window(static_cast<uint64_t>(ip.shm_offset.value_or(0)), want));
      ASSIGN_OR_RETURN(t, TensorFromBinary(name, dtype, shape, src, want));
      req.inputs.push_back({name, std::move(t)});
      continue;
    }
    if (ip.binary_data_size) {
      if (has_data) return InvalidArgument("input '{}': both 'data' and binary_data_size", name);
      if (!header_length)
        return InvalidArgument("input '{}': binary_data_size without Inference-Header-Content-Length",
                               name);
      if (*ip.binary_data_size < 0 ||
          static_cast<uint64_t>(*ip.binary_data_size) > body.size() - binary_offset)
        return InvalidArgument("input '{}': binary_data_size {} exceeds the {} bytes left in the body",
                               name, *ip.binary_data_size, body.size() - binary_offset);
      size_t n = static_cast<size_t>(*ip.binary_data_size);
      ASSIGN_OR_RETURN(t, TensorFromBinary(name, dtype, shape, body.data() + binary_offset, n));
      binary_offset += n;
    } else {
      if (!has_data) return InvalidArgument("input '{}': no 'data' and no binary_data_size", name);
      ASSIGN_OR_RETURN(t, DecodeJsonData(data, name, dtype, shape, count));
    }
    req.inputs.push_back({name, std::move(t)});
  }
  if (binary_offset != body.size())
    return InvalidArgument("{} bytes of binary data after the inputs are not claimed by any input",
                           body.size() - binary_offset);
  RETURN_IF_ERROR(CheckAllInputsPresent(meta, req.inputs));

  if (!root["outputs"].get(e)) {
    dom::array outs;
    if (e.get_array().get(outs)) return InvalidArgument("'outputs' must be an array");
    std::set<std::string> seen_out;
    for (dom::element o : outs) {
      dom::object obj;
      if (o.get_object().get(obj)) return InvalidArgument("each output must be an object");
      if (obj["name"].get(e) || e.get_string().get(sv)) return InvalidArgument("output without a 'name'");
      OutputRequest r{std::string(sv), std::nullopt, 0, meta.max_batch_size > 0};
      RETURN_IF_ERROR(ValidateRequestedOutput(meta, r.name));
      if (!seen_out.insert(r.name).second) return InvalidArgument("duplicate output '{}'", r.name);
      Params op;
      if (!obj["parameters"].get(e)) RETURN_IF_ERROR(ParseParams(e, "output '" + r.name + "'", &op));
      r.binary = op.binary_data;
      if (op.shm_region) {
        if (shm == nullptr) return InvalidArgument("output '{}': shared memory is not enabled on this endpoint", r.name);
        if (!op.shm_byte_size) return InvalidArgument("output '{}': shared_memory_byte_size is required", r.name);
        ASSIGN_OR_RETURN(r.shm, shm->Find(*op.shm_region));
        r.shm_offset = static_cast<uint64_t>(op.shm_offset.value_or(0));
        r.shm_byte_size = static_cast<uint64_t>(*op.shm_byte_size);
        RETURN_IF_ERROR(r.shm->Window(r.shm_offset, r.shm_byte_size).status());
      }
      if (op.classification) {
        for (const auto& info : meta.outputs) {
          if (info.name != r.name) continue;
          if (info.dtype == DataType::kString || info.dtype == DataType::kBool) {
            return InvalidArgument("output '{}': classification needs a numeric output, it is {}", r.name,
                                   DataTypeKServeName(info.dtype));
          }
          r.labels = info.labels;
        }
        r.class_count = *op.classification;
      }
      req.requested_outputs.push_back(r.name);
      out.outputs.push_back(std::move(r));
    }
  }
  return out;
}

std::string JsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      // JSON is UTF-8: a byte that is not part of a well-formed sequence (a file name, a
      // percent-decoded path echoed in an error) becomes U+FFFD instead of breaking the document.
      size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        out += "\\ufffd";
      } else {
        out.append(s.substr(i, n));
        i += n - 1;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

std::string ErrorJson(std::string_view message) {
  return "{\"error\":\"" + JsonEscape(message) + "\"}";
}

namespace {

void AppendShape(const Shape& s, std::string* out) {
  *out += '[';
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) *out += ',';
    *out += std::to_string(s[i]);
  }
  *out += ']';
}

template <typename T>
void AppendNumber(T v, std::string* out) {
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(v)) {
      *out += "null";  // JSON has no NaN/Inf; clients that need them use binary outputs
      return;
    }
  }
  fmt::format_to(std::back_inserter(*out), "{}", v);
}

void AppendJsonData(const Tensor& t, std::string* out) {
  *out += '[';
  int64_t n = t.num_elements();
  for (int64_t i = 0; i < n; ++i) {
    if (i) *out += ',';
    switch (t.dtype()) {
      case DataType::kBool: *out += t.as<uint8_t>()[i] ? "true" : "false"; break;
      case DataType::kUint8: AppendNumber(t.as<uint8_t>()[i], out); break;
      case DataType::kUint16: AppendNumber(t.as<uint16_t>()[i], out); break;
      case DataType::kUint32: AppendNumber(t.as<uint32_t>()[i], out); break;
      case DataType::kUint64: AppendNumber(t.as<uint64_t>()[i], out); break;
      case DataType::kInt8: AppendNumber(static_cast<int>(t.as<int8_t>()[i]), out); break;
      case DataType::kInt16: AppendNumber(t.as<int16_t>()[i], out); break;
      case DataType::kInt32: AppendNumber(t.as<int32_t>()[i], out); break;
      case DataType::kInt64: AppendNumber(t.as<int64_t>()[i], out); break;
      case DataType::kFloat32: AppendNumber(t.as<float>()[i], out); break;
      case DataType::kFloat64: AppendNumber(t.as<double>()[i], out); break;
      case DataType::kFloat16: AppendNumber(HalfToFloat(t.as<uint16_t>()[i]), out); break;
      case DataType::kBFloat16: AppendNumber(BFloat16ToFloat(t.as<uint16_t>()[i]), out); break;
      default: *out += "null"; break;
    }
  }
  *out += ']';
}

}  // namespace

EncodedInferResponse EncodeInferResponse(const InferenceResponse& r,
                                         const std::vector<OutputRequest>& outputs,
                                         bool binary_default) {
  EncodedInferResponse enc;
  std::string& s = enc.body;
  s.reserve(256);
  s += "{\"model_name\":\"" + JsonEscape(r.model_name) + "\"";
  if (!r.model_version.empty()) s += ",\"model_version\":\"" + JsonEscape(r.model_version) + "\"";
  if (!r.request_id.empty()) s += ",\"id\":\"" + JsonEscape(r.request_id) + "\"";
  s += ",\"outputs\":[";
  std::vector<const Tensor*> binary;
  std::vector<std::string> binary_bytes;  // classification outputs' BYTES, in the order of `binary`
  std::vector<size_t> bytes_at;           // index into `binary` of each such output
  for (size_t i = 0; i < r.outputs.size(); ++i) {
    const NamedTensor& o = r.outputs[i];
    bool as_binary = binary_default;
    const OutputRequest* asked = nullptr;
    for (const auto& req : outputs) {
      if (req.name == o.name) asked = &req;
      if (req.name == o.name && req.binary) as_binary = *req.binary;
    }
    if (i) s += ',';
    if (asked != nullptr && asked->shm != nullptr) {
      std::string bytes;
      const char* src = static_cast<const char*>(o.tensor.data());
      size_t n = o.tensor.bytes();
      std::string dtype(DataTypeKServeName(o.tensor.dtype()));
      Shape shape = o.tensor.shape();
      if (asked->class_count > 0) {
        auto classified = Classify(o.tensor, asked->class_count, asked->batched, asked->labels.get());
        if (classified.ok()) {
          bytes = EncodeBytesElements(classified->entries);
          shape = classified->shape;
        }
        src = bytes.data();
        n = bytes.size();
        dtype = "BYTES";
      }
      if (n > asked->shm_byte_size) {
        enc.status = InvalidArgument("output '{}' has {} bytes, its shared memory window holds {}", o.name, n,
                                     asked->shm_byte_size);
        return enc;
      }
      auto dst = asked->shm->Window(asked->shm_offset, n);
      if (!dst.ok()) {
        enc.status = dst.status();
        return enc;
      }
      std::memcpy(*dst, src, n);
      s += "{\"name\":\"" + JsonEscape(o.name) + "\",\"datatype\":\"" + dtype + "\",\"shape\":";
      AppendShape(shape, &s);
      s += fmt::format(",\"parameters\":{{\"shared_memory_region\":\"{}\",\"shared_memory_byte_size\":{}}}}}",
                       JsonEscape(asked->shm->info().name), n);
      continue;
    }
    if (asked != nullptr && asked->class_count > 0) {
      // Validated when parsed; a tensor that still cannot be ranked is reported in its place.
      auto classified = Classify(o.tensor, asked->class_count, asked->batched, asked->labels.get());
      s += "{\"name\":\"" + JsonEscape(o.name) + "\",\"datatype\":\"BYTES\",\"shape\":";
      AppendShape(classified.ok() ? classified->shape : Shape{0}, &s);
      const std::vector<std::string> entries = classified.ok() ? classified->entries : std::vector<std::string>{};
      if (as_binary) {
        binary_bytes.push_back(EncodeBytesElements(entries));
        s += fmt::format(",\"parameters\":{{\"binary_data_size\":{}}}}}", binary_bytes.back().size());
        bytes_at.push_back(binary.size());
        binary.push_back(nullptr);
      } else {
        s += ",\"data\":[";
        for (size_t e = 0; e < entries.size(); ++e) s += (e ? ",\"" : "\"") + JsonEscape(entries[e]) + "\"";
        s += "]}";
      }
      continue;
    }
    s += "{\"name\":\"" + JsonEscape(o.name) + "\",\"datatype\":\"";
    s += DataTypeKServeName(o.tensor.dtype());
    s += "\",\"shape\":";
    AppendShape(o.tensor.shape(), &s);
    if (as_binary) {
      s += fmt::format(",\"parameters\":{{\"binary_data_size\":{}}}}}", o.tensor.bytes());
      binary.push_back(&o.tensor);
    } else {
      s += ",\"data\":";
      AppendJsonData(o.tensor, &s);
      s += '}';
    }
  }
  s += "]}";
  if (!binary.empty()) {
    enc.header_length = s.size();
    size_t total = s.size();
    for (const Tensor* t : binary) total += t != nullptr ? t->bytes() : 0;
    for (const auto& b : binary_bytes) total += b.size();
    s.reserve(total);
    size_t next_bytes = 0;
    for (size_t i = 0; i < binary.size(); ++i) {
      if (binary[i] != nullptr) {
        s.append(static_cast<const char*>(binary[i]->data()), binary[i]->bytes());
      } else if (next_bytes < binary_bytes.size() && bytes_at[next_bytes] == i) {
        s += binary_bytes[next_bytes++];
      }
    }
  }
  return enc;
}

std::string EncodeServerMetadata(const ServerMetadata& m) {
  std::string s = "{\"name\":\"" + JsonEscape(m.name) + "\",\"version\":\"" + JsonEscape(m.version) +
                  "\",\"extensions\":[";
  for (size_t i = 0; i < m.extensions.size(); ++i)
    s += (i ? ",\"" : "\"") + JsonEscape(m.extensions[i]) + "\"";
  return s + "]}";
}

static void AppendTensorInfos(const std::vector<TensorInfo>& v, std::string* s) {
  *s += '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) *s += ',';
    *s += "{\"name\":\"" + JsonEscape(v[i].name) + "\",\"datatype\":\"";
    *s += DataTypeKServeName(v[i].dtype);
    *s += "\",\"shape\":";
    AppendShape(v[i].shape, s);
    *s += '}';
  }
  *s += ']';
}

std::string EncodeModelMetadata(const ModelMetadata& m) {
  std::string s = "{\"name\":\"" + JsonEscape(m.name) + "\",\"versions\":[";
  for (size_t i = 0; i < m.versions.size(); ++i)
    s += (i ? ",\"" : "\"") + JsonEscape(m.versions[i]) + "\"";
  s += "],\"platform\":\"" + JsonEscape(m.platform) + "\",\"inputs\":";
  AppendTensorInfos(m.inputs, &s);
  s += ",\"outputs\":";
  AppendTensorInfos(m.outputs, &s);
  return s + "}";
}

std::string EncodeRepositoryIndex(const std::vector<RepositoryEntry>& entries) {
  std::string s = "[";
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    if (i) s += ',';
    s += "{\"name\":\"" + JsonEscape(e.name) + "\",\"version\":\"" + JsonEscape(e.version) +
         "\",\"state\":\"" + JsonEscape(e.state) + "\"";
    if (!e.reason.empty()) s += ",\"reason\":\"" + JsonEscape(e.reason) + "\"";
    s += '}';
  }
  return s + "]";
}

StatusOr<bool> ParseRepositoryIndexRequest(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return false;
  dom::element doc;
  if (ThreadParser().parse(body.data(), body.size(), true).get(doc))
    return InvalidArgument("malformed JSON in repository index request");
  dom::object obj;
  if (doc.get_object().get(obj)) return InvalidArgument("repository index request must be an object");
  dom::element e;
  bool ready = false;
  if (!obj["ready"].get(e) && e.get_bool().get(ready))
    return InvalidArgument("'ready' must be a boolean");
  return ready;
}

}  // namespace gpuhive::server
