#include "cli/loadgen/runner.h"

#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

#include "cli/loadgen/stats.h"

namespace gpuhive::loadgen {
namespace {

namespace net = boost::asio;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

uint16_t HalfFromFloat(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffff;
  if (exp <= 0) return static_cast<uint16_t>(sign);  // tiny values flush to zero
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7c00);
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exp) << 10) | (mant >> 13));
}

template <typename T>
void Append(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out->append(b, sizeof(T));
}

StatusOr<std::string> RandomBytes(DataType t, int64_t count, double lo, double hi, std::mt19937_64& rng) {
  std::string out;
  out.reserve(static_cast<size_t>(count) * DataTypeSize(t));
  std::uniform_real_distribution<double> real(lo, hi);
  // Integer ranges are clamped to what int64 holds (a scenario may say [0, 1e30]).
  constexpr double kLimit = 9.0e18;
  const int64_t int_lo = static_cast<int64_t>(std::clamp(std::ceil(lo), -kLimit, kLimit));
  const int64_t int_hi = std::max(int_lo, static_cast<int64_t>(std::clamp(std::floor(hi), -kLimit, kLimit)));
  std::uniform_int_distribution<int64_t> int_dist(int_lo, int_hi);
  auto integer = [&]() { return int_dist(rng); };
  for (int64_t i = 0; i < count; ++i) {
    switch (t) {
      case DataType::kFloat32: Append(&out, static_cast<float>(real(rng))); break;
      case DataType::kFloat64: Append(&out, real(rng)); break;
      case DataType::kFloat16: Append(&out, HalfFromFloat(static_cast<float>(real(rng)))); break;
      case DataType::kBFloat16: {
        float f = static_cast<float>(real(rng));
        uint32_t x;
        std::memcpy(&x, &f, 4);
        Append(&out, static_cast<uint16_t>(x >> 16));
        break;
      }
      case DataType::kBool: Append(&out, static_cast<uint8_t>(integer() != 0)); break;
      case DataType::kInt8: Append(&out, static_cast<int8_t>(integer())); break;
      case DataType::kUint8: Append(&out, static_cast<uint8_t>(integer())); break;
      case DataType::kInt16: Append(&out, static_cast<int16_t>(integer())); break;
      case DataType::kUint16: Append(&out, static_cast<uint16_t>(integer())); break;
      case DataType::kInt32: Append(&out, static_cast<int32_t>(integer())); break;
      case DataType::kUint32: Append(&out, static_cast<uint32_t>(integer())); break;
      case DataType::kInt64: Append(&out, static_cast<int64_t>(integer())); break;
      case DataType::kUint64: Append(&out, static_cast<uint64_t>(integer())); break;
      default: return InvalidArgument("cannot generate random data of type {}", DataTypeName(t));
    }
  }
  return out;
}

struct MetaInput {
  std::string name, datatype;
  Shape shape;
};

