// How gpuhive's CPU threads wait: the OpenMP environment the binary sets for itself before libgomp
// loads (libgomp reads it once, at load time, so the binary re-executes itself with it).
#pragma once

#include <string>
#include <vector>

namespace gpuhive {

// libgomp's spin count before a waiting thread sleeps. Measured on a 2-core machine, 2 threads
// (docs/benchmarks.md, "OpenMP waiting"): sleeping at once (0 spins) made MobileNetV3-Large at
// batch 1 take 4.9 ms instead of 2.9 ms idle and 19.4 ms instead of 7.4 ms beside two busy
// processes, since each of its ~90 steps woke the other thread through the kernel; beside ten busy
// processes any spinning loses (mean 38 ms passive, 68 ms at 10,000 spins, 147 ms at 30,000,
// 1,256 ms p50 at 100,000). 10,000 keeps nearly all of the idle gain with the smallest such loss.
inline constexpr const char* kDefaultGompSpinCount = "10000";

struct EnvAssignment {
  std::string name;
  std::string value;
  bool operator==(const EnvAssignment&) const = default;
};

// The variables to set, given the user's OMP_WAIT_POLICY and GOMP_SPINCOUNT (nullptr when unset);
// empty when nothing is to change. The user's choice always stands. Otherwise the policy is
// passive with a bounded spin: libgomp then spins up to the spin count while its threads fit the
// CPUs and does not spin at all once they do not (several workers' thread teams at once, where
// spinning holds a core that the thread being waited for needs: 1644 ms vs 39 ms per batch-8 LSTM
// run measured with unbounded spinning). A spin count alone keeps it and gets the passive policy.
std::vector<EnvAssignment> OpenMpEnvironmentDefaults(const char* wait_policy, const char* spin_count);

}  // namespace gpuhive
