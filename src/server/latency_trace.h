// Where an HTTP inference's time goes, per stage, when GPUHIVE_LATENCY_TRACE=1 is set in the
// environment (read once). Off, each probe costs one predictable branch. The HTTP server prints the
// averages to stderr when it stops. Internal to src/server.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

namespace gpuhive::server::trace {

enum Stage : int {
  kHeaders,      // Beast handed over the parsed request -> the router has it (header/body copies)
  kParse,        // router: route, metadata, JSON/binary decoding into an InferenceRequest
  kOverhead,     // service->Infer up to the completion callback, minus queue wait and compute:
                 // resolve, admission, batch split, service bookkeeping
  kQueue,        // enqueue -> compute start (includes waking a worker)
  kCompute,      // the runner
  kEncode,       // response encoding (JSON or binary)
  kHandoff,      // completion thread -> the connection's I/O thread starts the write
  kWrite,        // write started -> written
  kTotal,        // Beast handed over the request -> response written
  kStages,
};

inline constexpr std::array<const char*, kStages> kStageNames = {
    "headers", "parse", "overhead", "queue", "compute", "encode", "handoff", "write", "total"};

struct Totals {
  std::array<std::atomic<int64_t>, kStages> ns{};
  std::array<std::atomic<int64_t>, kStages> count{};
};

inline Totals& GetTotals() {
  static Totals totals;
  return totals;
}

inline bool Enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("GPUHIVE_LATENCY_TRACE");
    return v != nullptr && v[0] != '\0' && v[0] != '0';
  }();
  return enabled;
}

inline void Add(Stage stage, int64_t ns) {
  Totals& t = GetTotals();
  t.ns[stage].fetch_add(ns, std::memory_order_relaxed);
  t.count[stage].fetch_add(1, std::memory_order_relaxed);
}

// "stage avg_us (count)" for every stage seen.
inline std::string Report() {
  Totals& t = GetTotals();
  std::string out = "latency trace (average us per request):";
  for (int s = 0; s < kStages; ++s) {
    int64_t n = t.count[s].load();
    if (n == 0) continue;
    out += fmt::format(" {}={:.2f}", kStageNames[static_cast<size_t>(s)],
                       static_cast<double>(t.ns[s].load()) / 1e3 / static_cast<double>(n));
  }
  out += fmt::format(" (requests={})", t.count[kTotal].load());
  return out;
}

}  // namespace gpuhive::server::trace
