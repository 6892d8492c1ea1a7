#include "gpuhive/memory/trace.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include "gpuhive/units.h"

namespace gpuhive {

namespace {
constexpr std::string_view kHeader = "# gpuhive-memory-trace v1";

bool ParseKind(std::string_view s, MemoryKind* kind) {
  for (int k = 0; k < kNumMemoryKinds; ++k) {
    if (MemoryKindName(static_cast<MemoryKind>(k)) == s) {
      *kind = static_cast<MemoryKind>(k);
      return true;
    }
  }
  return false;
}

template <typename T>
bool ParseInt(std::string_view s, T* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::vector<std::string_view> SplitFields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}
}  // namespace

std::string FormatTraceEvent(const TraceEvent& e) {
  return fmt::format("{} {} {} {} {} {}", e.op == TraceOp::kAlloc ? 'a' : 'f', e.id, e.bytes, e.owner,
                     MemoryKindName(e.kind), e.stream);
}

std::string FormatTrace(const Trace& trace) {
  std::string out(kHeader);
  out += '\n';
  if (!trace.description.empty()) {
    std::istringstream lines(trace.description);
    for (std::string line; std::getline(lines, line);) out += "# " + line + "\n";
  }
  for (const TraceEvent& e : trace.events) {
    out += FormatTraceEvent(e);
    out += '\n';
  }
  return out;
}

StatusOr<Trace> ParseTrace(std::string_view text) {
  Trace trace;
  std::unordered_map<uint64_t, uint64_t> live;  // id -> bytes
  size_t line_no = 0;
  bool header_seen = false;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (line.empty() || line == "\r") continue;
    if (line[0] == '#') {
      std::string_view body = line.substr(1);
      if (!body.empty() && body[0] == ' ') body.remove_prefix(1);
      if (line.rfind(kHeader, 0) == 0) {
        header_seen = true;
      } else if (trace.events.empty()) {
        if (!trace.description.empty()) trace.description += '\n';
        trace.description += std::string(body);
      }
      continue;
    }
    if (!header_seen) return InvalidArgument("trace line {}: missing header '{}'", line_no, kHeader);
    std::vector<std::string_view> f = SplitFields(line);
    if (f.size() != 6) return InvalidArgument("trace line {}: expected 6 fields, got {}", line_no, f.size());
    TraceEvent e;
    if (f[0] == "a") {
      e.op = TraceOp::kAlloc;
    } else if (f[0] == "f") {
      e.op = TraceOp::kFree;
    } else {
      return InvalidArgument("trace line {}: unknown event '{}' (expected a or f)", line_no, f[0]);
    }
    if (!ParseInt(f[1], &e.id)) return InvalidArgument("trace line {}: bad id '{}'", line_no, f[1]);
    if (!ParseInt(f[2], &e.bytes)) return InvalidArgument("trace line {}: bad byte count '{}'", line_no, f[2]);
    if (!ParseInt(f[3], &e.owner)) return InvalidArgument("trace line {}: bad owner '{}'", line_no, f[3]);
    if (!ParseKind(f[4], &e.kind)) return InvalidArgument("trace line {}: unknown kind '{}'", line_no, f[4]);
    if (!ParseInt(f[5], &e.stream)) return InvalidArgument("trace line {}: bad stream '{}'", line_no, f[5]);
    if (e.op == TraceOp::kAlloc) {
      if (e.bytes == 0) return InvalidArgument("trace line {}: allocation of 0 bytes", line_no);
      if (!live.emplace(e.id, e.bytes).second) {
        return InvalidArgument("trace line {}: id {} allocated while still live", line_no, e.id);
      }
    } else {
      auto it = live.find(e.id);
      if (it == live.end()) return InvalidArgument("trace line {}: free of id {} which is not live", line_no, e.id);
      if (it->second != e.bytes) {
        return InvalidArgument("trace line {}: free of id {} with {} bytes, allocated with {}", line_no, e.id,
                               e.bytes, it->second);
      }
      live.erase(it);
    }
    trace.events.push_back(e);
  }
  if (!header_seen) return InvalidArgument("not a gpuhive memory trace: missing header '{}'", kHeader);
  return trace;
}

StatusOr<Trace> ReadTraceFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open trace file '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  StatusOr<Trace> t = ParseTrace(ss.str());
  if (!t.ok()) return t.status().WithContext(path);
  return t;
}

Status WriteTraceFile(const Trace& trace, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return InvalidArgument("cannot open '{}' for writing", path);
  out << FormatTrace(trace);
  if (!out) return DataLoss("writing trace '{}' failed", path);
  return Status::OK();
}

