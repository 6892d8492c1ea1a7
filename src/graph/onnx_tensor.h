// Internal to the graph module: ONNX TensorProto <-> Tensor and bounded protobuf parsing.
#pragma once

#include <google/protobuf/message_lite.h>
#include <onnx/onnx_pb.h>

#include <string>
#include <string_view>

#include "gpuhive/ir.h"
#include "gpuhive/status.h"
#include "gpuhive/tensor.h"

namespace gpuhive::onnx_detail {

// Converts a TensorProto to a host tensor. `base_dir` resolves external data; empty refuses it.
// Errors: kUnimplemented (string, complex, sparse/segmented), kInvalidArgument (bad dims, data of
// the wrong size, external path escaping base_dir), kDataLoss (external file too short),
// kNotFound (external file missing).
StatusOr<Tensor> TensorFromProto(const onnx::TensorProto& proto, const std::string& base_dir);

// Fills `proto` (name, dtype, dims, raw_data) from `t`.
Status TensorToProto(const Tensor& t, const std::string& name, onnx::TensorProto* proto);

// Parses `bytes` into `msg` with a size limit; corrupt or truncated input gives kDataLoss naming
// `what`.
Status ParseProto(std::string_view bytes, google::protobuf::MessageLite* msg, std::string_view what);

// Reads a whole file, refusing files larger than max_bytes. kNotFound when it cannot be opened.
StatusOr<std::string> ReadFileBytes(const std::string& path, uint64_t max_bytes);
// Parses the file at `path` (at most `max_bytes`) into `msg` while reading it, in chunks: the
// serialized bytes are never held whole next to the parsed message (ONNX models: file size + their
// weights' size at the peak otherwise). Errors as ReadFileBytes and ParseProto.
Status ParseProtoFile(const std::string& path, uint64_t max_bytes, google::protobuf::MessageLite* msg,
                      std::string_view what);

// Maps an ONNX elem_type to DataType; kUndefined for types gpuhive does not know.
DataType DataTypeFromOnnx(int32_t elem_type);

}  // namespace gpuhive::onnx_detail
