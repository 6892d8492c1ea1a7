// TensorProto conversion, external data and bounded protobuf parsing for the ONNX importer.
#include "graph/onnx_tensor.h"

#include <fcntl.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <unistd.h>

#include <charconv>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <vector>

#include "gpuhive/onnx_import.h"

namespace gpuhive::onnx_detail {
namespace fs = std::filesystem;
namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

// Largest tensor accepted from a file: bounded so size arithmetic can never overflow.
constexpr uint64_t kMaxTensorBytes = 1ull << 40;

StatusOr<uint64_t> ParseU64(const std::string& text, const std::string& what) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    return InvalidArgument("external data {} '{}' is not a non-negative integer", what, text);
  }
  return v;
}

// Resolves `location` under `base_dir`, refusing absolute paths and anything that escapes it.
StatusOr<fs::path> ResolveExternalPath(const std::string& base_dir, const std::string& location,
                                       const std::string& tensor) {
  if (base_dir.empty()) {
    return InvalidArgument("tensor '{}' uses external data '{}' but no base directory is known",
                           tensor, location);
  }
  fs::path loc(location);
  if (location.empty() || loc.is_absolute() || loc.has_root_name()) {
    return InvalidArgument("tensor '{}': external data location '{}' must be a relative path",
                           tensor, location);
  }
  std::error_code ec;
  fs::path base = fs::weakly_canonical(fs::path(base_dir), ec);
  if (ec) return InvalidArgument("cannot resolve model directory '{}': {}", base_dir, ec.message());
  fs::path full = fs::weakly_canonical(base / loc, ec);
  if (ec) return InvalidArgument("tensor '{}': cannot resolve '{}': {}", tensor, location, ec.message());
  fs::path rel = full.lexically_relative(base);
  if (rel.empty() || *rel.begin() == "..") {
    return InvalidArgument("tensor '{}': external data location '{}' escapes the model directory",
                           tensor, location);
  }
  return full;
}

StatusOr<std::string> ReadExternal(const onnx::TensorProto& p, const std::string& base_dir,
                                   uint64_t expected) {
  std::string location;
  uint64_t offset = 0;
  std::optional<uint64_t> length;
  for (const auto& kv : p.external_data()) {
    if (kv.key() == "location") {
      location = kv.value();
    } else if (kv.key() == "offset") {
      ASSIGN_OR_RETURN(offset, ParseU64(kv.value(), "offset"));
    } else if (kv.key() == "length") {
      ASSIGN_OR_RETURN(length, ParseU64(kv.value(), "length"));
    }
  }
  ASSIGN_OR_RETURN(fs::path path, ResolveExternalPath(base_dir, location, p.name()));
  uint64_t want = length.value_or(expected);
  if (want != expected) {
    return InvalidArgument("tensor '{}': external data length {} but dtype/shape need {} bytes",
                           p.name(), want, expected);
  }
  std::error_code ec;
  uint64_t file_size = fs::file_size(path, ec);
  if (ec) return NotFound("tensor '{}': external data file '{}': {}", p.name(), path.string(), ec.message());
  if (offset > file_size || want > file_size - offset) {
    return DataLoss("tensor '{}': external data [{}, +{}) lies outside '{}' ({} bytes)", p.name(),
                    offset, want, path.string(), file_size);
  }
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) return NotFound("tensor '{}': cannot open '{}'", p.name(), path.string());
  if (fseeko(f.get(), static_cast<off_t>(offset), SEEK_SET) != 0) {
    return DataLoss("tensor '{}': cannot seek to {} in '{}'", p.name(), offset, path.string());
  }
  std::string data(want, '\0');
  if (want && std::fread(data.data(), 1, want, f.get()) != want) {
    return DataLoss("tensor '{}': short read from '{}'", p.name(), path.string());
  }
  return data;
}

template <typename Dst, typename Field>
StatusOr<Tensor> FromTyped(DataType dt, const Shape& shape, const Field& field, int64_t n,
                           const std::string& name, const char* field_name) {
  if (static_cast<int64_t>(field.size()) != n) {
    return InvalidArgument("tensor '{}': {} has {} values but shape {} needs {}", name, field_name,
                           field.size(), ShapeToString(shape), n);
  }
  ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(dt, shape));
  Dst* out = t.as<Dst>();
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<Dst>(field.Get(static_cast<int>(i)));
  return t;
}

}  // namespace

