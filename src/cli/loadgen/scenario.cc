#include "cli/loadgen/scenario.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "gpuhive/units.h"

namespace gpuhive::loadgen {
namespace {

using json = nlohmann::json;

// Reads the fields of one JSON object, remembering which keys were used so that unknown keys
// (typos) can be reported. Every error names the field's path.
class Fields {
 public:
  Fields(const json& obj, std::string path) : obj_(obj), path_(std::move(path)) {}

  std::string Path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  bool Has(const std::string& key) {
    used_.insert(key);
    return obj_.contains(key) && !obj_.at(key).is_null();
  }
  const json& At(const std::string& key) { used_.insert(key); return obj_.at(key); }

  Status String(const std::string& key, std::string* out) {
    if (!Has(key)) return Status::OK();
    const json& v = obj_.at(key);
    if (!v.is_string()) return InvalidArgument("{}: must be a string, got {}", Path(key), v.dump());
    *out = v.get<std::string>();
    return Status::OK();
  }
  Status Number(const std::string& key, double* out, double lo, double hi) {
    if (!Has(key)) return Status::OK();
    const json& v = obj_.at(key);
    if (!v.is_number()) return InvalidArgument("{}: must be a number, got {}", Path(key), v.dump());
    double d = v.get<double>();
    if (!std::isfinite(d) || d < lo || d > hi)
      return InvalidArgument("{}: {} is out of range [{}, {}]", Path(key), v.dump(), lo, hi);
    *out = d;
    return Status::OK();
  }
  template <typename T>
  Status Integer(const std::string& key, T* out, int64_t lo, int64_t hi) {
    if (!Has(key)) return Status::OK();
    const json& v = obj_.at(key);
    if (!v.is_number_integer())
      return InvalidArgument("{}: must be an integer, got {}", Path(key), v.dump());
    int64_t i = v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
                    ? INT64_MAX
                    : v.get<int64_t>();
    if (i < lo || i > hi) return InvalidArgument("{}: {} is out of range [{}, {}]", Path(key), i, lo, hi);
    *out = static_cast<T>(i);
    return Status::OK();
  }
  Status StringList(const std::string& key, std::vector<std::string>* out) {
    if (!Has(key)) return Status::OK();
    const json& v = obj_.at(key);
    if (!v.is_array()) return InvalidArgument("{}: must be a list of strings", Path(key));
    out->clear();
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string())
        return InvalidArgument("{}[{}]: must be a string, got {}", Path(key), i, v[i].dump());
      out->push_back(v[i].get<std::string>());
    }
    return Status::OK();
  }
  // Call last: any key not read is an error.
  Status NoUnknownKeys() const {
    for (auto it = obj_.begin(); it != obj_.end(); ++it) {
      if (!used_.count(it.key())) {
        std::string known;
        for (const auto& k : used_) known += (known.empty() ? "" : ", ") + k;
        return InvalidArgument("{}: unknown field (known here: {})", Path(it.key()), known);
      }
    }
    return Status::OK();
  }

 private:
  const json& obj_;
  std::string path_;
  std::set<std::string> used_;
};

