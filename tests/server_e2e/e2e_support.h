// Shared pieces of the end-to-end tests: a running server (Engine + HTTP + gRPC frontends on
// ephemeral ports) over a copy of the committed test repository, and JSON helpers.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "../server/http_client.h"
#include "gpuhive/engine/engine.h"
#include "gpuhive/server/grpc_server.h"
#include "gpuhive/server/http_server.h"
#include "gpuhive/server/shared_memory.h"

namespace gpuhive::server::testing {

using engine::Engine;
using engine::EngineOptions;
using engine::ServeMode;

inline std::string SourceRepository() { return std::string(GPUHIVE_SOURCE_DIR) + "/tests/data/repository"; }

// A private copy of the test repository (tests add and remove models in it).
inline std::string CopyRepository() {
  namespace fs = std::filesystem;
  std::random_device rd;
  fs::path dir = fs::temp_directory_path() / ("gpuhive_e2e_" + std::to_string(rd()));
  fs::create_directories(dir);
  fs::copy(SourceRepository(), dir, fs::copy_options::recursive);
  return dir.string();
}

struct RunningServer {
  std::string repo;
  SharedMemoryRegistry shm;
  std::unique_ptr<Engine> core;
  std::unique_ptr<HttpServer> http;
  std::unique_ptr<GrpcServer> grpc;

  ~RunningServer() {
    http.reset();
    grpc.reset();
    core.reset();
    std::error_code ec;
    std::filesystem::remove_all(repo, ec);
  }
};

// `prepare` may change the repository copy before the server opens it.
inline std::unique_ptr<RunningServer> StartServer(EngineOptions options, const std::string& token = "",
                                                  const std::function<void(const std::string&)>& prepare = {}) {
  auto s = std::make_unique<RunningServer>();
  s->repo = CopyRepository();
  if (prepare) prepare(s->repo);
  options.model_repository = s->repo;
  if (options.cpu_workers == 0) options.cpu_workers = 2;
  if (options.threads_per_worker == 0) options.threads_per_worker = 1;
  auto core = Engine::Create(options);
  EXPECT_TRUE(core.ok()) << core.status().ToString();
  if (!core.ok()) return nullptr;
  s->core = std::move(*core);
  HttpServerOptions ho;
  ho.port = 0;
  ho.auth_token = token;
  ho.metrics = &s->core->metrics();
  ho.shm = &s->shm;
  auto http = HttpServer::Start(s->core.get(), ho);
  EXPECT_TRUE(http.ok()) << http.status().ToString();
  if (!http.ok()) return nullptr;
  s->http = std::move(*http);
  GrpcServerOptions go;
  go.port = 0;
  go.auth_token = token;
  go.metrics = &s->core->metrics();
  go.shm = &s->shm;
  auto grpc = GrpcServer::Start(s->core.get(), go);
  EXPECT_TRUE(grpc.ok()) << grpc.status().ToString();
  if (!grpc.ok()) return nullptr;
  s->grpc = std::move(*grpc);
  return s;
}

// A tiny_mlp request body: `rows` rows of 16 floats (value i * 0.25 - row).
inline nlohmann::json TinyMlpJson(int rows) {
  nlohmann::json data = nlohmann::json::array();
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < 16; ++i) data.push_back(i * 0.25f - static_cast<float>(r));
  return nlohmann::json{{"inputs", {{{"name", "INPUT0"}, {"shape", {rows, 16}}, {"datatype", "FP32"}, {"data", data}}}}};
}

}  // namespace gpuhive::server::testing
