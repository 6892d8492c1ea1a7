#include "server/grpc_convert.h"

#include <cstring>
#include <limits>
#include <optional>
#include <set>
#include <type_traits>

#include "server/binary_tensor.h"
#include "server/classification.h"
#include "server/request_validation.h"

namespace gpuhive::server {
namespace {

StatusOr<int64_t> IntParam(const inference::InferParameter& p, const std::string& name) {
  switch (p.parameter_choice_case()) {
    case inference::InferParameter::kInt64Param: return p.int64_param();
    case inference::InferParameter::kUint64Param:
      if (p.uint64_param() > static_cast<uint64_t>(INT64_MAX))
        return InvalidArgument("parameter '{}' is out of range", name);
      return static_cast<int64_t>(p.uint64_param());
    default: return InvalidArgument("parameter '{}' must be an integer", name);
  }
}

template <typename Src, typename Dst>
StatusOr<Tensor> FromTyped(const google::protobuf::RepeatedField<Src>& src, const std::string& name,
                           DataType dtype, const Shape& shape, int64_t count) {
  if (src.size() != count)
    return InvalidArgument("input '{}': shape {} needs {} elements, contents has {}", name,
                           ShapeToString(shape), count, src.size());
  ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(dtype, shape));
  Dst* out = t.as<Dst>();
  for (int64_t i = 0; i < count; ++i) {
    Src v = src.Get(static_cast<int>(i));
    if constexpr (std::is_integral_v<Dst> && !std::is_same_v<Src, bool> && sizeof(Dst) < sizeof(Src)) {
      if (v < static_cast<Src>(std::numeric_limits<Dst>::min()) ||
          v > static_cast<Src>(std::numeric_limits<Dst>::max()))
        return InvalidArgument("input '{}': value {} out of range for {}", name, v,
                               DataTypeKServeName(dtype));
    }
    out[i] = static_cast<Dst>(v);
  }
  return t;
}

StatusOr<Tensor> DecodeTyped(const inference::InferTensorContents& c, const std::string& name,
                             DataType dtype, const Shape& shape, int64_t count) {
  switch (dtype) {
    case DataType::kBool: return FromTyped<bool, uint8_t>(c.bool_contents(), name, dtype, shape, count);
    case DataType::kInt8: return FromTyped<int32_t, int8_t>(c.int_contents(), name, dtype, shape, count);
    case DataType::kInt16: return FromTyped<int32_t, int16_t>(c.int_contents(), name, dtype, shape, count);
    case DataType::kInt32: return FromTyped<int32_t, int32_t>(c.int_contents(), name, dtype, shape, count);
    case DataType::kInt64: return FromTyped<int64_t, int64_t>(c.int64_contents(), name, dtype, shape, count);
    case DataType::kUint8: return FromTyped<uint32_t, uint8_t>(c.uint_contents(), name, dtype, shape, count);
    case DataType::kUint16: return FromTyped<uint32_t, uint16_t>(c.uint_contents(), name, dtype, shape, count);
    case DataType::kUint32: return FromTyped<uint32_t, uint32_t>(c.uint_contents(), name, dtype, shape, count);
    case DataType::kUint64: return FromTyped<uint64_t, uint64_t>(c.uint64_contents(), name, dtype, shape, count);
    case DataType::kFloat32: return FromTyped<float, float>(c.fp32_contents(), name, dtype, shape, count);
    case DataType::kFloat64: return FromTyped<double, double>(c.fp64_contents(), name, dtype, shape, count);
    default:
      return InvalidArgument("input '{}': {} has no typed contents field; send raw_input_contents",
                             name, DataTypeKServeName(dtype));
  }
}

// Triton's shared_memory_region / _offset / _byte_size parameters, when present.
StatusOr<std::optional<ShmWindow>> ShmParams(const google::protobuf::Map<std::string, inference::InferParameter>& params,
                                             const std::string& what, const SharedMemoryRegistry* shm) {
  auto r = params.find("shared_memory_region");
  if (r == params.end()) return std::optional<ShmWindow>();
  if (r->second.parameter_choice_case() != inference::InferParameter::kStringParam || r->second.string_param().empty()) {
    return InvalidArgument("{}: parameter 'shared_memory_region' must be a non-empty string", what);
  }
  if (shm == nullptr) return InvalidArgument("{}: shared memory is not enabled on this endpoint", what);
  ShmWindow w;
  ASSIGN_OR_RETURN(w.region, shm->Find(r->second.string_param()));
  auto size = params.find("shared_memory_byte_size");
  if (size == params.end()) return InvalidArgument("{}: shared_memory_byte_size is required", what);
  ASSIGN_OR_RETURN(int64_t bytes, IntParam(size->second, "shared_memory_byte_size"));
  int64_t offset = 0;
  if (auto o = params.find("shared_memory_offset"); o != params.end()) {
    ASSIGN_OR_RETURN(offset, IntParam(o->second, "shared_memory_offset"));
  }
  if (bytes < 0 || offset < 0) return InvalidArgument("{}: shared memory offset and size must be >= 0", what);
  w.offset = static_cast<uint64_t>(offset);
  w.byte_size = static_cast<uint64_t>(bytes);
  RETURN_IF_ERROR(w.region->Window(w.offset, w.byte_size).status());
  return std::optional<ShmWindow>(std::move(w));
}

}  // namespace

