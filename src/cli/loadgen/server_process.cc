#include "cli/loadgen/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "cli/loadgen/transport.h"

namespace gpuhive::loadgen {

std::vector<std::string> ServerProcess::CommandLine(const ServerSpec& spec, const std::string& mode) {
  std::vector<std::string> argv = {spec.binary, "serve", "--mode", mode, "--model-repository",
                                   spec.model_repository, "--http-port", std::to_string(spec.http_port),
                                   "--grpc-port", std::to_string(spec.grpc_port)};
  if (!spec.memory_budget.empty()) argv.insert(argv.end(), {"--memory-budget", spec.memory_budget});
  if (!spec.model_control_mode.empty())
    argv.insert(argv.end(), {"--model-control-mode", spec.model_control_mode});
  for (const auto& m : spec.load_models) argv.insert(argv.end(), {"--load-model", m});
  argv.insert(argv.end(), spec.args.begin(), spec.args.end());
  return argv;
}

StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(const ServerSpec& spec, const std::string& mode,
                                                              const std::string& log_path) {
  std::vector<std::string> args = CommandLine(spec, mode);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int fd = open(log_path.empty() ? "/dev/null" : log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Unavailable("cannot open server log '{}'", log_path);
  pid_t pid = fork();
  if (pid < 0) {
    close(fd);
    return Unavailable("fork failed for '{}'", spec.binary);
  }
  if (pid == 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fd);
  return std::unique_ptr<ServerProcess>(new ServerProcess(pid, log_path));
}

ServerProcess::~ServerProcess() { Stop(); }

bool ServerProcess::Exited(int* wstatus) {
  if (reaped_) return true;
  pid_t r = waitpid(pid_, wstatus, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    if (WIFEXITED(*wstatus)) {
      exit_description_ = "exited with status " + std::to_string(WEXITSTATUS(*wstatus));
    } else if (WIFSIGNALED(*wstatus)) {
      exit_description_ = "killed by signal " + std::to_string(WTERMSIG(*wstatus));
    }
    return true;
  }
  return false;
}

std::string ServerProcess::LogTail() const {
  if (log_path_.empty()) return "(no log)";
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > 2000 ? "..." + s.substr(s.size() - 2000) : s;
}

Status ServerProcess::WaitReady(const std::string& host, uint16_t port, double timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  std::string last = "no answer";
  while (std::chrono::steady_clock::now() < deadline) {
    int ws = 0;
    if (Exited(&ws))
      return Unavailable("server {} before it was ready; log {}:\n{}", exit_description_, log_path_, LogTail());
    auto r = HttpExchange(host, port, "GET", "/v2/health/ready", "", std::chrono::milliseconds(1000));
    if (r.ok() && r->status == 200) return Status::OK();
    last = r.ok() ? "HTTP " + std::to_string(r->status) : r.status().message();
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return DeadlineExceeded("server not ready after {} s (last: {}); log {}", timeout_s, last, log_path_);
}

std::string ServerProcess::Stop(double grace_s) {
  int ws = 0;
  if (Exited(&ws)) return exit_description_;
  kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(grace_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (Exited(&ws)) return exit_description_;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &ws, 0);
  reaped_ = true;
  exit_description_ = "did not stop within " + std::to_string(static_cast<int>(grace_s)) + " s of SIGTERM; killed";
  return exit_description_;
}

}  // namespace gpuhive::loadgen
