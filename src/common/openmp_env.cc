#include "gpuhive/openmp_env.h"

namespace gpuhive {

std::vector<EnvAssignment> OpenMpEnvironmentDefaults(const char* wait_policy, const char* spin_count) {
  if (wait_policy != nullptr) return {};
  std::vector<EnvAssignment> out{{"OMP_WAIT_POLICY", "passive"}};
  if (spin_count == nullptr) out.push_back({"GOMP_SPINCOUNT", kDefaultGompSpinCount});
  return out;
}

}  // namespace gpuhive
