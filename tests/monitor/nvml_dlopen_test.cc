// The real-library path of the NVML monitor (dlopen + dlsym) against stand-in libraries: memory
// "used" comes from nvmlDeviceGetMemoryInfo_v2 when the library has it (v1 counts the driver's
// reserved memory as used: 1,142 vs nvidia-smi's 527 MiB on an H200), else from v1.
#include <gtest/gtest.h>

#include "monitor/nvml_library.h"

namespace gpuhive::monitor::detail {
namespace {

constexpr unsigned long long kMiB = 1024ull * 1024ull;

NvmlMemory ReadMemory(const char* path) {
  auto lib = OpenSystemNvml(path);
  EXPECT_TRUE(lib.ok()) << lib.status().ToString();
  NvmlMemory m{};
  if (!lib.ok()) return m;
  EXPECT_EQ((*lib)->Init(), kNvmlSuccess);
  NvmlLibrary::Device d = nullptr;
  EXPECT_EQ((*lib)->HandleByIndex(0, &d), kNvmlSuccess);
  EXPECT_EQ((*lib)->Memory(d, &m), kNvmlSuccess);
  return m;
}

TEST(NvmlDlopen, MemoryUsedComesFromV2WhenPresent) {
  NvmlMemory m = ReadMemory(GPUHIVE_FAKE_NVML_V2);
  EXPECT_EQ(m.used, 527 * kMiB);
  EXPECT_EQ(m.total, 140ull * 1024 * kMiB);
}

TEST(NvmlDlopen, OlderLibrariesFallBackToV1) {
  NvmlMemory m = ReadMemory(GPUHIVE_FAKE_NVML_V1);
  EXPECT_EQ(m.used, 1142 * kMiB);
}

TEST(NvmlDlopen, MissingLibraryIsUnavailable) {
  auto lib = OpenSystemNvml("/nonexistent/libnvidia-ml.so.1");
  ASSERT_FALSE(lib.ok());
  EXPECT_EQ(lib.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace gpuhive::monitor::detail
