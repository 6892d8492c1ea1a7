#include "gpuhive/openmp_env.h"

#include <gtest/gtest.h>

namespace gpuhive {
namespace {

TEST(OpenMpEnvironmentDefaults, PassiveWithABoundedSpinWhenTheUserChoseNothing) {
  EXPECT_EQ(OpenMpEnvironmentDefaults(nullptr, nullptr),
            (std::vector<EnvAssignment>{{"OMP_WAIT_POLICY", "passive"}, {"GOMP_SPINCOUNT", "10000"}}));
}

TEST(OpenMpEnvironmentDefaults, TheUsersSpinCountStandsAndGetsThePassivePolicy) {
  EXPECT_EQ(OpenMpEnvironmentDefaults(nullptr, "0"), (std::vector<EnvAssignment>{{"OMP_WAIT_POLICY", "passive"}}));
}

TEST(OpenMpEnvironmentDefaults, TheUsersPolicyStandsAlone) {
  EXPECT_TRUE(OpenMpEnvironmentDefaults("active", nullptr).empty());
  EXPECT_TRUE(OpenMpEnvironmentDefaults("passive", nullptr).empty());
  EXPECT_TRUE(OpenMpEnvironmentDefaults("PASSIVE", "1000").empty());
}

}  // namespace
}  // namespace gpuhive
