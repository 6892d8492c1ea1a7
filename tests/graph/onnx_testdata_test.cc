// Imports every model of ONNX's node test suite (Debian libonnx-testdata). The only acceptable
// failures are clear refusals of features gpuhive does not support (kUnimplemented: string
// tensors, sparse tensors); each is listed.
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>

#include "gpuhive/onnx_import.h"

namespace gpuhive {
namespace {
namespace fs = std::filesystem;

constexpr const char* kNodeTests = "/usr/share/libonnx-testdata/data/node";

TEST(OnnxTestData, AllNodeModelsImport) {
  if (!fs::exists(kNodeTests)) GTEST_SKIP() << kNodeTests << " is not installed";
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(kNodeTests)) {
    if (fs::exists(e.path() / "model.onnx")) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  ASSERT_GT(dirs.size(), 500u);
  int imported = 0, refused = 0;
  for (const auto& d : dirs) {
    auto model = ImportOnnxFile((d / "model.onnx").string());
    if (model.ok()) {
      ++imported;
      EXPECT_NE((*model)->graph, nullptr);
      EXPECT_FALSE((*model)->graph->outputs().empty()) << d.filename();
      continue;
    }
    ++refused;
    std::cout << "refused " << d.filename().string() << ": " << model.status().ToString() << "\n";
    EXPECT_EQ(model.status().code(), StatusCode::kUnimplemented)
        << d.filename() << ": " << model.status().ToString();
  }
  std::cout << imported << " of " << dirs.size() << " node test models imported, " << refused
            << " refused\n";
  // Most refusals are string tensors; if this drops a lot something regressed.
  EXPECT_GT(imported, static_cast<int>(dirs.size()) * 9 / 10);
}

}  // namespace
}  // namespace gpuhive
