#include "gpuhive/residency/repository.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "gpuhive/logging.h"
#include "gpuhive/onnx_import.h"
#include "gpuhive/utf8.h"

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

// Triton's label_filename: a file in the model's directory (or below it), one label per line,
// read when the model is scanned. Errors name the model, the output and the file as the config
// wrote it, never the server's own paths.
constexpr uintmax_t kMaxLabelFileBytes = uintmax_t{16} << 20;

Status ReadOutputLabels(const std::string& model, const fs::path& dir, ModelConfig* config) {
  for (auto& t : config->outputs) {
    if (t.label_filename.empty()) continue;
    const std::string shown = ToValidUtf8(t.label_filename);
    auto refuse = [&](std::string_view why) {
      return InvalidArgument("model '{}': output '{}': label_filename '{}' {}", model, t.name, shown, why);
    };
    const fs::path rel(t.label_filename);
    if (t.label_filename.find('\0') != std::string::npos || rel.is_absolute()) {
      return refuse("must name a file in the model's directory");
    }
    std::error_code ec;
    const fs::path base = fs::canonical(dir, ec);
    const fs::path file = ec ? fs::path() : fs::weakly_canonical(base / rel, ec);
    const auto [end, _] = std::mismatch(base.begin(), base.end(), file.begin(), file.end());
    if (ec || end != base.end()) return refuse("must name a file in the model's directory");
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return refuse("is not a file in the model's directory");
    if (static_cast<uintmax_t>(st.st_size) > kMaxLabelFileBytes) return refuse("is larger than 16 MiB");
    std::ifstream in(file, std::ios::binary);
    if (!in) return refuse("cannot be read");
    auto labels = std::make_shared<std::vector<std::string>>();
    std::string line;
    uintmax_t read = 0;
    while (std::getline(in, line) && read <= kMaxLabelFileBytes) {  // the file may grow meanwhile
      read += line.size() + 1;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      labels->push_back(ToValidUtf8(line));
    }
    t.labels = std::move(labels);
  }
  return Status::OK();
}

}  // namespace

Status ValidateModelName(std::string_view name) {
  if (name.empty()) return InvalidArgument("a model name must not be empty");
  if (name.size() > 255) return InvalidArgument("a model name is at most 255 bytes, got {}", name.size());
  if (!IsValidUtf8(name)) return InvalidArgument("a model name must be UTF-8");
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return InvalidArgument("a model name must not contain control characters");
    }
    if (c == '/') return InvalidArgument("'{}' is not a model name: it contains '/'", name);
  }
  if (name[0] == '.') return InvalidArgument("'{}' is not a model name: it starts with '.'", name);
  return Status::OK();
}

StatusOr<std::unique_ptr<ModelRepository>> ModelRepository::Open(const std::string& root, RepositoryOptions options) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return NotFound("model repository '{}' is not a directory", root);
  return std::unique_ptr<ModelRepository>(new ModelRepository(root, options));
}

ScanResult ModelRepository::Scan() const {
  ScanResult result;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_, ec)) {
    std::error_code ec2;
    if (!entry.is_directory(ec2)) continue;
    std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    // A directory no request could name (not UTF-8, control characters) is not a model: listing
    // it would put raw bytes into JSON, protobuf strings and metric labels.
    if (Status valid = ValidateModelName(name); !valid.ok()) {
      GH_LOG_WARN("residency", "directory '{}' skipped: {}", ToValidUtf8(name), valid.message());
      continue;
    }
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

bool ModelRepository::HasModelDirectory(const std::string& name) const {
  if (!ValidateModelName(name).ok()) return false;
  std::error_code ec;
  return fs::is_directory(fs::path(root_) / name, ec);
}

StatusOr<RepositoryModel> ModelRepository::ScanModel(const std::string& name, const ModelConfig* override_config) const {
  // Before any path is built from it: a NUL would cut the path short at another model's
  // directory, a '/' or ".." would leave the repository.
  RETURN_IF_ERROR(ValidateModelName(name));
  RepositoryModel m;
  m.name = name;
  m.dir = (fs::path(root_) / name).string();
  std::error_code ec;
  if (!fs::is_directory(m.dir, ec)) return NotFound("model '{}' has no directory in '{}'", name, root_);

  const std::string config_path = (fs::path(m.dir) / "config.pbtxt").string();
  const bool has_config = override_config != nullptr || fs::exists(config_path, ec);
  if (override_config != nullptr) {
    if (override_config->name != name) {
      return InvalidArgument("the config override names model '{}', not '{}'", override_config->name, name);
    }
    m.config = *override_config;
  } else if (has_config) {
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
    if (options_.strict_model_config && (m.config.inputs.empty() || m.config.outputs.empty())) {
      return InvalidArgument("{}: --strict-model-config=true needs every input and output in the config", config_path);
    }
  } else if (options_.strict_model_config) {
    return InvalidArgument("model '{}' has no config.pbtxt (--strict-model-config=true requires one; with false it "
                           "is derived from the ONNX file)", name);
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
  RETURN_IF_ERROR(ReadOutputLabels(name, m.dir, &m.config));
  return m;
}

namespace {

struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_size == b.st_size && a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

// read(2) until `n` bytes or the end of the file; the count read, or -1 (errno set).
ssize_t ReadFully(int fd, char* out, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, out + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

}  // namespace

StatusOr<std::string> ReadModelFile(const std::string& path, uint64_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound("cannot open '{}': {}", path, std::strerror(errno));
  FdCloser closer{fd};
  struct stat before {};
  if (::fstat(fd, &before) != 0) return DataLoss("cannot stat '{}': {}", path, std::strerror(errno));
  if (!S_ISREG(before.st_mode)) return InvalidArgument("'{}' is not a regular file", path);
  const uint64_t size = static_cast<uint64_t>(before.st_size);
  if (size > max_bytes) return InvalidArgument("'{}' is {} bytes, more than the limit of {}", path, size, max_bytes);
  std::string data(size, '\0');
  ssize_t got = ReadFully(fd, data.data(), size);
  if (got < 0) return DataLoss("reading '{}' failed: {}", path, std::strerror(errno));
  if (static_cast<uint64_t>(got) != size) {
    return DataLoss("'{}' shrank from {} to {} bytes while it was read (is it being written?)", path, size, got);
  }
  char extra = 0;
  ssize_t more = ReadFully(fd, &extra, 1);
  struct stat after {};
  if (more != 0 || ::fstat(fd, &after) != 0 || !SameFile(before, after)) {
    return DataLoss("'{}' changed while it was read (is it being written?); the next load retries", path);
  }
  return data;
}

}  // namespace gpuhive::residency
