// What the quantized convolution (qconv.cc) and matrix multiplication (qmatmul.cc) kernels share:
// the QLinear* input convention, reading scales / zero points / bias at Prepare into oneDNN's
// terms, weights minus their zero point, the choice between oneDNN's int8 kernels and the exact
// "dequantized" float32 path, and the element conversions of that path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/onednn/common.h"

namespace gpuhive::cpu::onednn {

// Input positions of a quantized op; -1: the form has no such input.
struct QInputs {
  int x = 0, x_scale = 1, x_zero = 2, w = 3, w_scale = 4, w_zero = 5, y_scale = 6, y_zero = 7, bias = 8;
};
inline constexpr QInputs kQLinearInputs{};                            // QLinearConv / QLinearMatMul / gpuhive.Q*
inline constexpr QInputs kIntegerInputs{0, -1, 2, 1, -1, 3, -1, -1, -1};  // ConvInteger / MatMulInteger

bool IsInt8(DataType t);
memory::data_type OnednnType(DataType t);  // uint8/int8/int32; float32 otherwise
// A constant's elements as int32 (uint8 / int8 / int32 data).
std::vector<int32_t> IntsOf(const Tensor& t);
// A one-element uint8/int8 zero point read at run time.
int32_t RunTimeZeroPoint(const TensorView& z);

// Scales, zero points and bias of a quantized op with `m` output channels, read at Prepare.
struct QuantSetup {
  DataType x_type = DataType::kUint8, w_type = DataType::kInt8, out_type = DataType::kFloat32;
  // gpuhive.QConv only: x arrives as float32 and is quantized as it is reordered for the primitive
  // (QuantizeLinear folded in: round(x / x_scale) + x_zero, saturated); x_type is then the zero
  // point's type (uint8 without one).
  bool x_float = false;
  float x_scale = 1.f;
  std::vector<float> acc_to_float;  // per channel: x_scale * w_scale[c] (1 without scales)
  std::vector<float> out_scales;    // oneDNN's output scales (acc_to_float, / y_scale when quantized)
  bool per_channel = false;         // out_scales differ per channel
  float y_scale = 1.f;
  int32_t y_zero = 0;
  bool runtime_x_zero = false;  // x's zero point is an input read in Run
  int32_t x_zero = 0;
  std::vector<int32_t> w_zero = {0};  // one, or one per channel
  std::vector<float> bias;            // in the accumulator's domain (oneDNN adds it before the scales)
  bool relu = false;
  bool has_scales() const { return !acc_to_float.empty(); }
  bool plain_int8_weights() const;  // int8 W with zero point 0: packed as it is
};
// gpuhive_form: the gpuhive.Q* ops (y_scale optional: float32 output; float32 B accepted; "relu";
// float32 x with constant scale and zero point, see x_float).
StatusOr<QuantSetup> ReadQuantSetup(const PrepareContext& ctx, const QInputs& in, bool gpuhive_form, int64_t m);

// W minus its zero point (-255..255); channel_of(i) is the output channel of element i.
template <typename ChannelOf>
std::vector<int16_t> ShiftWeights(const std::vector<int32_t>& raw, const std::vector<int32_t>& w_zero,
                                  ChannelOf channel_of) {
  std::vector<int16_t> shifted(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    shifted[i] = static_cast<int16_t>(raw[i] - w_zero[w_zero.size() == 1 ? 0 : static_cast<size_t>(channel_of(i))]);
  }
  return shifted;
}
// Whether oneDNN's int8 kernels would be inexact for these weights: beyond int8, or beyond 7 bits
// without an int8 dot product (HasInt8DotProduct).
bool NeedsDequantizedPath(const std::vector<int16_t>& w16);

// The dequantized path: x - zero point as float32, and float32 results quantized as
// QuantizeLinear does (uint8/int8 with y_scale and y_zero; int32 rounded; float32 left as is).
void DequantizeInput(const TensorView& x, int32_t zero, float* out);
void QuantizeOutput(const float* v, int64_t n, const QuantSetup& q, const TensorView& out);

}  // namespace gpuhive::cpu::onednn
