#!/usr/bin/python3
"""Small quantized ONNX models, one form of quantized operator each, for quant_ort_check.py:
QDQ Conv (uint8 / int8 activations, with and without bias, padding, stride, a depthwise conv,
a conv followed by Relu, uint8 weights with zero points), QDQ MatMul and Gemm, QLinearConv
(int8 per-channel weights; uint8 weights with a nonzero zero point; int8 activations),
QLinearMatMul (int8 and uint8 weights), the com.microsoft QLinearAdd, QLinearMul and
QLinearGlobalAveragePool, ConvInteger and MatMulInteger (int8 and uint8 weights), and the
DynamicQuantizeLinear -> ConvInteger -> Cast -> Mul -> Add chain that dynamic quantization
writes. Weights and scales come from bench/quant_formats.py's quantizer, output scales from a
numpy reference so outputs span their range (two cases saturate on purpose).

    import make_quant_models; for case in make_quant_models.cases(): case.name, case.model, case.inputs
    /usr/bin/python3 tests/runtime/make_quant_models.py OUT_DIR [--only NAME]
        (writes OUT_DIR/NAME/model.onnx and input_<name>.pb, the layout ort_pb_run.js reads)
"""
import argparse
import collections
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "bench"))
import quant_formats as qf  # noqa: E402
import quant_inputs  # noqa: E402

Case = collections.namedtuple("Case", "name model inputs")
OPSET = 17
U8, S8, I32, F32 = TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32, TensorProto.FLOAT
ELEM = {np.dtype(np.uint8): U8, np.dtype(np.int8): S8, np.dtype(np.float32): F32, np.dtype(np.int32): I32}


def conv_ref(x, w, b=None, strides=(1, 1), pads=(0, 0, 0, 0), group=1):
    """float64 NCHW convolution (pads: top, left, bottom, right)."""
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    m, cg, kh, kw = w.shape
    oh = (xp.shape[2] - kh) // strides[0] + 1
    ow = (xp.shape[3] - kw) // strides[1] + 1
    out = np.zeros((x.shape[0], m, oh, ow))
    mg = m // group
    for g in range(group):
        xs, ws = xp[:, g * cg:(g + 1) * cg], w[g * mg:(g + 1) * mg].astype(np.float64)
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i:i + strides[0] * oh:strides[0], j:j + strides[1] * ow:strides[1]]
                out[:, g * mg:(g + 1) * mg] += np.einsum("nchw,mc->nmhw", patch, ws[:, :, i, j])
    return out if b is None else out + b.reshape(1, -1, 1, 1)


def dequant(q, scale, zp, axis=None):
    shape = [1] * q.ndim
    if axis is not None and np.ndim(scale):
        shape[axis] = -1
    return (q.astype(np.float64) - np.reshape(zp, shape).astype(np.float64)) * np.reshape(scale, shape)


def quant(x, scale, zp):
    info = np.iinfo(zp.dtype)
    return np.clip(np.round(x / scale) + int(zp), info.min, info.max).astype(zp.dtype)


def act_params(x, dtype):
    return qf.activation_params(x.min(), x.max(), dtype)


class Builder:
    """Nodes, initializers and typed graph inputs / outputs of one small model."""

    def __init__(self, name):
        self.name, self.nodes, self.inits, self.ins, self.outs, self.feeds = name, [], [], [], [], {}
        self.ms = False

    def const(self, name, array):
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def input(self, name, array):
        self.ins.append(helper.make_tensor_value_info(name, ELEM[array.dtype], list(array.shape)))
        self.feeds[name] = array
        return name

    def node(self, op, inputs, outputs, **kw):
        if kw.get("domain") == "com.microsoft":
            self.ms = True
        self.nodes.append(helper.make_node(op, inputs, outputs, name=f"{op}_{len(self.nodes)}", **kw))
        return outputs[0]

    def qdq(self, t, scale, zp):
        s, z = self.const(t + "_scale", np.float32(scale)), self.const(t + "_zero_point", zp)
        q = self.node("QuantizeLinear", [t, s, z], [t + "_q"])
        return self.node("DequantizeLinear", [q, s, z], [t + "_dq"])

    def output(self, t, elem, shape):
        self.outs.append(helper.make_tensor_value_info(t, elem, list(shape)))

    def case(self):
        opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid("com.microsoft", 1)] if self.ms else [])
        m = helper.make_model(helper.make_graph(self.nodes, self.name, self.ins, self.outs, self.inits),
                              opset_imports=opsets, producer_name="make_quant_models")
        m.ir_version = 8
        onnx.checker.check_model(m)
        return Case(self.name, m, self.feeds)