Status ParseInput(const json& j, const std::string& path, InputSpec* in) {
  if (!j.is_object()) return InvalidArgument("{}: must be an object", path);
  Fields f(j, path);
  RETURN_IF_ERROR(f.String("name", &in->name));
  RETURN_IF_ERROR(f.String("datatype", &in->datatype));
  if (!in->datatype.empty()) {
    std::string upper = in->datatype;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    DataType t = ParseDataType(upper);
    if (t == DataType::kUndefined) t = ParseDataType(in->datatype);  // ONNX spelling ("float")
    if (t == DataType::kUndefined || DataTypeSize(t) == 0)
      return InvalidArgument("{}: unknown or unsupported datatype '{}' (e.g. FP32, INT64)",
                             f.Path("datatype"), in->datatype);
    in->datatype = std::string(DataTypeKServeName(t));
  }
  if (f.Has("shape")) {
    const json& s = f.At("shape");
    if (!s.is_array()) return InvalidArgument("{}: must be a list of dims", f.Path("shape"));
    for (size_t i = 0; i < s.size(); ++i) {
      if (!s[i].is_number_integer() || s[i].get<int64_t>() < 0 || s[i].get<int64_t>() > (int64_t{1} << 31))
        return InvalidArgument("{}[{}]: must be a non-negative integer dim, got {}", f.Path("shape"), i,
                               s[i].dump());
      in->shape.push_back(s[i].get<int64_t>());
    }
  }
  if (f.Has("range")) {
    const json& r = f.At("range");
    if (!r.is_array() || r.size() != 2 || !r[0].is_number() || !r[1].is_number() ||
        r[0].get<double>() > r[1].get<double>())
      return InvalidArgument("{}: must be [lo, hi] with lo <= hi, got {}", f.Path("range"), r.dump());
    in->range_lo = r[0].get<double>();
    in->range_hi = r[1].get<double>();
  }
  return f.NoUnknownKeys();
}

Status ParseStream(const json& j, const std::string& path, StreamSpec* s) {
  if (!j.is_object()) return InvalidArgument("{}: must be an object", path);
  Fields f(j, path);
  RETURN_IF_ERROR(f.String("name", &s->name));
  RETURN_IF_ERROR(f.String("model", &s->model));
  if (s->model.empty()) return InvalidArgument("{}: 'model' is required", f.Path("model"));
  RETURN_IF_ERROR(f.String("version", &s->version));
  std::string mode = "open";
  RETURN_IF_ERROR(f.String("mode", &mode));
  if (mode == "open") {
    s->mode = LoadMode::kOpen;
    if (!f.Has("rate")) return InvalidArgument("{}: open loop needs 'rate' (requests/s)", f.Path("rate"));
    RETURN_IF_ERROR(f.Number("rate", &s->rate_rps, 1e-6, 1e7));
    if (f.Has("concurrency"))
      return InvalidArgument("{}: only closed loop streams take 'concurrency'", f.Path("concurrency"));
  } else if (mode == "closed") {
    s->mode = LoadMode::kClosed;
    if (!f.Has("concurrency"))
      return InvalidArgument("{}: closed loop needs 'concurrency'", f.Path("concurrency"));
    RETURN_IF_ERROR(f.Integer("concurrency", &s->concurrency, 1, 100000));
    if (f.Has("rate")) return InvalidArgument("{}: only open loop streams take 'rate'", f.Path("rate"));
  } else {
    return InvalidArgument("{}: must be \"open\" or \"closed\", got \"{}\"", f.Path("mode"), mode);
  }
  if (f.Has("priority")) {
    int p = 0;
    RETURN_IF_ERROR(f.Integer("priority", &p, 0, 999999));
    s->priority = p;
  }
  RETURN_IF_ERROR(f.String("tenant", &s->tenant));
  if (f.Has("tenant") && (s->tenant.empty() || s->tenant.size() > 128))
    return InvalidArgument("{}: must be a non-empty string of at most 128 bytes", f.Path("tenant"));
  RETURN_IF_ERROR(f.Integer("timeout_us", &s->timeout_us, 0, int64_t{1} << 40));
  RETURN_IF_ERROR(f.Number("start_s", &s->start_s, 0, 1e7));
  RETURN_IF_ERROR(f.Number("stop_s", &s->stop_s, 0, 1e7));
  if (f.Has("stop_s") && s->stop_s <= s->start_s)
    return InvalidArgument("{}: {} must be after start_s {}", f.Path("stop_s"), s->stop_s, s->start_s);
  RETURN_IF_ERROR(f.Integer("batch", &s->batch, 1, 1 << 20));
  if (f.Has("inputs")) {
    const json& in = f.At("inputs");
    if (!in.is_array()) return InvalidArgument("{}: must be a list of objects", f.Path("inputs"));
    for (size_t i = 0; i < in.size(); ++i) {
      InputSpec spec;
      RETURN_IF_ERROR(ParseInput(in[i], f.Path("inputs") + "[" + std::to_string(i) + "]", &spec));
      s->inputs.push_back(std::move(spec));
    }
    if (s->inputs.size() > 1) {
      for (const auto& spec : s->inputs)
        if (spec.name.empty())
          return InvalidArgument("{}: with several inputs, each needs a 'name'", f.Path("inputs"));
    }
  }
  return f.NoUnknownKeys();
}

