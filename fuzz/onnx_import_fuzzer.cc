// libFuzzer target: arbitrary bytes through ImportOnnxBytes, then (when they import) through the
// optimization pipeline. Any crash, sanitizer report or uncaught exception is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gpuhive/logging.h"
#include "gpuhive/onnx_import.h"
#include "gpuhive/passes.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    gpuhive::SetLogLevel(gpuhive::LogLevel::kOff);
    return true;
  }();
  (void)quiet;
  gpuhive::ImportOptions options;
  options.max_model_bytes = 1 << 20;
  auto model = gpuhive::ImportOnnxBytes(std::string_view(reinterpret_cast<const char*>(data), size), options);
  if (!model.ok()) return 0;
  gpuhive::OptimizeOptions opt;  // no evaluator: folding of static shapes, elimination, fusion
  (void)gpuhive::OptimizeModel(**model, opt);
  return 0;
}