TraceSummary SummarizeTrace(const Trace& trace) {
  TraceSummary s;
  uint64_t live = 0;
  std::unordered_map<uint32_t, bool> owners;
  for (const TraceEvent& e : trace.events) {
    if (e.op == TraceOp::kAlloc) {
      ++s.num_allocations;
      live += e.bytes;
      s.peak_live_bytes = std::max(s.peak_live_bytes, live);
      s.total_bytes += e.bytes;
      s.min_bytes = s.num_allocations == 1 ? e.bytes : std::min(s.min_bytes, e.bytes);
      s.max_bytes = std::max(s.max_bytes, e.bytes);
      owners[e.owner] = true;
    } else {
      ++s.num_frees;
      live -= std::min(live, e.bytes);
    }
  }
  s.num_owners = static_cast<uint32_t>(owners.size());
  return s;
}

// ---- RecorderResource ---------------------------------------------------------------------------

StatusOr<std::unique_ptr<RecorderResource>> RecorderResource::Create(MemoryResource* upstream, std::string path,
                                                                     std::string description) {
  if (upstream == nullptr) return InvalidArgument("recorder needs an upstream resource");
  std::FILE* file = nullptr;
  if (!path.empty()) {
    file = std::fopen(path.c_str(), "w");
    if (file == nullptr) return InvalidArgument("cannot open trace file '{}' for writing", path);
  }
  return std::unique_ptr<RecorderResource>(new RecorderResource(upstream, file, std::move(description)));
}

RecorderResource::RecorderResource(MemoryResource* upstream, std::FILE* file, std::string description)
    : upstream_(upstream), file_(file) {
  trace_.description = std::move(description);
  if (file_ != nullptr) {
    Trace header_only;
    header_only.description = trace_.description;
    std::string head = FormatTrace(header_only);
    std::fwrite(head.data(), 1, head.size(), file_);
  }
}

RecorderResource::~RecorderResource() {
  if (file_ != nullptr) std::fclose(file_);
}

Trace RecorderResource::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return trace_;
}

uint32_t RecorderResource::StreamIdLocked(void* native) {
  if (native == nullptr) return 0;
  auto [it, inserted] = streams_.emplace(native, static_cast<uint32_t>(streams_.size() + 1));
  return it->second;
}

void RecorderResource::AppendLocked(const TraceEvent& e) {
  trace_.events.push_back(e);
  if (file_ != nullptr) {
    std::string line = FormatTraceEvent(e);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), file_);
  }
}

StatusOr<void*> RecorderResource::DoAllocate(size_t bytes, AllocTag tag, StreamView stream) {
  StatusOr<void*> p = upstream_->Allocate(bytes, tag, stream);
  if (!p.ok()) return p;
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t id = next_id_++;
  ids_[*p] = id;
  AppendLocked({TraceOp::kAlloc, id, bytes, tag.owner, tag.kind, StreamIdLocked(stream.native)});
  return p;
}

void RecorderResource::DoDeallocate(void* ptr, size_t bytes, AllocTag tag, StreamView stream) noexcept {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = ids_.find(ptr);
    if (it != ids_.end()) {
      AppendLocked({TraceOp::kFree, it->second, bytes, tag.owner, tag.kind, StreamIdLocked(stream.native)});
      ids_.erase(it);
    }
  }
  upstream_->Deallocate(ptr, bytes, tag, stream);
}

// ---- Replay -------------------------------------------------------------------------------------

StatusOr<ReplayResult> ReplayTrace(const Trace& trace, MemoryResource* mr, const ReplayOptions& options) {
  struct Live {
    void* ptr;
    uint64_t bytes;
    AllocTag tag;
    StreamView stream;
  };
  ReplayResult r;
  std::unordered_map<uint64_t, Live> live;
  std::unordered_map<uint64_t, uint64_t> failed;  // id -> bytes
  uint64_t trace_live = 0, live_bytes = 0;
  auto view = [&](uint32_t id) {
    return id < options.streams.size() ? options.streams[id] : StreamView{};
  };
  int64_t start = NowNs();
  size_t index = 0;
  for (const TraceEvent& e : trace.events) {
    if (options.sample_every > 0 && options.on_sample && ++index % options.sample_every == 0) options.on_sample();
    AllocTag tag{e.owner, e.kind};
    if (e.op == TraceOp::kAlloc) {
      trace_live += e.bytes;
      ++r.allocations;
      StatusOr<void*> p = mr->Allocate(e.bytes, tag, view(e.stream));
      if (!p.ok()) {
        ++r.failures;
        if (trace_live <= options.budget_bytes) ++r.failures_under_budget;
        if (r.first_error.empty()) r.first_error = p.status().ToString();
        failed[e.id] = e.bytes;
        continue;
      }
      live[e.id] = Live{*p, e.bytes, tag, view(e.stream)};
      live_bytes += e.bytes;
      r.peak_requested_bytes = std::max(r.peak_requested_bytes, live_bytes);
    } else {
      auto it = live.find(e.id);
      if (it == live.end()) {
        auto f = failed.find(e.id);
        if (f == failed.end()) {
          for (auto& [id, l] : live) mr->Deallocate(l.ptr, l.bytes, l.tag, l.stream);
          return InvalidArgument("trace frees id {} which was never allocated", e.id);
        }
        trace_live -= f->second;
        failed.erase(f);
        continue;
      }
      trace_live -= it->second.bytes;
      live_bytes -= it->second.bytes;
      mr->Deallocate(it->second.ptr, it->second.bytes, it->second.tag, view(e.stream));
      live.erase(it);
    }
  }
  for (auto& [id, l] : live) mr->Deallocate(l.ptr, l.bytes, l.tag, l.stream);
  r.elapsed_ns = NowNs() - start;
  return r;
}