DataType DataTypeFromOnnx(int32_t elem_type) {
  if (elem_type < 0 || elem_type > static_cast<int32_t>(DataType::kBFloat16)) return DataType::kUndefined;
  return static_cast<DataType>(elem_type);
}

StatusOr<Tensor> TensorFromProto(const onnx::TensorProto& p, const std::string& base_dir) {
  const std::string& name = p.name();
  DataType dt = DataTypeFromOnnx(p.data_type());
  if (dt == DataType::kString) {
    return Unimplemented("tensor '{}' holds strings, which gpuhive does not support", name);
  }
  if (dt == DataType::kUndefined) {
    return InvalidArgument("tensor '{}' has undefined or unknown data type {}", name, p.data_type());
  }
  if (!IsSupportedDataType(dt)) {
    return Unimplemented("tensor '{}' has unsupported data type {}", name, DataTypeName(dt));
  }
  if (p.has_segment()) return Unimplemented("tensor '{}' is segmented, which gpuhive does not support", name);
  Shape shape;
  uint64_t n = 1;
  for (int64_t d : p.dims()) {
    if (d < 0) return InvalidArgument("tensor '{}' has negative dimension {}", name, d);
    if (d != 0 && n > kMaxTensorBytes / static_cast<uint64_t>(d)) {
      return InvalidArgument("tensor '{}' is too large", name);
    }
    n *= static_cast<uint64_t>(d);
    shape.push_back(d);
  }
  const uint64_t elem = DataTypeSize(dt);
  if (n > kMaxTensorBytes / elem) return InvalidArgument("tensor '{}' is too large", name);
  const uint64_t bytes = n * elem;
  const int64_t count = static_cast<int64_t>(n);

  if (p.data_location() == onnx::TensorProto::EXTERNAL) {
    ASSIGN_OR_RETURN(std::string data, ReadExternal(p, base_dir, bytes));
    return Tensor::FromBytes(dt, shape, data.data(), data.size());
  }
  if (p.has_raw_data()) {
    if (p.raw_data().size() != bytes) {
      return InvalidArgument("tensor '{}': raw_data has {} bytes but {} {} needs {}", name,
                             p.raw_data().size(), DataTypeName(dt), ShapeToString(shape), bytes);
    }
    return Tensor::FromBytes(dt, shape, p.raw_data().data(), bytes);
  }
  switch (dt) {
    case DataType::kFloat32:
      return FromTyped<float>(dt, shape, p.float_data(), count, name, "float_data");
    case DataType::kInt32:
      return FromTyped<int32_t>(dt, shape, p.int32_data(), count, name, "int32_data");
    case DataType::kInt16:
      return FromTyped<int16_t>(dt, shape, p.int32_data(), count, name, "int32_data");
    case DataType::kInt8:
      return FromTyped<int8_t>(dt, shape, p.int32_data(), count, name, "int32_data");
    case DataType::kUint16:
    case DataType::kFloat16:
    case DataType::kBFloat16:
      // 16-bit floats travel as their bit patterns in int32_data.
      return FromTyped<uint16_t>(dt, shape, p.int32_data(), count, name, "int32_data");
    case DataType::kUint8:
      return FromTyped<uint8_t>(dt, shape, p.int32_data(), count, name, "int32_data");
    case DataType::kBool: {
      ASSIGN_OR_RETURN(Tensor t, FromTyped<uint8_t>(dt, shape, p.int32_data(), count, name, "int32_data"));
      for (int64_t i = 0; i < count; ++i) t.as<uint8_t>()[i] = t.as<uint8_t>()[i] != 0;
      return t;
    }
    case DataType::kInt64:
      return FromTyped<int64_t>(dt, shape, p.int64_data(), count, name, "int64_data");
    case DataType::kFloat64:
      return FromTyped<double>(dt, shape, p.double_data(), count, name, "double_data");
    case DataType::kUint32:
      return FromTyped<uint32_t>(dt, shape, p.uint64_data(), count, name, "uint64_data");
    case DataType::kUint64:
      return FromTyped<uint64_t>(dt, shape, p.uint64_data(), count, name, "uint64_data");
    default:
      return Unimplemented("tensor '{}' has unsupported data type {}", name, DataTypeName(dt));
  }
}

