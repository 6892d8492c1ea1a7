#include "gpuhive/dtype.h"

namespace gpuhive {

size_t DataTypeSize(DataType t) {
  switch (t) {
    case DataType::kFloat32: return 4;
    case DataType::kUint8: return 1;
    case DataType::kInt8: return 1;
    case DataType::kUint16: return 2;
    case DataType::kInt16: return 2;
    case DataType::kInt32: return 4;
    case DataType::kInt64: return 8;
    case DataType::kBool: return 1;
    case DataType::kFloat16: return 2;
    case DataType::kFloat64: return 8;
    case DataType::kUint32: return 4;
    case DataType::kUint64: return 8;
    case DataType::kComplex64: return 8;
    case DataType::kComplex128: return 16;
    case DataType::kBFloat16: return 2;
    default: return 0;
  }
}

std::string_view DataTypeName(DataType t) {
  switch (t) {
    case DataType::kFloat32: return "float";
    case DataType::kUint8: return "uint8";
    case DataType::kInt8: return "int8";
    case DataType::kUint16: return "uint16";
    case DataType::kInt16: return "int16";
    case DataType::kInt32: return "int32";
    case DataType::kInt64: return "int64";
    case DataType::kString: return "string";
    case DataType::kBool: return "bool";
    case DataType::kFloat16: return "float16";
    case DataType::kFloat64: return "double";
    case DataType::kUint32: return "uint32";
    case DataType::kUint64: return "uint64";
    case DataType::kComplex64: return "complex64";
    case DataType::kComplex128: return "complex128";
    case DataType::kBFloat16: return "bfloat16";
    default: return "undefined";
  }
}

std::string_view DataTypeKServeName(DataType t) {
  switch (t) {
    case DataType::kFloat32: return "FP32";
    case DataType::kUint8: return "UINT8";
    case DataType::kInt8: return "INT8";
    case DataType::kUint16: return "UINT16";
    case DataType::kInt16: return "INT16";
    case DataType::kInt32: return "INT32";
    case DataType::kInt64: return "INT64";
    case DataType::kString: return "BYTES";
    case DataType::kBool: return "BOOL";
    case DataType::kFloat16: return "FP16";
    case DataType::kFloat64: return "FP64";
    case DataType::kUint32: return "UINT32";
    case DataType::kUint64: return "UINT64";
    case DataType::kBFloat16: return "BF16";
    default: return "INVALID";
  }
}

DataType ParseDataType(std::string_view n) {
  for (int i = 1; i <= 16; ++i) {
    auto t = static_cast<DataType>(i);
    if (n == DataTypeKServeName(t) || n == DataTypeName(t)) return t;
  }
  if (n == "TYPE_FP32") return DataType::kFloat32;  // Triton config spelling handled by callers too
  return DataType::kUndefined;
}

bool IsSupportedDataType(DataType t) {
  return DataTypeSize(t) != 0 && t != DataType::kComplex64 && t != DataType::kComplex128;
}

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool SameBytesAsPlain(const Shape& shape, Layout layout) {
  if (layout == Layout::kPlain) return true;
  if (shape.size() < 3) return false;  // blocked and channels-last layouts exist for ranks 3-5
  int64_t spatial = 1;
  for (size_t i = 2; i < shape.size(); ++i) spatial *= shape[i];
  if (layout == Layout::kChannelsLast) return spatial == 1 || shape[1] == 1;
  const int64_t block = layout == Layout::kBlocked16 ? 16 : 8;
  return spatial == 1 && (shape[0] == 1 || shape[1] % block == 0);
}

std::string ShapeToString(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace gpuhive
