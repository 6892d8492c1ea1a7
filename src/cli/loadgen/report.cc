#include "cli/loadgen/report.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "cli/loadgen/stats.h"
#include "gpuhive/units.h"

namespace gpuhive::loadgen {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

json LatencyJson(const LatencySummary& s) {
  return {{"count", s.count}, {"min", s.min}, {"mean", s.mean}, {"p50", s.p50}, {"p90", s.p90},
          {"p95", s.p95},     {"p99", s.p99}, {"max", s.max}};
}

bool InWindow(const RunResult& r, const Sample& s) { return s.t_s >= r.warmup_s && s.t_s < r.duration_s; }

// What one group of samples (a stream, or all streams of a model) adds up to inside the window.
struct Tally {
  int64_t sent = 0, ok = 0;
  std::map<std::string, int64_t> errors;
  std::vector<double> latencies_ms;
  void Add(const StreamRun& s, const RunResult& r) {
    for (const auto& x : s.samples) {
      if (!InWindow(r, x)) continue;
      ++sent;
      if (x.kind == 0) {
        ++ok;
        latencies_ms.push_back(x.latency_ms);
      } else {
        ++errors[s.kinds[x.kind]];
      }
    }
  }
};

// Per second of the run: ok count, error count and latency percentiles of requests due then.
json Timeline(const std::vector<const StreamRun*>& streams, const RunResult& r) {
  int seconds = static_cast<int>(std::ceil(r.duration_s));
  std::vector<std::vector<double>> lat(static_cast<size_t>(seconds));
  std::vector<int64_t> errs(static_cast<size_t>(seconds), 0);
  for (const auto* s : streams) {
    for (const auto& x : s->samples) {
      int sec = static_cast<int>(x.t_s);
      if (sec < 0 || sec >= seconds) continue;
      if (x.kind == 0) {
        lat[static_cast<size_t>(sec)].push_back(x.latency_ms);
      } else {
        ++errs[static_cast<size_t>(sec)];
      }
    }
  }
  json arr = json::array();
  for (int sec = 0; sec < seconds; ++sec) {
    LatencySummary l = Summarize(std::move(lat[static_cast<size_t>(sec)]));
    json e = {{"t", sec}, {"ok", l.count}, {"errors", errs[static_cast<size_t>(sec)]}};
    if (l.count) {
      e["p50_ms"] = l.p50;
      e["p99_ms"] = l.p99;
      e["max_ms"] = l.max;
    }
    arr.push_back(e);
  }
  return arr;
}

json RunJson(const Scenario& sc, const RunResult& r) {
  const double window = std::max(1e-9, r.duration_s - r.warmup_s);
  json run = {{"mode", r.mode}, {"measured_s", window}, {"warmup_s", r.warmup_s}, {"wall_s", r.wall_s}};
  int64_t sent = 0, ok = 0, errors = 0;
  json streams = json::array();
  std::map<std::string, std::vector<const StreamRun*>> by_model;
  for (const auto& s : r.streams) {
    by_model[s.spec.model].push_back(&s);
    sent += s.sent;
    ok += s.ok;
    for (const auto& [k, n] : s.errors) errors += n;
    Tally t;
    t.Add(s, r);
    double begin = std::max(s.spec.start_s, r.warmup_s);
    double end = s.spec.stop_s < 0 ? r.duration_s : std::min(s.spec.stop_s, r.duration_s);
    double active = end > begin ? end - begin : window;
    json j = {{"name", s.spec.name},
              {"model", s.spec.model},
              {"load", s.spec.mode == LoadMode::kOpen ? "open" : "closed"},
              {"sent", t.sent},
              {"ok", t.ok},
              {"errors", t.errors},
              {"throughput_rps", static_cast<double>(t.ok) / active},
              {"active_s", active},
              {"latency_ms", LatencyJson(Summarize(std::move(t.latencies_ms)))},
              {"total_sent", s.sent},
              {"total_ok", s.ok},
              {"total_errors", s.errors}};
    if (s.spec.mode == LoadMode::kOpen) {
      j["rate_rps"] = s.spec.rate_rps;
    } else {
      j["concurrency"] = s.spec.concurrency;
    }
    if (s.spec.priority) j["priority"] = *s.spec.priority;
    if (!s.spec.tenant.empty()) j["tenant"] = s.spec.tenant;
    if (!s.note.empty()) j["note"] = s.note;
    streams.push_back(j);
  }
  run["totals"] = {{"sent", sent}, {"ok", ok}, {"errors", errors}};
  run["streams"] = streams;
  json models = json::object();
  for (const auto& [model, list] : by_model) {
    Tally t;
    for (const auto* s : list) t.Add(*s, r);
    int64_t errs = 0;
    for (const auto& [k, n] : t.errors) errs += n;
    models[model] = {{"streams", list.size()},
                     {"sent", t.sent},
                     {"ok", t.ok},
                     {"error_count", errs},
                     {"errors", t.errors},
                     {"throughput_rps", static_cast<double>(t.ok) / window},
                     {"latency_ms", LatencyJson(Summarize(std::move(t.latencies_ms)))},
                     {"timeline", Timeline(list, r)}};
  }
  // Queue depth peaks from the management samples.
  for (const auto& m : r.models) {
    if (!models.contains(m.name)) continue;
    json& e = models[m.name];
    e["queue_depth_max"] = std::max(e.value("queue_depth_max", 0), m.queue_depth);
    e["queue_depth_timeline"].push_back({m.t_s, m.queue_depth});
  }
  run["models"] = models;
  // Per priority level (what "critical work stays fast" is judged by); streams without one: "default".
  std::map<std::string, std::vector<const StreamRun*>> by_priority;
  for (const auto& s : r.streams)
    by_priority[s.spec.priority ? std::to_string(*s.spec.priority) : "default"].push_back(&s);
  json priorities = json::object();
  for (const auto& [level, list] : by_priority) {
    Tally t;
    for (const auto* s : list) t.Add(*s, r);
    int64_t errs = 0;
    for (const auto& [k, n] : t.errors) errs += n;
    priorities[level] = {{"streams", list.size()},
                         {"sent", t.sent},
                         {"ok", t.ok},
                         {"error_count", errs},
                         {"throughput_rps", static_cast<double>(t.ok) / window},
                         {"latency_ms", LatencyJson(Summarize(std::move(t.latencies_ms)))}};
  }
  run["priorities"] = priorities;
  json devices = json::object();
  uint64_t scenario_budget = 0;
  if (!sc.server.memory_budget.empty()) {
    auto b = ParseBytes(sc.server.memory_budget);
    if (b.ok()) scenario_budget = *b;
  }
  for (const auto& d : r.devices) {
    json& e = devices[d.id];
    if (e.is_null()) {
      e = {{"peak_bytes", 0}, {"budget_bytes", d.budget_bytes}, {"peak_by_model", json::object()},
           {"timeline", json::array()}};
    }
    e["peak_bytes"] = std::max(e["peak_bytes"].get<uint64_t>(), d.used_bytes);
    e["budget_bytes"] = std::max(e["budget_bytes"].get<uint64_t>(), d.budget_bytes);
    for (const auto& [m, b] : d.used_by_model)
      e["peak_by_model"][m] = std::max(e["peak_by_model"].value(m, uint64_t{0}), b);
    e["timeline"].push_back({{"t", d.t_s}, {"used_bytes", d.used_bytes}, {"by_model", d.used_by_model}});
  }
  for (auto it = devices.begin(); it != devices.end(); ++it) {
    json& e = it.value();
    uint64_t budget = scenario_budget ? scenario_budget : e["budget_bytes"].get<uint64_t>();
    if (budget) e["within_budget"] = e["peak_bytes"].get<uint64_t>() <= budget;
    if (scenario_budget) e["scenario_budget_bytes"] = scenario_budget;
  }
  run["devices"] = devices;
  run["sampling"] = {{"attempts", r.sample_attempts}, {"failures", r.sample_failures}};
  if (!r.last_sample_error.empty()) run["sampling"]["last_error"] = r.last_sample_error;
  return run;
}

// a / b, or null when b is 0 (nothing to compare against: e.g. the baseline answered nothing).
json Ratio(double a, double b) { return b > 0 ? json(a / b) : json(nullptr); }

std::string RatioText(const json& r) { return r.is_number() ? fmt::format("{:.2f}", r.get<double>()) : "n/a"; }

json Comparison(const json& runs) {
  json c = {{"baseline", runs[0]["mode"]}, {"modes", json::array()}};
  const json& base = runs[0];
  double base_total = 0;
  for (auto it = base["models"].begin(); it != base["models"].end(); ++it)
    base_total += it.value()["throughput_rps"].get<double>();
  for (size_t i = 1; i < runs.size(); ++i) {
    const json& run = runs[i];
    json m = {{"mode", run["mode"]}, {"models", json::object()}};
    double total = 0;
    for (auto it = run["models"].begin(); it != run["models"].end(); ++it) {
      const json& cur = it.value();
      total += cur["throughput_rps"].get<double>();
      if (!base["models"].contains(it.key())) continue;
      const json& b = base["models"][it.key()];
      m["models"][it.key()] = {
          {"throughput_ratio", Ratio(cur["throughput_rps"].get<double>(), b["throughput_rps"].get<double>())},
          {"p99_ratio", cur["latency_ms"]["count"].get<size_t>() == 0
                            ? json(nullptr)
                            : Ratio(cur["latency_ms"]["p99"].get<double>(), b["latency_ms"]["p99"].get<double>())},
          {"errors", cur["error_count"]},
          {"baseline_errors", b["error_count"]}};
    }
    m["total_throughput_ratio"] = Ratio(total, base_total);
    for (auto it = run["priorities"].begin(); it != run["priorities"].end(); ++it) {
      if (!base["priorities"].contains(it.key())) continue;
      const json& cur = it.value();
      const json& b = base["priorities"][it.key()];
      m["priorities"][it.key()] = {
          {"p99_ms", cur["latency_ms"]["count"].get<size_t>() ? json(cur["latency_ms"]["p99"]) : json(nullptr)},
          {"baseline_p99_ms", b["latency_ms"]["count"].get<size_t>() ? json(b["latency_ms"]["p99"]) : json(nullptr)},
          {"p99_ratio", cur["latency_ms"]["count"].get<size_t>() == 0
                            ? json(nullptr)
                            : Ratio(cur["latency_ms"]["p99"].get<double>(), b["latency_ms"]["p99"].get<double>())},
          {"errors", cur["error_count"]},
          {"baseline_errors", b["error_count"]}};
    }
    c["modes"].push_back(m);
  }
  json mem = json::object();
  for (const auto& run : runs) {
    for (auto it = run["devices"].begin(); it != run["devices"].end(); ++it) {
      json e = {{"peak_bytes", it.value()["peak_bytes"]}, {"budget_bytes", it.value()["budget_bytes"]}};
      if (it.value().contains("within_budget")) e["within_budget"] = it.value()["within_budget"];
      mem[run["mode"].get<std::string>()][it.key()] = e;
    }
  }
  c["peak_memory"] = mem;
  return c;
}

std::string Sanitize(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') ? c : '_';
  return out;
}

std::string Fmt(double v, int digits = 1) { return fmt::format("{:.{}f}", v, digits); }
std::string MiB(uint64_t b) { return fmt::format("{:.1f} MiB", static_cast<double>(b) / (1024.0 * 1024.0)); }
std::string BudgetText(uint64_t b) { return b ? MiB(b) : "none"; }
// A latency figure, or "-" when nothing succeeded (a 0 would read as "instant").
std::string Ms(const json& latency, const char* key) {
  return latency["count"].get<size_t>() ? Fmt(latency[key].get<double>(), 2) : "-";
}

std::string ErrorsText(const json& errors) {
  std::string s;
  for (auto it = errors.begin(); it != errors.end(); ++it)
    s += (s.empty() ? "" : ", ") + it.key() + " " + std::to_string(it.value().get<int64_t>());
  return s.empty() ? "-" : s;
}

bool FindOnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::stringstream ss(path);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (!dir.empty() && access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

Status WriteFile(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
  out.close();
  if (!out) return Unavailable("cannot write '{}'", p.string());
  return Status::OK();
}

}  // namespace

json BuildReport(const Scenario& sc, const std::vector<RunResult>& runs) {
  json report;
  report["scenario"] = {{"name", sc.name},
                        {"description", sc.description},
                        {"protocol", sc.protocol == Protocol::kHttp ? "http" : "grpc"},
                        {"duration_s", sc.duration_s},
                        {"warmup_s", sc.warmup_s},
                        {"streams", sc.streams.size()}};
  if (!sc.server.memory_budget.empty()) report["scenario"]["memory_budget"] = sc.server.memory_budget;
  report["runs"] = json::array();
  for (const auto& r : runs) report["runs"].push_back(RunJson(sc, r));
  if (runs.size() > 1) report["comparison"] = Comparison(report["runs"]);
  return report;
}

std::string ReportText(const json& report) {
  std::string s;
  for (const auto& run : report["runs"]) {
    s += fmt::format("== mode {}: {} s measured, sent {} ok {} errors {}\n", run["mode"].get<std::string>(),
                     Fmt(run["measured_s"].get<double>()), run["totals"]["sent"].get<int64_t>(),
                     run["totals"]["ok"].get<int64_t>(), run["totals"]["errors"].get<int64_t>());
    s += fmt::format("  {:<24} {:>10} {:>9} {:>9} {:>9} {:>9}  {}\n", "model", "ok/s", "p50 ms", "p95 ms",
                     "p99 ms", "max ms", "errors");
    for (auto it = run["models"].begin(); it != run["models"].end(); ++it) {
      const json& m = it.value();
      const json& l = m["latency_ms"];
      s += fmt::format("  {:<24} {:>10} {:>9} {:>9} {:>9} {:>9}  {}\n", it.key(),
                       Fmt(m["throughput_rps"].get<double>()), Ms(l, "p50"), Ms(l, "p95"), Ms(l, "p99"), Ms(l, "max"),
                       ErrorsText(m["errors"]));
    }
    for (auto it = run["devices"].begin(); it != run["devices"].end(); ++it)
      s += fmt::format("  device {}: peak {} (budget {})\n", it.key(), MiB(it.value()["peak_bytes"].get<uint64_t>()),
                       BudgetText(it.value()["budget_bytes"].get<uint64_t>()));
  }
  if (report.contains("comparison")) {
    const json& c = report["comparison"];
    for (const auto& m : c["modes"]) {
      s += fmt::format("== {} vs {}: total throughput x{}\n", m["mode"].get<std::string>(),
                       c["baseline"].get<std::string>(), RatioText(m["total_throughput_ratio"]));
      for (auto it = m["models"].begin(); it != m["models"].end(); ++it)
        s += fmt::format("  {:<24} throughput x{}  p99 x{}\n", it.key(), RatioText(it.value()["throughput_ratio"]),
                         RatioText(it.value()["p99_ratio"]));
      if (m.contains("priorities"))
        for (auto it = m["priorities"].begin(); it != m["priorities"].end(); ++it)
          s += fmt::format("  priority {:<15} p99 x{}\n", it.key(), RatioText(it.value()["p99_ratio"]));
    }
  }
  return s;
}

Status WriteReportDir(const Scenario& sc, const std::vector<RunResult>& runs, const json& report,
                      const std::string& dir_name) {
  std::error_code ec;
  fs::path dir = fs::absolute(dir_name, ec);
  fs::create_directories(dir / "data", ec);
  if (ec) return Unavailable("cannot create '{}': {}", dir_name, ec.message());
  RETURN_IF_ERROR(WriteFile(dir / "report.json", report.dump(2)));

  // Data files and the gnuplot script.
  std::string gp = fmt::format("set terminal pngcairo size 1100,520 noenhanced\nset grid\nset key outside right\n"
                               "set xlabel 'time (s)'\nset xrange [0:{}]\n"
                               // Distinct colours for many models (golden-ratio hues).
                               "do for [i=1:64] {{ set linetype i lc rgb hsv2rgb(i*0.618034 - floor(i*0.618034), "
                               "0.6, 0.85) }}\n",
                               std::ceil(sc.duration_s));
  std::vector<std::string> pngs;
  const json& jruns = report["runs"];
  for (size_t ri = 0; ri < runs.size(); ++ri) {
    const RunResult& r = runs[ri];
    const json& jr = jruns[ri];
    std::string mode = Sanitize(r.mode);
    std::vector<std::pair<std::string, std::string>> model_files;
    for (auto it = jr["models"].begin(); it != jr["models"].end(); ++it) {
      std::string file = (dir / "data" / (mode + "-model-" + Sanitize(it.key()) + ".dat")).string();
      std::string text = "# t ok_per_s errors_per_s p50_ms p99_ms max_ms\n";
      for (const auto& e : it.value()["timeline"]) {
        auto num = [&](const char* k) { return e.contains(k) ? Fmt(e[k].get<double>(), 3) : std::string("NaN"); };
        text += fmt::format("{} {} {} {} {} {}\n", e["t"].get<int>(), e["ok"].get<int64_t>(),
                            e["errors"].get<int64_t>(), num("p50_ms"), num("p99_ms"), num("max_ms"));
      }
      RETURN_IF_ERROR(WriteFile(file, text));
      model_files.emplace_back(it.key(), file);
    }
    auto plot_models = [&](const std::string& png, const std::string& title, const std::string& ylabel,
                           int column, bool logy) {
      gp += fmt::format("set output '{}'\nset title '{}'\nset ylabel '{}'\n{}plot ", (dir / png).string(), title,
                        ylabel, logy ? "set logscale y\n" : "unset logscale y\n");
      for (size_t i = 0; i < model_files.size(); ++i)
        gp += fmt::format("{}'{}' using 1:{} with linespoints pt 7 ps 0.4 title '{}'", i ? ", " : "",
                          model_files[i].second, column, model_files[i].first);
      gp += "\n";
      pngs.push_back(png);
    };
    if (!model_files.empty()) {
      plot_models("latency-" + mode + ".png", r.mode + ": p99 latency per second (by due time)", "ms", 5, true);
      plot_models("throughput-" + mode + ".png", r.mode + ": ok responses per second", "responses/s", 2, false);
    }
    // Queue depth by model over time (from the management samples).
    std::vector<std::pair<std::string, std::string>> queue_files;
    for (auto it = jr["models"].begin(); it != jr["models"].end(); ++it) {
      if (!it.value().contains("queue_depth_timeline")) continue;
      std::string file = (dir / "data" / (mode + "-queue-" + Sanitize(it.key()) + ".dat")).string();
      std::string text = "# t queue_depth\n";
      for (const auto& p : it.value()["queue_depth_timeline"])
        text += fmt::format("{:.2f} {}\n", p[0].get<double>(), p[1].get<int>());
      RETURN_IF_ERROR(WriteFile(file, text));
      queue_files.emplace_back(it.key(), file);
    }
    if (!queue_files.empty()) {
      std::string png = "queue-" + mode + ".png";
      gp += fmt::format("set output '{}'\nset title '{}: queued requests by model (sampled once per second)'\n"
                        "set ylabel 'requests'\nunset logscale y\nplot ",
                        (dir / png).string(), r.mode);
      for (size_t i = 0; i < queue_files.size(); ++i)
        gp += fmt::format("{}'{}' using 1:2 with steps title '{}'", i ? ", " : "", queue_files[i].second,
                          queue_files[i].first);
      gp += "\n";
      pngs.push_back(png);
    }
    // Memory by model over time, one file per device.
    std::map<std::string, std::vector<const DeviceSample*>> by_device;
    for (const auto& d : r.devices) by_device[d.id].push_back(&d);
    for (const auto& [dev, samples] : by_device) {
      std::set<std::string> names;
      for (const auto* d : samples)
        for (const auto& [m, b] : d->used_by_model) names.insert(m);
      std::string file = (dir / "data" / (mode + "-memory-" + Sanitize(dev) + ".dat")).string();
      std::string text = "t used_MiB budget_MiB";
      for (const auto& n : names) text += " " + Sanitize(n);
      text += "\n";
      for (const auto* d : samples) {
        text += fmt::format("{:.2f} {:.2f} {:.2f}", d->t_s, d->used_bytes / 1048576.0, d->budget_bytes / 1048576.0);
        for (const auto& n : names) {
          auto it = d->used_by_model.find(n);
          text += " " + Fmt(it == d->used_by_model.end() ? 0.0 : it->second / 1048576.0, 2);
        }
        text += "\n";
      }
      RETURN_IF_ERROR(WriteFile(file, text));
      std::string png = "memory-" + mode + "-" + Sanitize(dev) + ".png";
      // Models stacked (filled), the sampled total and the budget as lines on top.
      std::string stacked;
      bool has_budget = false;
      for (const auto* d : samples) has_budget = has_budget || d->budget_bytes > 0;
      if (!names.empty())
        stacked = fmt::format("for [i={}:4:-1] f using 1:(sum [c=4:i] column(c)) with filledcurves x1 "
                              "title columnheader(i), ", 3 + names.size());
      gp += fmt::format("set output '{}'\nset title '{}: memory on {} by model (stacked)'\nset ylabel 'MiB'\n"
                        "unset logscale y\nset style fill solid 0.6 noborder\nf = '{}'\n"
                        "plot {}f using 1:2 with lines lw 2 lc rgb 'black' title 'total'{}\n",
                        (dir / png).string(), r.mode, dev, file, stacked,
                        has_budget ? ", f using 1:3 with lines dt 2 lw 2 lc rgb 'red' title 'budget'" : "");
      pngs.push_back(png);
    }
  }
  RETURN_IF_ERROR(WriteFile(dir / "plots.gp", gp));
  std::string plot_note;
  bool plotted = false;
  if (!FindOnPath("gnuplot")) {
    plot_note = "gnuplot was not found on PATH: no PNG plots (data files and plots.gp are there; run "
                "`gnuplot plots.gp` where gnuplot exists).";
  } else if ((dir.string() + "").find('\'') != std::string::npos) {
    plot_note = "the report directory's name contains a quote: plots skipped.";
  } else {
    std::string cmd = "gnuplot '" + (dir / "plots.gp").string() + "' > '" + (dir / "gnuplot.log").string() + "' 2>&1";
    int rc = std::system(cmd.c_str());
    if (rc != 0) {
      plot_note = "gnuplot failed (see gnuplot.log); plots may be missing.";
    } else {
      plotted = true;
    }
  }

  // report.md
  std::string md = fmt::format("# Load report: {}\n\n", sc.name.empty() ? "scenario" : sc.name);
  if (!sc.description.empty()) md += sc.description + "\n\n";
  md += fmt::format("Protocol {}, {} s per mode ({} s warm-up not reported), {} streams.{}\n\n",
                    sc.protocol == Protocol::kHttp ? "HTTP" : "gRPC", Fmt(sc.duration_s), Fmt(sc.warmup_s),
                    sc.streams.size(),
                    sc.server.memory_budget.empty() ? "" : " Memory budget " + sc.server.memory_budget + ".");
  md += "Latency is measured from when a request was due (open loop: its Poisson arrival) to its answer, "
        "so client-side queueing counts. Percentiles are exact (all samples).\n\n";
  if (report.contains("comparison")) {
    const json& c = report["comparison"];
    md += "## Comparison\n\n";
    for (const auto& m : c["modes"]) {
      md += fmt::format("**{} vs {}**: total throughput x{}\n\n| model | throughput ratio | p99 ratio | errors "
                        "({}) | errors ({}) |\n|---|---:|---:|---:|---:|\n",
                        m["mode"].get<std::string>(), c["baseline"].get<std::string>(),
                        RatioText(m["total_throughput_ratio"]), m["mode"].get<std::string>(),
                        c["baseline"].get<std::string>());
      for (auto it = m["models"].begin(); it != m["models"].end(); ++it)
        md += fmt::format("| {} | {} | {} | {} | {} |\n", it.key(), RatioText(it.value()["throughput_ratio"]),
                          RatioText(it.value()["p99_ratio"]), it.value()["errors"].get<int64_t>(),
                          it.value()["baseline_errors"].get<int64_t>());
      md += "\n";
      if (m.contains("priorities")) {
        md += fmt::format("| priority | p99 ms ({}) | p99 ms ({}) | p99 ratio | errors ({}) | errors ({}) |\n"
                          "|---|---:|---:|---:|---:|---:|\n",
                          m["mode"].get<std::string>(), c["baseline"].get<std::string>(), m["mode"].get<std::string>(),
                          c["baseline"].get<std::string>());
        for (auto it = m["priorities"].begin(); it != m["priorities"].end(); ++it) {
          const json& p = it.value();
          auto ms = [](const json& v) { return v.is_number() ? Fmt(v.get<double>(), 2) : std::string("-"); };
          md += fmt::format("| {} | {} | {} | {} | {} | {} |\n", it.key(), ms(p["p99_ms"]), ms(p["baseline_p99_ms"]),
                            RatioText(p["p99_ratio"]), p["errors"].get<int64_t>(), p["baseline_errors"].get<int64_t>());
        }
        md += "\n";
      }
    }
    md += "| mode | device | peak | budget | within budget |\n|---|---|---:|---:|---|\n";
    for (auto it = c["peak_memory"].begin(); it != c["peak_memory"].end(); ++it)
      for (auto d = it.value().begin(); d != it.value().end(); ++d)
        md += fmt::format("| {} | {} | {} | {} | {} |\n", it.key(), d.key(), MiB(d.value()["peak_bytes"].get<uint64_t>()),
                          BudgetText(d.value()["budget_bytes"].get<uint64_t>()),
                          d.value().contains("within_budget") ? (d.value()["within_budget"].get<bool>() ? "yes" : "NO")
                                                              : "-");
    md += "\n";
  }
  for (size_t ri = 0; ri < runs.size(); ++ri) {
    const json& run = jruns[ri];
    std::string mode = run["mode"].get<std::string>();
    md += fmt::format("## Mode `{}`\n\nSent {}, ok {}, errors {} (whole run, warm-up included).\n\n", mode,
                      run["totals"]["sent"].get<int64_t>(), run["totals"]["ok"].get<int64_t>(),
                      run["totals"]["errors"].get<int64_t>());
    md += "| model | streams | sent | ok/s | p50 ms | p95 ms | p99 ms | max ms | errors | max queue |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|\n";
    for (auto it = run["models"].begin(); it != run["models"].end(); ++it) {
      const json& m = it.value();
      const json& l = m["latency_ms"];
      md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", it.key(), m["streams"].get<int>(),
                        m["sent"].get<int64_t>(), Fmt(m["throughput_rps"].get<double>()), Ms(l, "p50"), Ms(l, "p95"),
                        Ms(l, "p99"), Ms(l, "max"),
                        ErrorsText(m["errors"]),
                        m.contains("queue_depth_max") ? std::to_string(m["queue_depth_max"].get<int>()) : "-");
    }
    md += "\n| stream | model | load | priority | tenant | sent | ok/s | p99 ms | errors |\n"
          "|---|---|---|---:|---|---:|---:|---:|---|\n";
    for (const auto& s : run["streams"]) {
      std::string load = s["load"] == "open" ? "open " + Fmt(s["rate_rps"].get<double>()) + "/s"
                                              : "closed x" + std::to_string(s["concurrency"].get<int>());
      md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", s["name"].get<std::string>(),
                        s["model"].get<std::string>(), load,
                        s.contains("priority") ? std::to_string(s["priority"].get<int>()) : "-",
                        s.value("tenant", std::string("-")), s["sent"].get<int64_t>(),
                        Fmt(s["throughput_rps"].get<double>()), Ms(s["latency_ms"], "p99"),
                        ErrorsText(s["errors"]));
    }
    md += "\n";
    for (const auto& s : run["streams"])
      if (s.contains("note")) md += "- stream `" + s["name"].get<std::string>() + "`: " + s["note"].get<std::string>() + "\n";
    if (run["devices"].empty()) {
      md += fmt::format("No device memory samples ({} of {} management requests failed{}).\n\n",
                        run["sampling"]["failures"].get<int64_t>(), run["sampling"]["attempts"].get<int64_t>(),
                        run["sampling"].contains("last_error") ? ", last: " + run["sampling"]["last_error"].get<std::string>()
                                                               : "");
    } else {
      for (auto it = run["devices"].begin(); it != run["devices"].end(); ++it)
        md += fmt::format("Device `{}`: peak {} of budget {}.\n\n", it.key(),
                          MiB(it.value()["peak_bytes"].get<uint64_t>()),
                          BudgetText(it.value()["budget_bytes"].get<uint64_t>()));
    }
    if (plotted) {
      std::string m = Sanitize(mode);
      for (const auto& png : pngs)
        if (png.find("-" + m + ".png") != std::string::npos || png.find("memory-" + m + "-") == 0)
          md += fmt::format("![{}]({})\n\n", png, png);
    }
  }
  if (!plot_note.empty()) md += "**Plots:** " + plot_note + "\n";
  return WriteFile(dir / "report.md", md);
}

}  // namespace gpuhive::loadgen