def smooth(shape, seed):
    """Structured float input: for 3 channels a quant_inputs image, otherwise sums of waves."""
    n, c, h, w = shape
    if c == 3 and h == w:
        return quant_inputs.images(n, h, seed)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty(shape, np.float32)
    for i in range(n):
        for j in range(c):
            fy, fx, ph = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0, 6.3)
            out[i, j] = rng.uniform(0.5, 2) * np.sin(fy * yy + fx * xx + ph) + rng.uniform(-1, 1)
    return out


def qdq_conv(name, act, bias=True, strides=(1, 1), pads=(1, 1, 1, 1), group=1, relu=False, cin=3, cout=4, seed=1,
             saturate=False, weight=np.int8):
    """Q/DQ input -> Conv(DQ per-channel int8 weight (or uint8 with zero points), DQ int32 bias) ->
    Q/DQ [-> Relu -> Q/DQ]; with `saturate` the output range is half the values' so the
    QuantizeLinear clamps."""
    rng = np.random.default_rng(seed)
    b = Builder(name)
    x = smooth((1, cin, 9, 9), seed)
    w = rng.normal(0, 0.3, (cout, cin // group, 3, 3)).astype(np.float32)
    bf = rng.normal(0, 0.5, cout).astype(np.float32) if bias else None
    xs, xz = act_params(x, act)
    wq, ws, wz, bq, bs = qf.quantize_weight_and_bias(w, bf, xs, weight, 0)
    y = conv_ref(dequant(quant(x, xs, xz), xs, xz), dequant(wq, ws, wz, 0),
                 None if bq is None else bq * bs.astype(np.float64), strides, pads, group)
    xd = b.qdq(b.input("x", x), xs, xz)
    wn = b.node("DequantizeLinear", [b.const("w_q", wq), b.const("w_scale", ws), b.const("w_zero_point", wz)],
                ["w_dq"], axis=0)
    ins = [xd, wn]
    if bias:
        ins.append(b.node("DequantizeLinear", [b.const("b_q", bq), b.const("b_scale", bs),
                                               b.const("b_zero_point", np.zeros(cout, np.int32))], ["b_dq"], axis=0))
    conv = b.node("Conv", ins, ["conv"], kernel_shape=[3, 3], strides=list(strides), pads=list(pads), group=group)
    out = b.qdq(conv, *act_params(y * (0.5 if saturate else 1.0), act))
    if relu:
        r = b.node("Relu", [out], ["relu"])
        out = b.qdq(r, *act_params(np.maximum(y, 0), act))
    b.output(out, F32, y.shape)
    return b.case()


def qdq_matmul(name, gemm=False, seed=2):
    rng = np.random.default_rng(seed)
    b = Builder(name)
    x = smooth((1, 2, 5, 16), seed).reshape(2, 5, 16) if not gemm else smooth((1, 1, 4, 16), seed).reshape(4, 16)
    w = rng.normal(0, 0.3, (8, 16) if gemm else (16, 8)).astype(np.float32)
    bf = rng.normal(0, 0.5, 8).astype(np.float32) if gemm else None
    xs, xz = act_params(x, np.uint8)
    axis = 0 if gemm else 1
    wq, ws, wz, bq, bs = qf.quantize_weight_and_bias(w, bf, xs, np.int8, axis)
    wd = dequant(wq, ws, wz, axis)
    y = dequant(quant(x, xs, xz), xs, xz) @ (wd.T if gemm else wd)
    if gemm:
        y = y + bq * bs.astype(np.float64)
    xd = b.qdq(b.input("x", x), xs, xz)
    wn = b.node("DequantizeLinear", [b.const("w_q", wq), b.const("w_scale", ws), b.const("w_zero_point", wz)],
                ["w_dq"], axis=axis)
    if gemm:
        bn = b.node("DequantizeLinear", [b.const("b_q", bq), b.const("b_scale", bs),
                                         b.const("b_zero_point", np.zeros(8, np.int32))], ["b_dq"], axis=0)
        mm = b.node("Gemm", [xd, wn, bn], ["gemm"], transB=1)
    else:
        mm = b.node("MatMul", [xd, wn], ["matmul"])
    b.output(b.qdq(mm, *act_params(y, np.uint8)), F32, y.shape)
    return b.case()


def qlinear_conv(name, act=np.uint8, weight=np.int8, seed=3, saturate=False):
    """Quantized in, quantized out: uint8 (or int8) x, per-channel int8 or per-tensor uint8 weights
    with a nonzero zero point, int32 bias, stride 2 and padding; `saturate` as in qdq_conv."""
    rng = np.random.default_rng(seed)
    b = Builder(name)
    info = np.iinfo(act)
    xq = rng.integers(info.min, info.max + 1, (1, 4, 11, 11)).astype(act)
    xs, xz = np.float32(0.02), act(3 if act == np.uint8 else -5)
    w = rng.normal(0.1 if weight == np.uint8 else 0, 0.3, (6, 4, 3, 3)).astype(np.float32)
    axis = 0 if weight == np.int8 else None
    bf = rng.normal(0, 0.5, 6).astype(np.float32)
    wq, ws, wz, bq, bs = qf.quantize_weight_and_bias(w, bf, xs, weight, axis)
    y = conv_ref(dequant(xq, xs, xz), dequant(wq, ws, wz, 0), bq * bs.astype(np.float64), (2, 2), (1, 1, 1, 1))
    ys, yz = act_params(y * (0.5 if saturate else 1.0), act)
    ins = [b.input("x", xq), b.const("x_scale", xs), b.const("x_zero_point", xz), b.const("w", wq),
           b.const("w_scale", ws), b.const("w_zero_point", wz), b.const("y_scale", ys), b.const("y_zero_point", yz),
           b.const("bias", bq)]
    y_q = b.node("QLinearConv", ins, ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    b.output(y_q, ELEM[np.dtype(act)], y.shape)
    return b.case()


def qlinear_matmul(name, weight=np.int8, seed=4):
    """uint8 a (batched, 3-D) times per-column int8 b, or per-tensor uint8 b with a zero point."""
    rng = np.random.default_rng(seed)
    b = Builder(name)
    aq = rng.integers(0, 256, (2, 3, 16)).astype(np.uint8)
    as_, az = np.float32(0.05), np.uint8(120)
    axis = 1 if weight == np.int8 else None
    wq, ws, wz = qf.quantize_weight(rng.normal(0.1, 0.3, (16, 8)).astype(np.float32), weight, axis)
    y = dequant(aq, as_, az) @ dequant(wq, ws, wz, 1)
    ys, yz = act_params(y, np.uint8)
    ins = [b.input("a", aq), b.const("a_scale", as_), b.const("a_zero_point", az), b.const("b", wq),
           b.const("b_scale", ws), b.const("b_zero_point", wz), b.const("y_scale", ys), b.const("y_zero_point", yz)]
    b.output(b.node("QLinearMatMul", ins, ["y"]), U8, y.shape)
    return b.case()


def qlinear_binary(name, op, seed=5):
    """com.microsoft QLinearAdd / QLinearMul with a broadcast [1, C, 1, 1] second input."""
    rng = np.random.default_rng(seed)
    b = Builder(name)
    aq = rng.integers(0, 256, (1, 4, 5, 5)).astype(np.uint8)
    bq = rng.integers(0, 256, (1, 4, 1, 1)).astype(np.uint8)
    a_s, a_z, b_s, b_z = np.float32(0.03), np.uint8(100), np.float32(0.011), np.uint8(140)
    af, bf = dequant(aq, a_s, a_z), dequant(bq, b_s, b_z)
    ys, yz = act_params(af + bf if op == "Add" else af * bf, np.uint8)
    ins = [b.input("a", aq), b.const("a_scale", a_s), b.const("a_zero_point", a_z), b.input("b", bq),
           b.const("b_scale", b_s), b.const("b_zero_point", b_z), b.const("c_scale", ys), b.const("c_zero_point", yz)]
    b.output(b.node("QLinear" + op, ins, ["c"], domain="com.microsoft"), U8, aq.shape)
    return b.case()


def qlinear_gap(name, seed=6):
    rng = np.random.default_rng(seed)
    b = Builder(name)
    xq = rng.integers(0, 256, (2, 8, 7, 7)).astype(np.uint8)
    ins = [b.input("x", xq), b.const("x_scale", np.float32(0.04)), b.const("x_zero_point", np.uint8(128)),
           b.const("y_scale", np.float32(0.01)), b.const("y_zero_point", np.uint8(128))]
    b.output(b.node("QLinearGlobalAveragePool", ins, ["y"], domain="com.microsoft", channels_last=0), U8, (2, 8, 1, 1))
    return b.case()


def conv_integer(name, weight, seed=7):
    """uint8 x with a zero point; int8 weights (no zero point) or uint8 weights with one; exact int32 out."""
    rng = np.random.default_rng(seed)
    b = Builder(name)
    xq = rng.integers(0, 256, (1, 3, 8, 8)).astype(np.uint8)
    info = np.iinfo(weight)
    wq = rng.integers(info.min, info.max + 1, (5, 3, 3, 3)).astype(weight)
    ins = [b.input("x", xq), b.const("w", wq), b.const("x_zero_point", np.uint8(7))]
    if weight == np.uint8:
        ins.append(b.const("w_zero_point", np.uint8(131)))
    y = b.node("ConvInteger", ins, ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 2])
    b.output(y, I32, (1, 5, 8, 4))
    return b.case()


def matmul_integer(name, weight=np.int8, seed=8):
    """uint8 a with a zero point times int8 b (zero point 0) or uint8 b with a zero point."""
    rng = np.random.default_rng(seed)
    b = Builder(name)
    aq = rng.integers(0, 256, (2, 3, 16)).astype(np.uint8)
    info = np.iinfo(weight)
    wq = rng.integers(info.min, info.max + 1, (16, 8)).astype(weight)
    ins = [b.input("a", aq), b.const("b", wq), b.const("a_zero_point", np.uint8(129)),
           b.const("b_zero_point", weight(0 if weight == np.int8 else 77))]
    b.output(b.node("MatMulInteger", ins, ["y"]), I32, (2, 3, 8))
    return b.case()


def dynamic_conv(name, seed=9):
    """The dynamic-quantization chain on a float input: DynamicQuantizeLinear -> ConvInteger (int8
    per-channel weights) -> Cast -> Mul(x_scale * w_scale) -> Add(bias)."""
    rng = np.random.default_rng(seed)
    b = Builder(name)
    x = smooth((1, 3, 10, 10), seed)
    w = rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32)
    wq, ws, _ = qf.quantize_weight(w, np.int8, 0)
    b.node("DynamicQuantizeLinear", [b.input("x", x)], ["xq", "x_scale", "x_zero_point"])
    b.node("ConvInteger", ["xq", b.const("w", wq), "x_zero_point"], ["acc"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    b.node("Cast", ["acc"], ["acc_f"], to=F32)
    b.node("Mul", ["x_scale", b.const("w_scale", ws.reshape(4, 1, 1))], ["scales"])
    b.node("Mul", ["acc_f", "scales"], ["scaled"])
    b.node("Add", ["scaled", b.const("bias", rng.normal(0, 0.5, (4, 1, 1)).astype(np.float32))], ["y"])
    b.output("y", F32, (1, 4, 10, 10))
    return b.case()


def cases():
    """Every synthetic case, deterministic."""
    return [
        qdq_conv("qdq_conv_u8_bias", np.uint8),
        qdq_conv("qdq_conv_s8_bias", np.int8),
        qdq_conv("qdq_conv_u8_nobias_stride2_saturating", np.uint8, bias=False, strides=(2, 2), pads=(0, 1, 1, 0),
                 saturate=True),
        qdq_conv("qdq_conv_s8_nobias_stride2", np.int8, bias=False, strides=(2, 2)),
        qdq_conv("qdq_conv_depthwise", np.uint8, strides=(2, 2), group=6, cin=6, cout=6),
        qdq_conv("qdq_conv_relu", np.uint8, relu=True),
        qdq_conv("qdq_conv_u8_u8w_zp", np.uint8, weight=np.uint8),
        qdq_matmul("qdq_matmul"),
        qdq_matmul("qdq_gemm", gemm=True),
        qlinear_conv("qlinearconv_u8_s8w", np.uint8, np.int8),
        qlinear_conv("qlinearconv_u8_u8w_zp", np.uint8, np.uint8),
        qlinear_conv("qlinearconv_s8_s8w_saturating", np.int8, np.int8, saturate=True),
        qlinear_matmul("qlinearmatmul_s8w"),
        qlinear_matmul("qlinearmatmul_u8w_zp", np.uint8),
        qlinear_binary("qlinearadd", "Add"),
        qlinear_binary("qlinearmul", "Mul"),
        qlinear_gap("qlinearglobalaveragepool"),
        conv_integer("convinteger_s8w", np.int8),
        conv_integer("convinteger_u8w", np.uint8),
        matmul_integer("matmulinteger_s8w"),
        matmul_integer("matmulinteger_u8w_zp", np.uint8),
        dynamic_conv("dynamic_conv_chain"),
    ]


def write_case(case, out_dir):
    """Writes out_dir/model.onnx and out_dir/input_<name>.pb."""
    os.makedirs(out_dir, exist_ok=True)
    onnx.save(case.model, os.path.join(out_dir, "model.onnx"))
    for name, a in case.inputs.items():
        with open(os.path.join(out_dir, f"input_{name}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(a, name).SerializeToString())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    for case in cases():
        if not args.only or case.name == args.only:
            write_case(case, os.path.join(args.out_dir, case.name))
            print(os.path.join(args.out_dir, case.name))


if __name__ == "__main__":
    main()