Status ParseServer(const json& j, ServerSpec* s) {
  if (!j.is_object()) return InvalidArgument("server: must be an object");
  Fields f(j, "server");
  s->managed = true;
  RETURN_IF_ERROR(f.String("binary", &s->binary));
  RETURN_IF_ERROR(f.String("model_repository", &s->model_repository));
  if (s->model_repository.empty())
    return InvalidArgument("server.model_repository: required when the tool starts the server");
  RETURN_IF_ERROR(f.Integer("http_port", &s->http_port, 1, 65535));
  RETURN_IF_ERROR(f.Integer("grpc_port", &s->grpc_port, 1, 65535));
  RETURN_IF_ERROR(f.String("memory_budget", &s->memory_budget));
  if (!s->memory_budget.empty()) {
    auto b = ParseBytes(s->memory_budget);
    if (!b.ok())
      return InvalidArgument("server.memory_budget: '{}' is not a size like \"2GiB\" ({})", s->memory_budget,
                             b.status().message());
  }
  RETURN_IF_ERROR(f.String("model_control_mode", &s->model_control_mode));
  if (!s->model_control_mode.empty() && s->model_control_mode != "none" && s->model_control_mode != "poll" &&
      s->model_control_mode != "explicit")
    return InvalidArgument("server.model_control_mode: must be none, poll or explicit, got '{}'",
                           s->model_control_mode);
  RETURN_IF_ERROR(f.StringList("load_models", &s->load_models));
  RETURN_IF_ERROR(f.StringList("args", &s->args));
  RETURN_IF_ERROR(f.Number("ready_timeout_s", &s->ready_timeout_s, 1, 3600));
  if (s->http_port == s->grpc_port) return InvalidArgument("server: http_port and grpc_port must differ");
  return f.NoUnknownKeys();
}

StatusOr<uint16_t> ParsePort(std::string_view text, std::string_view what) {
  int port = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (ec != std::errc() || ptr != text.data() + text.size() || port < 1 || port > 65535)
    return InvalidArgument("'{}': bad port '{}'", what, text);
  return static_cast<uint16_t>(port);
}

}  // namespace

StatusOr<HostPort> ParseHostPort(std::string_view target) {
  size_t colon = target.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    return InvalidArgument("'{}': expected host:port", target);
  HostPort hp;
  hp.host = std::string(target.substr(0, colon));
  ASSIGN_OR_RETURN(hp.port, ParsePort(target.substr(colon + 1), target));
  return hp;
}

StatusOr<HostPort> ParseHttpUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme)
    return InvalidArgument("'{}': expected http://host:port (https is not supported)", url);
  std::string_view rest = url.substr(kScheme.size());
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos)
    return InvalidArgument("'{}': a path after host:port is not supported", url);
  return ParseHostPort(rest);
}

