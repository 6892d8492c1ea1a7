// Model files that change under the server: read while another process truncates or rewrites
// them (`cp new.onnx model.onnx`, `truncate`), and picked up by poll mode only once they stopped
// changing. Issue 16: a memory-mapped file truncated during a load killed the server with SIGBUS.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "gpuhive/logging.h"
#include "test_util.h"

namespace gpuhive::residency {
namespace {

using namespace gpuhive::residency::testing;
namespace fs = std::filesystem;

class ModelFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    root_ = fs::temp_directory_path() / ("gh_model_file_" + std::to_string(rd()));
    fs::create_directories(root_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  fs::path Write(const std::string& rel, const std::string& bytes) {
    fs::path p = root_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
    return p;
  }
  fs::path root_;
};

// Lazy loads race a writer that truncates the file and writes it again, as `cp` over the file
// and `truncate` do. Every load must end in a lease or an error Status; before the fix the
// loader read the file through mmap and the truncation raised SIGBUS, ending the process.
TEST_F(ModelFileTest, FileTruncatedWhileLoadingIsAnErrorNotASignal) {
  // ~8 MiB of weights: parsing takes long enough for the writer to strike in the middle.
  const std::string full = MakeMatMulChainOnnx({.dim = 512, .layers = 8, .seed = 3, .scale = 0.05f});
  const fs::path file = Write("m/1/model.onnx", full);
  auto repo = ModelRepository::Open(root_.string());
  ASSERT_TRUE(repo.ok());
  ManagerOptions o = SmallOptions(256ull << 20);
  auto m = ModelManager::Create(o, repo->get());
  ASSERT_TRUE(m.ok()) << m.status().ToString();

  // Each failed load logs a warning: thousands here, all expected.
  const LogLevel log_level = GetLogLevel();
  SetLogLevel(LogLevel::kError);
  std::atomic<bool> stop{false};
  std::atomic<int> rewrites{0};
  std::thread writer([&] {
    std::mt19937 rng(7);
    while (!stop.load()) {
      // Truncate in place (the inode the loader has open), then write it back whole.
      ASSERT_EQ(::truncate(file.c_str(), static_cast<off_t>(rng() % (full.size() / 2))), 0);
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
      std::ofstream(file, std::ios::binary | std::ios::trunc) << full;
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
      ++rewrites;
    }
  });
  int ok = 0, failed = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < until || ok + failed < 20) {
    {
      auto lease = (*m)->Acquire("m");
      if (lease.ok()) {
        ++ok;
      } else {
        ++failed;
        EXPECT_FALSE(lease.status().message().empty());
      }
    }
    // Back to disk, so the next Acquire reads the file again.
    ASSERT_TRUE((*m)->Unload("m").ok());
  }
  stop = true;
  writer.join();
  SetLogLevel(log_level);
  EXPECT_GT(rewrites.load(), 0);
  EXPECT_GT(ok + failed, 0);
  // Once the file is whole again the model loads.
  std::ofstream(file, std::ios::binary | std::ios::trunc) << full;
  auto lease = (*m)->Acquire("m");
  EXPECT_TRUE(lease.ok()) << lease.status().ToString();
}

// Poll mode registers a new model, and applies a change to a registered one, only after two
// polls in a row saw the same size and mtime: a file still being copied is not loaded half-written.
TEST_F(ModelFileTest, PollModeWaitsUntilTheFileStopsChanging) {
  const std::string v1 = MakeMatMulChainOnnx({.dim = 64, .layers = 2, .seed = 1, .scale = 0.05f});
  const std::string v2 = MakeMatMulChainOnnx({.dim = 64, .layers = 3, .seed = 2, .scale = 0.05f});
  fs::create_directories(root_);
  auto repo = ModelRepository::Open(root_.string());
  ASSERT_TRUE(repo.ok());
  ManagerOptions o = SmallOptions(64ull << 20);
  o.control_mode = ControlMode::kPoll;
  o.poll_interval_us = 0;  // every Housekeep() polls
  auto m = ModelManager::Create(o, repo->get());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  auto registered = [&] { return FindStatus((*m)->ListModels(), "m") != nullptr; };
  // A copy: "m" may be missing (an empty name then).
  auto status = [&] {
    auto all = (*m)->ListModels();
    const ModelStatus* s = FindStatus(all, "m");
    return s ? *s : ModelStatus{};
  };

  // Being written: first a part of it, then all of it.
  const fs::path file = Write("m/1/model.onnx", v1.substr(0, v1.size() / 3));
  (*m)->Housekeep();
  EXPECT_FALSE(registered()) << "registered while the file was still being written";
  Write("m/1/model.onnx", v1);
  (*m)->Housekeep();
  EXPECT_FALSE(registered()) << "registered while the file was still changing";
  (*m)->Housekeep();  // unchanged since the last poll
  ASSERT_TRUE(registered());
  ASSERT_TRUE((*m)->Acquire("m").ok());
  ASSERT_EQ(status().state, ModelState::kResident);
  const uint64_t v1_bytes = status().device_bytes;

  // A registered model's file being rewritten: the resident copy stays (and is not dropped for
  // the half file that cannot be parsed yet) until the file settled.
  Write("m/1/model.onnx", v2.substr(0, v2.size() / 2));
  (*m)->Housekeep();
  EXPECT_EQ(status().name, "m") << "dropped while its file was being written";
  EXPECT_EQ(status().state, ModelState::kResident);
  Write("m/1/model.onnx", v2);
  (*m)->Housekeep();
  EXPECT_EQ(status().state, ModelState::kResident);
  (*m)->Housekeep();
  EXPECT_EQ(status().state, ModelState::kOnDisk);  // reloaded on next use
  auto lease = (*m)->Acquire("m");
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  EXPECT_GT(status().device_bytes, v1_bytes);  // v2's third layer
}

}  // namespace
}  // namespace gpuhive::residency
