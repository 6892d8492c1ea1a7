// libFuzzer target for the KServe v2 request parser (JSON and binary tensor extension).
// Input layout: first byte selects the model metadata and whether the next 2 bytes are an
// Inference-Header-Content-Length; the rest is the body. Any input must give OK or a clean error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/kserve_json.h"

namespace {

gpuhive::server::ModelMetadata Meta(uint8_t which) {
  using gpuhive::DataType;
  gpuhive::server::ModelMetadata m;
  m.name = "m";
  m.versions = {"1"};
  static constexpr DataType kTypes[] = {DataType::kInt32, DataType::kFloat32, DataType::kBool,
                                        DataType::kFloat16, DataType::kUint8, DataType::kInt64,
                                        DataType::kBFloat16, DataType::kFloat64};
  DataType t = kTypes[which % 8];
  m.inputs = {{"INPUT0", t, {-1, 4}}, {"INPUT1", t, {-1, -1}}};
  m.outputs = {{"OUTPUT0", t, {-1, 4}}};
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const uint8_t sel = data[0];
  std::optional<size_t> header_length;
  if (sel & 0x80) header_length = static_cast<size_t>(data[1]) | (static_cast<size_t>(data[2]) << 8);
  std::string_view body(reinterpret_cast<const char*>(data + 3), size - 3);
  auto r = gpuhive::server::ParseInferRequest(body, header_length, Meta(sel));
  if (r.ok()) {
    // Round-trip what was parsed through the response encoder.
    gpuhive::InferenceResponse resp;
    resp.model_name = "m";
    for (auto& in : r->request->inputs) resp.outputs.push_back(std::move(in));
    auto enc = gpuhive::server::EncodeInferResponse(resp, r->outputs, r->binary_output_default);
    if (enc.header_length && *enc.header_length > enc.body.size()) __builtin_trap();
  }
  (void)gpuhive::server::ParseRepositoryIndexRequest(body);
  return 0;
}
