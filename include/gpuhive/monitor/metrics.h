// Metrics registry: counters, gauges and histograms grouped in labelled families, exposed in the
// Prometheus text format 0.0.4.
//
// Hot path: look a child up once (Family::Labels) and keep the pointer; increments on a child are
// single atomic operations. Children live as long as the registry (Remove() only hides a child from
// the exposition and keeps its storage, so a pointer held by a hot path stays valid).
// Thread safety: every class here is thread safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "gpuhive/status.h"

namespace gpuhive::monitor {

enum class MetricType { kCounter, kGauge, kHistogram };
std::string_view MetricTypeName(MetricType t);  // "counter", "gauge", "histogram"

// A monotonically increasing value. Inc() with a negative amount is ignored.
class Counter {
 public:
  void Inc(double amount = 1.0);
  // Mirrors an external monotonic counter (e.g. process CPU time read on scrape).
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double amount);
  void Sub(double amount) { Add(-amount); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Fixed upper bounds (ascending, finite; +Inf is implicit). Observe() is lock free.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<double> upper_bounds;      // without +Inf
    std::vector<uint64_t> cumulative;      // one per bound, then one for +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Collect() const;
  const std::vector<double>& upper_bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1, not cumulative
  std::atomic<double> sum_{0.0};
};

// Buckets for latencies in seconds: 100 us .. 60 s.
std::vector<double> LatencyBucketsSeconds();
// Exponential buckets: start, start*factor, ... (count bounds).
std::vector<double> ExponentialBuckets(double start, double factor, int count);

class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, MetricType type, std::vector<std::string> labels)
      : name_(std::move(name)), help_(std::move(help)), type_(type), label_names_(std::move(labels)) {}
  virtual ~FamilyBase() = default;
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Appends this family in text format 0.0.4 (nothing when it has no visible child).
  virtual void Expose(std::string* out) const = 0;

 private:
  std::string name_;
  std::string help_;
  MetricType type_;
  std::vector<std::string> label_names_;
};

// A family of children of type T keyed by label values (one value per label name, in order).
template <typename T>
class Family : public FamilyBase {
 public:
  Family(std::string name, std::string help, MetricType type, std::vector<std::string> labels,
         std::vector<double> buckets = {})
      : FamilyBase(std::move(name), std::move(help), type, std::move(labels)),
        buckets_(std::move(buckets)) {}

  // The child for these label values, created on first use. A wrong number of values is a
  // programming error: it is logged and answered with a child that is never exported.
  T* Labels(const std::vector<std::string>& values);
  // Hides the child from the exposition (e.g. a GPU that disappeared); its storage stays valid.
  void Remove(const std::vector<std::string>& values);
  void Expose(std::string* out) const override;

 private:
  struct Child {
    std::unique_ptr<T> metric;
    bool visible = true;
  };
  std::unique_ptr<T> Make() const;

  std::vector<double> buckets_;
  mutable std::shared_mutex mu_;
  std::map<std::vector<std::string>, Child> children_;  // GUARDED_BY(mu_)
  std::unique_ptr<T> sink_;                             // GUARDED_BY(mu_)
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

class Registry {
 public:
  // Registers a family, or returns the existing one when name, type, labels (and buckets) match.
  // Errors: kInvalidArgument for an invalid metric/label name or bad buckets, kAlreadyExists when
  // the name is taken by a different definition.
  StatusOr<CounterFamily*> AddCounter(const std::string& name, const std::string& help,
                                      std::vector<std::string> labels = {});
  StatusOr<GaugeFamily*> AddGauge(const std::string& name, const std::string& help,
                                  std::vector<std::string> labels = {});
  StatusOr<HistogramFamily*> AddHistogram(const std::string& name, const std::string& help,
                                          std::vector<std::string> labels,
                                          std::vector<double> buckets);

  // Called (outside the registry lock) at the start of every Expose(): updates gauges that are read
  // on scrape (host memory, NVML samples). Hooks must not call AddCollectHook.
  void AddCollectHook(std::function<void()> hook);

  // Prometheus text exposition format 0.0.4 of every family, sorted by name.
  std::string Expose() const;
  // Names a scrape can contain: family names, plus _bucket/_sum/_count for histograms.
  std::vector<std::string> SampleNames() const;
  std::vector<std::string> FamilyNames() const;

 private:
  template <typename F>
  StatusOr<F*> Add(MetricType type, const std::string& name, const std::string& help,
                   std::vector<std::string> labels, std::vector<double> buckets);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<FamilyBase>> families_;  // GUARDED_BY(mu_)
  std::map<std::string, std::vector<double>> buckets_;           // GUARDED_BY(mu_)
  mutable std::mutex hooks_mu_;
  std::vector<std::function<void()>> hooks_;                     // GUARDED_BY(hooks_mu_)
};

// Text-format helpers (exposed for tests).
bool IsValidMetricName(std::string_view name);
bool IsValidLabelName(std::string_view name);
std::string EscapeLabelValue(std::string_view value);  // \\ \" \n
std::string EscapeHelp(std::string_view help);         // \\ \n
std::string FormatMetricValue(double v);               // "+Inf", "-Inf", "NaN", shortest repr

}  // namespace gpuhive::monitor
