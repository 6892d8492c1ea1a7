#include "gpuhive/runtime_module.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>

namespace gpuhive {

std::string SelfDirectory() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : exe.parent_path().string();
}

std::vector<std::string> RuntimeModuleCandidates(const char* env_var, std::string_view file_name) {
  if (const char* env = std::getenv(env_var); env != nullptr && *env != '\0') return {env};
  std::vector<std::string> out;
  std::string dir = SelfDirectory();
  if (!dir.empty()) {
    out.push_back(dir + "/" + std::string(file_name));
    out.push_back(dir + "/../lib/" + std::string(file_name));
  }
  return out;
}

StatusOr<std::string> FindRuntimeModule(const char* env_var, std::string_view file_name, std::string_view what) {
  std::vector<std::string> candidates = RuntimeModuleCandidates(env_var, file_name);
  for (const std::string& c : candidates) {
    std::error_code ec;
    if (std::filesystem::exists(c, ec)) return c;
  }
  std::string looked;
  for (const std::string& c : candidates) looked += (looked.empty() ? "" : ", ") + c;
  return Unavailable("{} {} was not found (looked at: {}; set {} to its path)", what, file_name,
                     looked.empty() ? "nowhere: the binary's folder is unknown" : looked, env_var);
}

void OpenedRuntimeModule::Close() {
  if (handle != nullptr) dlclose(handle);
  handle = entry = nullptr;
}

StatusOr<OpenedRuntimeModule> OpenRuntimeModule(const std::string& path, const char* symbol, std::string_view what) {
  OpenedRuntimeModule m;
  // RTLD_LOCAL: nothing loaded later binds to the module's symbols.
  m.handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (m.handle == nullptr) {
    const char* err = dlerror();
    return Unavailable("cannot load the {} {}: {}", what, path, err != nullptr ? err : "unknown error");
  }
  m.entry = dlsym(m.handle, symbol);
  if (m.entry == nullptr) {
    m.Close();
    return FailedPrecondition("{} is not a gpuhive {} (no {} symbol)", path, what, symbol);
  }
  return m;
}

}  // namespace gpuhive
