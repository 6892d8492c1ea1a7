// libFuzzer target for the gRPC frontend's request conversion (src/server/grpc_convert.cc): any
// bytes parsed as a KServe v2 ModelInferRequest, converted against a model's metadata with system
// shared memory enabled (two registered regions), and, when the request is valid, a response
// built from its inputs run through FillInferResponse (classification and shared memory outputs
// included). Input layout: the first byte selects the metadata, the rest is the serialized proto.
// Any input must give OK or a clean error; a valid request's response must keep
// raw_output_contents aligned with its outputs.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "gpuhive/server/shared_memory.h"
#include "server/grpc_convert.h"

namespace {

gpuhive::server::SharedMemoryRegistry* g_shm = nullptr;

gpuhive::server::ModelMetadata Meta(uint8_t which) {
  using gpuhive::DataType;
  gpuhive::server::ModelMetadata m;
  m.name = "m";
  m.versions = {"1"};
  static constexpr DataType kTypes[] = {DataType::kInt32,  DataType::kFloat32, DataType::kBool,
                                        DataType::kFloat16, DataType::kUint8,   DataType::kInt64,
                                        DataType::kInt8,   DataType::kFloat64};
  const DataType t = kTypes[which % 8];
  if (which & 0x08) {  // batched: dim 0 is the batch
    m.max_batch_size = 8;
    m.inputs = {{"INPUT0", t, {-1, 4}}, {"INPUT1", t, {-1, -1}}};
    m.outputs = {{"OUTPUT0", t, {-1, 4}}, {"OUTPUT1", t, {-1, -1}}};
  } else {
    m.inputs = {{"INPUT0", t, {2, 2}}, {"INPUT1", t, {-1}}};
    m.outputs = {{"OUTPUT0", t, {2, 2}}, {"OUTPUT1", t, {-1}}};
  }
  return m;
}

}  // namespace

// One shared memory object, registered as two regions ("r0": the whole 4 KiB, "r1": 512 bytes
// from offset 1024), so inputs and outputs can name them.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);  // invalid UTF-8 in string fields is logged per parse
  const std::string key = "/gpuhive_grpc_fuzz_" + std::to_string(getpid());
  int fd = shm_open(key.c_str(), O_CREAT | O_RDWR | O_EXCL, 0600);
  if (fd < 0 || ftruncate(fd, 4096) != 0) {
    std::perror("shm_open");
    return 1;
  }
  close(fd);
  g_shm = new gpuhive::server::SharedMemoryRegistry();
  const bool ok = g_shm->Register({"r0", key, 0, 4096}).ok() && g_shm->Register({"r1", key, 1024, 512}).ok();
  shm_unlink(key.c_str());  // the mappings stay; nothing is left behind when the fuzzer exits
  if (!ok) {
    std::fprintf(stderr, "could not register the fuzzer's shared memory regions\n");
    return 1;
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  inference::ModelInferRequest in;
  if (!in.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
  const auto meta = Meta(data[0]);
  gpuhive::server::ResponseOptions options;
  auto built = gpuhive::server::BuildRequest(in, meta, 0, &options, (data[0] & 0x10) ? nullptr : g_shm);
  if (!built.ok()) {
    if (built.status().message().empty()) __builtin_trap();  // every refusal says why
    return 0;
  }
  // The model "echoes" its inputs as outputs of the same index.
  gpuhive::InferenceResponse result;
  result.model_name = "m";
  for (size_t i = 0; i < (*built)->inputs.size(); ++i) {
    auto& t = (*built)->inputs[i];
    const std::string out = t.name == "INPUT0" ? "OUTPUT0" : "OUTPUT1";
    result.outputs.push_back({out, std::move(t.tensor)});
  }
  inference::ModelInferResponse resp;
  auto filled = gpuhive::server::FillInferResponse(result, options, &resp);
  if (filled.ok() && resp.raw_output_contents_size() != resp.outputs_size()) __builtin_trap();
  if (!filled.ok() && filled.message().empty()) __builtin_trap();
  return 0;
}
