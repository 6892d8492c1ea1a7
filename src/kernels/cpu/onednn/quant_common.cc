#include "kernels/cpu/onednn/quant_common.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace gpuhive::cpu::onednn {
namespace {

bool Has(const PrepareContext& ctx, int i) {
  return i >= 0 && static_cast<size_t>(i) < ctx.num_inputs() && ctx.has_input(static_cast<size_t>(i));
}

// Constant input i with one value or (m > 1) one per output channel.
StatusOr<const Tensor*> SmallConstant(const PrepareContext& ctx, int i, const char* what, int64_t m) {
  const std::string desc = ctx.node().Describe();
  const Tensor* t = ctx.input_value(static_cast<size_t>(i));
  if (t == nullptr || t->data() == nullptr) {
    return Unimplemented("{}: {} must be a constant (it becomes part of the int8 primitive)", desc, what);
  }
  const Shape& s = t->shape();
  const bool scalar = t->num_elements() == 1 && s.size() <= 1;
  const bool per_channel = m > 1 && s.size() == 1 && s[0] == m;
  if (!scalar && !per_channel) {
    return InvalidArgument("{}: {} has shape {}; expected one value{}", desc, what, ShapeToString(s),
                           m > 1 ? fmt::format(" or {} (one per output channel)", m) : std::string());
  }
  return t;
}

template <typename Q>
void Requantize(const float* v, int64_t n, float scale, int32_t zero, Q* out) {
  constexpr double lo = std::numeric_limits<Q>::lowest(), hi = std::numeric_limits<Q>::max();
  for (int64_t i = 0; i < n; ++i) {
    out[i] = static_cast<Q>(std::clamp(static_cast<double>(std::nearbyint(v[i] / scale)) + zero, lo, hi));
  }
}

}  // namespace

bool IsInt8(DataType t) { return t == DataType::kUint8 || t == DataType::kInt8; }

memory::data_type OnednnType(DataType t) {
  switch (t) {
    case DataType::kUint8: return memory::data_type::u8;
    case DataType::kInt8: return memory::data_type::s8;
    case DataType::kInt32: return memory::data_type::s32;
    default: return memory::data_type::f32;
  }
}

std::vector<int32_t> IntsOf(const Tensor& t) {
  std::vector<int32_t> v(static_cast<size_t>(t.num_elements()));
  for (size_t i = 0; i < v.size(); ++i) {
    switch (t.dtype()) {
      case DataType::kUint8: v[i] = t.as<uint8_t>()[i]; break;
      case DataType::kInt8: v[i] = t.as<int8_t>()[i]; break;
      default: v[i] = t.as<int32_t>()[i]; break;
    }
  }
  return v;
}

int32_t RunTimeZeroPoint(const TensorView& z) {
  return z.dtype == DataType::kUint8 ? *z.as<uint8_t>() : *z.as<int8_t>();
}

bool QuantSetup::plain_int8_weights() const {
  return w_type == DataType::kInt8 && std::all_of(w_zero.begin(), w_zero.end(), [](int32_t z) { return z == 0; });
}

