// The binary's side of the gRPC module (cli/grpc_module.h): find libgpuhive_grpc.so, dlopen it,
// check its ABI stamp. Named apart from everything the module defines (see the header).
#include <dlfcn.h>

#include <mutex>
#include <string>

#include "cli/grpc_module.h"
#include "gpuhive/logging.h"
#include "gpuhive/module_path.h"

namespace gpuhive::cli {
namespace {

std::string AbiText(const GrpcModuleAbi& a) {
  return fmt::format("v{} sizes {}/{}/{}/{}/{}", a.version, a.server_options, a.modelmesh_options, a.transport_options,
                     a.request_template, a.status);
}

StatusOr<GrpcModule*> OpenGrpcModule(const std::string& path) {
  // RTLD_NOW: a symbol the binary lacks is an error here, naming it, not a crash at the first
  // call. RTLD_LOCAL: nothing else binds to the module's symbols.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    return Unavailable("cannot load the gRPC module {}: {}", path, err != nullptr ? err : "unknown error");
  }
  using Entry = const GrpcModuleInfo* (*)();
  auto entry = reinterpret_cast<Entry>(dlsym(handle, kGrpcModuleSymbol));
  if (entry == nullptr) {
    dlclose(handle);
    return FailedPrecondition("{} is not a gpuhive gRPC module (no {} symbol)", path, kGrpcModuleSymbol);
  }
  const GrpcModuleInfo* info = entry();
  static constexpr GrpcModuleAbi kAbi = CurrentGrpcModuleAbi();
  if (info == nullptr || info->module == nullptr || !(info->abi == kAbi)) {
    std::string theirs = info != nullptr ? AbiText(info->abi) : "none";
    dlclose(handle);
    return FailedPrecondition("{} was built from another gpuhive (gRPC module ABI {}, this binary {}): rebuild both",
                              path, theirs, AbiText(kAbi));
  }
  // The handle stays open for the process: servers and transports the module made run its code.
  GH_LOG_INFO("grpc", "gRPC module loaded from {}", path);
  return info->module;
}

}  // namespace

StatusOr<GrpcModule*> LoadGrpcModule() {
  static std::mutex mu;
  static GrpcModule* loaded = nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (loaded != nullptr) return loaded;
  ASSIGN_OR_RETURN(std::string path, FindRuntimeModule(kGrpcModuleEnv, kGrpcModuleFile, "the gRPC module"));
  ASSIGN_OR_RETURN(loaded, OpenGrpcModule(path));
  return loaded;
}

}  // namespace gpuhive::cli
