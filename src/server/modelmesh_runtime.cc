// ModelMeshRuntime: ModelMesh's load / size / unload contract on top of the core service. See
// include/gpuhive/server/modelmesh.h for the id and path rules.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "gpuhive/logging.h"
#include "gpuhive/residency/repository.h"
#include "gpuhive/server/modelmesh.h"
#include "gpuhive/utf8.h"

namespace gpuhive::server {

namespace fs = std::filesystem;

namespace {

constexpr const char* kMarkerFile = ".modelmesh-id";
constexpr size_t kMaxIdBytes = 4096;
constexpr size_t kMaxPlainNameBytes = 200;
constexpr uint64_t kMinModelSizeBytes = 4096;

uint64_t Fnv1a64(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

bool IsNumber(const std::string& s) {
  return !s.empty() && s.size() < 18 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Whether `path` is `root` or lies below it (both canonical).
bool IsUnder(const fs::path& path, const fs::path& root) {
  fs::path rel = path.lexically_relative(root);
  if (rel.empty()) return false;
  auto first = rel.begin();
  return first == rel.end() || (*first != ".." && first->string() != "..");
}

struct ModelFiles {
  fs::path onnx;    // canonical
  fs::path config;  // the directory's config.pbtxt; empty when none
};

// Finds the ONNX file (and config) a ModelMesh modelPath names (see the header).
StatusOr<ModelFiles> ResolveModelFiles(const std::string& model_path, const std::string& model_root) {
  if (model_path.empty()) return InvalidArgument("modelPath is empty");
  if (model_path.size() > 4096 || !IsValidUtf8(model_path) || model_path.find('\0') != std::string::npos)
    return InvalidArgument("modelPath is not a valid path");
  fs::path p(model_path);
  if (!p.is_absolute()) return InvalidArgument("modelPath '{}' is not absolute", model_path);
  for (const auto& part : p) {
    if (part == "..") return InvalidArgument("modelPath '{}' contains '..'", model_path);
  }
  std::error_code ec;
  fs::path target = fs::canonical(p, ec);
  if (ec) return InvalidArgument("modelPath '{}' does not exist: {}", model_path, ec.message());
  fs::path root;
  if (!model_root.empty()) {
    root = fs::canonical(model_root, ec);
    if (ec) return FailedPrecondition("model root '{}' does not exist", model_root);
    if (!IsUnder(target, root))
      return InvalidArgument("modelPath '{}' is outside the model root '{}'", model_path, model_root);
  }
  ModelFiles files;
  if (fs::is_directory(target, ec)) {
    if (fs::is_regular_file(target / "config.pbtxt", ec)) {
      files.config = fs::canonical(target / "config.pbtxt", ec);
      if (ec || (!root.empty() && !IsUnder(files.config, root)))
        return InvalidArgument("the config.pbtxt of modelPath '{}' leads outside the model root", model_path);
    }
    fs::path found;
    if (fs::is_regular_file(target / "model.onnx", ec)) {
      found = target / "model.onnx";
    } else {
      // Triton layout: the highest numbered version holding model.onnx; else a single .onnx file.
      int64_t best = -1;
      std::vector<fs::path> onnx;
      for (const auto& e : fs::directory_iterator(target, ec)) {
        std::string fname = e.path().filename().string();
        std::error_code ec2;
        if (e.is_directory(ec2) && IsNumber(fname) && fs::is_regular_file(e.path() / "model.onnx", ec2)) {
          int64_t v = std::stoll(fname);
          if (v > best) {
            best = v;
            found = e.path() / "model.onnx";
          }
        } else if (e.is_regular_file(ec2) && e.path().extension() == ".onnx") {
          onnx.push_back(e.path());
        }
      }
      if (found.empty() && onnx.size() == 1) found = onnx[0];
      if (found.empty()) {
        return InvalidArgument("modelPath '{}' holds no model.onnx, no <version>/model.onnx and not exactly one "
                               ".onnx file", model_path);
      }
    }
    target = fs::canonical(found, ec);
    if (ec) return InvalidArgument("cannot resolve '{}': {}", found.string(), ec.message());
    if (!root.empty() && !IsUnder(target, root))
      return InvalidArgument("modelPath '{}' leads outside the model root '{}'", model_path, model_root);
  }
  if (!fs::is_regular_file(target, ec)) return InvalidArgument("modelPath '{}' is not a regular file", model_path);
  files.onnx = target;
  return files;
}

std::string ReadMarker(const fs::path& dir) {
  std::ifstream in(dir / kMarkerFile, std::ios::binary);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

StatusOr<std::string> ModelNameForModelMeshId(const std::string& model_id) {
  if (model_id.empty()) return InvalidArgument("modelId is empty");
  if (model_id.size() > kMaxIdBytes) return InvalidArgument("modelId is longer than {} bytes", kMaxIdBytes);
  if (!IsValidUtf8(model_id)) return InvalidArgument("modelId is not UTF-8");
  for (char c : model_id) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return InvalidArgument("modelId contains control characters");
  }
  if (model_id.size() <= kMaxPlainNameBytes && residency::ValidateModelName(model_id).ok() &&
      model_id.find('\\') == std::string::npos) {
    return model_id;
  }
  return fmt::format("mm-{:016x}", Fnv1a64(model_id));
}

// Per-id serialization: calls for one id take turns; the slot goes when its last user leaves.
struct IdSlot {
  std::mutex mu;
  int users = 0;
};

struct LoadedModel {
  std::string name;
  std::string source;  // the canonical ONNX file
  uint64_t size_bytes = 0;
};

struct ModelMeshRuntime::Impl {
  engine::Engine* core = nullptr;
  ModelMeshOptions options;

  mutable std::mutex mu;
  std::map<std::string, LoadedModel> loaded;             // id -> model; GUARDED_BY(mu)
  std::map<std::string, std::string> name_owner;         // name -> id (loading or loaded)
  std::map<std::string, std::shared_ptr<IdSlot>> slots;  // id -> slot while in use
  std::once_flag purge_once;

  // Holds the id's slot for the guard's lifetime.
  class IdGuard {
   public:
    IdGuard(Impl* impl, const std::string& id) : impl_(impl), id_(id) {
      {
        std::lock_guard<std::mutex> lock(impl_->mu);
        auto& s = impl_->slots[id_];
        if (!s) s = std::make_shared<IdSlot>();
        ++s->users;
        slot_ = s;
      }
      slot_->mu.lock();
    }
    ~IdGuard() {
      slot_->mu.unlock();
      std::lock_guard<std::mutex> lock(impl_->mu);
      if (--slot_->users == 0) impl_->slots.erase(id_);
    }
    IdGuard(const IdGuard&) = delete;
    IdGuard& operator=(const IdGuard&) = delete;

   private:
    Impl* impl_;
    std::string id_;
    std::shared_ptr<IdSlot> slot_;
  };

  fs::path DirFor(const std::string& name) const { return fs::path(options.repository_root) / name; }

  // Drops a model from the core and its directory. Caller holds the id's slot.
  Status Remove(const std::string& name) {
    Status s = core->ForgetModel(name);
    std::error_code ec;
    fs::remove_all(DirFor(name), ec);
    if (ec) GH_LOG_WARN("modelmesh", "cannot remove '{}': {}", DirFor(name).string(), ec.message());
    return s;
  }

  void Purge(ModelMeshRuntime* self);
};

ModelMeshRuntime::ModelMeshRuntime(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ModelMeshRuntime::~ModelMeshRuntime() = default;

StatusOr<std::unique_ptr<ModelMeshRuntime>> ModelMeshRuntime::Create(engine::Engine* core, ModelMeshOptions options) {
  if (core == nullptr) return InvalidArgument("the ModelMesh runtime needs a core service");
  if (options.repository_root.empty()) return InvalidArgument("the ModelMesh runtime needs a repository root");
  std::error_code ec;
  if (!fs::is_directory(options.repository_root, ec))
    return NotFound("model repository '{}' is not a directory", options.repository_root);
  if (core->budget_bytes() == 0) return InvalidArgument("the ModelMesh runtime needs gpuhive mode (a byte budget)");
  if (options.load_timeout_ms <= 0 || options.load_timeout_ms > UINT32_MAX)
    return InvalidArgument("the model load timeout must be in 1..{} ms", UINT32_MAX);
  auto impl = std::make_unique<Impl>();
  impl->core = core;
  impl->options = std::move(options);
  return std::unique_ptr<ModelMeshRuntime>(new ModelMeshRuntime(std::move(impl)));
}

StatusOr<ModelMeshLoadResult> ModelMeshRuntime::LoadModel(const ModelMeshModelRequest& request) {
  Impl& m = *impl_;
  ASSIGN_OR_RETURN(std::string name, ModelNameForModelMeshId(request.model_id));
  Impl::IdGuard guard(&m, request.model_id);
  ASSIGN_OR_RETURN(ModelFiles files, ResolveModelFiles(request.model_path, m.options.model_root));
  const fs::path& file = files.onnx;
  std::string config_text;
  if (!files.config.empty()) {
    std::ifstream in(files.config, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in) return InvalidArgument("cannot read '{}'", files.config.string());
    ASSIGN_OR_RETURN(config_text, residency::RenameModelConfigText(ss.str(), name, files.config.string()));
  }
  {
    std::lock_guard<std::mutex> lock(m.mu);
    auto it = m.loaded.find(request.model_id);
    if (it != m.loaded.end()) {
      if (it->second.source == file.string()) return ModelMeshLoadResult{it->second.size_bytes, 0};
      return FailedPrecondition("model '{}' is loaded already from '{}'", request.model_id, it->second.source);
    }
    auto owner = m.name_owner.find(name);
    if (owner != m.name_owner.end() && owner->second != request.model_id)
      return FailedPrecondition("model ids '{}' and '{}' map to the same name '{}'", owner->second,
                                request.model_id, name);
  }
  const fs::path dir = m.DirFor(name);
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (ReadMarker(dir) != request.model_id)
      return FailedPrecondition("the repository has a model '{}' that ModelMesh did not load", name);
    fs::remove_all(dir, ec);  // a leftover of an earlier process for this id
  }
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.name_owner[name] = request.model_id;
  }
  auto fail = [&](Status s) -> Status {
    Status r = m.Remove(name);
    if (!r.ok()) GH_LOG_WARN("modelmesh", "cleaning up after a failed load of '{}': {}", request.model_id, r.ToString());
    std::lock_guard<std::mutex> lock(m.mu);
    m.name_owner.erase(name);
    return s;
  };
  fs::create_directories(dir / "1", ec);
  if (!ec) fs::create_symlink(file, dir / "1" / "model.onnx", ec);
  if (!ec) {
    std::ofstream marker(dir / kMarkerFile, std::ios::binary | std::ios::trunc);
    marker << request.model_id;
    if (!marker.flush()) ec = std::make_error_code(std::errc::io_error);
  }
  if (!ec && !config_text.empty()) {
    std::ofstream config(dir / "config.pbtxt", std::ios::binary | std::ios::trunc);
    config << config_text;
    if (!config.flush()) ec = std::make_error_code(std::errc::io_error);
  }
  if (ec) return fail(Internal("cannot link model '{}' into the repository: {}", request.model_id, ec.message()));

  const int64_t start = NowNs();
  if (Status s = m.core->LoadModel(name); !s.ok()) return fail(s.WithContext("loading model '" + request.model_id + "'"));
  auto footprint = m.core->MeasureModel(name);
  if (!footprint.ok()) return fail(footprint.status().WithContext("sizing model '" + request.model_id + "'"));
  // 0 would tell ModelMesh "ask modelSize later"; a model without weights or intermediates
  // (an identity) still costs its I/O buffers and bookkeeping.
  ModelMeshLoadResult result{std::max<uint64_t>(footprint->total(), kMinModelSizeBytes), 0};
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.loaded[request.model_id] = LoadedModel{name, file.string(), result.size_bytes};
  }
  GH_LOG_INFO("modelmesh", "loaded '{}' as '{}' from {} in {:.1f} ms: {} bytes ({} on device, {} activations)",
              ToValidUtf8(request.model_id), name, file.string(), static_cast<double>(NowNs() - start) * 1e-6,
              result.size_bytes, footprint->device_bytes, footprint->activation_bytes);
  return result;
}

Status ModelMeshRuntime::UnloadModel(const std::string& model_id) {
  Impl& m = *impl_;
  auto name = ModelNameForModelMeshId(model_id);
  if (!name.ok()) return Status::OK();  // never loadable, so not loaded
  Impl::IdGuard guard(&m, model_id);
  {
    std::lock_guard<std::mutex> lock(m.mu);
    auto owner = m.name_owner.find(*name);
    if (owner == m.name_owner.end() || owner->second != model_id) return Status::OK();
  }
  Status s = m.Remove(*name);
  std::lock_guard<std::mutex> lock(m.mu);
  m.loaded.erase(model_id);
  m.name_owner.erase(*name);
  if (s.ok()) GH_LOG_INFO("modelmesh", "unloaded '{}'", ToValidUtf8(model_id));
  return s;
}

StatusOr<uint64_t> ModelMeshRuntime::PredictModelSize(const ModelMeshModelRequest& request) {
  RETURN_IF_ERROR(ModelNameForModelMeshId(request.model_id).status());
  ASSIGN_OR_RETURN(ModelFiles files, ResolveModelFiles(request.model_path, impl_->options.model_root));
  std::error_code ec;
  uint64_t file_bytes = fs::file_size(files.onnx, ec);
  if (ec) return InvalidArgument("cannot read the size of '{}': {}", files.onnx.string(), ec.message());
  // Weights are about the file's bytes; as much again covers packed copies and activations of
  // most models. The measured size from loadModel replaces this estimate.
  return 2 * file_bytes + 1 * MiB;
}

StatusOr<uint64_t> ModelMeshRuntime::ModelSize(const std::string& model_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->loaded.find(model_id);
  if (it == impl_->loaded.end()) return NotFound("model '{}' is not loaded", ToValidUtf8(model_id));
  return it->second.size_bytes;
}

void ModelMeshRuntime::Impl::Purge(ModelMeshRuntime* self) {
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [id, model] : loaded) ids.push_back(id);
  }
  // ModelMesh calls this only at its start: anything loaded now is a previous instance's and
  // would be counted twice. Every model the core serves goes, and every marked directory.
  std::vector<std::string> names;
  for (const auto& st : core->Models()) names.push_back(st.name);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options.repository_root, ec)) {
    std::error_code ec2;
    if (e.is_directory(ec2) && fs::exists(e.path() / kMarkerFile, ec2)) names.push_back(e.path().filename().string());
  }
  for (const auto& id : ids) {
    Status s = self->UnloadModel(id);
    if (!s.ok()) GH_LOG_WARN("modelmesh", "purging '{}': {}", ToValidUtf8(id), s.ToString());
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  for (const auto& name : names) {
    Status s = core->ForgetModel(name);
    if (!s.ok()) GH_LOG_WARN("modelmesh", "purging model '{}': {}", name, s.ToString());
    if (fs::exists(DirFor(name) / kMarkerFile, ec)) fs::remove_all(DirFor(name), ec);
  }
  if (!names.empty() || !ids.empty())
    GH_LOG_INFO("modelmesh", "purged {} model(s) before reporting ready", std::max(names.size(), ids.size()));
}

