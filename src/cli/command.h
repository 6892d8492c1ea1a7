// Subcommand registry for the gpuhive binary. Each command lives in its own file in src/cli and
// registers itself with a static CommandRegistration (this is an executable, so nothing is
// dropped by the linker):
//
//   static gpuhive::cli::CommandRegistration kReg("bench", "memory", "Allocator speed ...",
//       [](CLI::App& app) {
//         auto opts = std::make_shared<Options>();
//         app.add_flag("--json", opts->json, "print JSON");
//         return [opts] { return RunBenchMemory(*opts); };   // returns the exit code
//       });
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace gpuhive::cli {

using CommandRun = std::function<int()>;
using CommandSetup = std::function<CommandRun(CLI::App& app)>;

struct CommandRegistration {
  // parent: "" for a top-level command, or the name of a group such as "bench".
  CommandRegistration(std::string parent, std::string name, std::string description, CommandSetup setup);
};

struct RegisteredCommand {
  std::string parent, name, description;
  CommandSetup setup;
};
std::vector<RegisteredCommand>& Registry();

}  // namespace gpuhive::cli
