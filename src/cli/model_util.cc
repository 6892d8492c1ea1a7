#include "cli/model_util.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>

#include "gpuhive/onnx_import.h"

namespace gpuhive::cli {

StatusOr<std::unique_ptr<CompiledModel>> LoadModel(const std::string& path, const CompileOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<ir::Model> model, ImportOnnxFile(path));
  return CompiledModel::Create(std::move(model), options);
}

StatusOr<Shape> ParseShape(const std::string& text) {
  Shape shape;
  size_t start = 0;
  if (text.empty()) return shape;
  while (start <= text.size()) {
    size_t end = text.find_first_of("x,", start);
    std::string part = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    char* stop = nullptr;
    long long v = std::strtoll(part.c_str(), &stop, 10);
    if (part.empty() || *stop != '\0' || v < 0) return InvalidArgument("bad shape '{}'", text);
    shape.push_back(v);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return shape;
}

StatusOr<std::vector<Shape>> ResolveInputShapes(const Executable& model, const std::vector<std::string>& overrides,
                                                int64_t batch, int64_t default_dim) {
  std::vector<Shape> shapes;
  for (const TensorInfo& in : model.inputs()) {
    Shape s;
    bool overridden = false;
    for (const std::string& o : overrides) {
      auto eq = o.find('=');
      if (eq != std::string::npos && o.substr(0, eq) == in.name) {
        ASSIGN_OR_RETURN(s, ParseShape(o.substr(eq + 1)));
        overridden = true;
      }
    }
    if (!overridden) {
      for (size_t d = 0; d < in.shape.size(); ++d) {
        if (in.shape[d] >= 0) s.push_back(in.shape[d]);
        else s.push_back(d == 0 ? batch : default_dim);
      }
    }
    shapes.push_back(std::move(s));
  }
  return shapes;
}

StatusOr<Tensor> RandomTensor(DataType dtype, const Shape& shape, uint32_t seed, int64_t int_range) {
  ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(dtype, shape));
  std::mt19937 rng(seed);
  int64_t n = t.num_elements();
  switch (dtype) {
    case DataType::kFloat32: {
      std::uniform_real_distribution<float> dist(-1.f, 1.f);
      for (int64_t i = 0; i < n; ++i) t.as<float>()[i] = dist(rng);
      break;
    }
    case DataType::kInt64: {
      std::uniform_int_distribution<int64_t> dist(0, int_range - 1);
      for (int64_t i = 0; i < n; ++i) t.as<int64_t>()[i] = dist(rng);
      break;
    }
    case DataType::kInt32: {
      std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(int_range - 1));
      for (int64_t i = 0; i < n; ++i) t.as<int32_t>()[i] = dist(rng);
      break;
    }
    case DataType::kBool: {
      for (int64_t i = 0; i < n; ++i) t.as<uint8_t>()[i] = rng() & 1;
      break;
    }
    default:
      if (t.bytes()) std::memset(t.data(), 0, t.bytes());
  }
  return t;
}

LatencySummary Summarize(std::vector<double> v) {
  LatencySummary s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) { return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))]; };
  s.p50_ms = pct(0.5);
  s.p90_ms = pct(0.9);
  s.p99_ms = pct(0.99);
  s.min_ms = v.front();
  s.mean_ms = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
  return s;
}

std::string JsonEscape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\', o += ch;
    else if (static_cast<unsigned char>(ch) < 0x20) o += ' ';
    else o += ch;
  }
  return o;
}

}  // namespace gpuhive::cli
