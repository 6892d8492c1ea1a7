#include "gpuhive/monitor/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "gpuhive/logging.h"

namespace gpuhive::monitor {

std::string_view MetricTypeName(MetricType t) {
  switch (t) {
    case MetricType::kCounter: return "counter";
    case MetricType::kGauge: return "gauge";
    case MetricType::kHistogram: return "histogram";
  }
  return "untyped";
}

static void AtomicAdd(std::atomic<double>* a, double amount) {
  double cur = a->load(std::memory_order_relaxed);
  while (!a->compare_exchange_weak(cur, cur + amount, std::memory_order_relaxed)) {
  }
}

void Counter::Inc(double amount) {
  if (!(amount > 0)) return;  // also drops NaN
  AtomicAdd(&value_, amount);
}

void Gauge::Add(double amount) { AtomicAdd(&value_, amount); }

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)),
      counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  // Bucket i counts values <= bounds_[i]; the last one is +Inf (and NaN).
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(&sum_, value);
}

Histogram::Snapshot Histogram::Collect() const {
  Snapshot s;
  s.upper_bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    acc += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = acc;
  }
  s.count = acc;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> LatencyBucketsSeconds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,    0.5,    1.0,   2.5,    5.0,   10.0, 30.0,  60.0};
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> b;
  double v = start;
  for (int i = 0; i < count; ++i, v *= factor) b.push_back(v);
  return b;
}

bool IsValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string FormatMetricValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

namespace {

// `{a="x",b="y"` without the closing brace (so "le" can be appended), or "" when no labels.
std::string LabelPrefix(const std::vector<std::string>& names, const std::vector<std::string>& values) {
  if (names.empty()) return "";
  std::string s = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) s += ',';
    s += names[i];
    s += "=\"";
    s += EscapeLabelValue(values[i]);
    s += '"';
  }
  return s;
}

void Header(const FamilyBase& f, std::string* out) {
  *out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name(), EscapeHelp(f.help()), f.name(),
                      MetricTypeName(f.type()));
}

void ExposeScalar(const std::string& name, const std::string& prefix, double v, std::string* out) {
  *out += name;
  if (!prefix.empty()) {
    *out += prefix;
    *out += '}';
  }
  *out += ' ';
  *out += FormatMetricValue(v);
  *out += '\n';
}

}  // namespace

template <typename T>
std::unique_ptr<T> Family<T>::Make() const {
  if constexpr (std::is_same_v<T, Histogram>) {
    return std::make_unique<Histogram>(buckets_);
  } else {
    return std::make_unique<T>();
  }
}

template <typename T>
T* Family<T>::Labels(const std::vector<std::string>& values) {
  if (values.size() != label_names().size()) {
    GH_LOG_ERROR("metrics", "{}: {} label values for {} labels", name(), values.size(),
                 label_names().size());
    std::unique_lock lock(mu_);
    if (!sink_) sink_ = Make();
    return sink_.get();
  }
  {
    std::shared_lock lock(mu_);
    auto it = children_.find(values);
    if (it != children_.end() && it->second.visible) return it->second.metric.get();
  }
  std::unique_lock lock(mu_);
  Child& c = children_[values];
  if (!c.metric) c.metric = Make();
  c.visible = true;
  return c.metric.get();
}

template <typename T>
void Family<T>::Remove(const std::vector<std::string>& values) {
  std::unique_lock lock(mu_);
  auto it = children_.find(values);
  if (it != children_.end()) it->second.visible = false;
}