StatusOr<std::unique_ptr<InferenceRequest>> BuildRequest(const inference::ModelInferRequest& in,
                                                         const ModelMetadata& meta,
                                                         int64_t context_deadline_ns,
                                                         ResponseOptions* response,
                                                         const SharedMemoryRegistry* shm) {
  response->batched = meta.max_batch_size > 0;
  auto req = std::make_unique<InferenceRequest>();
  req->model_name = in.model_name();
  req->model_version = in.model_version();
  req->id = in.id();
  req->deadline_ns = context_deadline_ns;
  for (const auto& [key, p] : in.parameters()) {
    if (key == "priority") {
      ASSIGN_OR_RETURN(int64_t v, IntParam(p, key));
      ASSIGN_OR_RETURN(req->priority, PriorityFromTriton(v));
    } else if (key == "tenant") {
      if (p.parameter_choice_case() != inference::InferParameter::kStringParam || p.string_param().empty() ||
          p.string_param().size() > 128) {
        return InvalidArgument("parameter 'tenant' must be a non-empty string of at most 128 bytes");
      }
      req->tenant = p.string_param();
    } else if (key == "timeout") {
      ASSIGN_OR_RETURN(int64_t v, IntParam(p, key));
      ASSIGN_OR_RETURN(int64_t d, DeadlineFromTimeoutUs(v));
      if (d != 0 && (req->deadline_ns == 0 || d < req->deadline_ns)) req->deadline_ns = d;
    }
  }
  const bool raw = in.raw_input_contents_size() > 0;
  if (raw && in.raw_input_contents_size() != in.inputs_size())
    return InvalidArgument("{} raw_input_contents for {} inputs: when raw contents are used, every "
                           "input needs one", in.raw_input_contents_size(), in.inputs_size());
  std::set<std::string> seen;
  for (int i = 0; i < in.inputs_size(); ++i) {
    const auto& t = in.inputs(i);
    if (!seen.insert(t.name()).second) return InvalidArgument("duplicate input '{}'", t.name());
    ASSIGN_OR_RETURN(DataType dtype, ParseKServeDatatype(t.datatype()));
    Shape shape(t.shape().begin(), t.shape().end());
    RETURN_IF_ERROR(ValidateInput(meta, t.name(), dtype, shape));
    ASSIGN_OR_RETURN(int64_t count, CheckedElementCount(t.name(), shape));
    Tensor tensor;
    ASSIGN_OR_RETURN(std::optional<ShmWindow> window, ShmParams(t.parameters(), "input '" + t.name() + "'", shm));
    if (window) {
      const uint64_t want = static_cast<uint64_t>(count) * DataTypeSize(dtype);
      if (window->byte_size != want) {
        return InvalidArgument("input '{}': shared_memory_byte_size must be {} for shape {} of {}", t.name(), want,
                               ShapeToString(shape), DataTypeKServeName(dtype));
      }
      ASSIGN_OR_RETURN(char* src, window->region->Window(window->offset, want));
      ASSIGN_OR_RETURN(tensor, TensorFromBinary(t.name(), dtype, shape, src, want));
      req->inputs.push_back({t.name(), std::move(tensor)});
      continue;
    }
    if (raw && t.has_contents() && t.contents().ByteSizeLong() > 0) {
      // Two tensors for one input: which is meant is a guess, so refuse (as Triton does).
      return InvalidArgument("input '{}' has both raw_input_contents and typed contents; send one of them", t.name());
    }
    if (raw) {
      const std::string& bytes = in.raw_input_contents(i);
      ASSIGN_OR_RETURN(tensor, TensorFromBinary(t.name(), dtype, shape, bytes.data(), bytes.size()));
    } else {
      ASSIGN_OR_RETURN(tensor, DecodeTyped(t.contents(), t.name(), dtype, shape, count));
    }
    req->inputs.push_back({t.name(), std::move(tensor)});
  }
  RETURN_IF_ERROR(CheckAllInputsPresent(meta, req->inputs));
  std::set<std::string> seen_out;
  for (const auto& o : in.outputs()) {
    RETURN_IF_ERROR(ValidateRequestedOutput(meta, o.name()));
    if (!seen_out.insert(o.name()).second) return InvalidArgument("duplicate output '{}'", o.name());
    ASSIGN_OR_RETURN(std::optional<ShmWindow> out_window, ShmParams(o.parameters(), "output '" + o.name() + "'", shm));
    if (out_window) response->shm[o.name()] = std::move(*out_window);
    for (const auto& [key, p] : o.parameters()) {
      if (key != "classification" && key != "class_count") continue;
      ASSIGN_OR_RETURN(int64_t count, IntParam(p, key));
      if (count < 1 || count > 1'000'000) {
        return InvalidArgument("output '{}': parameter '{}' must be between 1 and 1000000", o.name(), key);
      }
      ClassificationRequest asked{count, nullptr};
      for (const auto& info : meta.outputs) {
        if (info.name != o.name()) continue;
        if (info.dtype == DataType::kString || info.dtype == DataType::kBool) {
          return InvalidArgument("output '{}': classification needs a numeric output", o.name());
        }
        asked.labels = info.labels;
      }
      response->classification[o.name()] = std::move(asked);
    }
    req->requested_outputs.push_back(o.name());
  }
  return req;
}