StatusOr<std::vector<MetaInput>> ParseMetadataInputs(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("inputs") || !j["inputs"].is_array())
    return InvalidArgument("model metadata is not a KServe metadata object");
  std::vector<MetaInput> out;
  for (const auto& i : j["inputs"]) {
    if (!i.is_object() || !i.contains("name") || !i["name"].is_string() || !i.contains("datatype") ||
        !i["datatype"].is_string() || !i.contains("shape") || !i["shape"].is_array())
      return InvalidArgument("model metadata: malformed input {}", i.dump());
    MetaInput m{i["name"].get<std::string>(), i["datatype"].get<std::string>(), {}};
    for (const auto& d : i["shape"]) {
      if (!d.is_number_integer()) return InvalidArgument("model metadata: bad dim in {}", i.dump());
      m.shape.push_back(d.get<int64_t>());
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::string ShapeString(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

}  // namespace

StatusOr<RequestTemplate> BuildRequestTemplate(const StreamSpec& stream, const std::string* metadata_json,
                                               uint64_t seed) {
  RequestTemplate r;
  r.model = stream.model;
  r.version = stream.version;
  if (stream.priority) r.triton_priority = *stream.priority;  // Triton numbering, sent as is
  r.tenant = stream.tenant;
  r.timeout_us = stream.timeout_us;
  std::mt19937_64 rng(seed);
  auto where = [&](const std::string& input) {
    return "stream '" + stream.name + "' (model '" + stream.model + "') input '" + input + "'";
  };
  auto fill = [&](PreparedInput* p, const InputSpec* spec) -> Status {
    DataType t = ParseDataType(p->datatype);
    if (t == DataType::kUndefined || DataTypeSize(t) == 0)
      return InvalidArgument("{}: unsupported datatype '{}'", where(p->name), p->datatype);
    int64_t count = NumElements(p->shape);
    if (count < 0 || count > (int64_t{1} << 31))
      return InvalidArgument("{}: shape {} is too large", where(p->name), ShapeString(p->shape));
    double lo = spec && spec->range_lo ? *spec->range_lo : 0.0;
    double hi = spec && spec->range_hi ? *spec->range_hi : 1.0;
    ASSIGN_OR_RETURN(p->bytes, RandomBytes(t, count, lo, hi, rng));
    return Status::OK();
  };

  if (metadata_json == nullptr) {
    for (const auto& spec : stream.inputs) {
      if (spec.name.empty() || spec.datatype.empty() || spec.shape.empty()) return r;  // sent as is
    }
    for (const auto& spec : stream.inputs) {
      PreparedInput p{spec.name, spec.datatype, spec.shape, {}};
      RETURN_IF_ERROR(fill(&p, &spec));
      r.inputs.push_back(std::move(p));
    }
    return r;
  }
  ASSIGN_OR_RETURN(std::vector<MetaInput> meta, ParseMetadataInputs(*metadata_json));
  std::string names;
  for (const auto& m : meta) names += (names.empty() ? "" : ", ") + m.name;
  for (const auto& spec : stream.inputs) {
    if (spec.name.empty() && meta.size() != 1)
      return InvalidArgument("stream '{}': an input without 'name' is only allowed for a model with one "
                             "input; model '{}' has: {}", stream.name, stream.model, names);
    bool found = spec.name.empty();
    for (const auto& m : meta) found = found || m.name == spec.name;
    if (!found)
      return InvalidArgument("stream '{}': '{}' is not an input of model '{}' (inputs: {})", stream.name,
                             spec.name, stream.model, names);
  }
  for (const auto& m : meta) {
    const InputSpec* spec = nullptr;
    for (const auto& s : stream.inputs)
      if (s.name == m.name || (s.name.empty() && meta.size() == 1)) spec = &s;
    PreparedInput p{m.name, m.datatype, {}, {}};
    if (spec && !spec->datatype.empty() && spec->datatype != m.datatype)
      return InvalidArgument("{}: scenario says {}, the model takes {}", where(m.name), spec->datatype,
                             m.datatype);
    if (spec && !spec->shape.empty()) {
      if (spec->shape.size() != m.shape.size())
        return InvalidArgument("{}: shape {} has rank {}, the model's {} has rank {}", where(m.name),
                               ShapeString(spec->shape), spec->shape.size(), ShapeString(m.shape),
                               m.shape.size());
      for (size_t d = 0; d < m.shape.size(); ++d)
        if (m.shape[d] >= 0 && m.shape[d] != spec->shape[d])
          return InvalidArgument("{}: shape {} does not fit the model's {}", where(m.name),
                                 ShapeString(spec->shape), ShapeString(m.shape));
      p.shape = spec->shape;
    } else {
      p.shape = m.shape;
      for (size_t d = 0; d < p.shape.size(); ++d) {
        if (p.shape[d] >= 0) continue;
        if (d != 0)
          return InvalidArgument("{}: dim {} of {} is variable; give \"shape\" for this input in the scenario",
                                 where(m.name), d, ShapeString(m.shape));
        p.shape[d] = stream.batch;
      }
    }
    RETURN_IF_ERROR(fill(&p, spec));
    r.inputs.push_back(std::move(p));
  }
  return r;
}

namespace {

// Polls the management API once per second on its own thread (blocking calls, own sockets).
class Sampler {
 public:
  Sampler(std::string host, uint16_t port, Clock::time_point start)
      : host_(std::move(host)), port_(port), start_(start) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Sampler() { Stop(); }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  void MoveInto(RunResult* r) {
    r->devices = std::move(devices_);
    r->models = std::move(models_);
    r->sample_attempts = attempts_;
    r->sample_failures = failures_;
    r->last_sample_error = last_error_;
  }

 private:
  void Loop() {
    auto next = Clock::now();
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (cv_.wait_until(lock, next, [this] { return stop_; })) return;
      }
      next += std::chrono::seconds(1);
      double t = std::chrono::duration<double>(Clock::now() - start_).count();
      SampleDevices(t);
      SampleModels(t);
    }
  }
  std::optional<json> Get(const std::string& target) {
    ++attempts_;
    auto r = HttpExchange(host_, port_, "GET", target, "", std::chrono::milliseconds(2000));
    if (!r.ok() || r->status != 200) {
      ++failures_;
      last_error_ = r.ok() ? "GET " + target + ": HTTP " + std::to_string(r->status) : r.status().ToString();
      return std::nullopt;
    }
    json j = json::parse(r->body, nullptr, false);
    if (j.is_discarded() || !j.is_array()) {
      ++failures_;
      last_error_ = "GET " + target + ": not a JSON array";
      return std::nullopt;
    }
    return j;
  }
  template <typename T>
  static T Field(const json& o, const char* key, T fallback) {
    auto it = o.find(key);
    if (it == o.end()) return fallback;
    if constexpr (std::is_same_v<T, std::string>) {
      return it->is_string() ? it->template get<std::string>() : fallback;
    } else {
      return it->is_number() ? it->template get<T>() : fallback;
    }
  }
  void SampleDevices(double t) {
    auto j = Get("/v2/gpuhive/devices");
    if (!j) return;
    for (const auto& d : *j) {
      if (!d.is_object()) continue;
      DeviceSample s;
      s.t_s = t;
      s.id = Field<std::string>(d, "id", "?");
      s.used_bytes = Field<uint64_t>(d, "used_bytes", 0);
      s.budget_bytes = Field<uint64_t>(d, "budget_bytes", 0);
      if (d.contains("used_by_model") && d["used_by_model"].is_object())
        for (auto it = d["used_by_model"].begin(); it != d["used_by_model"].end(); ++it)
          if (it.value().is_number()) s.used_by_model[it.key()] = it.value().get<uint64_t>();
      devices_.push_back(std::move(s));
    }
  }
  void SampleModels(double t) {
    auto j = Get("/v2/gpuhive/models");
    if (!j) return;
    for (const auto& m : *j) {
      if (!m.is_object()) continue;
      ModelSample s;
      s.t_s = t;
      s.name = Field<std::string>(m, "name", "?");
      s.state = Field<std::string>(m, "state", "");
      s.tier = Field<std::string>(m, "tier", "");
      s.bytes = Field<uint64_t>(m, "bytes", 0);
      s.queue_depth = Field<int>(m, "queue_depth", 0);
      models_.push_back(std::move(s));
    }
  }

  std::string host_;
  uint16_t port_;
  Clock::time_point start_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
  // Written by the sampling thread only; read after Stop().
  std::vector<DeviceSample> devices_;
  std::vector<ModelSample> models_;
  int64_t attempts_ = 0, failures_ = 0;
  std::string last_error_;
};

// The load itself: all state lives on the io_context thread.
class Driver {
 public:
  Driver(const Scenario& sc, const RunOptions& o, net::io_context& ioc, Transport& transport,
         std::vector<StreamRun>& streams)
      : sc_(sc), options_(o), ioc_(ioc), transport_(transport), streams_(streams), progress_timer_(ioc),
        end_timer_(ioc) {}

  void Start(Clock::time_point start) {
    start_ = start;
    end_ = start_ + Seconds(sc_.duration_s);
    for (size_t i = 0; i < streams_.size(); ++i) {
      const StreamSpec& s = streams_[i].spec;
      auto begin = start_ + Seconds(s.start_s);
      auto stop = s.stop_s < 0 ? end_ : std::min(end_, start_ + Seconds(s.stop_s));
      if (s.mode == LoadMode::kOpen) {
        auto st = std::make_shared<OpenState>(ioc_, s.rate_rps, sc_.seed * 1000003ull + i * 7919ull + 1);
        st->stop = stop;
        st->next_due = begin + Seconds(st->arrivals.NextGapSeconds());
        ScheduleOpen(i, st);
      } else {
        auto timer = std::make_shared<net::steady_timer>(ioc_, begin);
        timer->async_wait([this, i, stop, timer](boost::system::error_code) {
          for (int k = 0; k < streams_[i].spec.concurrency; ++k) SendClosed(i, stop);
        });
      }
    }
    progress_timer_.expires_at(start_ + std::chrono::seconds(1));
    progress_timer_.async_wait([this](boost::system::error_code ec) { Progress(ec); });
    end_timer_.expires_at(end_);
    end_timer_.async_wait([this](boost::system::error_code) { BeginDrain(); });
  }

  double drained_at_s() const { return drained_at_s_; }

 private:
  struct OpenState {
    OpenState(net::io_context& ioc, double rate, uint64_t seed) : timer(ioc), arrivals(rate, seed) {}
    net::steady_timer timer;
    PoissonArrivals arrivals;
    Clock::time_point next_due, stop;
  };

  static Clock::duration Seconds(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  }
  float Since(Clock::time_point t) const { return std::chrono::duration<float>(t - start_).count(); }

  void ScheduleOpen(size_t i, std::shared_ptr<OpenState> st) {
    if (draining_ || st->next_due >= st->stop) return;
    st->timer.expires_at(st->next_due);
    st->timer.async_wait([this, i, st](boost::system::error_code ec) {
      if (ec || draining_) return;
      auto now = Clock::now();
      // Catch up on every arrival already due (timer slack must not lower the offered rate).
      while (st->next_due <= now && st->next_due < st->stop) {
        Issue(i, st->next_due);
        st->next_due += Seconds(st->arrivals.NextGapSeconds());
      }
      ScheduleOpen(i, st);
    });
  }

  void SendClosed(size_t i, Clock::time_point stop) {
    auto now = Clock::now();
    if (draining_ || now >= stop) return;
    Issue(i, now, [this, i, stop] { SendClosed(i, stop); });
  }

  void Issue(size_t i, Clock::time_point due, std::function<void()> then = nullptr) {
    StreamRun& run = streams_[i];
    ++run.sent;
    ++sent_;
    transport_.Send(i, [this, i, due, then = std::move(then)](const Outcome& o) {
      auto now = Clock::now();
      StreamRun& r = streams_[i];
      Sample s;
      s.t_s = Since(due);
      s.latency_ms = std::chrono::duration<float, std::milli>(now - due).count();
      size_t k = 0;
      while (k < r.kinds.size() && r.kinds[k] != o.kind) ++k;
      if (k == r.kinds.size()) r.kinds.push_back(o.kind);
      s.kind = static_cast<uint16_t>(k);
      r.samples.push_back(s);
      if (o.ok) {
        ++r.ok;
        ++ok_;
      } else {
        ++r.errors[o.kind];
        ++errors_;
      }
      if (then) then();
      if (draining_) MaybeFinish();
    });
  }

  void Progress(boost::system::error_code ec) {
    if (ec || finished_) return;
    double t = std::chrono::duration<double>(Clock::now() - start_).count();
    if (options_.progress) {
      std::fprintf(stderr, "[%s] %6.1fs  sent %lld  ok %lld  errors %lld  in flight %zu  %.0f ok/s\n",
                   options_.mode.c_str(), t, static_cast<long long>(sent_), static_cast<long long>(ok_),
                   static_cast<long long>(errors_), transport_.in_flight(),
                   static_cast<double>(ok_ - last_ok_) / std::max(1e-3, t - last_t_));
    }
    last_ok_ = ok_;
    last_t_ = t;
    progress_timer_.expires_at(progress_timer_.expiry() + std::chrono::seconds(1));
    progress_timer_.async_wait([this](boost::system::error_code e) { Progress(e); });
  }

  void BeginDrain() {
    draining_ = true;
    transport_.DropBacklog();
    // Answers still on their way are waited for (each has the client timeout).
    drain_deadline_ = Clock::now() + Seconds(sc_.client_timeout_s + 2);
    end_timer_.expires_at(drain_deadline_);
    end_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) Finish();
    });
    MaybeFinish();
  }

  void MaybeFinish() {
    if (transport_.in_flight() == 0) Finish();
  }

  void Finish() {
    if (finished_) return;
    finished_ = true;
    drained_at_s_ = std::chrono::duration<double>(Clock::now() - start_).count();
    ioc_.stop();
  }

  const Scenario& sc_;
  const RunOptions& options_;
  net::io_context& ioc_;
  Transport& transport_;
  std::vector<StreamRun>& streams_;
  net::steady_timer progress_timer_, end_timer_;
  Clock::time_point start_, end_, drain_deadline_;
  bool draining_ = false, finished_ = false;
  int64_t sent_ = 0, ok_ = 0, errors_ = 0, last_ok_ = 0;
  double last_t_ = 0, drained_at_s_ = 0;
};

}  // namespace