StatusOr<QuantSetup> ReadQuantSetup(const PrepareContext& ctx, const QInputs& in, bool gpuhive_form, int64_t m) {
  const std::string desc = ctx.node().Describe();
  QuantSetup q;
  q.x_type = ctx.input_dtype(in.x);
  q.w_type = ctx.input_dtype(in.w);
  if (gpuhive_form && q.x_type == DataType::kFloat32 && in.x_scale >= 0) {
    q.x_float = true;
    q.x_type = Has(ctx, in.x_zero) ? ctx.input_dtype(in.x_zero) : DataType::kUint8;
  }
  if (!IsInt8(q.x_type) || !IsInt8(q.w_type)) {
    return InvalidArgument("{}: x and W must be uint8 or int8 (x is {}, W is {})", desc, DataTypeName(q.x_type),
                           DataTypeName(q.w_type));
  }
  // Scales: x_scale * w_scale[c] takes the accumulator to the float domain, 1 / y_scale on to y's.
  if (in.x_scale >= 0) {
    for (int i : {in.x_scale, in.w_scale}) {
      if (!Has(ctx, i)) return InvalidArgument("{}: input {} (a scale) is missing", desc, i);
      if (ctx.input_dtype(i) != DataType::kFloat32) return InvalidArgument("{}: scales must be float32", desc);
    }
    ASSIGN_OR_RETURN(const Tensor* xs, SmallConstant(ctx, in.x_scale, "x_scale", 1));
    ASSIGN_OR_RETURN(const Tensor* ws, SmallConstant(ctx, in.w_scale, "w_scale", m));
    q.x_scale = xs->as<float>()[0];
    if (q.x_float && (!(q.x_scale > 0.f) || !std::isfinite(q.x_scale))) {
      return InvalidArgument("{}: x_scale must be positive", desc);
    }
    q.per_channel = ws->num_elements() > 1;
    q.acc_to_float.resize(static_cast<size_t>(m));
    for (int64_t c = 0; c < m; ++c) q.acc_to_float[c] = xs->as<float>()[0] * ws->as<float>()[q.per_channel ? c : 0];
    q.out_type = DataType::kFloat32;
  } else {
    q.out_type = DataType::kInt32;
  }
  q.out_scales = q.acc_to_float;
  if (Has(ctx, in.y_scale)) {
    ASSIGN_OR_RETURN(const Tensor* ys, SmallConstant(ctx, in.y_scale, "y_scale", 1));
    q.y_scale = ys->as<float>()[0];
    if (!(q.y_scale > 0.f) || !std::isfinite(q.y_scale)) return InvalidArgument("{}: y_scale must be positive", desc);
    for (float& s : q.out_scales) s /= q.y_scale;
    q.out_type = DataType::kUint8;
    if (Has(ctx, in.y_zero)) {
      ASSIGN_OR_RETURN(const Tensor* yz, SmallConstant(ctx, in.y_zero, "y_zero_point", 1));
      if (!IsInt8(yz->dtype())) return InvalidArgument("{}: y_zero_point must be uint8 or int8", desc);
      q.out_type = yz->dtype();
      q.y_zero = IntsOf(*yz)[0];
    }
  } else if (!gpuhive_form && in.y_scale >= 0) {
    return InvalidArgument("{}: y_scale is missing", desc);
  }
  if (!gpuhive_form && in.y_scale >= 0 && !Has(ctx, in.y_zero)) {
    return InvalidArgument("{}: y_zero_point is missing", desc);
  }
  // Zero points. x's: a constant, or read in Run; W's: subtracted while packing.
  if (Has(ctx, in.x_zero)) {
    if (ctx.input_dtype(in.x_zero) != q.x_type) {
      return InvalidArgument("{}: x_zero_point is {} but x is {}", desc, DataTypeName(ctx.input_dtype(in.x_zero)),
                             DataTypeName(q.x_type));
    }
    if (NumElements(ctx.input_shape(in.x_zero)) != 1) return InvalidArgument("{}: x_zero_point must be one value", desc);
    const Tensor* xz = ctx.input_value(in.x_zero);
    q.runtime_x_zero = xz == nullptr || xz->data() == nullptr;
    if (!q.runtime_x_zero) q.x_zero = IntsOf(*xz)[0];
    if (q.x_float && q.runtime_x_zero) {
      return Unimplemented("{}: a float32 x needs a constant zero point (it is quantized as it is reordered)", desc);
    }
  }
  if (Has(ctx, in.w_zero)) {
    ASSIGN_OR_RETURN(const Tensor* wz, SmallConstant(ctx, in.w_zero, "w_zero_point", m));
    if (wz->dtype() != q.w_type) return InvalidArgument("{}: w_zero_point and W differ in type", desc);
    q.w_zero = IntsOf(*wz);
  }
  if (Has(ctx, in.bias)) {
    const Tensor* b = ctx.input_value(in.bias);
    if (b == nullptr || b->data() == nullptr) return Unimplemented("{}: B must be a constant", desc);
    if (b->num_elements() != m) return InvalidArgument("{}: B has {} elements, expected {}", desc, b->num_elements(), m);
    q.bias.resize(static_cast<size_t>(m));
    if (b->dtype() == DataType::kInt32) {
      for (int64_t c = 0; c < m; ++c) q.bias[c] = static_cast<float>(b->as<int32_t>()[c]);
    } else if (b->dtype() == DataType::kFloat32 && gpuhive_form && q.has_scales()) {
      for (int64_t c = 0; c < m; ++c) q.bias[c] = b->as<float>()[c] / q.acc_to_float[c];
    } else {
      return InvalidArgument("{}: B must be int32{}", desc, gpuhive_form ? " or float32" : "");
    }
  }
  ASSIGN_OR_RETURN(int64_t relu, ctx.node().GetInt("relu", 0));
  q.relu = relu != 0;
  return q;
}

bool NeedsDequantizedPath(const std::vector<int16_t>& w16) {
  const int lo = HasInt8DotProduct() ? -128 : -64, hi = HasInt8DotProduct() ? 127 : 63;
  return std::any_of(w16.begin(), w16.end(), [&](int16_t v) { return v < lo || v > hi; });
}

void DequantizeInput(const TensorView& x, int32_t zero, float* out) {
  const int64_t n = x.num_elements();
  if (x.dtype == DataType::kUint8) {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(x.as<uint8_t>()[i] - zero);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(x.as<int8_t>()[i] - zero);
  }
}

void QuantizeOutput(const float* v, int64_t n, const QuantSetup& q, const TensorView& out) {
  switch (q.out_type) {
    case DataType::kUint8: Requantize(v, n, q.y_scale, q.y_zero, out.as<uint8_t>()); break;
    case DataType::kInt8: Requantize(v, n, q.y_scale, q.y_zero, out.as<int8_t>()); break;
    case DataType::kInt32: Requantize(v, n, 1.f, 0, out.as<int32_t>()); break;
    default: break;
  }
}

}  // namespace gpuhive::cpu::onednn
