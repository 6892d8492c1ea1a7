#include "gpuhive/server/fake_service.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <thread>

#include "gpuhive/units.h"

namespace gpuhive::server {

namespace {

enum class Kind { kAddSub, kIdentity, kDelay, kBusy, kNoFit };

struct FakeModel {
  ModelMetadata meta;
  Kind kind = Kind::kAddSub;
  bool loaded = true;
  int priority = 0;
  std::string tenant = "default";
  uint64_t memory_limit_bytes = 0;
};

FakeModel MakeAddSub(const std::string& name, DataType t, Kind kind) {
  FakeModel m;
  m.kind = kind;
  m.meta.name = name;
  m.meta.versions = {"1"};
  m.meta.platform = "gpuhive_fake";
  m.meta.inputs = {{"INPUT0", t, {-1, 16}}, {"INPUT1", t, {-1, 16}}};
  m.meta.outputs = {{"OUTPUT0", t, {-1, 16}}, {"OUTPUT1", t, {-1, 16}}};
  return m;
}

FakeModel MakeUnary(const std::string& name, Shape shape, Kind kind) {
  FakeModel m;
  m.kind = kind;
  m.meta.name = name;
  m.meta.versions = {"1"};
  m.meta.platform = "gpuhive_fake";
  m.meta.inputs = {{"INPUT0", DataType::kFloat32, shape}};
  m.meta.outputs = {{"OUTPUT0", DataType::kFloat32, shape}};
  return m;
}

const Tensor* FindInput(const InferenceRequest& r, const std::string& name) {
  for (const auto& in : r.inputs)
    if (in.name == name) return &in.tensor;
  return nullptr;
}

template <typename T>
StatusOr<std::vector<NamedTensor>> AddSub(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape())
    return InvalidArgument("INPUT0 {} and INPUT1 {} must have the same shape",
                           ShapeToString(a.shape()), ShapeToString(b.shape()));
  ASSIGN_OR_RETURN(Tensor sum, Tensor::Allocate(a.dtype(), a.shape()));
  ASSIGN_OR_RETURN(Tensor diff, Tensor::Allocate(a.dtype(), a.shape()));
  const T* x = a.as<T>();
  const T* y = b.as<T>();
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    if constexpr (std::is_integral_v<T>) {
      // Wrap like two's complement hardware instead of signed-overflow UB.
      using U = std::make_unsigned_t<T>;
      sum.as<T>()[i] = static_cast<T>(static_cast<U>(x[i]) + static_cast<U>(y[i]));
      diff.as<T>()[i] = static_cast<T>(static_cast<U>(x[i]) - static_cast<U>(y[i]));
    } else {
      sum.as<T>()[i] = x[i] + y[i];
      diff.as<T>()[i] = x[i] - y[i];
    }
  }
  std::vector<NamedTensor> out;
  out.push_back({"OUTPUT0", std::move(sum)});
  out.push_back({"OUTPUT1", std::move(diff)});
  return out;
}

StatusOr<Tensor> Copy(const Tensor& t) {
  return Tensor::FromBytes(t.dtype(), t.shape(), t.data(), t.bytes());
}

}  // namespace

struct FakeService::Impl {
  monitor::Registry registry;
  monitor::GpuhiveMetrics metrics{};
  mutable std::mutex mu;
  std::map<std::string, FakeModel> models;  // GUARDED_BY(mu)
  bool ready = true;                        // GUARDED_BY(mu)
  std::atomic<int64_t> completed{0};

  // The delay model's worker: (due time, request).
  std::mutex work_mu;
  std::condition_variable work_cv;
  std::deque<std::pair<int64_t, std::unique_ptr<InferenceRequest>>> work;  // GUARDED_BY(work_mu)
  bool stop = false;                                                        // GUARDED_BY(work_mu)
  std::thread worker;

  void Complete(std::unique_ptr<InferenceRequest> r, StatusOr<std::vector<NamedTensor>> outputs,
                int64_t start_ns) {
    InferenceResponse resp;
    resp.model_name = r->model_name;
    resp.model_version = r->model_version.empty() ? "1" : r->model_version;
    resp.request_id = r->id;
    resp.batch_size = 1;
    resp.compute_ns = NowNs() - start_ns;
    std::string outcome = "success";
    if (!outputs.ok()) {
      resp.status = outputs.status();
      outcome = std::string(StatusCodeName(outputs.status().code()));
    } else {
      for (auto& t : *outputs) {
        bool wanted = r->requested_outputs.empty() ||
                      std::find(r->requested_outputs.begin(), r->requested_outputs.end(), t.name) !=
                          r->requested_outputs.end();
        if (wanted) resp.outputs.push_back(std::move(t));
      }
    }
    metrics.inference_requests_total->Labels({resp.model_name, resp.model_version, outcome})->Inc();
    metrics.compute_duration_seconds->Labels({resp.model_name})->Observe(resp.compute_ns * 1e-9);
    auto cb = std::move(r->on_complete);
    r->on_complete = nullptr;
    completed.fetch_add(1);
    if (cb) cb(std::move(resp));
  }

