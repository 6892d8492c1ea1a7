#include "gpuhive/residency/repository.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "gpuhive/logging.h"
#include "gpuhive/onnx_import.h"

namespace gpuhive::residency {
namespace fs = std::filesystem;

namespace {

bool ParseVersionDir(const std::string& s, int64_t* v) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  *v = std::stoll(s);
  return *v > 0;
}

}  // namespace

StatusOr<std::unique_ptr<ModelRepository>> ModelRepository::Open(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return NotFound("model repository '{}' is not a directory", root);
  return std::unique_ptr<ModelRepository>(new ModelRepository(root));
}

ScanResult ModelRepository::Scan() const {
  ScanResult result;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_, ec)) {
    std::error_code ec2;
    if (!entry.is_directory(ec2)) continue;
    std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    auto m = ScanModel(name);
    if (m.ok()) {
      result.models.emplace(name, std::move(*m));
    } else {
      GH_LOG_WARN("residency", "model '{}' skipped: {}", name, m.status().ToString());
      result.errors.emplace(name, m.status());
    }
  }
  if (ec) GH_LOG_WARN("residency", "cannot list '{}': {}", root_, ec.message());
  return result;
}

StatusOr<RepositoryModel> ModelRepository::ScanModel(const std::string& name) const {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return InvalidArgument("'{}' is not a model name", name);
  }
  RepositoryModel m;
  m.name = name;
  m.dir = (fs::path(root_) / name).string();
  std::error_code ec;
  if (!fs::is_directory(m.dir, ec)) return NotFound("model '{}' has no directory in '{}'", name, root_);

  const std::string config_path = (fs::path(m.dir) / "config.pbtxt").string();
  const bool has_config = fs::exists(config_path, ec);
  if (has_config) {
    std::ifstream in(config_path, std::ios::binary);
    if (!in) return NotFound("cannot read '{}'", config_path);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    // Triton lets the name be omitted (it is the directory name).
    auto parsed = ParseModelConfig(text, config_path);
    if (!parsed.ok() && text.find("name") == std::string::npos) {
      parsed = ParseModelConfig("name: \"" + name + "\"\n" + text, config_path);
    }
    if (!parsed.ok()) return parsed.status();
    if (parsed->name != name) {
      return InvalidArgument("{}: name '{}' differs from the directory name '{}'", config_path, parsed->name, name);
    }
    m.config = std::move(*parsed);
  } else {
    m.config.name = name;
  }

  std::vector<int64_t> available;
  std::map<int64_t, ModelVersionFile> files;
  for (const auto& entry : fs::directory_iterator(m.dir, ec)) {
    std::error_code ec2;
    int64_t v = 0;
    if (!entry.is_directory(ec2) || !ParseVersionDir(entry.path().filename().string(), &v)) continue;
    fs::path file = entry.path() / m.config.default_model_filename;
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    ModelVersionFile f;
    f.version = v;
    f.path = file.string();
    f.file_bytes = static_cast<uint64_t>(st.st_size);
    f.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
    files[v] = f;
    available.push_back(v);
  }
  for (int64_t v : SelectVersions(m.config, available)) m.versions.push_back(files[v]);
  if (m.versions.empty()) {
    return NotFound("model '{}': no version directory with {} selected by its version policy", name,
                    m.config.default_model_filename);
  }
  if (!has_config) {
    auto model = ImportOnnxFile(m.versions.back().path);
    if (!model.ok()) return model.status().WithContext("model '" + name + "': deriving its config");
    m.config = DeriveModelConfig(name, **model);
  }
  return m;
}

StatusOr<MappedFile> MappedFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound("cannot open '{}'", path);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return Internal("cannot stat '{}'", path);
  }
  MappedFile f;
  f.size_ = static_cast<size_t>(st.st_size);
  if (f.size_ > 0) {
    void* p = ::mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      return Internal("mmap of '{}' failed", path);
    }
    f.data_ = static_cast<const char*>(p);
  }
  ::close(fd);
  return f;
}

MappedFile::MappedFile(MappedFile&& o) noexcept { *this = std::move(o); }

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
}

}  // namespace gpuhive::residency