template <typename T>
void Family<T>::Expose(std::string* out) const {
  std::shared_lock lock(mu_);
  bool any = false;
  for (const auto& [values, child] : children_) any |= child.visible;
  if (!any) return;
  Header(*this, out);
  for (const auto& [values, child] : children_) {
    if (!child.visible) continue;
    std::string prefix = LabelPrefix(label_names(), values);
    if constexpr (std::is_same_v<T, Histogram>) {
      Histogram::Snapshot s = child.metric->Collect();
      std::string open = prefix.empty() ? "{" : prefix + ",";
      for (size_t i = 0; i <= s.upper_bounds.size(); ++i) {
        std::string le = i < s.upper_bounds.size() ? FormatMetricValue(s.upper_bounds[i]) : "+Inf";
        *out += fmt::format("{}_bucket{}le=\"{}\"}} {}\n", name(), open, le, s.cumulative[i]);
      }
      ExposeScalar(name() + "_sum", prefix, s.sum, out);
      ExposeScalar(name() + "_count", prefix, static_cast<double>(s.count), out);
    } else {
      ExposeScalar(name(), prefix, child.metric->Value(), out);
    }
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

template <typename F>
StatusOr<F*> Registry::Add(MetricType type, const std::string& name, const std::string& help,
                           std::vector<std::string> labels, std::vector<double> buckets) {
  if (!IsValidMetricName(name)) return InvalidArgument("invalid metric name '{}'", name);
  for (const auto& l : labels) {
    if (!IsValidLabelName(l)) return InvalidArgument("metric {}: invalid label name '{}'", name, l);
    if (type == MetricType::kHistogram && l == "le")
      return InvalidArgument("metric {}: histogram label le is reserved", name);
  }
  if (type == MetricType::kHistogram) {
    if (buckets.empty()) return InvalidArgument("histogram {}: no buckets", name);
    for (size_t i = 0; i < buckets.size(); ++i) {
      if (!std::isfinite(buckets[i]) || (i && buckets[i] <= buckets[i - 1]))
        return InvalidArgument("histogram {}: buckets must be finite and ascending", name);
    }
  }
  std::lock_guard lock(mu_);
  auto it = families_.find(name);
  if (it != families_.end()) {
    FamilyBase* f = it->second.get();
    if (f->type() != type || f->label_names() != labels || buckets_[name] != buckets)
      return AlreadyExists("metric {} is already registered with a different definition", name);
    return static_cast<F*>(f);
  }
  auto fam = std::make_unique<F>(name, help, type, std::move(labels), buckets);
  F* raw = fam.get();
  families_.emplace(name, std::move(fam));
  buckets_[name] = std::move(buckets);
  return raw;
}

StatusOr<CounterFamily*> Registry::AddCounter(const std::string& name, const std::string& help,
                                              std::vector<std::string> labels) {
  return Add<CounterFamily>(MetricType::kCounter, name, help, std::move(labels), {});
}
StatusOr<GaugeFamily*> Registry::AddGauge(const std::string& name, const std::string& help,
                                          std::vector<std::string> labels) {
  return Add<GaugeFamily>(MetricType::kGauge, name, help, std::move(labels), {});
}
StatusOr<HistogramFamily*> Registry::AddHistogram(const std::string& name, const std::string& help,
                                                  std::vector<std::string> labels,
                                                  std::vector<double> buckets) {
  return Add<HistogramFamily>(MetricType::kHistogram, name, help, std::move(labels),
                              std::move(buckets));
}

void Registry::AddCollectHook(std::function<void()> hook) {
  std::lock_guard lock(hooks_mu_);
  hooks_.push_back(std::move(hook));
}

std::string Registry::Expose() const {
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard lock(hooks_mu_);
    hooks = hooks_;
  }
  for (auto& h : hooks) h();
  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& [name, f] : families_) f->Expose(&out);
  return out;
}

std::vector<std::string> Registry::FamilyNames() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  for (const auto& [name, f] : families_) names.push_back(name);
  return names;
}

std::vector<std::string> Registry::SampleNames() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  for (const auto& [name, f] : families_) {
    names.push_back(name);
    if (f->type() == MetricType::kHistogram) {
      names.push_back(name + "_bucket");
      names.push_back(name + "_sum");
      names.push_back(name + "_count");
    }
  }
  return names;
}

}  // namespace gpuhive::monitor