  void WorkerLoop() {
    std::unique_lock lock(work_mu);
    while (true) {
      if (stop && work.empty()) return;
      if (work.empty()) {
        work_cv.wait(lock);
        continue;
      }
      auto it = std::min_element(work.begin(), work.end(),
                                 [](const auto& a, const auto& b) { return a.first < b.first; });
      int64_t now = NowNs();
      int64_t deadline = it->second->deadline_ns;
      int64_t wake = deadline > 0 ? std::min(it->first, deadline) : it->first;
      if (!stop && wake > now) {
        work_cv.wait_for(lock, std::chrono::nanoseconds(wake - now));
        continue;
      }
      auto req = std::move(it->second);
      work.erase(it);
      lock.unlock();
      int64_t start = NowNs();
      if (req->deadline_ns > 0 && NowNs() >= req->deadline_ns) {
        Complete(std::move(req), DeadlineExceeded("request deadline passed while executing"), start);
      } else if (stop) {
        Complete(std::move(req), Unavailable("server shutting down"), start);
      } else {
        std::vector<NamedTensor> out;
        auto copy = Copy(req->inputs[0].tensor);
        if (copy.ok()) out.push_back({"OUTPUT0", std::move(*copy)});
        Complete(std::move(req), copy.ok() ? StatusOr<std::vector<NamedTensor>>(std::move(out))
                                           : StatusOr<std::vector<NamedTensor>>(copy.status()),
                 start);
      }
      lock.lock();
    }
  }
};

FakeService::FakeService() : impl_(std::make_unique<Impl>()) {
  auto m = monitor::RegisterGpuhiveMetrics(&impl_->registry);
  if (m.ok()) impl_->metrics = *m;  // a fixed table: cannot fail unless the table is broken
  auto& models = impl_->models;
  models["add_sub"] = MakeAddSub("add_sub", DataType::kInt32, Kind::kAddSub);
  models["add_sub_fp32"] = MakeAddSub("add_sub_fp32", DataType::kFloat32, Kind::kAddSub);
  models["busy"] = MakeAddSub("busy", DataType::kFloat32, Kind::kBusy);
  models["nofit"] = MakeAddSub("nofit", DataType::kFloat32, Kind::kNoFit);
  models["identity_any"] = MakeUnary("identity_any", {-1, -1}, Kind::kIdentity);
  models["delay"] = MakeUnary("delay", {-1, 1}, Kind::kDelay);
  models["unloaded"] = MakeUnary("unloaded", {-1, -1}, Kind::kIdentity);
  models["unloaded"].loaded = false;
  impl_->worker = std::thread([this] { impl_->WorkerLoop(); });
}

FakeService::~FakeService() {
  {
    std::lock_guard lock(impl_->work_mu);
    impl_->stop = true;
  }
  impl_->work_cv.notify_all();
  impl_->worker.join();
}

void FakeService::SetReady(bool ready) {
  std::lock_guard lock(impl_->mu);
  impl_->ready = ready;
}

int64_t FakeService::completed() const { return impl_->completed.load(); }

ServerMetadata FakeService::GetServerMetadata() {
  ServerMetadata m;
  m.version = "0.1.0";
  m.extensions = {"binary_tensor_data", "model_repository"};
  return m;
}

bool FakeService::IsReady() {
  std::lock_guard lock(impl_->mu);
  return impl_->ready;
}

static Status CheckVersion(const FakeModel& m, const std::string& version) {
  if (!version.empty() && version != "1")
    return NotFound("model '{}' has no version '{}'", m.meta.name, version);
  return Status::OK();
}

StatusOr<bool> FakeService::ModelReady(const std::string& name, const std::string& version) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->models.find(name);
  if (it == impl_->models.end()) return NotFound("unknown model '{}'", name);
  RETURN_IF_ERROR(CheckVersion(it->second, version));
  return it->second.loaded;
}

StatusOr<ModelMetadata> FakeService::GetModelMetadata(const std::string& name,
                                                      const std::string& version) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->models.find(name);
  if (it == impl_->models.end()) return NotFound("unknown model '{}'", name);
  RETURN_IF_ERROR(CheckVersion(it->second, version));
  return it->second.meta;
}