Status TensorToProto(const Tensor& t, const std::string& name, onnx::TensorProto* proto) {
  if (!IsSupportedDataType(t.dtype())) {
    return InvalidArgument("cannot write tensor '{}' of dtype {}", name, DataTypeName(t.dtype()));
  }
  proto->Clear();
  proto->set_name(name);
  proto->set_data_type(static_cast<int32_t>(t.dtype()));
  for (int64_t d : t.shape()) proto->add_dims(d);
  proto->set_raw_data(t.data(), t.bytes());
  return Status::OK();
}

Status ParseProto(std::string_view bytes, google::protobuf::MessageLite* msg, std::string_view what) {
  if (bytes.size() > static_cast<size_t>(INT_MAX)) {
    return Unimplemented("{} is {} bytes; protobuf cannot parse more than 2 GiB (use external data)",
                         what, bytes.size());
  }
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  in.SetTotalBytesLimit(INT_MAX);
  if (!msg->ParseFromCodedStream(&in) || !in.ConsumedEntireMessage()) {
    return DataLoss("{} is corrupt or truncated ({} bytes could not be parsed as {})", what,
                    bytes.size(), msg->GetTypeName());
  }
  return Status::OK();
}

StatusOr<std::string> ReadFileBytes(const std::string& path, uint64_t max_bytes) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return InvalidArgument("'{}' is a directory, not a file", path);
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) return NotFound("cannot open '{}'", path);
  uint64_t size = fs::file_size(path, ec);
  if (ec) return NotFound("cannot stat '{}': {}", path, ec.message());
  if (size > max_bytes) {
    return InvalidArgument("'{}' is {} bytes, more than the limit of {}", path, size, max_bytes);
  }
  std::string data(size, '\0');
  if (size && std::fread(data.data(), 1, size, f.get()) != size) {
    return DataLoss("short read from '{}'", path);
  }
  return data;
}

Status ParseProtoFile(const std::string& path, uint64_t max_bytes, google::protobuf::MessageLite* msg,
                      std::string_view what) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return InvalidArgument("'{}' is a directory, not a file", path);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound("cannot open '{}'", path);
  google::protobuf::io::FileInputStream file(fd, 1 << 20);
  file.SetCloseOnDelete(true);
  uint64_t size = fs::file_size(path, ec);
  if (ec) return NotFound("cannot stat '{}': {}", path, ec.message());
  if (size > max_bytes) {
    return InvalidArgument("'{}' is {} bytes, more than the limit of {}", path, size, max_bytes);
  }
  if (size > static_cast<uint64_t>(INT_MAX)) {
    return Unimplemented("{} is {} bytes; protobuf cannot parse more than 2 GiB (use external data)", what, size);
  }
  google::protobuf::io::CodedInputStream in(&file);
  in.SetTotalBytesLimit(INT_MAX);
  if (!msg->ParseFromCodedStream(&in) || !in.ConsumedEntireMessage()) {
    if (file.GetErrno() != 0) return DataLoss("read error on '{}' (errno {})", path, file.GetErrno());
    return DataLoss("{} is corrupt or truncated ({} bytes could not be parsed as {})", what, size,
                    msg->GetTypeName());
  }
  return Status::OK();
}

}  // namespace gpuhive::onnx_detail

namespace gpuhive {

StatusOr<std::pair<std::string, Tensor>> ReadTensorProtoFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, onnx_detail::ReadFileBytes(path, 4ull << 30));
  onnx::TensorProto proto;
  RETURN_IF_ERROR(onnx_detail::ParseProto(bytes, &proto, "tensor file '" + path + "'"));
  std::string dir = std::filesystem::path(path).parent_path().string();
  ASSIGN_OR_RETURN(Tensor t, onnx_detail::TensorFromProto(proto, dir.empty() ? "." : dir));
  return std::make_pair(proto.name(), std::move(t));
}

Status WriteTensorProtoFile(const std::string& path, const std::string& name, const Tensor& t) {
  onnx::TensorProto proto;
  RETURN_IF_ERROR(onnx_detail::TensorToProto(t, name, &proto));
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) return Internal("cannot serialize tensor '{}'", name);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return NotFound("cannot create '{}'", path);
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (std::fclose(f) != 0 || !written) return Internal("cannot write '{}'", path);
  return Status::OK();
}

}  // namespace gpuhive
