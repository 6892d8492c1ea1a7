#include "server/classification.h"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace gpuhive::server {

namespace {

template <typename T>
void RankRows(const Tensor& t, int64_t rows, int64_t per_row, int64_t count, const std::vector<std::string>* labels,
              std::vector<std::string>* out) {
  const T* data = t.as<T>();
  std::vector<int64_t> idx(static_cast<size_t>(per_row));
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = data + r * per_row;
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + count, idx.end(), [row](int64_t a, int64_t b) {
      return row[a] > row[b] || (!(row[b] > row[a]) && a < b);
    });
    for (int64_t k = 0; k < count; ++k) {
      const int64_t i = idx[static_cast<size_t>(k)];
      std::string value;
      if constexpr (std::is_floating_point_v<T>) {
        value = std::to_string(static_cast<double>(row[i]));
      } else {
        value = std::to_string(row[i]);
      }
      value += ":" + std::to_string(i);
      if (labels != nullptr && i < static_cast<int64_t>(labels->size())) value += ":" + (*labels)[static_cast<size_t>(i)];
      out->push_back(std::move(value));
    }
  }
}

}  // namespace

StatusOr<ClassifiedOutput> Classify(const Tensor& t, int64_t count, bool batched,
                                    const std::vector<std::string>* labels) {
  if (count < 1) return InvalidArgument("classification count must be >= 1, got {}", count);
  const Shape& shape = t.shape();
  const int64_t total = NumElements(shape);
  const int64_t rows = batched && !shape.empty() ? shape[0] : 1;
  const int64_t per_row = rows > 0 ? total / rows : 0;
  ClassifiedOutput out;
  const int64_t k = std::min(count, per_row);
  out.shape = batched && !shape.empty() ? Shape{rows, k} : Shape{k};
  if (k == 0) return out;
  out.entries.reserve(static_cast<size_t>(rows * k));
  switch (t.dtype()) {
    case DataType::kFloat32: RankRows<float>(t, rows, per_row, k, labels, &out.entries); break;
    case DataType::kFloat64: RankRows<double>(t, rows, per_row, k, labels, &out.entries); break;
    case DataType::kInt8: RankRows<int8_t>(t, rows, per_row, k, labels, &out.entries); break;
    case DataType::kInt16: RankRows<int16_t>(t, rows, per_row, k, labels, &out.entries); break;
    case DataType::kInt32: RankRows<int32_t>(t, rows, per_row, k, labels, &out.entries); break;
    case DataType::kInt64: RankRows<int64_t>(t, rows, per_row, k, labels, &out.entries); break;
    case DataType::kUint8: RankRows<uint8_t>(t, rows, per_row, k, labels, &out.entries); break;
    case DataType::kUint16: RankRows<uint16_t>(t, rows, per_row, k, labels, &out.entries); break;
    case DataType::kUint32: RankRows<uint32_t>(t, rows, per_row, k, labels, &out.entries); break;
    case DataType::kUint64: RankRows<uint64_t>(t, rows, per_row, k, labels, &out.entries); break;
    default:
      return InvalidArgument("classification of a {} output is not supported", DataTypeKServeName(t.dtype()));
  }
  return out;
}

std::string EncodeBytesElements(const std::vector<std::string>& elements) {
  std::string out;
  size_t total = 0;
  for (const auto& e : elements) total += 4 + e.size();
  out.reserve(total);
  for (const auto& e : elements) {
    const uint32_t n = static_cast<uint32_t>(e.size());
    const char len[4] = {static_cast<char>(n & 0xff), static_cast<char>((n >> 8) & 0xff),
                         static_cast<char>((n >> 16) & 0xff), static_cast<char>((n >> 24) & 0xff)};
    out.append(len, 4);
    out += e;
  }
  return out;
}

}  // namespace gpuhive::server
