// Einsum: explicit and implicit output, repeated labels (diagonals, traces), broadcasting ellipsis.
// Evaluated as one strided loop nest: each output element sums the product of its operands over the
// contracted labels. Float types accumulate in double, integers in 64-bit.
#include <array>
#include <map>
#include <string>

#include "kernels/cpu/loops/math_register.h"
#include "kernels/cpu/loops/math_util.h"

namespace gpuhive::cpu::math {
namespace {

using loops::kIsFloat;

constexpr int kEllipsisBase = 100;  // labels >= this are ellipsis dims (right-aligned index)

int LetterLabel(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= 'A' && c <= 'Z') return 26 + (c - 'A');
  return -1;
}

// A term's labels with the ellipsis expanded for an operand of `rank` dims (-1: unknown yet).
StatusOr<std::vector<int>> ParseTerm(const std::string& term, int64_t rank, int64_t ellipsis_rank,
                                     const std::string& desc) {
  std::vector<int> labels;
  bool seen_ellipsis = false;
  int64_t letters = 0;
  for (char c : term) letters += LetterLabel(c) >= 0 ? 1 : 0;
  for (size_t i = 0; i < term.size(); ++i) {
    const char c = term[i];
    if (c == '.') {
      if (seen_ellipsis || term.compare(i, 3, "...") != 0) {
        return InvalidArgument("{}: malformed ellipsis in term '{}'", desc, term);
      }
      seen_ellipsis = true;
      i += 2;
      const int64_t n = rank >= 0 ? rank - letters : ellipsis_rank;
      if (n < 0) return InvalidArgument("{}: term '{}' has more labels than rank {}", desc, term, rank);
      for (int64_t k = 0; k < n; ++k) labels.push_back(kEllipsisBase + static_cast<int>(ellipsis_rank - n + k));
      continue;
    }
    const int l = LetterLabel(c);
    if (l < 0) return InvalidArgument("{}: invalid character '{}' in equation", desc, c);
    labels.push_back(l);
  }
  if (rank >= 0 && static_cast<int64_t>(labels.size()) != rank) {
    return InvalidArgument("{}: term '{}' does not match operand rank {}", desc, term, rank);
  }
  return labels;
}

class EinsumKernel final : public Kernel {
 public:
  EinsumKernel(const ir::Node& node) : desc_(node.Describe()) {}
  Status Init(const ir::Node& node) {
    ASSIGN_OR_RETURN(std::string eq, node.GetString("equation"));
    for (char c : eq) {
      if (c != ' ') equation_ += c;
    }
    return Status::OK();
  }

