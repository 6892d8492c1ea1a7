// ModelRepository: Triton's directory layout. `<root>/<model>/config.pbtxt` (optional: derived from
// the ONNX file when missing) and `<root>/<model>/<version>/model.onnx` (the file name can be
// changed with default_model_filename). Version directories are positive integers; the config's
// version policy selects which are served.
//
// Thread safety: all methods are const and thread safe (each scan reads the file system afresh).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gpuhive/residency/model_config.h"
#include "gpuhive/status.h"

namespace gpuhive::residency {

// How the repository's contents reach the manager (Triton's --model-control-mode).
enum class ControlMode {
  kNone,      // every model is registered at start-up; the repository is not rescanned
  kPoll,      // the repository is rescanned on an interval: new models appear, removed ones go
  kExplicit,  // models are registered only through explicit Load / Unload calls
};

struct ModelVersionFile {
  int64_t version = 0;
  std::string path;      // the .onnx file
  uint64_t file_bytes = 0;
  int64_t mtime_ns = 0;  // for change detection in poll mode
};

struct RepositoryModel {
  std::string name;
  std::string dir;
  ModelConfig config;
  std::vector<ModelVersionFile> versions;  // selected by the version policy, ascending
};

struct ScanResult {
  std::map<std::string, RepositoryModel> models;
  // Models whose directory is present but unusable (bad config, no version): reported per model,
  // so one broken model never hides the others.
  std::map<std::string, Status> errors;
};

// Whether `name` can name a model: the name of a directory directly under the root that every
// frontend can carry. 1..255 bytes of UTF-8 without control characters or '/', not
// starting with '.' (hidden directories are not models), so never "." or "..".
// Errors: kInvalidArgument saying what is wrong.
Status ValidateModelName(std::string_view name);

struct RepositoryOptions {
  // Triton's --strict-model-config=true: every model needs a complete config.pbtxt (name, inputs
  // and outputs); nothing is derived from the ONNX file.
  bool strict_model_config = false;
};

class ModelRepository {
 public:
  // Errors: kNotFound when `root` is not a directory.
  static StatusOr<std::unique_ptr<ModelRepository>> Open(const std::string& root, RepositoryOptions options = {});

  const std::string& root() const { return root_; }

  // Scans every model directory.
  ScanResult Scan() const;
  // Scans one model. Errors: kNotFound (no such directory or no usable version), kInvalidArgument
  // (bad config.pbtxt, or its name differs from the directory name), kDataLoss (unreadable ONNX
  // file when the config must be derived).
  StatusOr<RepositoryModel> ScanModel(const std::string& name) const { return ScanModel(name, nullptr); }
  // The same with `config` in place of the model's config.pbtxt (Triton's load with a config
  // override); its name must be the directory's. Errors: as ScanModel.
  StatusOr<RepositoryModel> ScanModel(const std::string& name, const ModelConfig* config) const;
  // Whether `name` is a valid model name (ValidateModelName) with a directory under the root.
  bool HasModelDirectory(const std::string& name) const;

 private:
  ModelRepository(std::string root, RepositoryOptions options) : root_(std::move(root)), options_(options) {}
  std::string root_;
  RepositoryOptions options_;
};

// Reads a model file whole into memory: the disk tier's read. Plain read(2) calls, never a
// memory mapping: another process may truncate or rewrite the file at any time (`cp new.onnx
// model.onnx`), which turns a mapped page into SIGBUS but a read into a short count. A file whose
// size or mtime changes while it is read is refused rather than returned half old, half new.
// Errors: kNotFound (cannot open), kInvalidArgument (not a regular file, or larger than
// `max_bytes`), kDataLoss (it shrank, grew or changed while read; a read error).
StatusOr<std::string> ReadModelFile(const std::string& path, uint64_t max_bytes = 4ull << 30);

}  // namespace gpuhive::residency
