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

// libgomp reads OMP_WAIT_POLICY once, when it is loaded. Its default (spin before sleeping) makes a
// waiting thread hold a core that the thread it waits for needs whenever cores are shared with other
// workers or processes: measured 1644 ms vs 39 ms per batch-8 LSTM run on a loaded 2-core machine.
// gpuhive runs several workers per device, so it defaults to passive waiting: if the user has not
// chosen a policy, set it and re-execute once. Set OMP_WAIT_POLICY=active to opt out.
void DefaultToPassiveOpenMpWaiting(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  execv("/proc/self/exe", argv);  // returns only on failure; then run with the default policy
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
  DefaultToPassiveOpenMpWaiting(argv);
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
