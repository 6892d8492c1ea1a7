// GPU benchmark driver for bench/gpu/run_all.sh. Writes one JSON object per line (JSON Lines) to
// --out as soon as each figure exists, so a run stopped at its time limit keeps what it measured:
//   {"kind":"model", ...}  per model, batch and math mode: the CUDA executor's latency with and
//                          without CUDA Graphs (host inputs in, host outputs out, as a server runs
//                          it), the CPU runtime's latency, the normalized error of the CUDA result
//                          against the CPU, whether the graph was captured, and the time Create took
//                          (weights uploaded) against weight bytes / measured H2D bandwidth;
//   {"kind":"copy", ...}   host-to-device copies from pinned memory of 64 MiB .. 1 GiB: one copy,
//                          and the copy engine's pattern (chunks on a low-priority stream, an event
//                          per chunk, time until the first chunk is usable), against bytes / bandwidth.
//   gpuhive_cuda_bench --models-dir DIR [--models a,b] [--batches 1,8] [--iters 20] [--cpu-iters 1]
//                      [--math fp32,tf32,fp16,bf16] [--copy-mb 64,256,1024] [--sections models,copies] --out FILE
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "gpuhive/cuda_device.h"
#include "gpuhive/cuda_executor.h"
#include "gpuhive/memory/upstreams.h"
#include "gpuhive/onnx_import.h"
#include "gpuhive/runtime.h"