StatusOr<Scenario> ParseScenario(std::string_view text, std::string_view origin) {
  json root;
  try {
    root = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/true,
                       /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    // e.what() names line and column ("parse error at line 3, column 5: ...").
    return InvalidArgument("{}: not valid JSON: {}", origin, e.what());
  }
  auto with_origin = [&](Status s) { return s.ok() ? s : s.WithContext(origin); };
  if (!root.is_object()) return InvalidArgument("{}: the scenario must be a JSON object", origin);
  Scenario sc;
  Fields f(root, "");
  Status st = [&]() -> Status {
    RETURN_IF_ERROR(f.String("name", &sc.name));
    RETURN_IF_ERROR(f.String("description", &sc.description));
    std::string protocol = "http";
    RETURN_IF_ERROR(f.String("protocol", &protocol));
    if (protocol == "http") {
      sc.protocol = Protocol::kHttp;
    } else if (protocol == "grpc") {
      sc.protocol = Protocol::kGrpc;
    } else {
      return InvalidArgument("protocol: must be \"http\" or \"grpc\", got \"{}\"", protocol);
    }
    RETURN_IF_ERROR(f.String("url", &sc.url));
    if (auto u = ParseHttpUrl(sc.url); !u.ok()) return u.status().WithContext("url");
    RETURN_IF_ERROR(f.String("grpc_target", &sc.grpc_target));
    if (auto g = ParseHostPort(sc.grpc_target); !g.ok()) return g.status().WithContext("grpc_target");
    RETURN_IF_ERROR(f.Number("duration_s", &sc.duration_s, 0.1, 86400));
    // Default warm-up: 5 s, but never more than a fifth of a short run.
    sc.warmup_s = std::min(sc.warmup_s, sc.duration_s / 5);
    RETURN_IF_ERROR(f.Number("warmup_s", &sc.warmup_s, 0, 86400));
    if (sc.warmup_s >= sc.duration_s)
      return InvalidArgument("warmup_s: {} must be shorter than duration_s {}", sc.warmup_s, sc.duration_s);
    double timeout_ms = sc.client_timeout_s * 1000;
    RETURN_IF_ERROR(f.Number("client_timeout_ms", &timeout_ms, 1, 3.6e6));
    sc.client_timeout_s = timeout_ms / 1000;
    RETURN_IF_ERROR(f.Integer("max_connections", &sc.max_connections, 1, 60000));
    RETURN_IF_ERROR(f.Integer("seed", &sc.seed, 0, UINT32_MAX));
    RETURN_IF_ERROR(f.StringList("compare", &sc.compare));
    for (size_t i = 0; i < sc.compare.size(); ++i) {
      if (sc.compare[i].empty()) return InvalidArgument("compare[{}]: empty mode name", i);
      for (size_t k = 0; k < i; ++k)
        if (sc.compare[k] == sc.compare[i]) return InvalidArgument("compare[{}]: '{}' twice", i, sc.compare[i]);
    }
    if (f.Has("server")) RETURN_IF_ERROR(ParseServer(f.At("server"), &sc.server));
    if (!sc.compare.empty() && !sc.server.managed)
      return InvalidArgument("compare: comparing modes needs a \"server\" object (the tool starts "
                             "one server per mode)");
    if (!f.Has("streams")) return InvalidArgument("streams: required (a list of load streams)");
    const json& streams = f.At("streams");
    if (!streams.is_array() || streams.empty())
      return InvalidArgument("streams: must be a non-empty list of objects");
    std::set<std::string> names;
    for (size_t i = 0; i < streams.size(); ++i) {
      StreamSpec s;
      RETURN_IF_ERROR(ParseStream(streams[i], "streams[" + std::to_string(i) + "]", &s));
      if (s.start_s >= sc.duration_s)
        return InvalidArgument("streams[{}].start_s: {} is not inside the run ({} s)", i, s.start_s,
                               sc.duration_s);
      sc.streams.push_back(std::move(s));
    }
    // Default names: the model, numbered when a model has several streams.
    std::map<std::string, int> per_model;
    for (const auto& s : sc.streams) per_model[s.model]++;
    std::map<std::string, int> seen;
    for (size_t i = 0; i < sc.streams.size(); ++i) {
      auto& s = sc.streams[i];
      if (s.name.empty())
        s.name = per_model[s.model] == 1 ? s.model : s.model + "#" + std::to_string(seen[s.model]++);
      if (!names.insert(s.name).second)
        return InvalidArgument("streams[{}].name: '{}' is used twice", i, s.name);
    }
    return f.NoUnknownKeys();
  }();
  if (!st.ok()) return with_origin(st);
  return sc;
}

StatusOr<Scenario> LoadScenarioFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open scenario file '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseScenario(ss.str(), path);
}

}  // namespace gpuhive::loadgen