ModelMeshStatus ModelMeshRuntime::RuntimeStatus() {
  Impl& m = *impl_;
  std::call_once(m.purge_once, [&] { m.Purge(this); });
  ModelMeshStatus st;
  st.ready = m.core->IsReady();
  st.capacity_bytes = m.core->budget_bytes();
  st.max_loading_concurrency = static_cast<uint32_t>(m.core->max_concurrent_loads());
  st.model_loading_timeout_ms = static_cast<uint32_t>(m.options.load_timeout_ms);
  st.default_model_size_bytes = m.options.default_model_size_bytes;
  st.runtime_version = "gpuhive " + m.core->GetServerMetadata().version;
  // ModelMesh writes the model id into field 1 (model_name / name) of these requests.
  st.method_infos["inference.GRPCInferenceService/ModelInfer"] = {1};
  st.method_infos["inference.GRPCInferenceService/ModelMetadata"] = {1};
  st.method_infos["inference.GRPCInferenceService/ModelReady"] = {1};
  st.limit_model_concurrency = false;
  st.allow_any_method = false;
  return st;
}

std::string ModelMeshRuntime::ResolveModelName(const std::string& model_id) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->loaded.find(model_id);
  return it == impl_->loaded.end() ? model_id : it->second.name;
}

std::vector<std::string> ModelMeshRuntime::LoadedIds() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<std::string> ids;
  for (const auto& [id, model] : impl_->loaded) ids.push_back(id);
  return ids;
}

}  // namespace gpuhive::server
