// Unique (opset 11): unique elements (or slices along `axis`), sorted or in order of first
// occurrence, with first indices, inverse indices and counts. The output shape depends on the
// values, so the kernel is prepared when the input is known.
#include <numeric>

#include "kernels/cpu/loops/tensor_register.h"
#include "kernels/cpu/loops/tensor_util.h"

namespace gpuhive::cpu {
namespace {

using namespace tensor;  // NOLINT: private helpers of this kernel family

// Three-way comparison of elements a and b of one tensor, exact for every dtype.
int CompareElements(const void* d, DataType t, int64_t a, int64_t b) {
  auto cmp = [](auto x, auto y) { return x < y ? -1 : (y < x ? 1 : 0); };
  switch (t) {
    case DataType::kFloat32: return cmp(static_cast<const float*>(d)[a], static_cast<const float*>(d)[b]);
    case DataType::kFloat64: return cmp(static_cast<const double*>(d)[a], static_cast<const double*>(d)[b]);
    case DataType::kInt8: return cmp(static_cast<const int8_t*>(d)[a], static_cast<const int8_t*>(d)[b]);
    case DataType::kInt16: return cmp(static_cast<const int16_t*>(d)[a], static_cast<const int16_t*>(d)[b]);
    case DataType::kInt32: return cmp(static_cast<const int32_t*>(d)[a], static_cast<const int32_t*>(d)[b]);
    case DataType::kInt64: return cmp(static_cast<const int64_t*>(d)[a], static_cast<const int64_t*>(d)[b]);
    case DataType::kUint16: return cmp(static_cast<const uint16_t*>(d)[a], static_cast<const uint16_t*>(d)[b]);
    case DataType::kUint32: return cmp(static_cast<const uint32_t*>(d)[a], static_cast<const uint32_t*>(d)[b]);
    case DataType::kUint64: return cmp(static_cast<const uint64_t*>(d)[a], static_cast<const uint64_t*>(d)[b]);
    case DataType::kFloat16:
    case DataType::kBFloat16: return cmp(ElementAsDouble(d, t, a), ElementAsDouble(d, t, b));
    default: return cmp(static_cast<const uint8_t*>(d)[a], static_cast<const uint8_t*>(d)[b]);
  }
}

struct UniqueResult {
  std::vector<int64_t> first;    // per unique slice: index of its first occurrence
  std::vector<int64_t> inverse;  // per input slice: its unique slice
  std::vector<int64_t> counts;
};

UniqueResult ComputeUnique(const TensorView& x, bool has_axis, int64_t axis, bool sorted) {
  int64_t outer = 1, n = x.num_elements(), inner = 1;
  if (has_axis) {
    n = x.shape[axis];
    for (int64_t d = 0; d < static_cast<int64_t>(x.shape.size()); ++d) {
      if (d < axis) outer *= x.shape[d];
      if (d > axis) inner *= x.shape[d];
    }
  }
  // Lexicographic comparison of slices i and j (outer-major, then inner).
  auto compare = [&](int64_t i, int64_t j) {
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t k = 0; k < inner; ++k) {
        int c = CompareElements(x.data, x.dtype, (o * n + i) * inner + k, (o * n + j) * inner + k);
        if (c != 0) return c;
      }
    }
    return 0;
  };
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return compare(a, b) < 0; });
  // Groups of equal slices in sorted order; the first of each group has the lowest index.
  std::vector<int64_t> group_of(static_cast<size_t>(n)), group_first, group_count;
  for (size_t p = 0; p < order.size(); ++p) {
    if (p == 0 || compare(order[p - 1], order[p]) != 0) {
      group_first.push_back(order[p]);
      group_count.push_back(0);
    }
    group_of[order[p]] = static_cast<int64_t>(group_first.size()) - 1;
    ++group_count.back();
  }
  std::vector<int64_t> rank(group_first.size());  // group -> output position
  std::iota(rank.begin(), rank.end(), 0);
  if (!sorted) {
    std::vector<int64_t> by_first(group_first.size());
    std::iota(by_first.begin(), by_first.end(), 0);
    std::sort(by_first.begin(), by_first.end(),
              [&](int64_t a, int64_t b) { return group_first[a] < group_first[b]; });
    for (size_t p = 0; p < by_first.size(); ++p) rank[by_first[p]] = static_cast<int64_t>(p);
  }
  UniqueResult r;
  r.first.resize(group_first.size());
  r.counts.resize(group_first.size());
  for (size_t g = 0; g < group_first.size(); ++g) {
    r.first[rank[g]] = group_first[g];
    r.counts[rank[g]] = group_count[g];
  }
  r.inverse.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) r.inverse[i] = rank[group_of[i]];
  return r;
}

class UniqueKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    const Tensor* v = ctx.input_value(0);
    if (v == nullptr) return DataDependentShape(n, 0);
    ASSIGN_OR_RETURN(int64_t sorted, n.GetInt("sorted", 1));
    sorted_ = sorted != 0;
    has_axis_ = n.has_attr("axis");
    const Shape& in = ctx.input_shape(0);
    if (has_axis_) {
      ASSIGN_OR_RETURN(int64_t axis, n.GetInt("axis"));
      ASSIGN_OR_RETURN(axis_, NormalizeAxis(axis, static_cast<int64_t>(in.size()), n));
    }
    UniqueResult r = ComputeUnique(v->view(), has_axis_, axis_, sorted_);
    const int64_t u = static_cast<int64_t>(r.first.size());
    Shape y = has_axis_ ? in : Shape{u};
    if (has_axis_) y[axis_] = u;
    ctx.SetOutput(0, ctx.input_dtype(0), std::move(y));
    for (size_t i = 1; i < 4 && i < ctx.num_outputs(); ++i) {
      if (!ctx.has_output(i)) continue;
      ctx.SetOutput(i, DataType::kInt64, {i == 2 ? static_cast<int64_t>(r.inverse.size()) : u});
    }
    return Status::OK();
  }
  Status Run(RunContext& ctx) const override {
    const TensorView& x = ctx.input(0);
    UniqueResult r = ComputeUnique(x, has_axis_, axis_, sorted_);
    const TensorView& y = ctx.output(0);
    const int64_t u = static_cast<int64_t>(r.first.size());
    if ((has_axis_ ? y.shape[axis_] : y.shape[0]) != u) {
      return InvalidArgument("Unique: input changed after its shape was planned");
    }
    int64_t outer = 1, n = x.num_elements(), inner = 1;
    if (has_axis_) {
      n = x.shape[axis_];
      for (int64_t d = 0; d < static_cast<int64_t>(x.shape.size()); ++d) {
        if (d < axis_) outer *= x.shape[d];
        if (d > axis_) inner *= x.shape[d];
      }
    }
    const size_t block = static_cast<size_t>(inner) * DataTypeSize(x.dtype);
    const char* src = static_cast<const char*>(x.data);
    char* dst = static_cast<char*>(y.data);
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t j = 0; j < u; ++j) {
        std::memcpy(dst + (o * u + j) * block, src + (o * n + r.first[j]) * block, block);
      }
    }
    const std::vector<int64_t>* extra[3] = {&r.first, &r.inverse, &r.counts};
    for (size_t i = 1; i < 4 && i < ctx.num_outputs(); ++i) {
      if (!ctx.has_output(i) || extra[i - 1]->empty()) continue;
      std::memcpy(ctx.output(i).data, extra[i - 1]->data(), extra[i - 1]->size() * 8);
    }
    return Status::OK();
  }

 private:
  bool sorted_ = true, has_axis_ = false;
  int64_t axis_ = 0;
};

}  // namespace

void RegisterTensorUniqueKernels(KernelRegistry& registry) {
  registry.Register("", "Unique", MakeFactory<UniqueKernel>());
}

}  // namespace gpuhive::cpu
