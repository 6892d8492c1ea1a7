// The gpuhive binary. Commands register themselves (see command.h); this file only builds the
// CLI11 tree, parses, and runs the chosen command.
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>

#include "cli/command.h"
#include "gpuhive/logging.h"
#include "gpuhive/openmp_env.h"

namespace gpuhive::cli {

std::vector<RegisteredCommand>& Registry() {
  static std::vector<RegisteredCommand> commands;
  return commands;
}

CommandRegistration::CommandRegistration(std::string parent, std::string name, std::string description,
                                         CommandSetup setup) {
  Registry().push_back({std::move(parent), std::move(name), std::move(description), std::move(setup)});
}

}  // namespace gpuhive::cli

// libgomp reads its environment once, when it is loaded: set gpuhive's OpenMP waiting defaults
// (gpuhive/openmp_env.h: passive with a bounded spin) unless the user chose, and re-execute once.
void SetOpenMpWaitingDefaults(char** argv) {
  auto set = gpuhive::OpenMpEnvironmentDefaults(std::getenv("OMP_WAIT_POLICY"), std::getenv("GOMP_SPINCOUNT"));
  if (set.empty()) return;
  for (const auto& a : set) setenv(a.name.c_str(), a.value.c_str(), 1);
  execv("/proc/self/exe", argv);  // returns only on failure; then run with libgomp's defaults
}

// glibc raises its mmap threshold to the size of each large block freed (up to 32 MiB), after
// which weight-sized buffers come from the heap and stay resident once freed: a model's imported
// initializers, freed as they are converted and packed, then kept ResNet-50's peak at 2.1x its
// weights plus activations (216 MiB; 137 MiB with the threshold fixed). A fixed threshold keeps
// every buffer of 128 KiB or more in its own mapping, returned to the system when freed (also what
// an unloaded model gives back). MALLOC_MMAP_THRESHOLD_ in the environment still decides.
void ReturnLargeBuffersToTheSystem() {
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr) return;
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

int main(int argc, char** argv) {
  SetOpenMpWaitingDefaults(argv);
  ReturnLargeBuffersToTheSystem();
  using namespace gpuhive::cli;
  CLI::App app{"gpuhive: many models on one GPU, memory and GPU time managed"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "gpuhive 0.1.0");
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug, info, warning, error")->capture_default_str();

  std::map<std::string, CLI::App*> groups;
  auto group = [&](const std::string& name) {
    auto it = groups.find(name);
    if (it != groups.end()) return it->second;
    CLI::App* g = app.add_subcommand(name, name == "bench" ? "Benchmarks (print figures, --json for JSON)" : name);
    g->require_subcommand(1);
    groups[name] = g;
    return g;
  };
  std::vector<std::pair<CLI::App*, CommandRun>> runs;
  for (auto& cmd : Registry()) {
    CLI::App* parent = cmd.parent.empty() ? &app : group(cmd.parent);
    CLI::App* sub = parent->add_subcommand(cmd.name, cmd.description);
    runs.emplace_back(sub, cmd.setup(*sub));
  }
  CLI11_PARSE(app, argc, argv);
  gpuhive::LogLevel level;
  if (gpuhive::ParseLogLevel(log_level, &level)) gpuhive::SetLogLevel(level);
  for (auto& [sub, run] : runs) {
    if (sub->parsed()) return run();
  }
  std::fprintf(stderr, "%s", app.help().c_str());
  return 2;
}
