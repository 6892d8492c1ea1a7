// GPU benchmark driver for bench/gpu/run_all.sh: per model and batch size, the CUDA executor's
// latency with and without CUDA Graphs, the CPU runtime's latency, and the normalized error of the
// CUDA result against the CPU; plus host-to-device copy times from pinned memory (1 MiB .. 1 GiB,
// the floor of a swap-in). Prints one JSON document on stdout.
//   gpuhive_cuda_bench --models-dir DIR [--models a,b] [--batches 1,8] [--iters 20] [--cpu-iters 2]
//                      [--tf32] [--copy-mb 1,16,256,1024]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
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

template <typename F>
std::vector<double> TimeMs(int iters, F&& f) {
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    if (!f()) break;
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return ms;
}

double NormErr(const Tensor& a, const Tensor& b) {
  if (a.dtype() != DataType::kFloat32 || b.dtype() != DataType::kFloat32 || a.num_elements() != b.num_elements()) {
    return a.bytes() == b.bytes() && std::memcmp(a.data(), b.data(), a.bytes()) == 0 ? 0.0 : INFINITY;
  }
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    double d = a.as<float>()[i] - b.as<float>()[i];
    num += d * d;
    den += static_cast<double>(b.as<float>()[i]) * b.as<float>()[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

struct Args {
  std::string models_dir = "models/generated";
  std::vector<std::string> models = {"resnet50", "mobilenet_v3_large", "efficientnet_b0", "bert_base"};
  std::vector<int64_t> batches = {1, 8, 64};
  int iters = 20;
  int cpu_iters = 2;
  bool tf32 = false;
  std::vector<int64_t> copy_mb = {1, 16, 256, 1024};
};

nlohmann::json BenchModel(const Args& a, const std::string& name) {
  nlohmann::json rows = nlohmann::json::array();
  std::filesystem::path path = std::filesystem::path(a.models_dir) / (name + ".onnx");
  if (!std::filesystem::exists(path)) return rows;
  auto cpu_model = ImportOnnxFile(path.string());
  auto gpu_model = ImportOnnxFile(path.string());
  auto gpu_model2 = ImportOnnxFile(path.string());
  if (!cpu_model.ok() || !gpu_model.ok() || !gpu_model2.ok()) {
    rows.push_back({{"model", name}, {"error", cpu_model.status().ToString()}});
    return rows;
  }
  auto compiled = CompiledModel::Create(std::move(*cpu_model), CompileOptions{});
  cuda::ExecutorOptions with;
  with.math = a.tf32 ? cuda::MathMode::kTF32 : cuda::MathMode::kFloat32;
  cuda::ExecutorOptions without = with;
  without.use_cuda_graphs = false;
  auto ex_graph = cuda::CreateCudaExecutorForModel(std::move(*gpu_model), with);
  auto ex_plain = cuda::CreateCudaExecutorForModel(std::move(*gpu_model2), without);
  if (!compiled.ok() || !ex_graph.ok() || !ex_plain.ok()) {
    Status st = !compiled.ok() ? compiled.status() : !ex_graph.ok() ? ex_graph.status() : ex_plain.status();
    rows.push_back({{"model", name}, {"error", st.ToString()}});
    return rows;
  }
  for (int64_t batch : a.batches) {
    std::vector<Tensor> inputs;
    std::vector<TensorView> views;
    for (const TensorInfo& info : (*compiled)->inputs()) {
      Shape shape;
      for (size_t d = 0; d < info.shape.size(); ++d) shape.push_back(info.shape[d] < 0 ? (d == 0 ? batch : 128) : info.shape[d]);
      std::vector<float> f;
      if (info.dtype == DataType::kFloat32) {
        f.resize(static_cast<size_t>(NumElements(shape)));
        for (size_t i = 0; i < f.size(); ++i) f[i] = std::sin(static_cast<float>(i) * 0.37f);
        inputs.push_back(Tensor::FromVector<float>(DataType::kFloat32, shape, f).value());
      } else {
        std::vector<int64_t> ids(static_cast<size_t>(NumElements(shape)));
        for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>((i * 37) % 1000);
        inputs.push_back(Tensor::FromVector<int64_t>(DataType::kInt64, shape, ids).value());
      }
      views.push_back(inputs.back().view());
    }
    nlohmann::json row = {{"model", name}, {"batch", batch}, {"math", a.tf32 ? "tf32" : "fp32"}};
    auto first = (*ex_graph)->Run(views);
    if (!first.ok()) {
      row["error"] = first.status().ToString();
      rows.push_back(row);
      continue;
    }
    ExecutionContext ctx({});
    std::vector<Tensor> ref;
    std::vector<double> cpu_ms = TimeMs(a.cpu_iters, [&] {
      auto r = (*compiled)->Run(ctx, views);
      if (r.ok()) ref = std::move(*r);
      return r.ok();
    });
    double err = 0;
    for (size_t o = 0; o < ref.size() && o < first->size(); ++o) err = std::max(err, NormErr((*first)[o], ref[o]));
    bool ok = true;
    (void)(*ex_plain)->Run(views);
    std::vector<double> plain_ms = TimeMs(a.iters, [&] { ok = (*ex_plain)->Run(views).ok() && ok; return ok; });
    std::vector<double> graph_ms = TimeMs(a.iters, [&] { ok = (*ex_graph)->Run(views).ok() && ok; return ok; });
    cuda::ExecutorStats st = (*ex_graph)->stats();
    row["cpu_ms"] = Median(cpu_ms);
    row["cuda_ms"] = Median(plain_ms);
    row["cuda_graph_ms"] = Median(graph_ms);
    row["graph_gain"] = Median(plain_ms) / Median(graph_ms);
    row["items_per_s_graph"] = static_cast<double>(batch) * 1000.0 / Median(graph_ms);
    if (ref.empty()) {
      row["norm_error_vs_cpu"] = nullptr;  // CPU not run
    } else {
      row["norm_error_vs_cpu"] = err;
    }
    row["graph_captures"] = st.graph_captures;
    row["graph_capture_failures"] = st.graph_capture_failures;
    row["ok"] = ok;
    rows.push_back(row);
    std::fprintf(stderr, "%s b%lld: cpu %.2f ms, cuda %.3f ms, graph %.3f ms, err %.2e\n", name.c_str(),
                 static_cast<long long>(batch), Median(cpu_ms), Median(plain_ms), Median(graph_ms), err);
  }
  return rows;
}

nlohmann::json BenchCopies(const Args& a) {
  nlohmann::json rows = nlohmann::json::array();
  auto bw = cuda::MeasureHostToDeviceBandwidth(0, 256ull << 20, 5);
  double peak = bw.ok() ? *bw : NAN;
  auto pinned = CreatePinnedHostResource();
  auto dev = CreateCudaDeviceResource(0);
  auto stream = cuda::Stream::Create({0, 0});
  if (!dev.ok() || !stream.ok()) return rows;
  for (int64_t mb : a.copy_mb) {
    size_t bytes = static_cast<size_t>(mb) << 20;
    auto h = Buffer::Allocate(pinned.get(), bytes);
    auto d = Buffer::Allocate(dev->get(), bytes);
    if (!h.ok() || !d.ok()) continue;
    std::memset(h->data(), 1, bytes);
    std::vector<double> ms = TimeMs(5, [&] {
      return cuda::CopyHostToDeviceAsync(d->data(), h->data(), bytes, (*stream)->view()).ok() &&
             (*stream)->Synchronize().ok();
    });
    double floor_ms = static_cast<double>(bytes) / peak * 1e3;
    rows.push_back({{"mib", mb}, {"copy_ms", Median(ms)}, {"bytes_over_bandwidth_ms", floor_ms},
                    {"ratio", Median(ms) / floor_ms}});
  }
  return nlohmann::json{{"h2d_bandwidth_gbps", peak / 1e9}, {"copies", rows}};
}

int Main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--models-dir") a.models_dir = v;
    else if (k == "--models") a.models = Split(v);
    else if (k == "--batches") { a.batches.clear(); for (auto& s : Split(v)) a.batches.push_back(std::stoll(s)); }
    else if (k == "--iters") a.iters = std::stoi(v);
    else if (k == "--cpu-iters") a.cpu_iters = std::stoi(v);
    else if (k == "--tf32") a.tf32 = v == "1";
    else if (k == "--copy-mb") { a.copy_mb.clear(); for (auto& s : Split(v)) a.copy_mb.push_back(std::stoll(s)); }
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  StatusOr<cuda::BackendChoice> choice = cuda::ChooseBackend({true, 0});
  if (!choice.ok()) {
    std::fprintf(stderr, "%s\n", choice.status().ToString().c_str());
    return 1;
  }
  nlohmann::json out;
  out["device"] = choice->device_name;
  out["models"] = nlohmann::json::array();
  for (const std::string& m : a.models) {
    for (auto& row : BenchModel(a, m)) out["models"].push_back(row);
  }
  out["copies"] = BenchCopies(a);
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace
}  // namespace gpuhive

int main(int argc, char** argv) { return gpuhive::Main(argc, argv); }
