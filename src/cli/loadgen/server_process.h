// Starts `gpuhive serve` as a child process for one compared mode, waits until it is ready, and
// stops it with SIGTERM (SIGKILL after a grace period).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "cli/loadgen/scenario.h"
#include "gpuhive/status.h"

namespace gpuhive::loadgen {

class ServerProcess {
 public:
  // The command line for `mode`: binary serve --mode M --model-repository R --http-port H
  // --grpc-port G [--memory-budget B] [--model-control-mode C] [--load-model N]... args...
  static std::vector<std::string> CommandLine(const ServerSpec& spec, const std::string& mode);

  // Forks and execs; stdout and stderr go to `log_path` (or /dev/null when empty).
  // Errors: kUnavailable when the process cannot be started.
  static StatusOr<std::unique_ptr<ServerProcess>> Start(const ServerSpec& spec, const std::string& mode,
                                                        const std::string& log_path);
  ~ServerProcess();  // Stop()

  // Polls GET /v2/health/ready until 200. Errors: kDeadlineExceeded after `timeout_s`,
  // kUnavailable when the process exited first (the message quotes the end of its log).
  Status WaitReady(const std::string& host, uint16_t port, double timeout_s);
  // SIGTERM, waits up to `grace_s` (serve drains for up to 30 s by default), then SIGKILL.
  // Returns how the process ended.
  std::string Stop(double grace_s = 45);
  pid_t pid() const { return pid_; }

 private:
  ServerProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  bool Exited(int* wstatus);
  std::string LogTail() const;

  pid_t pid_;
  std::string log_path_;
  bool reaped_ = false;
  std::string exit_description_;
};

}  // namespace gpuhive::loadgen
