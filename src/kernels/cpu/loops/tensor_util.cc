#include "kernels/cpu/loops/tensor_util.h"

#include <limits>

namespace gpuhive::cpu::tensor {

double ElementAsDouble(const void* data, DataType dtype, int64_t i) {
  switch (dtype) {
    case DataType::kFloat32: return static_cast<const float*>(data)[i];
    case DataType::kFloat64: return static_cast<const double*>(data)[i];
    case DataType::kFloat16: return HalfToFloat(static_cast<const uint16_t*>(data)[i]);
    case DataType::kBFloat16: return BFloat16ToFloat(static_cast<const uint16_t*>(data)[i]);
    case DataType::kInt8: return static_cast<const int8_t*>(data)[i];
    case DataType::kUint8: return static_cast<const uint8_t*>(data)[i];
    case DataType::kBool: return static_cast<const uint8_t*>(data)[i] ? 1.0 : 0.0;
    case DataType::kInt16: return static_cast<const int16_t*>(data)[i];
    case DataType::kUint16: return static_cast<const uint16_t*>(data)[i];
    case DataType::kInt32: return static_cast<const int32_t*>(data)[i];
    case DataType::kUint32: return static_cast<const uint32_t*>(data)[i];
    case DataType::kInt64: return static_cast<double>(static_cast<const int64_t*>(data)[i]);
    case DataType::kUint64: return static_cast<double>(static_cast<const uint64_t*>(data)[i]);
    default: return 0.0;
  }
}

namespace {
template <typename T>
T Saturate(double v) {
  if (std::isnan(v)) return T{0};
  v = std::nearbyint(v);
  if (v <= static_cast<double>(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
  if (v >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
  return static_cast<T>(v);
}
}  // namespace

void StoreFromDouble(void* data, DataType dtype, int64_t i, double v) {
  switch (dtype) {
    case DataType::kFloat32: static_cast<float*>(data)[i] = static_cast<float>(v); break;
    case DataType::kFloat64: static_cast<double*>(data)[i] = v; break;
    case DataType::kFloat16: static_cast<uint16_t*>(data)[i] = FloatToHalf(static_cast<float>(v)); break;
    case DataType::kBFloat16:
      static_cast<uint16_t*>(data)[i] = FloatToBFloat16(static_cast<float>(v));
      break;
    case DataType::kInt8: static_cast<int8_t*>(data)[i] = Saturate<int8_t>(v); break;
    case DataType::kUint8: static_cast<uint8_t*>(data)[i] = Saturate<uint8_t>(v); break;
    case DataType::kBool: static_cast<uint8_t*>(data)[i] = v != 0.0; break;
    case DataType::kInt16: static_cast<int16_t*>(data)[i] = Saturate<int16_t>(v); break;
    case DataType::kUint16: static_cast<uint16_t*>(data)[i] = Saturate<uint16_t>(v); break;
    case DataType::kInt32: static_cast<int32_t*>(data)[i] = Saturate<int32_t>(v); break;
    case DataType::kUint32: static_cast<uint32_t*>(data)[i] = Saturate<uint32_t>(v); break;
    case DataType::kInt64: static_cast<int64_t*>(data)[i] = Saturate<int64_t>(v); break;
    case DataType::kUint64: static_cast<uint64_t*>(data)[i] = Saturate<uint64_t>(v); break;
    default: break;
  }
}

StatusOr<std::vector<int64_t>> ReadInts(const TensorView& t, const char* what) {
  const int64_t n = t.num_elements();
  std::vector<int64_t> v(static_cast<size_t>(n));
  if (t.dtype == DataType::kInt64) {
    if (n) std::memcpy(v.data(), t.data, static_cast<size_t>(n) * 8);
  } else if (t.dtype == DataType::kInt32) {
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<const int32_t*>(t.data)[i];
  } else {
    return InvalidArgument("{} must be int32 or int64, got {}", what, DataTypeName(t.dtype));
  }
  return v;
}

StatusOr<std::vector<float>> ReadFloats(const TensorView& t, const char* what) {
  if (t.dtype != DataType::kFloat32 && t.dtype != DataType::kFloat16 &&
      t.dtype != DataType::kFloat64 && t.dtype != DataType::kBFloat16) {
    return InvalidArgument("{} must be a floating point tensor, got {}", what, DataTypeName(t.dtype));
  }
  std::vector<float> v(static_cast<size_t>(t.num_elements()));
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = static_cast<float>(ElementAsDouble(t.data, t.dtype, static_cast<int64_t>(i)));
  }
  return v;
}

StatusOr<int64_t> NormalizeAxis(int64_t axis, int64_t rank, const ir::Node& node) {
  if (axis < -rank || axis >= rank) {
    return InvalidArgument("{}: axis {} is out of range for rank {}", node.Describe(), axis, rank);
  }
  return axis < 0 ? axis + rank : axis;
}

Shape Strides(const Shape& shape) {
  Shape s(shape.size());
  int64_t acc = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

namespace {

template <typename T>
void StridedCopyTyped(const T* in, int64_t base, const Shape& shape, const Shape& strides, T* out,
                      int threads) {
  const size_t r = shape.size();
  if (r == 0) {
    out[0] = in[base];
    return;
  }
  const int64_t inner = shape[r - 1], inner_stride = strides[r - 1];
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < r; ++d) rows *= shape[d];
  if (inner == 0 || rows == 0) return;
  ParallelFor(threads, rows, inner, [&](int64_t b, int64_t e) {
    std::vector<int64_t> idx(r, 0);
    int64_t rem = b, off = base;
    for (size_t d = r - 1; d-- > 0;) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
      off += idx[d] * strides[d];
    }
    for (int64_t row = b; row < e; ++row) {
      T* o = out + row * inner;
      const T* src = in + off;
      if (inner_stride == 1) {
        std::memcpy(o, src, static_cast<size_t>(inner) * sizeof(T));
      } else if (inner_stride == 0) {
        std::fill(o, o + inner, *src);
      } else {
        for (int64_t i = 0; i < inner; ++i) o[i] = src[i * inner_stride];
      }
      for (size_t d = r - 1; d-- > 0;) {  // advance the row counter
        off += strides[d];
        if (++idx[d] < shape[d]) break;
        off -= idx[d] * strides[d];
        idx[d] = 0;
      }
    }
  });
}

// Batched 2-D transpose: output dim `j` is contiguous in the input (stride 1) and the output's
// innermost dim has input stride `ls`. Copies in square tiles so both sides stay in cache.
template <typename T>
void TiledTranspose(const T* in, const Shape& shape, const Shape& in_strides, size_t j, T* out,
                    int threads) {
  constexpr int64_t kTile = 32;
  const size_t r = shape.size();
  const Shape out_strides = Strides(shape);
  const int64_t na = shape[j], nb = shape[r - 1], ls = in_strides[r - 1], oj = out_strides[j];
  std::vector<size_t> batch_dims;
  int64_t batches = 1;
  for (size_t d = 0; d + 1 < r; ++d) {
    if (d != j) {
      batch_dims.push_back(d);
      batches *= shape[d];
    }
  }
  const int64_t tiles_a = (na + kTile - 1) / kTile;
  ParallelFor(threads, batches * tiles_a, kTile * nb, [&](int64_t b, int64_t e) {
    for (int64_t item = b; item < e; ++item) {
      int64_t batch = item / tiles_a, ta = item % tiles_a;
      int64_t ioff = 0, ooff = 0, rem = batch;
      for (size_t k = batch_dims.size(); k-- > 0;) {
        size_t d = batch_dims[k];
        int64_t i = rem % shape[d];
        rem /= shape[d];
        ioff += i * in_strides[d];
        ooff += i * out_strides[d];
      }
      const int64_t a0 = ta * kTile, a1 = std::min(na, a0 + kTile);
      for (int64_t b0 = 0; b0 < nb; b0 += kTile) {
        const int64_t b1 = std::min(nb, b0 + kTile);
        for (int64_t a = a0; a < a1; ++a) {
          T* o = out + ooff + a * oj;
          const T* s = in + ioff + a;
          for (int64_t bb = b0; bb < b1; ++bb) o[bb] = s[bb * ls];
        }
      }
    }
  });
}

}  // namespace

void StridedCopy(const void* in, int64_t base, const Shape& out_shape, const Shape& in_strides,
                 void* out, size_t elem_size, int threads) {
  DispatchBySize(elem_size, [&](auto tag) {
    using T = decltype(tag);
    StridedCopyTyped<T>(static_cast<const T*>(in), base, out_shape, in_strides, static_cast<T*>(out),
                        threads);
  });
}

void TransposeCopy(const void* in, const Shape& in_shape, const std::vector<int64_t>& perm,
                   void* out, size_t elem_size, int threads) {
  const Shape in_strides = Strides(in_shape);
  // Output dims with their input strides; size-1 dims dropped, dims that stay adjacent merged.
  Shape shape, strides;
  for (size_t i = 0; i < perm.size(); ++i) {
    int64_t n = in_shape[perm[i]], s = in_strides[perm[i]];
    if (n == 0) return;
    if (n == 1) continue;
    if (!shape.empty() && strides.back() == s * n) {
      shape.back() *= n;
      strides.back() = s;
    } else {
      shape.push_back(n);
      strides.push_back(s);
    }
  }
  if (shape.empty() || strides.back() == 1) {
    StridedCopy(in, 0, shape, strides, out, elem_size, threads);
    return;
  }
  size_t j = 0;
  while (j < strides.size() && strides[j] != 1) ++j;
  DispatchBySize(elem_size, [&](auto tag) {
    using T = decltype(tag);
    TiledTranspose<T>(static_cast<const T*>(in), shape, strides, j, static_cast<T*>(out), threads);
  });
}

}  // namespace gpuhive::cpu::tensor
