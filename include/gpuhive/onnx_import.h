// ONNX import: turns an ONNX ModelProto (file or bytes) into the graph IR (ir.h).
//
// Supported: opsets 7..17 of the default domain (other domains are recorded and passed through),
// initializers in every numeric storage kind (raw_data, typed fields, external data files),
// Constant nodes, symbolic and dynamic dims, nested subgraphs (If/Loop/Scan) with outer-scope
// references, and ONNX's own shape inference for declared dtypes/shapes.
// Refused with a clear Status (never an abort): string tensors (kUnimplemented), sparse
// initializers (kUnimplemented), truncated or corrupt protobufs (kDataLoss), external data that
// escapes the model directory or lies outside its file (kInvalidArgument / kDataLoss).
// All functions are thread safe (they share no state).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "gpuhive/ir.h"
#include "gpuhive/status.h"
#include "gpuhive/tensor.h"

namespace gpuhive {

struct ImportOptions {
  // Directory that external-data locations are relative to. Empty: the model file's directory
  // (ImportOnnxFile) or external data is refused (ImportOnnxBytes).
  std::string base_dir;
  // Largest model file / byte string accepted (the protobuf itself, not external data).
  uint64_t max_model_bytes = 4ull << 30;
};

// Reads and converts an .onnx file. Errors: kNotFound (no such file), kDataLoss (truncated or
// corrupt), kInvalidArgument (malformed graph), kUnimplemented (string tensors, sparse tensors).
StatusOr<std::unique_ptr<ir::Model>> ImportOnnxFile(const std::string& path,
                                                    const ImportOptions& options = {});
// Same for a serialized ModelProto held in memory.
StatusOr<std::unique_ptr<ir::Model>> ImportOnnxBytes(std::string_view bytes,
                                                     const ImportOptions& options = {});

// Reads a serialized TensorProto file (the format of ONNX test data, input_0.pb): name + tensor.
StatusOr<std::pair<std::string, Tensor>> ReadTensorProtoFile(const std::string& path);
// Writes `t` as a TensorProto with raw_data. Errors: kInvalidArgument for unsupported dtypes,
// kInternal / kNotFound when the file cannot be written.
Status WriteTensorProtoFile(const std::string& path, const std::string& name, const Tensor& t);

}  // namespace gpuhive
