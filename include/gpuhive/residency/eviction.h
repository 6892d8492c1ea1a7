// Eviction policies and the next-model predictor of the residency manager (DESIGN.md "Residency
// and swapping"). A policy only orders candidates; the manager decides how many to evict, so a
// policy is one small replaceable unit. Plain LRU is the baseline the cost policy is compared with.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace gpuhive::residency {

// An idle resident model the manager could evict (leased models are never candidates).
struct EvictionCandidate {
  std::string name;
  int priority = 0;              // 0 most important
  int64_t last_use_ns = 0;       // steady clock
  uint64_t bytes = 0;            // device bytes it would free
  int64_t reload_ns = 0;         // estimated time to make it resident again
  double next_use_probability = 0;  // from the predictor, 0..1
  uint64_t use_count = 0;        // acquisitions since it was registered
  // Acquisitions weighted by age (each halves every ManagerOptions::frequency_half_life_us): a
  // frequency that forgets. 0 when the manager does not track it.
  double decayed_uses = 0;
};

class EvictionPolicy {
 public:
  virtual ~EvictionPolicy() = default;
  virtual std::string name() const = 0;
  // Indices into `candidates`, the first to evict first. Must be a permutation. Thread safe.
  virtual std::vector<size_t> Order(const std::vector<EvictionCandidate>& candidates, int64_t now_ns) const = 0;
};

// Least recently used first; ties by name.
std::unique_ptr<EvictionPolicy> MakeLruPolicy();

struct CostPolicyOptions {
  // Recency half-life: a model unused for this long counts half as likely to be used again soon.
  int64_t recency_half_life_ns = 2'000'000'000;
  // Each priority step (0 most important) halves the value of keeping a model.
  double priority_factor = 0.5;
  // Weight of the predictor's probability against the recency/frequency estimate.
  double prediction_weight = 2.0;
};

// Evicts the model whose keeping is worth least per byte: value = priority weight x (estimated
// chance of reuse soon) x reload cost / bytes. The chance of reuse combines the decayed use count
// (recency and frequency in one number; with none given, recency decay x log of the use count)
// and the predictor's next-use probability.
std::unique_ptr<EvictionPolicy> MakeCostPolicy(CostPolicyOptions options = {});

// First-order model-to-model transition table learned from the request stream: after a request
// for A, how often was the next one for B. Thread safe.
class TransitionPredictor {
 public:
  // Records a request for `model` (the transition from the previous request's model).
  void Observe(const std::string& model);
  // Models most likely requested after `model` with their probabilities, most likely first,
  // at most `k`, excluding `model` itself.
  std::vector<std::pair<std::string, double>> Predict(const std::string& model, size_t k) const;
  // Probability that `next` follows `model`.
  double Probability(const std::string& model, const std::string& next) const;
  std::string last() const;
  void Forget(const std::string& model);

 private:
  mutable std::mutex mu_;
  std::string last_;
  std::map<std::string, std::map<std::string, uint64_t>> counts_;
  std::map<std::string, uint64_t> totals_;
};

}  // namespace gpuhive::residency
