// The binary's side of the gRPC module (cli/grpc_module.h): find libgpuhive_grpc.so, dlopen it,
// check its ABI stamp. Named apart from everything the module defines (see the header).
#include <mutex>
#include <string>

#include "cli/grpc_module.h"
#include "gpuhive/logging.h"
#include "gpuhive/runtime_module.h"

namespace gpuhive::cli {
namespace {

std::string AbiText(const GrpcModuleAbi& a) {
  return fmt::format("v{} sizes {}/{}/{}/{}/{}", a.version, a.server_options, a.modelmesh_options, a.transport_options,
                     a.request_template, a.status);
}

StatusOr<GrpcModule*> OpenGrpcModule(const std::string& path) {
  // Every symbol is resolved at the open: one the binary lacks (a module of another build) is an
  // error naming it.
  ASSIGN_OR_RETURN(OpenedRuntimeModule module, OpenRuntimeModule(path, kGrpcModuleSymbol, "gRPC module"));
  using Entry = const GrpcModuleInfo* (*)();
  const GrpcModuleInfo* info = reinterpret_cast<Entry>(module.entry)();
  static constexpr GrpcModuleAbi kAbi = CurrentGrpcModuleAbi();
  if (info == nullptr || info->module == nullptr || !(info->abi == kAbi)) {
    std::string theirs = info != nullptr ? AbiText(info->abi) : "none";
    module.Close();
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
