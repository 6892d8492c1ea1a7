// gpuhive as a KServe ModelMesh serving runtime: ModelMesh places models across pods and calls
// each pod's runtime through proto/modelmesh.proto (package mmesh, service ModelRuntime) to load,
// size and unload them; inference then arrives on the KServe v2 gRPC service, with the model id
// as the model name (injected by ModelMesh at ModelInferRequest.model_name) or in the
// `mm-model-id` header. See docs/deploy.md.
//
// ModelMeshRuntime is the protocol-free part (what the unit tests drive); ModelMeshServer serves
// it over gRPC on a TCP port and/or a unix socket. ModelMeshServer lives in the gRPC module
// (libgpuhive_grpc.so): the gpuhive binary starts it through cli/grpc_module.h.
//
// Model ids: ModelMesh ids are arbitrary strings. An id that is a valid gpuhive model name is
// used as the name unchanged (so KServe requests naming the id reach it); any other id (one with
// '/', a leading '.', over 200 bytes) is served as "mm-<16 hex digits of a hash of the id>", and
// ResolveModelName maps the id to it for inference. Ids with control characters or invalid
// UTF-8 are refused.
//
// Model paths: an absolute path to an .onnx file, or to a directory holding model.onnx, a
// single .onnx file, or Triton's <version>/model.onnx (the highest version). Paths with ".."
// components are refused, and with `model_root` set the resolved path (symlinks followed) must
// lie under it. The file is linked (not copied) into the core's repository as
// <repository>/<name>/1/model.onnx with a ".modelmesh-id" marker holding the id. A directory's
// config.pbtxt is used (renamed to the served name); without one the config is derived from the
// ONNX file (max_batch_size 0: shapes as the graph has them).
//
// Thread safety: every method may be called concurrently. Calls for one id are serialized, so
// an unloadModel sent right after a cancelled loadModel waits for that load and then frees it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gpuhive/engine/engine.h"
#include "gpuhive/status.h"
#include "gpuhive/units.h"

namespace gpuhive::server {

struct ModelMeshOptions {
  // Where models are linked in: the core's model repository (explicit control mode).
  std::string repository_root;
  // Non-empty: every modelPath must resolve to a path under this directory.
  std::string model_root;
  int64_t load_timeout_ms = 90'000;               // reported as modelLoadingTimeoutMs
  uint64_t default_model_size_bytes = 256 * MiB;  // reported as defaultModelSizeInBytes
};

struct ModelMeshModelRequest {
  std::string model_id;
  std::string model_type;  // informational ("onnx"); any ONNX model is accepted
  std::string model_path;
  std::string model_key;   // ModelMesh's storage key JSON; unused
};

struct ModelMeshLoadResult {
  uint64_t size_bytes = 0;
  uint32_t max_concurrency = 0;  // 0: not limited (limitModelConcurrency is false)
};

struct ModelMeshStatus {
  bool ready = false;
  uint64_t capacity_bytes = 0;
  uint32_t max_loading_concurrency = 1;
  uint32_t model_loading_timeout_ms = 0;
  uint64_t default_model_size_bytes = 0;
  std::string runtime_version;
  // Fully qualified inference method -> idInjectionPath.
  std::map<std::string, std::vector<uint32_t>> method_infos;
  bool limit_model_concurrency = false;
  bool allow_any_method = false;
};

// The gpuhive model name for a ModelMesh id (see above). Errors: kInvalidArgument.
StatusOr<std::string> ModelNameForModelMeshId(const std::string& model_id);

class ModelMeshRuntime {
 public:
  // `core` must outlive the runtime and serve `options.repository_root` in explicit mode.
  // Errors: kInvalidArgument (no repository root, naive mode core), kNotFound (no such root).
  static StatusOr<std::unique_ptr<ModelMeshRuntime>> Create(engine::Engine* core, ModelMeshOptions options);
  ~ModelMeshRuntime();

  // Links the model in and makes it resident; returns its measured size. Errors:
  // kInvalidArgument / kFailedPrecondition (bad id or path, an id loaded already from another
  // path: nothing was loaded), kResourceExhausted (cannot fit the budget), the core's load
  // errors. On any error nothing of the model remains (files, registration, memory).
  StatusOr<ModelMeshLoadResult> LoadModel(const ModelMeshModelRequest& request);
  // Frees the model completely; OK for an id that is not loaded.
  Status UnloadModel(const std::string& model_id);
  // A conservative size from the model file, without loading it. Errors: as LoadModel's
  // validation.
  StatusOr<uint64_t> PredictModelSize(const ModelMeshModelRequest& request);
  // The measured size of a loaded model. Errors: kNotFound.
  StatusOr<uint64_t> ModelSize(const std::string& model_id);
  // The first call unloads every model a previous ModelMesh instance loaded (ids in the map and
  // marked directories in the repository) before it reports ready.
  ModelMeshStatus RuntimeStatus();

  // The served model name for a loaded id (inference routing); the id itself when unknown.
  std::string ResolveModelName(const std::string& model_id) const;
  // Ids loaded now.
  std::vector<std::string> LoadedIds() const;

  struct Impl;

 private:
  explicit ModelMeshRuntime(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct ModelMeshServerOptions {
  std::string address = "127.0.0.1";
  int port = -1;            // -1: no TCP listener; 0: an ephemeral port
  std::string unix_socket;  // non-empty: also listen on this unix socket path
  uint64_t max_message_bytes = 16 * MiB;
};

class ModelMeshServer {
 public:
  // `runtime` must outlive the server. Errors: kInvalidArgument (no listener), kUnavailable
  // (cannot bind).
  static StatusOr<std::unique_ptr<ModelMeshServer>> Start(ModelMeshRuntime* runtime,
                                                          const ModelMeshServerOptions& options);
  ~ModelMeshServer();
  int port() const;  // the bound TCP port, 0 without one
  void Stop();

  struct Impl;

 private:
  explicit ModelMeshServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gpuhive::server
