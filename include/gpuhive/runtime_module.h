// The shared libraries the gpuhive binary loads at run time (the CUDA execution plugin, the gRPC
// module): where they are found (next to the binary in a build tree, in ../lib of an installed
// one, or wherever an environment variable says) and how they are opened.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "gpuhive/status.h"

namespace gpuhive {

// The running binary's folder (from /proc/self/exe); empty when it cannot be read.
std::string SelfDirectory();

// The places `file_name` is looked for, in order: $<env_var> when set and non-empty (only it),
// else <binary's folder>/<file_name>, then <binary's folder>/../lib/<file_name>.
std::vector<std::string> RuntimeModuleCandidates(const char* env_var, std::string_view file_name);

// The first candidate that exists. Errors: kUnavailable "<what> <file_name> was not found (looked
// at: ...; set <env_var> to its path)".
StatusOr<std::string> FindRuntimeModule(const char* env_var, std::string_view file_name, std::string_view what);

// A module opened with dlopen(RTLD_NOW | RTLD_LOCAL) and the address of its entry symbol. It stays
// open for the process (its code runs in what it made) unless the caller refuses it: Close().
struct OpenedRuntimeModule {
  void* handle = nullptr;
  void* entry = nullptr;
  void Close();
};

// Opens `path` (every symbol resolved now: a missing one is an error here, naming it, not a crash
// at its first call) and finds `symbol`. Errors: kUnavailable "cannot load the <what> <path>:
// <the loader's reason>", kFailedPrecondition "<path> is not a gpuhive <what> (no <symbol> symbol)".
StatusOr<OpenedRuntimeModule> OpenRuntimeModule(const std::string& path, const char* symbol, std::string_view what);

}  // namespace gpuhive
