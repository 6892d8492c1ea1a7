#include "server/request_validation.h"

#include <algorithm>
#include <climits>

#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "gpuhive/units.h"

namespace gpuhive::server {

bool BearerTokenMatches(std::string_view authorization, std::string_view token) {
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return false;
  }
  std::string_view rest = authorization.substr(kScheme.size());
  const size_t spaces = rest.find_first_not_of(' ');
  if (spaces == 0 || spaces == std::string_view::npos) return false;
  rest.remove_prefix(spaces);
  if (rest.size() != token.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < token.size(); ++i) diff |= static_cast<unsigned char>(rest[i] ^ token[i]);
  return diff == 0;
}

StatusOr<DataType> ParseKServeDatatype(std::string_view name) {
  if (name == "BYTES")
    return Unimplemented("datatype BYTES (string tensors) is not supported by gpuhive");
  static constexpr std::pair<std::string_view, DataType> kTypes[] = {
      {"BOOL", DataType::kBool},       {"UINT8", DataType::kUint8},
      {"UINT16", DataType::kUint16},   {"UINT32", DataType::kUint32},
      {"UINT64", DataType::kUint64},   {"INT8", DataType::kInt8},
      {"INT16", DataType::kInt16},     {"INT32", DataType::kInt32},
      {"INT64", DataType::kInt64},     {"FP16", DataType::kFloat16},
      {"FP32", DataType::kFloat32},    {"FP64", DataType::kFloat64},
      {"BF16", DataType::kBFloat16},
  };
  for (const auto& [n, t] : kTypes)
    if (n == name) return t;
  return InvalidArgument("unknown datatype '{}'", name);
}

StatusOr<int64_t> CheckedElementCount(const std::string& name, const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return InvalidArgument("input '{}': negative dimension in shape {}", name, ShapeToString(shape));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / 16 / d)
      return InvalidArgument("input '{}': shape {} is too large", name, ShapeToString(shape));
    n *= d;
  }
  return n;
}

Status ValidateInput(const ModelMetadata& meta, const std::string& name, DataType dtype,
                     const Shape& shape) {
  const TensorInfo* info = nullptr;
  for (const auto& i : meta.inputs)
    if (i.name == name) info = &i;
  if (!info) {
    std::string known;
    for (const auto& i : meta.inputs) known += (known.empty() ? "" : ", ") + i.name;
    return InvalidArgument("unknown input '{}' for model '{}' (inputs: {})", name, meta.name, known);
  }
  if (info->dtype != dtype)
    return InvalidArgument("input '{}': expected datatype {}, got {}", name,
                           DataTypeKServeName(info->dtype), DataTypeKServeName(dtype));
  bool match = info->shape.size() == shape.size();
  for (size_t i = 0; match && i < shape.size(); ++i)
    match = info->shape[i] < 0 || info->shape[i] == shape[i];
  if (!match)
    return InvalidArgument("input '{}': shape {} does not match the model's {}", name,
                           ShapeToString(shape), ShapeToString(info->shape));
  return CheckedElementCount(name, shape).status().ok() ? Status::OK()
                                                        : CheckedElementCount(name, shape).status();
}

Status CheckAllInputsPresent(const ModelMetadata& meta, const std::vector<NamedTensor>& inputs) {
  for (const auto& want : meta.inputs) {
    bool found = false;
    for (const auto& in : inputs) found |= in.name == want.name;
    if (!found) return InvalidArgument("missing input '{}' for model '{}'", want.name, meta.name);
  }
  return Status::OK();
}

Status ValidateRequestedOutput(const ModelMetadata& meta, const std::string& name) {
  for (const auto& o : meta.outputs)
    if (o.name == name) return Status::OK();
  return InvalidArgument("unknown output '{}' for model '{}'", name, meta.name);
}

StatusOr<int> PriorityFromTriton(int64_t priority) {
  if (priority < 0) return InvalidArgument("priority must be >= 0 (1 is the highest; 0: the model's default), got {}", priority);
  // A level beyond the model's levels is its default level, as in Triton (the core knows the levels).
  return priority == 0 ? -1 : static_cast<int>(std::min<int64_t>(priority - 1, INT_MAX));
}

StatusOr<int64_t> DeadlineFromTimeoutUs(int64_t timeout_us) {
  if (timeout_us < 0) return InvalidArgument("timeout must be >= 0 microseconds, got {}", timeout_us);
  if (timeout_us == 0) return int64_t{0};
  const int64_t max_us = int64_t{1} << 40;  // ~12 days: beyond that, no deadline in practice
  return NowNs() + std::min(timeout_us, max_us) * 1000;
}

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t exp = (x >> 23) & 0xff;
  uint32_t mant = x & 0x7fffff;
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00 | (mant ? 0x200 : 0));
  int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000;
    int shift = 14 - e;
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) ++half;  // may carry into the exponent: fine
  return static_cast<uint16_t>(sign | half);
}

float HalfToFloat(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t x;
  if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while (!(mant & 0x400));
      x = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    x = sign | 0x7f800000 | (mant << 13);
  } else {
    x = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

uint16_t FloatToBFloat16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((x >> 16) | 0x40);  // NaN
  x += 0x7fff + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

float BFloat16ToFloat(uint16_t h) {
  uint32_t x = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

}  // namespace gpuhive::server
