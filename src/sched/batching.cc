#include "sched/batching.h"

#include <cstring>

#include <fmt/format.h>

namespace gpuhive::sched::detail {

std::string InputSignature(const std::vector<TensorView>& inputs, bool batching) {
  std::string sig;
  for (const TensorView& t : inputs) {
    sig += fmt::format("{}:", static_cast<int>(t.dtype));
    for (size_t d = batching ? 1 : 0; d < t.shape.size(); ++d) sig += fmt::format("{},", t.shape[d]);
    sig += ';';
  }
  return sig;
}

StatusOr<std::vector<Tensor>> ConcatBatch(const std::vector<const std::vector<TensorView>*>& requests) {
  if (requests.empty()) return InvalidArgument("empty batch");
  const std::vector<TensorView>& first = *requests[0];
  std::vector<Tensor> out;
  out.reserve(first.size());
  for (size_t i = 0; i < first.size(); ++i) {
    if (first[i].shape.empty()) return InvalidArgument("input {} has no batch dimension", i);
    Shape shape = first[i].shape;
    int64_t rows = 0;
    for (const auto* req : requests) {
      if (req->size() != first.size()) return InvalidArgument("requests in one batch differ in input count");
      const TensorView& v = (*req)[i];
      if (v.dtype != first[i].dtype || v.shape.size() != shape.size() ||
          !std::equal(v.shape.begin() + 1, v.shape.end(), shape.begin() + 1)) {
        return InvalidArgument("input {}: shape {} cannot be batched with {}", i, ShapeToString(v.shape),
                               ShapeToString(shape));
      }
      rows += v.shape[0];
    }
    shape[0] = rows;
    ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(first[i].dtype, shape));
    auto* dst = static_cast<char*>(t.data());
    for (const auto* req : requests) {
      const TensorView& v = (*req)[i];
      size_t bytes = v.plain_bytes();
      if (bytes > 0) std::memcpy(dst, v.data, bytes);
      dst += bytes;
    }
    out.push_back(std::move(t));
  }
  return out;
}

StatusOr<std::vector<std::vector<Tensor>>> SplitBatch(const std::vector<Tensor>& outputs,
                                                      const std::vector<int64_t>& rows) {
  int64_t total = 0;
  for (int64_t r : rows) total += r;
  std::vector<std::vector<Tensor>> per_request(rows.size());
  for (size_t o = 0; o < outputs.size(); ++o) {
    const Tensor& t = outputs[o];
    if (t.shape().empty() || t.shape()[0] != total) {
      return InvalidArgument("output {} has shape {}, expected dim 0 == batch size {}", o,
                             ShapeToString(t.shape()), total);
    }
    size_t row_bytes = total == 0 ? 0 : t.bytes() / static_cast<size_t>(total);
    const auto* src = static_cast<const char*>(t.data());
    for (size_t r = 0; r < rows.size(); ++r) {
      Shape shape = t.shape();
      shape[0] = rows[r];
      size_t bytes = row_bytes * static_cast<size_t>(rows[r]);
      ASSIGN_OR_RETURN(Tensor part, Tensor::FromBytes(t.dtype(), shape, src, bytes));
      src += bytes;
      per_request[r].push_back(std::move(part));
    }
  }
  return per_request;
}

}  // namespace gpuhive::sched::detail