Status FillInferResponse(const InferenceResponse& result, const ResponseOptions& options,
                         inference::ModelInferResponse* resp) {
  resp->set_model_name(result.model_name);
  resp->set_model_version(result.model_version);
  resp->set_id(result.request_id);
  for (const auto& o : result.outputs) {
    auto* t = resp->add_outputs();
    t->set_name(o.name);
    std::string bytes;
    Shape shape = o.tensor.shape();
    auto cls = options.classification.find(o.name);
    if (cls != options.classification.end()) {
      auto classified = Classify(o.tensor, cls->second.count, options.batched, cls->second.labels.get());
      t->set_datatype("BYTES");
      shape = classified.ok() ? classified->shape : Shape{0};
      if (classified.ok()) bytes = EncodeBytesElements(classified->entries);
    } else {
      t->set_datatype(std::string(DataTypeKServeName(o.tensor.dtype())));
      bytes.assign(static_cast<const char*>(o.tensor.data()), o.tensor.bytes());
    }
    for (int64_t d : shape) t->add_shape(d);
    auto window = options.shm.find(o.name);
    if (window != options.shm.end()) {
      if (bytes.size() > window->second.byte_size) {
        return InvalidArgument("output '{}' has {} bytes, its shared memory window holds {}", o.name, bytes.size(),
                               window->second.byte_size);
      }
      ASSIGN_OR_RETURN(char* dst, window->second.region->Window(window->second.offset, bytes.size()));
      std::memcpy(dst, bytes.data(), bytes.size());
      (*t->mutable_parameters())["shared_memory_region"].set_string_param(window->second.region->info().name);
      (*t->mutable_parameters())["shared_memory_byte_size"].set_int64_param(static_cast<int64_t>(bytes.size()));
      resp->add_raw_output_contents();  // keeps raw_output_contents aligned with outputs
      continue;
    }
    resp->add_raw_output_contents(std::move(bytes));
  }
  return Status::OK();
}

}  // namespace gpuhive::server