namespace gpuhive {
namespace {

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

double Median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

template <typename F>
std::vector<double> TimeMs(int iters, F&& f) {
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    if (!f()) break;
    ms.push_back(MsSince(t0));
  }
  return ms;
}

double NormErr(const Tensor& a, const Tensor& b) {
  if (a.dtype() != DataType::kFloat32 || b.dtype() != DataType::kFloat32 || a.num_elements() != b.num_elements()) {
    return a.bytes() == b.bytes() && std::memcmp(a.data(), b.data(), a.bytes()) == 0 ? 0.0 : INFINITY;
  }
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    double x = a.as<float>()[i], y = b.as<float>()[i];
    if (std::isnan(x) != std::isnan(y)) return INFINITY;
    num += (x - y) * (x - y);
    den += y * y;
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

// Inputs a model accepts: floats from a smooth function, BERT-style integer inputs in their ranges
// (token types 0/1, attention mask all ones, token ids below 1000).
StatusOr<Tensor> MakeInput(const TensorInfo& info, int64_t batch) {
  Shape shape;
  for (size_t d = 0; d < info.shape.size(); ++d) shape.push_back(info.shape[d] < 0 ? (d == 0 ? batch : 128) : info.shape[d]);
  size_t n = static_cast<size_t>(NumElements(shape));
  if (info.dtype == DataType::kFloat32) {
    std::vector<float> f(n);
    for (size_t i = 0; i < n; ++i) f[i] = std::sin(static_cast<float>(i) * 0.37f);
    return Tensor::FromVector<float>(DataType::kFloat32, shape, f);
  }
  std::vector<int64_t> ids(n);
  for (size_t i = 0; i < n; ++i) {
    if (info.name.find("token_type") != std::string::npos) ids[i] = static_cast<int64_t>(i % 2);
    else if (info.name.find("mask") != std::string::npos) ids[i] = 1;
    else ids[i] = static_cast<int64_t>((i * 37) % 1000);
  }
  return Tensor::FromVector<int64_t>(DataType::kInt64, shape, ids);
}

struct Args {
  std::string models_dir = "models/generated";
  std::vector<std::string> models = {"resnet50", "mobilenet_v3_large", "efficientnet_b0", "bert_base"};
  std::vector<int64_t> batches = {1, 8, 64};
  std::vector<std::string> maths = {"fp32", "tf32"};
  std::vector<std::string> sections = {"models", "copies"};
  int iters = 20;
  int cpu_iters = 1;
  std::vector<int64_t> copy_mb = {64, 256, 1024};
  std::string out;
};

class Sink {
 public:
  explicit Sink(const std::string& path) : f_(path.empty() ? stdout : std::fopen(path.c_str(), "a")) {}
  ~Sink() {
    if (f_ != nullptr && f_ != stdout) std::fclose(f_);
  }
  bool ok() const { return f_ != nullptr; }
  void Write(const nlohmann::json& row) {
    std::fprintf(f_, "%s\n", row.dump().c_str());
    std::fflush(f_);
  }

 private:
  std::FILE* f_;
};

double g_h2d_bytes_per_s = NAN;

nlohmann::json With(nlohmann::json row, const nlohmann::json& more) {
  row.update(more);
  return row;
}

void BenchModel(const Args& a, const std::string& name, const std::string& math, Sink& sink) {
  std::filesystem::path path = std::filesystem::path(a.models_dir) / (name + ".onnx");
  nlohmann::json base = {{"kind", "model"}, {"model", name}, {"math", math}};
  if (!std::filesystem::exists(path)) {
    sink.Write(With(base, {{"error", "missing " + path.string()}}));
    return;
  }
  auto cpu_model = ImportOnnxFile(path.string());
  auto gpu_model = ImportOnnxFile(path.string());
  auto gpu_model2 = ImportOnnxFile(path.string());
  if (!cpu_model.ok() || !gpu_model.ok() || !gpu_model2.ok()) {
    sink.Write(With(base, {{"error", cpu_model.status().ToString()}}));
    return;
  }
  CompileOptions co;
  co.num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto compiled = CompiledModel::Create(std::move(*cpu_model), co);
  cuda::ExecutorOptions with;
  with.math = math == "tf32"   ? cuda::MathMode::kTF32
              : math == "fp16" ? cuda::MathMode::kFloat16
              : math == "bf16" ? cuda::MathMode::kBFloat16
                               : cuda::MathMode::kFloat32;
  cuda::ExecutorOptions without = with;
  without.use_cuda_graphs = false;
  auto t0 = std::chrono::steady_clock::now();
  auto ex_graph = cuda::CreateCudaExecutorForModel(std::move(*gpu_model), with);
  double create_ms = MsSince(t0);
  auto ex_plain = cuda::CreateCudaExecutorForModel(std::move(*gpu_model2), without);
  if (!compiled.ok() || !ex_graph.ok() || !ex_plain.ok()) {
    Status st = !compiled.ok() ? compiled.status() : !ex_graph.ok() ? ex_graph.status() : ex_plain.status();
    sink.Write(With(base, {{"error", st.ToString()}}));
    return;
  }
  bool first_batch = true;
  for (int64_t batch : a.batches) {
    std::vector<Tensor> inputs;
    std::vector<TensorView> views;
    for (const TensorInfo& info : (*compiled)->inputs()) {
      inputs.push_back(MakeInput(info, batch).value());
    }
    for (const Tensor& t : inputs) views.push_back(t.view());
    nlohmann::json row = With(base, {{"batch", batch}});
    auto t_first = std::chrono::steady_clock::now();
    auto first = (*ex_graph)->Run(views);
    double first_ms = MsSince(t_first);
    if (first_batch && first.ok()) {
      // The first run builds the plan and uploads the weights (synchronously, from pageable
      // memory): the executor's own swap-in, against weight bytes / pinned H2D bandwidth.
      size_t weight_bytes = (*ex_graph)->stats().weight_bytes;
      sink.Write(With(base, {{"event", "created"}, {"create_ms", create_ms}, {"first_run_ms", first_ms},
                             {"batch", batch}, {"weight_bytes", weight_bytes},
                             {"weights_over_h2d_bandwidth_ms", static_cast<double>(weight_bytes) / g_h2d_bytes_per_s * 1e3}}));
    }
    first_batch = false;
    if (!first.ok()) {
      row["error"] = first.status().ToString();
      sink.Write(row);
      continue;
    }
    std::vector<Tensor> ref;
    std::vector<double> cpu_ms;
    if (a.cpu_iters > 0) {
      ExecutionContext ctx({});
      cpu_ms = TimeMs(a.cpu_iters, [&] {
        auto r = (*compiled)->Run(ctx, views);
        if (r.ok()) ref = std::move(*r);
        else row["cpu_error"] = r.status().ToString();
        return r.ok();
      });
    }
    double err = 0;
    for (size_t o = 0; o < ref.size() && o < first->size(); ++o) err = std::max(err, NormErr((*first)[o], ref[o]));
    bool ok = true;
    Status last;
    auto run = [&](cuda::CudaExecutor& ex) {
      auto r = ex.Run(views);
      if (!r.ok()) last = r.status();
      ok = ok && r.ok();
      return r.ok();
    };
    (void)run(**ex_plain);
    (void)run(**ex_graph);  // the second run captures the graph
    std::vector<double> plain_ms = TimeMs(a.iters, [&] { return run(**ex_plain); });
    std::vector<double> graph_ms = TimeMs(a.iters, [&] { return run(**ex_graph); });
    auto prof = (*ex_plain)->ProfileSteps(views);
    if (prof.ok()) {
      nlohmann::json p = nlohmann::json::object();
      for (const auto& [op, sp] : *prof) p[op] = {sp.steps, sp.ms};
      row["profile_ms"] = p;
    } else {
      row["profile_error"] = prof.status().ToString();
    }
    cuda::ExecutorStats st = (*ex_graph)->stats();
    row["cpu_ms"] = cpu_ms.empty() ? nlohmann::json(nullptr) : nlohmann::json(Median(cpu_ms));
    row["cuda_ms"] = Median(plain_ms);
    row["cuda_graph_ms"] = Median(graph_ms);
    row["graph_gain"] = Median(plain_ms) / Median(graph_ms);
    row["items_per_s_graph"] = static_cast<double>(batch) * 1000.0 / Median(graph_ms);
    row["norm_error_vs_cpu"] = ref.empty() ? nlohmann::json(nullptr) : nlohmann::json(err);
    row["graph_captures"] = st.graph_captures;
    row["graph_replays"] = st.graph_replays;
    row["graph_capture_failures"] = st.graph_capture_failures;
    row["ok"] = ok;
    if (!ok) row["run_error"] = last.ToString();
    sink.Write(row);
    std::fprintf(stderr, "%s %s b%lld: cpu %.2f ms, cuda %.3f ms, graph %.3f ms, err %.2e, captures %zu/%zu\n",
                 name.c_str(), math.c_str(), static_cast<long long>(batch), Median(cpu_ms), Median(plain_ms),
                 Median(graph_ms), err, st.graph_captures, st.graph_capture_failures);
  }
}

void BenchCopies(const Args& a, Sink& sink) {
  auto pinned = CreatePinnedHostResource();
  auto dev = CreateCudaDeviceResource(0);
  auto stream = cuda::Stream::Create({0, 0});
  auto copy_stream = cuda::Stream::Create({0, 100});  // the copy engine's low-priority stream
  if (!dev.ok() || !stream.ok() || !copy_stream.ok()) {
    sink.Write({{"kind", "copy"}, {"error", "no device resource or stream"}});
    return;
  }
  constexpr size_t kChunk = 8ull << 20;
  for (int64_t mb : a.copy_mb) {
    size_t bytes = static_cast<size_t>(mb) << 20;
    auto h = Buffer::Allocate(pinned.get(), bytes);
    auto d = Buffer::Allocate(dev->get(), bytes);
    if (!h.ok() || !d.ok()) {
      sink.Write({{"kind", "copy"}, {"mib", mb}, {"error", "allocation failed"}});
      continue;
    }
    for (size_t i = 0; i < bytes; i += 4096) static_cast<uint8_t*>(h->data())[i] = static_cast<uint8_t>(i >> 12);
    std::vector<double> one = TimeMs(5, [&] {
      return cuda::CopyHostToDeviceAsync(d->data(), h->data(), bytes, (*stream)->view()).ok() &&
             (*stream)->Synchronize().ok();
    });
    // Chunked on the copy stream, one event per chunk; "first" is when the first chunk is usable.
    size_t chunks = (bytes + kChunk - 1) / kChunk;
    std::vector<std::unique_ptr<cuda::Event>> events;
    for (size_t c = 0; c < chunks; ++c) events.push_back(cuda::Event::Create(0, false).value());
    std::vector<double> first_ms, total_ms;
    for (int r = 0; r < 5; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      bool ok = true;
      for (size_t c = 0; c < chunks && ok; ++c) {
        size_t off = c * kChunk, n = std::min(kChunk, bytes - off);
        ok = cuda::CopyHostToDeviceAsync(static_cast<uint8_t*>(d->data()) + off, static_cast<uint8_t*>(h->data()) + off,
                                         n, (*copy_stream)->view()).ok() &&
             events[c]->Record((*copy_stream)->view()).ok();
      }
      ok = ok && events[0]->Synchronize().ok();
      first_ms.push_back(MsSince(t0));
      ok = ok && events.back()->Synchronize().ok();
      total_ms.push_back(MsSince(t0));
      if (!ok) break;
    }
    double floor_ms = static_cast<double>(bytes) / g_h2d_bytes_per_s * 1e3;
    nlohmann::json row = {{"kind", "copy"},        {"mib", mb},
                          {"one_copy_ms", Median(one)}, {"chunked_total_ms", Median(total_ms)},
                          {"chunked_first_chunk_ms", Median(first_ms)}, {"bytes_over_bandwidth_ms", floor_ms},
                          {"ratio_one", Median(one) / floor_ms}, {"ratio_chunked", Median(total_ms) / floor_ms},
                          {"ms_per_gib_chunked", Median(total_ms) / (static_cast<double>(bytes) / (1ull << 30))}};
    sink.Write(row);
    std::fprintf(stderr, "copy %lld MiB: one %.3f ms, chunked %.3f ms (first chunk %.3f), floor %.3f ms\n",
                 static_cast<long long>(mb), Median(one), Median(total_ms), Median(first_ms), floor_ms);
  }
}

int Main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    auto ints = [&] {
      std::vector<int64_t> r;
      for (auto& s : Split(v)) r.push_back(std::stoll(s));
      return r;
    };
    if (k == "--models-dir") a.models_dir = v;
    else if (k == "--models") a.models = Split(v);
    else if (k == "--batches") a.batches = ints();
    else if (k == "--iters") a.iters = std::stoi(v);
    else if (k == "--cpu-iters") a.cpu_iters = std::stoi(v);
    else if (k == "--math") a.maths = Split(v);
    else if (k == "--sections") a.sections = Split(v);
    else if (k == "--copy-mb") a.copy_mb = ints();
    else if (k == "--out") a.out = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  Sink sink(a.out);
  if (!sink.ok()) {
    std::fprintf(stderr, "cannot open %s\n", a.out.c_str());
    return 2;
  }
  StatusOr<cuda::BackendChoice> choice = cuda::ChooseBackend({true, 0});
  if (!choice.ok()) {
    sink.Write({{"kind", "device"}, {"error", choice.status().ToString()}});
    std::fprintf(stderr, "%s\n", choice.status().ToString().c_str());
    return 1;
  }
  auto bw = cuda::MeasureHostToDeviceBandwidth(0, 256ull << 20, 5);
  g_h2d_bytes_per_s = bw.ok() ? *bw : NAN;
  sink.Write({{"kind", "device"}, {"name", choice->device_name}, {"h2d_pinned_gb_per_s", g_h2d_bytes_per_s / 1e9}});
  auto has = [&](const char* s) { return std::find(a.sections.begin(), a.sections.end(), s) != a.sections.end(); };
  if (has("copies")) BenchCopies(a, sink);
  if (has("models")) {
    for (const std::string& math : a.maths) {
      for (const std::string& m : a.models) BenchModel(a, m, math, sink);
    }
  }
  return 0;
}

}  // namespace
}  // namespace gpuhive

int main(int argc, char** argv) { return gpuhive::Main(argc, argv); }