// ---- Synthetic executor workload ------------------------------------------------------------------

namespace {
struct ModelType {
  uint32_t owner;
  std::vector<uint64_t> weights;          // tensor sizes
  uint64_t activation_per_sample;
  uint64_t input_per_sample, output_per_sample;
  std::vector<uint64_t> workspace;        // per node, at batch 1 (0: none)
};

uint64_t LogUniform(std::mt19937_64& rng, uint64_t lo, uint64_t hi) {
  std::uniform_real_distribution<double> d(std::log(double(lo)), std::log(double(hi)));
  return static_cast<uint64_t>(std::exp(d(rng)));
}
}  // namespace

Trace GenerateExecutorTrace(const ExecutorWorkloadOptions& o) {
  std::mt19937_64 rng(o.seed);
  Trace trace;
  trace.description = fmt::format(
      "SYNTHETIC executor workload (generated by GenerateExecutorTrace, not recorded from the runtime): "
      "seed={} models={} resident={} workers={} requests={}",
      o.seed, o.num_model_types, o.max_resident, o.num_workers, o.num_requests);
  std::vector<ModelType> types;
  for (int t = 0; t < o.num_model_types; ++t) {
    ModelType m;
    m.owner = static_cast<uint32_t>(t + 1);
    uint64_t total = LogUniform(rng, o.min_model_bytes, o.max_model_bytes);
    for (uint64_t sum = 0; sum < total;) {
      uint64_t w = std::min<uint64_t>(LogUniform(rng, 1024, 64ull << 20), total - sum);
      m.weights.push_back(std::max<uint64_t>(w, 64));
      sum += w;
    }
    m.activation_per_sample = LogUniform(rng, o.min_sample_activation_bytes, o.max_sample_activation_bytes);
    m.input_per_sample = LogUniform(rng, 16 << 10, 2 << 20);
    m.output_per_sample = LogUniform(rng, 64, 512 << 10);
    int nodes = std::uniform_int_distribution<int>(20, 80)(rng);
    for (int n = 0; n < nodes; ++n) {
      bool has = std::uniform_int_distribution<int>(0, 2)(rng) == 0;
      m.workspace.push_back(has ? LogUniform(rng, 4 << 10, 4 << 20) : 0);
    }
    types.push_back(std::move(m));
  }

  uint64_t next_id = 1;
  auto alloc = [&](uint64_t bytes, uint32_t owner, MemoryKind kind, uint32_t stream) {
    uint64_t id = next_id++;
    trace.events.push_back({TraceOp::kAlloc, id, bytes, owner, kind, stream});
    return id;
  };
  auto free_ev = [&](uint64_t id, uint64_t bytes, uint32_t owner, MemoryKind kind, uint32_t stream) {
    trace.events.push_back({TraceOp::kFree, id, bytes, owner, kind, stream});
  };

  struct Resident {
    int type;
    std::vector<uint64_t> ids;
  };
  std::vector<Resident> resident;
  auto load = [&](int t) {
    Resident r{t, {}};
    for (uint64_t w : types[t].weights) r.ids.push_back(alloc(w, types[t].owner, MemoryKind::kWeights, 0));
    resident.push_back(std::move(r));
  };
  auto unload = [&](size_t idx) {
    const Resident& r = resident[idx];
    const ModelType& m = types[r.type];
    for (size_t i = 0; i < r.ids.size(); ++i) free_ev(r.ids[i], m.weights[i], m.owner, MemoryKind::kWeights, 0);
    resident.erase(resident.begin() + static_cast<std::ptrdiff_t>(idx));
  };

  // A request is a list of steps, run one at a time so that workers interleave.
  struct Step {
    bool is_alloc;
    int slot;
    uint64_t bytes;
    MemoryKind kind;
  };
  struct Request {
    uint32_t owner = 0;
    uint32_t stream = 0;
    std::vector<Step> steps;
    size_t next = 0;
    std::vector<uint64_t> slot_ids;
  };
  auto make_request = [&](const ModelType& m, int batch, uint32_t stream) {
    Request q;
    q.owner = m.owner;
    q.stream = stream;
    // slots: 0 input, 1 arena, 2 output, 3.. workspaces
    q.steps.push_back({true, 0, m.input_per_sample * batch, MemoryKind::kIO});
    q.steps.push_back({true, 1, AlignUp(m.activation_per_sample * batch, 256), MemoryKind::kActivations});
    int slot = 3;
    for (uint64_t ws : m.workspace) {
      if (ws == 0) continue;
      uint64_t bytes = ws * static_cast<uint64_t>(std::sqrt(double(batch)) + 0.5);
      q.steps.push_back({true, slot, bytes, MemoryKind::kWorkspace});
      q.steps.push_back({false, slot, bytes, MemoryKind::kWorkspace});
      ++slot;
    }
    q.steps.push_back({false, 0, m.input_per_sample * batch, MemoryKind::kIO});
    q.steps.push_back({true, 2, m.output_per_sample * batch, MemoryKind::kIO});
    q.steps.push_back({false, 1, AlignUp(m.activation_per_sample * batch, 256), MemoryKind::kActivations});
    q.steps.push_back({false, 2, m.output_per_sample * batch, MemoryKind::kIO});
    q.slot_ids.assign(static_cast<size_t>(slot), 0);
    return q;
  };

  std::vector<int> order(types.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::shuffle(order.begin(), order.end(), rng);
  for (int i = 0; i < std::min<int>(o.max_resident, o.num_model_types); ++i) load(order[i]);

  const int batches[] = {1, 2, 4, 8, 16, 32};
  std::vector<Request> inflight(static_cast<size_t>(o.num_workers));
  std::vector<bool> busy(static_cast<size_t>(o.num_workers), false);
  int issued = 0;
  int next_swap = o.requests_per_phase;
  // Traffic level (largest batch size the batcher forms) changes at every swap.
  int max_batch_idx = std::uniform_int_distribution<int>(0, 5)(rng);
  auto any_busy = [&] { return std::find(busy.begin(), busy.end(), true) != busy.end(); };
  while (issued < o.num_requests || any_busy()) {
    if (issued >= next_swap && issued < o.num_requests && o.num_model_types > o.max_resident) {
      // Swap a model that no in-flight request uses (leased models are never evicted) while the
      // other workers keep running: the new weights land between live arenas, as in a server.
      std::vector<size_t> idle;
      for (size_t i = 0; i < resident.size(); ++i) {
        bool leased = false;
        for (size_t w = 0; w < inflight.size(); ++w) {
          leased = leased || (busy[w] && inflight[w].owner == types[resident[i].type].owner);
        }
        if (!leased) idle.push_back(i);
      }
      if (!idle.empty()) {
        unload(idle[std::uniform_int_distribution<size_t>(0, idle.size() - 1)(rng)]);
        std::vector<int> candidates;
        for (int t = 0; t < o.num_model_types; ++t) {
          bool is_resident =
              std::any_of(resident.begin(), resident.end(), [t](const Resident& r) { return r.type == t; });
          if (!is_resident) candidates.push_back(t);
        }
        load(candidates[std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(rng)]);
        next_swap += o.requests_per_phase;
        max_batch_idx = std::uniform_int_distribution<int>(0, 5)(rng);
      }
    }
    int w = std::uniform_int_distribution<int>(0, o.num_workers - 1)(rng);
    if (!busy[w]) {
      if (issued >= o.num_requests) continue;
      const Resident& r = resident[std::uniform_int_distribution<size_t>(0, resident.size() - 1)(rng)];
      int batch = batches[std::uniform_int_distribution<int>(0, max_batch_idx)(rng)];
      inflight[w] = make_request(types[r.type], batch, static_cast<uint32_t>(w + 1));
      busy[w] = true;
      ++issued;
    }
    Request& q = inflight[w];
    const Step& s = q.steps[q.next++];
    if (s.is_alloc) {
      q.slot_ids[s.slot] = alloc(s.bytes, q.owner, s.kind, q.stream);
    } else {
      free_ev(q.slot_ids[s.slot], s.bytes, q.owner, s.kind, q.stream);
    }
    if (q.next == q.steps.size()) busy[w] = false;
  }
  while (!resident.empty()) unload(resident.size() - 1);
  return trace;
}

}  // namespace gpuhive
