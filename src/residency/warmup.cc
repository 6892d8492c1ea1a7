// model_warmup inputs (include/gpuhive/residency/warmup.h).
#include "gpuhive/residency/warmup.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace gpuhive::residency {
namespace {

StatusOr<std::string> ReadWarmupFile(const std::string& model_dir, const std::string& file, size_t want_bytes) {
  if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..") {
    return InvalidArgument("input_data_file '{}' must be a file name in the model's warmup/ directory", file);
  }
  const std::string path = (std::filesystem::path(model_dir) / "warmup" / file).string();
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read warm-up data '{}'", path);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() != want_bytes) {
    return InvalidArgument("warm-up data '{}' has {} bytes, the input needs {}", path, bytes.size(), want_bytes);
  }
  return bytes;
}

void FillRandom(Tensor* t, std::mt19937* rng) {
  const int64_t n = NumElements(t->shape());
  auto fill = [&](auto* p, auto draw) {
    for (int64_t i = 0; i < n; ++i) p[i] = draw();
  };
  std::uniform_real_distribution<float> unit(0.f, 1.f);
  std::uniform_int_distribution<int> bit(0, 1);
  switch (t->dtype()) {
    case DataType::kFloat32: fill(t->as<float>(), [&] { return unit(*rng); }); break;
    case DataType::kFloat64: fill(t->as<double>(), [&] { return static_cast<double>(unit(*rng)); }); break;
    case DataType::kInt64: fill(t->as<int64_t>(), [&] { return static_cast<int64_t>(bit(*rng)); }); break;
    case DataType::kInt32: fill(t->as<int32_t>(), [&] { return static_cast<int32_t>(bit(*rng)); }); break;
    case DataType::kUint8:
    case DataType::kBool: fill(t->as<uint8_t>(), [&] { return static_cast<uint8_t>(bit(*rng)); }); break;
    default: break;  // zeros
  }
}

}  // namespace

StatusOr<std::vector<WarmupInput>> WarmupInputs(const ModelConfig& c, const WarmupConfig& w,
                                                const std::string& model_dir, std::mt19937* rng) {
  const std::string what = fmt::format("model '{}': model_warmup '{}'", c.name, w.name);
  if (c.max_batch_size > 0 && (w.batch_size < 1 || w.batch_size > c.max_batch_size)) {
    return InvalidArgument("{}: batch_size {} outside 1..max_batch_size {}", what, w.batch_size, c.max_batch_size);
  }
  std::vector<WarmupInput> out;
  for (const auto& in : c.inputs) {
    const WarmupInputConfig* wi = nullptr;
    for (const auto& x : w.inputs) {
      if (x.name == in.name) wi = &x;
    }
    if (wi == nullptr) {
      if (in.optional) continue;
      return InvalidArgument("{}: no sample for input '{}'", what, in.name);
    }
    if (wi->dtype != in.dtype) {
      return InvalidArgument("{}: input '{}' is {}, the model takes {}", what, in.name, DataTypeKServeName(wi->dtype),
                             DataTypeKServeName(in.dtype));
    }
    Shape shape;
    if (c.max_batch_size > 0) shape.push_back(w.batch_size);
    const std::vector<int64_t>& dims = wi->dims.empty() ? in.dims : wi->dims;
    for (int64_t d : dims) {
      if (d < 0) return InvalidArgument("{}: input '{}' needs fixed dims, got {}", what, in.name, ShapeToString(dims));
      shape.push_back(d);
    }
    ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(wi->dtype, shape));
    std::memset(t.data(), 0, t.bytes());
    if (!wi->input_data_file.empty()) {
      auto bytes = ReadWarmupFile(model_dir, wi->input_data_file, t.bytes());
      if (!bytes.ok()) return bytes.status().WithContext(what);
      std::memcpy(t.data(), bytes->data(), t.bytes());
    } else if (wi->random_data) {
      FillRandom(&t, rng);
    }
    out.push_back({in.name, std::move(t)});
  }
  return out;
}

bool WarmupHasDataFiles(const WarmupConfig& w) {
  if (w.inputs.empty()) return false;
  for (const auto& x : w.inputs) {
    if (x.input_data_file.empty()) return false;
  }
  return true;
}

}  // namespace gpuhive::residency
