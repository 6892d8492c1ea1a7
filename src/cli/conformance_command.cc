// `gpuhive conformance DIR...`: runs ONNX backend-test directories (model.onnx +
// test_data_set_*/input_*.pb, output_*.pb) with ONNX's default tolerances (rtol 1e-3, atol 1e-7)
// and prints "N passed, M failed, K skipped" last. Each test runs in a child process by default, so
// a crash or a hang fails that test only.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "cli/command.h"
#include "cli/model_util.h"
#include "gpuhive/onnx_import.h"
#include "gpuhive/units.h"

extern char** environ;

namespace gpuhive::cli {
namespace {
namespace fs = std::filesystem;

struct ConformanceOptions {
  std::vector<std::string> dirs;
  std::string single;
  bool json = false;
  bool in_process = false;
  int jobs = 1;
  int timeout_s = 120;
  double rtol = 1e-3, atol = 1e-7;
  bool verbose = false;
  bool no_optimize = false;
};

struct TestResult {
  std::string name, outcome, reason;  // outcome: pass | fail | skip
  double ms = 0;
};

std::vector<fs::path> SortedByIndex(const fs::path& dir, const std::string& prefix) {
  std::vector<std::pair<int, fs::path>> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    if (n.rfind(prefix, 0) == 0 && e.path().extension() == ".pb") {
      found.emplace_back(std::atoi(n.c_str() + prefix.size()), e.path());
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

std::string Compare(const Tensor& got, const Tensor& want, double rtol, double atol, size_t index) {
  if (got.dtype() != want.dtype()) {
    return fmt::format("output {}: dtype {} expected {}", index, DataTypeName(got.dtype()), DataTypeName(want.dtype()));
  }
  if (got.shape() != want.shape()) {
    return fmt::format("output {}: shape {} expected {}", index, ShapeToString(got.shape()), ShapeToString(want.shape()));
  }
  int64_t n = got.num_elements();
  auto value = [](const Tensor& t, int64_t i) -> double {
    switch (t.dtype()) {
      case DataType::kFloat32: return t.as<float>()[i];
      case DataType::kFloat64: return t.as<double>()[i];
      case DataType::kInt64: return static_cast<double>(t.as<int64_t>()[i]);
      case DataType::kInt32: return t.as<int32_t>()[i];
      case DataType::kInt16: return t.as<int16_t>()[i];
      case DataType::kInt8: return t.as<int8_t>()[i];
      case DataType::kUint8: case DataType::kBool: return t.as<uint8_t>()[i];
      case DataType::kUint16: return t.as<uint16_t>()[i];
      case DataType::kUint32: return t.as<uint32_t>()[i];
      case DataType::kUint64: return static_cast<double>(t.as<uint64_t>()[i]);
      case DataType::kFloat16: {
        uint16_t h = t.as<uint16_t>()[i];
        int e = (h >> 10) & 0x1f, m = h & 0x3ff;
        double v = e == 0 ? std::ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : std::ldexp(m + 1024, e - 25);
        return (h >> 15) ? -v : v;
      }
      case DataType::kBFloat16: {
        uint32_t bits = static_cast<uint32_t>(t.as<uint16_t>()[i]) << 16;
        float f;
        std::memcpy(&f, &bits, 4);
        return f;
      }
      default: return NAN;
    }
  };
  bool exact = !(got.dtype() == DataType::kFloat32 || got.dtype() == DataType::kFloat64 ||
                 got.dtype() == DataType::kFloat16 || got.dtype() == DataType::kBFloat16);
  if (got.dtype() == DataType::kUint64 || got.dtype() == DataType::kInt64) {
    // Compare 64-bit integers bitwise (doubles lose precision above 2^53).
    if (std::memcmp(got.data(), want.data(), got.bytes()) == 0) return "";
  }
  for (int64_t i = 0; i < n; ++i) {
    double a = value(got, i), b = value(want, i);
    if (std::isnan(a) && std::isnan(b)) continue;
    if (std::isinf(a) && a == b) continue;
    bool ok = exact ? a == b : std::fabs(a - b) <= atol + rtol * std::fabs(b);
    if (!ok) return fmt::format("output {} element {}: got {} expected {}", index, i, a, b);
  }
  return "";
}

// ONNX's test generator stores bfloat16 data as uint16 (numpy has no bfloat16): same bytes.
Tensor AsBFloat16IfStoredAsUint16(Tensor t, DataType wanted) {
  if (wanted != DataType::kBFloat16 || t.dtype() != DataType::kUint16) return t;
  auto re = Tensor::FromBytes(DataType::kBFloat16, t.shape(), t.data(), t.bytes());
  return re.ok() ? std::move(re).value() : std::move(t);
}

TestResult RunOne(const fs::path& dir, const ConformanceOptions& o) {
  TestResult r;
  r.name = dir.filename().string();
  int64_t t0 = NowNs();
  auto finish = [&](std::string outcome, std::string reason) {
    r.outcome = std::move(outcome);
    r.reason = std::move(reason);
    r.ms = (NowNs() - t0) / 1e6;
    return r;
  };
  CompileOptions co;
  co.optimize = !o.no_optimize;
  auto model = LoadModel((dir / "model.onnx").string(), co);
  if (!model.ok()) {
    if (model.status().code() == StatusCode::kUnimplemented) return finish("skip", model.status().message());
    return finish("fail", model.status().ToString());
  }
  std::vector<fs::path> sets;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) sets.push_back(e.path());
  }
  std::sort(sets.begin(), sets.end());
  if (sets.empty()) return finish("skip", "no test_data_set_* directories");
  ExecutionContext ctx({1});
  for (const fs::path& set : sets) {
    std::vector<Tensor> inputs, expected;
    for (const fs::path& p : SortedByIndex(set, "input_")) {
      auto t = ReadTensorProtoFile(p.string());
      if (!t.ok()) {
        if (t.status().code() == StatusCode::kUnimplemented) return finish("skip", t.status().message());
        return finish("fail", t.status().ToString());
      }
      inputs.push_back(std::move(t->second));
    }
    for (const fs::path& p : SortedByIndex(set, "output_")) {
      auto t = ReadTensorProtoFile(p.string());
      if (!t.ok()) {
        if (t.status().code() == StatusCode::kUnimplemented) return finish("skip", t.status().message());
        return finish("fail", t.status().ToString());
      }
      expected.push_back(std::move(t->second));
    }
    if (inputs.size() != (*model)->inputs().size()) {
      return finish("fail", fmt::format("test gives {} inputs, model takes {}", inputs.size(), (*model)->inputs().size()));
    }
    std::vector<TensorView> views;
    for (size_t i = 0; i < inputs.size(); ++i) {
      inputs[i] = AsBFloat16IfStoredAsUint16(std::move(inputs[i]), (*model)->inputs()[i].dtype);
      views.push_back(inputs[i].view());
    }
    auto out = (*model)->Run(ctx, views);
    if (!out.ok()) {
      if (out.status().code() == StatusCode::kUnimplemented) return finish("skip", out.status().message());
      return finish("fail", out.status().ToString());
    }
    if (out->size() != expected.size()) {
      return finish("fail", fmt::format("{} outputs, expected {}", out->size(), expected.size()));
    }
    for (size_t i = 0; i < expected.size(); ++i) {
      expected[i] = AsBFloat16IfStoredAsUint16(std::move(expected[i]), (*out)[i].dtype());
      std::string why = Compare((*out)[i], expected[i], o.rtol, o.atol, i);
      if (!why.empty()) return finish("fail", set.filename().string() + ": " + why);
    }
  }
  return finish("pass", "");
}

std::string OneLine(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

// Runs a test in a child process (`gpuhive conformance --single DIR`) with a timeout.
struct Child {
  pid_t pid = -1;
  int fd = -1;
  std::string out, name;
  int64_t start_ns = 0;
};

bool SpawnChild(const fs::path& dir, bool no_optimize, Child* c) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return false;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_addclose(&fa, pipefd[0]);
  int devnull = open("/dev/null", O_WRONLY);
  if (devnull >= 0) posix_spawn_file_actions_adddup2(&fa, devnull, 2);
  std::string self = fs::read_symlink("/proc/self/exe").string();
  std::string d = dir.string();
  std::vector<char*> argv = {self.data(), const_cast<char*>("conformance"), const_cast<char*>("--single"), d.data()};
  if (no_optimize) argv.push_back(const_cast<char*>("--no-optimize"));
  argv.push_back(nullptr);
  int rc = posix_spawn(&c->pid, self.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(pipefd[1]);
  if (devnull >= 0) close(devnull);
  if (rc != 0) {
    close(pipefd[0]);
    return false;
  }
  c->fd = pipefd[0];
  c->name = dir.filename().string();
  c->start_ns = NowNs();
  return true;
}

TestResult ParseChild(Child& c, int status) {
  TestResult r;
  r.name = c.name;
  r.ms = (NowNs() - c.start_ns) / 1e6;
  auto pos = c.out.rfind("RESULT ");
  if (WIFSIGNALED(status)) {
    r.outcome = "fail";
    r.reason = fmt::format("crashed with signal {}", WTERMSIG(status));
  } else if (pos == std::string::npos) {
    r.outcome = "fail";
    r.reason = "no result from child process";
  } else {
    std::string line = c.out.substr(pos + 7);
    auto sp = line.find(' ');
    r.outcome = line.substr(0, sp);
    r.reason = sp == std::string::npos ? "" : line.substr(sp + 1);
    while (!r.reason.empty() && (r.reason.back() == '\n' || r.reason.back() == '\r')) r.reason.pop_back();
  }
  return r;
}

std::vector<TestResult> RunIsolated(const std::vector<fs::path>& tests, const ConformanceOptions& o) {
  std::vector<TestResult> results;
  std::vector<Child> running;
  size_t next = 0;
  while (next < tests.size() || !running.empty()) {
    while (next < tests.size() && static_cast<int>(running.size()) < std::max(1, o.jobs)) {
      Child c;
      if (!SpawnChild(tests[next], o.no_optimize, &c)) {
        results.push_back({tests[next].filename().string(), "fail", "could not start child process", 0});
      } else {
        running.push_back(std::move(c));
      }
      ++next;
    }
    std::vector<pollfd> fds;
    for (auto& c : running) fds.push_back({c.fd, POLLIN, 0});
    poll(fds.data(), fds.size(), 200);
    for (size_t i = 0; i < running.size();) {
      Child& c = running[i];
      char buf[4096];
      bool eof = false;
      if (fds[i].revents & (POLLIN | POLLHUP)) {
        ssize_t n = read(c.fd, buf, sizeof buf);
        if (n > 0) c.out.append(buf, n);
        else eof = true;
      }
      bool timed_out = (NowNs() - c.start_ns) / 1e9 > o.timeout_s;
      if (!eof && !timed_out) {
        ++i;
        continue;
      }
      if (timed_out) kill(c.pid, SIGKILL);
      int status = 0;
      waitpid(c.pid, &status, 0);
      close(c.fd);
      TestResult r = ParseChild(c, status);
      if (timed_out) r = {c.name, "fail", fmt::format("timed out after {} s", o.timeout_s), r.ms};
      results.push_back(r);
      if (o.verbose) std::fprintf(stderr, "%s %s %s\n", r.outcome.c_str(), r.name.c_str(), r.reason.c_str());
      running.erase(running.begin() + i);
      fds.erase(fds.begin() + i);
    }
  }
  return results;
}

int RunConformance(const ConformanceOptions& o) {
  if (!o.single.empty()) {
    TestResult r = RunOne(o.single, o);
    std::printf("RESULT %s %s\n", r.outcome.c_str(), OneLine(r.reason).c_str());
    return 0;
  }
  std::vector<fs::path> tests;
  for (const std::string& d : o.dirs) {
    fs::path p(d);
    if (fs::exists(p / "model.onnx")) {
      tests.push_back(p);
      continue;
    }
    std::error_code ec;
    std::vector<fs::path> found;
    for (const auto& e : fs::directory_iterator(p, ec)) {
      if (e.is_directory() && fs::exists(e.path() / "model.onnx")) found.push_back(e.path());
    }
    if (ec) {
      std::fprintf(stderr, "error: cannot read %s: %s\n", d.c_str(), ec.message().c_str());
      return 2;
    }
    std::sort(found.begin(), found.end());
    tests.insert(tests.end(), found.begin(), found.end());
  }
  std::vector<TestResult> results;
  if (o.in_process) {
    for (const auto& t : tests) results.push_back(RunOne(t, o));
  } else {
    results = RunIsolated(tests, o);
  }
  std::sort(results.begin(), results.end(), [](const TestResult& a, const TestResult& b) { return a.name < b.name; });
  int passed = 0, failed = 0, skipped = 0;
  for (const auto& r : results) {
    passed += r.outcome == "pass";
    failed += r.outcome == "fail";
    skipped += r.outcome == "skip";
  }
  if (o.json) {
    std::printf("{\"passed\":%d,\"failed\":%d,\"skipped\":%d,\"tests\":[", passed, failed, skipped);
    for (size_t i = 0; i < results.size(); ++i) {
      std::printf("%s{\"name\":\"%s\",\"outcome\":\"%s\",\"reason\":\"%s\",\"ms\":%.1f}", i ? "," : "",
                  results[i].name.c_str(), results[i].outcome.c_str(), JsonEscape(results[i].reason).c_str(),
                  results[i].ms);
    }
    std::printf("]}\n");
  } else {
    for (const auto& r : results) {
      if (r.outcome == "pass") std::printf("PASS %s\n", r.name.c_str());
    }
    for (const auto& r : results) {
      if (r.outcome == "skip") std::printf("SKIP %s: %s\n", r.name.c_str(), r.reason.c_str());
    }
    for (const auto& r : results) {
      if (r.outcome == "fail") std::printf("FAIL %s: %s\n", r.name.c_str(), r.reason.c_str());
    }
  }
  std::printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return 0;
}

CommandRegistration kConformance(
    "", "conformance", "Run ONNX backend test directories and report passed/failed/skipped", [](CLI::App& app) {
      auto o = std::make_shared<ConformanceOptions>();
      app.add_option("dirs", o->dirs, "test directories, or directories holding them");
      app.add_option("--single", o->single, "run one test directory and print a RESULT line (used internally)");
      app.add_flag("--json", o->json, "print results as JSON (the summary line still comes last)");
      app.add_flag("--in-process", o->in_process, "no child processes (faster, but a crash ends the run)");
      app.add_option("--jobs,-j", o->jobs, "tests run at once")->capture_default_str();
      app.add_option("--timeout", o->timeout_s, "seconds per test")->capture_default_str();
      app.add_flag("--no-optimize", o->no_optimize, "run graphs as imported (no folding or fusion)");
      app.add_flag("--verbose,-v", o->verbose, "print each result as it arrives (stderr)");
      return [o] { return RunConformance(*o); };
    });

}  // namespace
}  // namespace gpuhive::cli
