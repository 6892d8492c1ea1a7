// libFuzzer target for config.pbtxt (Triton's model configuration text plus gpuhive's block):
// any input must give a ModelConfig or a clean error, never a crash, hang or leak.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gpuhive/residency/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // Parsing checks syntax and types only (a negative max_batch_size parses; validation refuses
  // it), so the validator runs on whatever parsed.
  auto config = gpuhive::residency::ParseModelConfig(text, "fuzz/config.pbtxt");
  if (config.ok()) (void)gpuhive::residency::ValidateModelConfig(*config);
  return 0;
}
