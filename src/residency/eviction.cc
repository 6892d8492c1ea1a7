#include "gpuhive/residency/eviction.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace gpuhive::residency {
namespace {

class LruPolicy final : public EvictionPolicy {
 public:
  std::string name() const override { return "lru"; }
  std::vector<size_t> Order(const std::vector<EvictionCandidate>& c, int64_t) const override {
    std::vector<size_t> idx(c.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
      if (c[a].last_use_ns != c[b].last_use_ns) return c[a].last_use_ns < c[b].last_use_ns;
      return c[a].name < c[b].name;
    });
    return idx;
  }
};

class CostPolicy final : public EvictionPolicy {
 public:
  explicit CostPolicy(CostPolicyOptions o) : o_(o) {}
  std::string name() const override { return "cost"; }
  std::vector<size_t> Order(const std::vector<EvictionCandidate>& c, int64_t now_ns) const override {
    std::vector<double> value(c.size());
    for (size_t i = 0; i < c.size(); ++i) {
      const auto& e = c[i];
      double reuse;
      if (e.decayed_uses > 0) {
        reuse = e.decayed_uses + o_.prediction_weight * e.next_use_probability;
      } else {
        double age = static_cast<double>(std::max<int64_t>(0, now_ns - e.last_use_ns));
        double recency = std::exp2(-age / static_cast<double>(std::max<int64_t>(1, o_.recency_half_life_ns)));
        double frequency = 1.0 + std::log1p(static_cast<double>(e.use_count));
        reuse = recency * frequency + o_.prediction_weight * e.next_use_probability;
      }
      double prio = std::pow(o_.priority_factor, std::max(0, e.priority));
      double reload = static_cast<double>(std::max<int64_t>(1, e.reload_ns));
      value[i] = prio * reuse * reload / static_cast<double>(std::max<uint64_t>(1, e.bytes));
    }
    std::vector<size_t> idx(c.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
      if (value[a] != value[b]) return value[a] < value[b];
      return c[a].name < c[b].name;
    });
    return idx;
  }

 private:
  CostPolicyOptions o_;
};

}  // namespace

std::unique_ptr<EvictionPolicy> MakeLruPolicy() { return std::make_unique<LruPolicy>(); }
std::unique_ptr<EvictionPolicy> MakeCostPolicy(CostPolicyOptions options) {
  return std::make_unique<CostPolicy>(options);
}

void TransitionPredictor::Observe(const std::string& model) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!last_.empty()) {
    ++counts_[last_][model];
    ++totals_[last_];
  }
  last_ = model;
}

std::vector<std::pair<std::string, double>> TransitionPredictor::Predict(const std::string& model, size_t k) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<std::string, double>> out;
  auto it = counts_.find(model);
  if (it == counts_.end()) return out;
  double total = static_cast<double>(totals_.at(model));
  for (const auto& [next, n] : it->second) {
    if (next != model) out.emplace_back(next, static_cast<double>(n) / total);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    if (a.second != b.second) return a.second > b.second;
    return a.first < b.first;
  });
  if (out.size() > k) out.resize(k);
  return out;
}

double TransitionPredictor::Probability(const std::string& model, const std::string& next) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = counts_.find(model);
  if (it == counts_.end()) return 0;
  auto jt = it->second.find(next);
  if (jt == it->second.end()) return 0;
  return static_cast<double>(jt->second) / static_cast<double>(totals_.at(model));
}

std::string TransitionPredictor::last() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_;
}

void TransitionPredictor::Forget(const std::string& model) {
  std::lock_guard<std::mutex> lock(mu_);
  counts_.erase(model);
  totals_.erase(model);
  for (auto& [from, row] : counts_) {
    auto jt = row.find(model);
    if (jt != row.end()) {
      totals_[from] -= jt->second;
      row.erase(jt);
    }
  }
  if (last_ == model) last_.clear();
}

}  // namespace gpuhive::residency