StatusOr<RunResult> RunScenario(const Scenario& sc, const Target& target, const RunOptions& options) {
  RunResult result;
  result.mode = options.mode;
  result.duration_s = sc.duration_s;
  result.warmup_s = sc.warmup_s;
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(sc.client_timeout_s * 1000));
  if (target.protocol == Protocol::kGrpc && target.grpc_client == nullptr) {
    return FailedPrecondition("the scenario speaks gRPC but no gRPC client was given");
  }

  // Metadata once per (model, version).
  std::map<std::pair<std::string, std::string>, std::optional<std::string>> metadata;
  std::map<std::pair<std::string, std::string>, std::string> metadata_error;
  for (const auto& s : sc.streams) {
    auto key = std::make_pair(s.model, s.version);
    if (metadata.count(key)) continue;
    std::optional<std::string> text;
    if (target.protocol == Protocol::kHttp) {
      std::string path = "/v2/models/" + EncodePathSegment(s.model);
      if (!s.version.empty()) path += "/versions/" + EncodePathSegment(s.version);
      auto r = HttpExchange(target.http_host, target.http_port, "GET", path, "", std::chrono::milliseconds(10000));
      if (r.ok() && r->status == 200) {
        text = r->body;
      } else {
        metadata_error[key] = r.ok() ? "HTTP " + std::to_string(r->status) + " " + r->body : r.status().ToString();
      }
    } else {
      auto r = target.grpc_client->ModelMetadataJson(target.grpc_target, s.model, s.version,
                                                     std::chrono::milliseconds(10000));
      if (r.ok()) {
        text = *r;
      } else {
        metadata_error[key] = r.status().ToString();
      }
    }
    metadata[key] = text;
  }

  net::io_context ioc(1);
  TransportOptions topts;
  topts.timeout = timeout;
  topts.max_connections = sc.max_connections;
  std::unique_ptr<Transport> transport =
      target.protocol == Protocol::kHttp ? MakeHttpTransport(ioc, target.http_host, target.http_port, topts)
                                         : target.grpc_client->MakeTransport(ioc, target.grpc_target, topts);
  for (size_t i = 0; i < sc.streams.size(); ++i) {
    const StreamSpec& s = sc.streams[i];
    StreamRun run;
    run.spec = s;
    auto key = std::make_pair(s.model, s.version);
    const std::optional<std::string>& md = metadata[key];
    if (!md) {
      run.note = "model metadata unavailable (" + metadata_error[key] + ")";
      if (options.progress)
        std::fprintf(stderr, "[%s] warning: stream '%s': %s\n", options.mode.c_str(), s.name.c_str(),
                     run.note.c_str());
    }
    ASSIGN_OR_RETURN(RequestTemplate req, BuildRequestTemplate(s, md ? &*md : nullptr, sc.seed + i));
    RETURN_IF_ERROR(transport->AddStream(req));
    size_t expected = s.mode == LoadMode::kOpen
                          ? static_cast<size_t>(s.rate_rps * sc.duration_s * 1.1) + 16
                          : 1024;
    run.samples.reserve(std::min<size_t>(expected, size_t{1} << 24));
    result.streams.push_back(std::move(run));
  }

  auto start = Clock::now();
  std::optional<Sampler> sampler;
  if (options.sample_management) sampler.emplace(target.http_host, target.http_port, start);
  Driver driver(sc, options, ioc, *transport, result.streams);
  driver.Start(start);
  ioc.run();
  transport->Close();
  result.wall_s = driver.drained_at_s();
  if (sampler) {
    sampler->Stop();
    sampler->MoveInto(&result);
  }
  // Requests that never completed (drain deadline passed) are counted so that sent adds up.
  for (auto& s : result.streams) {
    int64_t done = s.ok;
    for (const auto& [k, n] : s.errors) done += n;
    if (done < s.sent) s.errors["unfinished"] += s.sent - done;
  }
  return result;
}

}  // namespace gpuhive::loadgen
