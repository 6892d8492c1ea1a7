// Where the gpuhive binary finds the shared libraries it loads at run time (the CUDA execution
// plugin, the gRPC module): next to the binary in a build tree, in ../lib of an installed one, or
// wherever an environment variable says.
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

}  // namespace gpuhive