void FakeService::Infer(std::unique_ptr<InferenceRequest> r) {
  int64_t start = NowNs();
  Kind kind;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->models.find(r->model_name);
    if (it == impl_->models.end()) {
      r->Fail(NotFound("unknown model '{}'", r->model_name));
      return;
    }
    if (!it->second.loaded) {
      r->Fail(Unavailable("model '{}' is not loaded", r->model_name));
      return;
    }
    kind = it->second.kind;
  }
  switch (kind) {
    case Kind::kBusy:
      impl_->Complete(std::move(r), ResourceExhausted("queue of model 'busy' is full"), start);
      return;
    case Kind::kNoFit:
      impl_->Complete(std::move(r), Unavailable("model 'nofit' cannot be made resident"), start);
      return;
    case Kind::kDelay: {
      const Tensor* in = FindInput(*r, "INPUT0");
      if (!in || in->num_elements() < 1) {
        impl_->Complete(std::move(r), InvalidArgument("delay needs INPUT0 with one element"), start);
        return;
      }
      int64_t due = start + static_cast<int64_t>(in->as<float>()[0] * 1e6);
      {
        std::lock_guard lock(impl_->work_mu);
        impl_->work.emplace_back(due, std::move(r));
      }
      impl_->work_cv.notify_all();
      return;
    }
    case Kind::kIdentity: {
      const Tensor* in = FindInput(*r, "INPUT0");
      if (!in) {
        impl_->Complete(std::move(r), InvalidArgument("missing INPUT0"), start);
        return;
      }
      auto copy = Copy(*in);
      if (!copy.ok()) {
        impl_->Complete(std::move(r), copy.status(), start);
        return;
      }
      std::vector<NamedTensor> out;
      out.push_back({"OUTPUT0", std::move(*copy)});
      impl_->Complete(std::move(r), std::move(out), start);
      return;
    }
    case Kind::kAddSub: {
      const Tensor* a = FindInput(*r, "INPUT0");
      const Tensor* b = FindInput(*r, "INPUT1");
      if (!a || !b) {
        impl_->Complete(std::move(r), InvalidArgument("add_sub needs INPUT0 and INPUT1"), start);
        return;
      }
      auto out = a->dtype() == DataType::kInt32 ? AddSub<int32_t>(*a, *b) : AddSub<float>(*a, *b);
      impl_->Complete(std::move(r), std::move(out), start);
      return;
    }
  }
}

StatusOr<std::vector<RepositoryEntry>> FakeService::RepositoryIndex(bool ready_only) {
  std::lock_guard lock(impl_->mu);
  std::vector<RepositoryEntry> out;
  for (const auto& [name, m] : impl_->models) {
    if (ready_only && !m.loaded) continue;
    out.push_back({name, "1", m.loaded ? "READY" : "UNAVAILABLE", m.loaded ? "" : "unloaded"});
  }
  return out;
}

Status FakeService::LoadModel(const std::string& name) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->models.find(name);
  if (it == impl_->models.end()) return NotFound("no model '{}' in the repository", name);
  it->second.loaded = true;
  impl_->metrics.model_loads_total->Labels({name})->Inc();
  return Status::OK();
}

Status FakeService::UnloadModel(const std::string& name) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->models.find(name);
  if (it == impl_->models.end()) return NotFound("no model '{}' in the repository", name);
  it->second.loaded = false;
  return Status::OK();
}

std::vector<DeviceStatus> FakeService::Devices() {
  DeviceStatus d;
  d.id = "cpu";
  d.budget_bytes = 1 * GiB;
  std::lock_guard lock(impl_->mu);
  for (const auto& [name, m] : impl_->models) {
    if (!m.loaded) continue;
    d.used_by_model[name] = 4096;
    d.used_by_kind["weights"] += 4096;
    d.used_bytes += 4096;
  }
  return {d};
}

static ModelStatus StatusOf(const FakeModel& m) {
  ModelStatus s;
  s.name = m.meta.name;
  s.version = "1";
  s.state = m.loaded ? "READY" : "UNAVAILABLE";
  s.tier = m.loaded ? "device" : "disk";
  s.device = "cpu";
  s.bytes = m.loaded ? 4096 : 0;
  s.priority = m.priority;
  s.tenant = m.tenant;
  s.memory_limit_bytes = m.memory_limit_bytes;
  s.latency_profile = {{1, 0.0001}, {8, 0.0004}};
  if (m.meta.name == "add_sub") {  // as a model served in int8 reports itself
    s.precision = "int8";
    s.precision_note = "int8 (2 operators, minmax calibration): output 'y': rel L2 0.0123";
    s.precision_rel_l2 = 0.0123;
  }
  return s;
}

std::vector<ModelStatus> FakeService::Models() {
  std::lock_guard lock(impl_->mu);
  std::vector<ModelStatus> out;
  for (const auto& [name, m] : impl_->models) out.push_back(StatusOf(m));
  return out;
}

StatusOr<ModelStatus> FakeService::GetModelStatus(const std::string& name) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->models.find(name);
  if (it == impl_->models.end()) return NotFound("unknown model '{}'", name);
  return StatusOf(it->second);
}

Status FakeService::UpdateModelSettings(const std::string& name, const ModelSettings& s) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->models.find(name);
  if (it == impl_->models.end()) return NotFound("unknown model '{}'", name);
  if (s.priority && *s.priority < 0) return InvalidArgument("priority must be >= 0");
  if (s.priority) it->second.priority = *s.priority;
  if (s.tenant) it->second.tenant = *s.tenant;
  if (s.memory_limit_bytes) it->second.memory_limit_bytes = *s.memory_limit_bytes;
  return Status::OK();
}

std::string FakeService::MetricsText() { return impl_->registry.Expose(); }
monitor::Registry* FakeService::registry() { return &impl_->registry; }
const monitor::GpuhiveMetrics& FakeService::metrics() const { return impl_->metrics; }

}  // namespace gpuhive::server