  Status Prepare(PrepareContext& ctx) override {
    const size_t n = ctx.num_inputs();
    if (n == 0) return InvalidArgument("{}: needs at least one input", desc_);
    const DataType dt = ctx.input_dtype(0);
    RETURN_IF_ERROR(loops::VisitNumeric(dt, desc_, [](auto) { return Status::OK(); }));
    for (size_t i = 0; i < n; ++i) {
      RETURN_IF_ERROR(RequireInput(ctx, i));
      if (ctx.input_dtype(i) != dt) return InvalidArgument("{}: all inputs must have the same type", desc_);
    }
    const size_t arrow = equation_.find("->");
    const std::string lhs = equation_.substr(0, arrow);
    std::vector<std::string> terms;
    size_t start = 0;
    while (true) {
      size_t comma = lhs.find(',', start);
      terms.push_back(lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (terms.size() != n) {
      return InvalidArgument("{}: equation '{}' has {} operands but the node has {} inputs", desc_,
                             equation_, terms.size(), n);
    }
    // Ellipsis rank = max over operands of rank - letters.
    int64_t ell_rank = 0;
    for (size_t i = 0; i < n; ++i) {
      if (terms[i].find("...") == std::string::npos) continue;
      int64_t letters = 0;
      for (char c : terms[i]) letters += LetterLabel(c) >= 0 ? 1 : 0;
      ell_rank = std::max<int64_t>(ell_rank, static_cast<int64_t>(ctx.input_shape(i).size()) - letters);
    }
    std::map<int, int64_t> sizes;
    std::map<int, int> counts;
    std::vector<std::vector<int>> in_labels(n);
    for (size_t i = 0; i < n; ++i) {
      const Shape& s = ctx.input_shape(i);
      ASSIGN_OR_RETURN(in_labels[i], ParseTerm(terms[i], static_cast<int64_t>(s.size()), ell_rank, desc_));
      for (size_t d = 0; d < s.size(); ++d) {
        const int l = in_labels[i][d];
        counts[l]++;
        auto it = sizes.find(l);
        if (it == sizes.end() || it->second == 1) {
          sizes[l] = (it != sizes.end() && s[d] == 1) ? it->second : s[d];
        } else if (s[d] != it->second && !(l >= kEllipsisBase && s[d] == 1)) {
          return InvalidArgument("{}: label size mismatch ({} vs {}) in '{}'", desc_, s[d], it->second, equation_);
        }
      }
    }
    std::vector<int> out_labels;
    if (arrow != std::string::npos) {
      ASSIGN_OR_RETURN(out_labels, ParseTerm(equation_.substr(arrow + 2), -1, ell_rank, desc_));
      for (int l : out_labels) {
        if (!sizes.count(l)) return InvalidArgument("{}: output label not in any input", desc_);
      }
    } else {
      for (int64_t k = 0; k < ell_rank; ++k) out_labels.push_back(kEllipsisBase + static_cast<int>(k));
      for (const auto& [l, c] : counts) {
        if (l < kEllipsisBase && c == 1) out_labels.push_back(l);
      }
    }
    std::vector<int> contracted;
    for (const auto& [l, size] : sizes) {
      if (std::find(out_labels.begin(), out_labels.end(), l) == out_labels.end()) contracted.push_back(l);
    }
    // Loop dims: output labels then contracted labels; strides per operand.
    out_shape_.clear();
    for (int l : out_labels) out_shape_.push_back(sizes[l]);
    out_dims_ = out_shape_;
    sum_dims_.clear();
    for (int l : contracted) sum_dims_.push_back(sizes[l]);
    out_strides_.assign(n, {});
    sum_strides_.assign(n, {});
    for (size_t i = 0; i < n; ++i) {
      const Shape& s = ctx.input_shape(i);
      const std::vector<int64_t> st = loops::ContiguousStrides(s);
      auto stride_of = [&](int l) {
        int64_t total = 0;
        for (size_t d = 0; d < s.size(); ++d) {
          if (in_labels[i][d] == l && s[d] != 1) total += st[d];
        }
        return total;
      };
      for (int l : out_labels) out_strides_[i].push_back(stride_of(l));
      for (int l : contracted) sum_strides_[i].push_back(stride_of(l));
    }
    ctx.SetOutput(0, dt, out_shape_);
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    return loops::VisitNumeric(ctx.input(0).dtype, desc_, [&](auto tag) -> Status {
      using T = typename decltype(tag)::type;
      using A = std::conditional_t<kIsFloat<T>, double, std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;
      const size_t n = ctx.num_inputs();
      std::vector<const T*> in(n);
      for (size_t i = 0; i < n; ++i) in[i] = ctx.input(i).template as<const T>();
      T* out = ctx.output(0).template as<T>();
      const int64_t out_count = NumElements(out_shape_);
      const int64_t sum_count = NumElements(sum_dims_);
      const size_t ns = sum_dims_.size();
      loops::ParallelFor(out_count, ctx.num_threads(), std::max<int64_t>(sum_count, 1) * static_cast<int64_t>(n),
                         [&](int64_t b, int64_t e) {
        std::vector<int64_t> base(n), off(n), idx(ns);
        for (int64_t o = b; o < e; ++o) {
          std::fill(base.begin(), base.end(), 0);
          int64_t rem = o;
          for (int64_t d = static_cast<int64_t>(out_dims_.size()) - 1; d >= 0; --d) {
            const int64_t v = rem % out_dims_[d];
            rem /= out_dims_[d];
            for (size_t i = 0; i < n; ++i) base[i] += v * out_strides_[i][d];
          }
          A acc = 0;
          std::fill(idx.begin(), idx.end(), 0);
          off = base;
          for (int64_t s = 0; s < sum_count; ++s) {
            A prod = 1;
            for (size_t i = 0; i < n; ++i) prod = WrapMul<A>(prod, static_cast<A>(static_cast<ComputeT<T>>(in[i][off[i]])));
            acc = WrapAdd<A>(acc, prod);
            for (int64_t d = static_cast<int64_t>(ns) - 1; d >= 0; --d) {
              for (size_t i = 0; i < n; ++i) off[i] += sum_strides_[i][d];
              if (++idx[d] < sum_dims_[d]) break;
              for (size_t i = 0; i < n; ++i) off[i] -= sum_strides_[i][d] * sum_dims_[d];
              idx[d] = 0;
            }
          }
          out[o] = ConvertTo<T>(acc);
        }
      });
      return Status::OK();
    });
  }

 private:
  std::string desc_;
  std::string equation_;
  Shape out_shape_;
  std::vector<int64_t> out_dims_, sum_dims_;
  std::vector<std::vector<int64_t>> out_strides_, sum_strides_;
};

}  // namespace

void RegisterEinsumKernels(KernelRegistry& registry) {
  registry.Register("", "Einsum", MakeFactory<EinsumKernel>(), 12);
}

}  // namespace gpuhive::cpu::math
