"""The graph rewriters of bench/quantize_onnx.py: which tensors a static model quantizes
(plan_static), and the QDQ, QOperator and dynamic forms written from that plan.

Naming follows ONNX Runtime's quantizer where it has one (<t>_quantized, <t>_scale,
<t>_zero_point, <t>_DequantizeLinear_Output), so the files read like the ones users bring.
"""
import collections

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Graph:
    """Name-level view of a graph: constants (initializers and Constant nodes), producers,
    consumers, graph inputs and outputs. Rewriters build new node lists from it."""

    def __init__(self, model):
        self.model = model
        g = model.graph
        self.initializers = {t.name: t for t in g.initializer}
        self.constants = {}
        for n in g.node:
            if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
                self.constants[n.output[0]] = n.attribute[0].t
        self.producer = {o: n for n in g.node for o in n.output}
        self.consumers = collections.defaultdict(list)
        for n in g.node:
            for i in n.input:
                if i:
                    self.consumers[i].append(n)
        self.inputs = [vi.name for vi in g.input if vi.name not in self.initializers]
        self.outputs = [vi.name for vi in g.output]

    def const(self, name):
        """The value of a constant tensor as a numpy array, or None for an activation."""
        t = self.initializers[name] if name in self.initializers else self.constants.get(name)
        return None if t is None else numpy_helper.to_array(t)

    def is_const(self, name):
        return name in self.initializers or name in self.constants


def attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def activation_params(lo, hi, dtype):
    """(scale, zero point) for an activation range: uint8 asymmetric over [min(lo, 0), max(hi, 0)];
    int8 symmetric over [-|max|, |max|] with the symmetric range -127..127 and zero point 0."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if dtype == np.int8:
        scale = max(abs(lo), abs(hi)) / 127.0
        return np.float32(scale if scale > 0 else 1.0), np.int8(0)
    scale = (hi - lo) / 255.0
    if scale <= 0:
        return np.float32(1.0), np.uint8(0)
    scale = np.float32(scale)
    return scale, np.uint8(np.clip(np.round(-lo / float(scale)), 0, 255))


BIAS_LIMIT = 2 ** 30  # int32 bias magnitude, with headroom for the accumulator it joins


def quantize_weight(w, dtype, axis, min_scale=None):
    """(quantized, scale, zero point): int8 symmetric (-127..127, zero point 0) or uint8 asymmetric,
    per channel along `axis` (scale and zero point 1-D) or per tensor when axis is None (scalars).
    Scales are raised to min_scale where given (see quantize_weight_and_bias)."""
    w = w.astype(np.float32)
    if axis is None:
        lo, hi = np.minimum(w.min(), 0), np.maximum(w.max(), 0)
        shape = ()
    else:
        red = tuple(i for i in range(w.ndim) if i != axis)
        lo, hi = np.minimum(w.min(axis=red), 0), np.maximum(w.max(axis=red), 0)
        shape = [1] * w.ndim
        shape[axis] = -1
    if dtype == np.int8:
        scale = np.maximum(np.abs(lo), np.abs(hi)) / 127.0
    else:
        scale = (hi - lo) / 255.0
    if min_scale is not None:
        scale = np.maximum(scale, min_scale)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    if dtype == np.int8:
        zp = np.zeros_like(scale, np.int8)
        q = np.clip(np.round(w / np.reshape(scale, shape)), -127, 127).astype(np.int8)
    else:
        zp = np.clip(np.round(-lo / scale), 0, 255).astype(np.uint8)
        q = np.clip(np.round(w / np.reshape(scale, shape)) + np.reshape(zp, shape).astype(np.float32), 0, 255)
        q = q.astype(np.uint8)
    return q, np.asarray(scale, np.float32), np.asarray(zp)


def quantize_weight_and_bias(w, b, input_scale, dtype, axis):
    """(w quantized, w scale, w zero point, bias int32 or None, bias scale or None). The bias has
    scale input_scale * w_scale (per channel) and zero point 0: the scale of the integer
    accumulator it joins. Where that scale is so small that the bias would not fit in int32 (tiny
    activations, as in randomly initialised deep nets), the channel's weight scale is raised until
    it fits, as ONNX Runtime's quantizer does: the weights' contribution there is negligible
    next to the bias anyway."""
    min_scale = None
    if b is not None:
        need = np.abs(b.astype(np.float64)) / (float(input_scale) * BIAS_LIMIT)
        min_scale = need if axis is not None else need.max()
    q, ws, wz = quantize_weight(w, dtype, axis, min_scale)
    if b is None:
        return q, ws, wz, None, None
    bs = (np.float32(input_scale) * np.broadcast_to(ws, b.shape)).astype(np.float32)
    bs = np.where(bs > 0, bs, np.float32(1.0)).astype(np.float32)
    bq = np.clip(np.round(b.astype(np.float64) / bs), -BIAS_LIMIT, BIAS_LIMIT).astype(np.int32)
    return q, ws, wz, bq, bs


# Ops whose output gets its own range (compute ops), by format.
WEIGHTED = {"Conv", "MatMul", "Gemm"}
STATIC_OPS = {
    "qdq": {"Conv", "MatMul", "Gemm", "Add", "Mul", "GlobalAveragePool", "AveragePool", "Concat"},
    "qoperator": {"Conv", "MatMul", "Add", "Mul", "GlobalAveragePool"},
}
# Ops that move quantized values without changing them: their output shares the input's
# parameters and runs on the quantized tensor itself in QOperator form.
PASS_THROUGH = {"qdq": {"MaxPool"}, "qoperator": {"MaxPool", "Flatten"}}
# Relu after these is folded into the producer's output range (uint8 only, as ORT does).
RELU_FUSABLE = {"Conv", "MatMul", "Gemm", "Add"}
QLINEAR_BINARY = {"Add": "QLinearAdd", "Mul": "QLinearMul"}


class StaticPlan:
    """What a static (qdq / qoperator) model quantizes, by tensor name after Relu folding:
    kind[output] = op type of each quantized node; calibrated = tensors with their own range;
    shared[t] = the tensor whose parameters t reuses; fusions = (producer output, Relu output)."""

    def __init__(self):
        self.kind, self.shared, self.fusions = {}, {}, []
        self.calibrated = []

    @property
    def tensors(self):
        return list(self.calibrated) + list(self.shared)

    def apply_fusions(self, model):
        renames = dict(self.fusions)
        relus = set(renames.values())
        keep = []
        for n in model.graph.node:
            if n.op_type == "Relu" and n.output[0] in relus:
                continue
            if n.output and n.output[0] in renames:
                n.output[0] = renames[n.output[0]]
            keep.append(n)
        del model.graph.node[:]
        model.graph.node.extend(keep)


def _weight_input(g, n):
    """Index of the constant weight input of a Conv / MatMul / Gemm, or None."""
    if n.op_type == "Conv":
        w = g.const(n.input[1])
        ok = w is not None and w.dtype == np.float32 and w.ndim >= 3 and not g.is_const(n.input[0])
        return 1 if ok else None
    if n.op_type in ("MatMul", "Gemm"):
        w = g.const(n.input[1])
        if w is None or w.dtype != np.float32 or w.ndim != 2 or g.is_const(n.input[0]):
            return None
        if n.op_type == "Gemm" and attr(n, "transA", 0):
            return None
        return 1
    return None


def float_tensors(model):
    """Names of the float32 tensors of a model, by ONNX shape inference (shape arithmetic in
    int64 must not be quantized)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    names = {t.name for t in g.initializer if t.data_type == TensorProto.FLOAT}
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            names.add(vi.name)
    return names


def _quantizable(g, n, fmt, floats):
    if n.op_type not in STATIC_OPS[fmt] or len(n.output) != 1:
        return False
    if n.op_type in WEIGHTED:
        return _weight_input(g, n) is not None
    tensors = [i for i in n.input if i] + list(n.output)
    if not all(t in floats for t in tensors):
        return False
    if n.op_type in ("Add", "Mul"):
        # Softmax's input stays float: exp amplifies its quantization error, and an attention
        # mask's -10000 would take the whole range.
        if any(c.op_type == "Softmax" for c in g.consumers[n.output[0]]):
            return False
    if n.op_type in ("Add", "Mul", "Concat"):
        return all(not g.is_const(i) for i in n.input if i)
    return True


def plan_static(g, fmt, act):
    """Chooses the quantized nodes and tensors of `g` (before Relu folding; names are final)."""
    plan = StaticPlan()
    outputs = set(g.outputs)
    floats = float_tensors(g.model)
    rename = {}
    if act == np.uint8:
        for n in g.model.graph.node:
            if n.op_type != "Relu":
                continue
            p = g.producer.get(n.input[0])
            if (p is not None and p.op_type in RELU_FUSABLE and _quantizable(g, p, fmt, floats)
                    and len(g.consumers[n.input[0]]) == 1 and n.input[0] not in outputs):
                rename[n.input[0]] = n.output[0]
                plan.fusions.append((n.input[0], n.output[0]))
    relu_gone = set(rename.values())
    own, root = [], {}

    def need(t):
        if t not in root and t not in own:
            own.append(t)

    for n in g.model.graph.node:
        if n.op_type == "Relu" and n.output[0] in relu_gone:
            continue
        out = rename.get(n.output[0], n.output[0]) if n.output else None
        if _quantizable(g, n, fmt, floats):
            plan.kind[out] = n.op_type
            skip = _weight_input(g, n)
            for i, t in enumerate(n.input):
                if t and i != skip and not g.is_const(t) and not (n.op_type in WEIGHTED and i == 2):
                    need(t)
            need(out)
        elif (n.op_type in PASS_THROUGH[fmt] and len(n.output) == 1
              and (n.input[0] in own or n.input[0] in root)):
            plan.kind[out] = n.op_type
            root[out] = root.get(n.input[0], n.input[0])
    plan.calibrated = own
    plan.shared = root
    return plan


class Emitter:
    """Collects new nodes and initializers; parameter initializers are made once per tensor."""

    def __init__(self, g, params):
        self.g, self.params = g, params
        self.nodes, self.inits, self.made = [], [], set()

    def init(self, name, array):
        if name not in self.made:
            self.made.add(name)
            self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def qparams(self, t, plan=None):
        """(scale name, zero point name) of activation tensor t."""
        src = plan.shared.get(t, t) if plan is not None else t
        scale, zp = self.params[t]
        return self.init(src + "_scale", np.float32(scale)), self.init(src + "_zero_point", zp)

    def node(self, op, inputs, outputs, name, **kw):
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, **kw))

    def finish(self):
        m = self.g.model
        del m.graph.node[:]
        m.graph.node.extend(self.nodes)
        m.graph.initializer.extend(self.inits)


def _weight_axis(n, per_channel):
    if not per_channel:
        return None
    if n.op_type == "Conv":
        return 0
    if n.op_type == "Gemm" and attr(n, "transB", 0):
        return 0
    return 1


def _weight_key(g, n):
    """Name stem of a node's quantized weight: the weight's own name unless other nodes share it
    (their bias may need different scales, see quantize_weight_and_bias)."""
    w = n.input[1]
    return w if len(g.consumers[w]) == 1 else f"{w}_{n.output[0]}"


def _copy(n, inputs=None, outputs=None):
    c = helper.make_node(n.op_type, list(inputs if inputs is not None else n.input),
                         list(outputs if outputs is not None else n.output), name=n.name, domain=n.domain or None)
    c.attribute.extend(n.attribute)
    return c


def write_qdq(g, plan, params, wt, per_channel):
    """QDQ form: every planned tensor t becomes t -> QuantizeLinear -> DequantizeLinear and every
    reader reads the DequantizeLinear output; a planned graph output keeps its name on the
    DequantizeLinear. Weights are stored quantized behind a DequantizeLinear (per-axis), biases
    as int32 with scale x_scale * w_scale and zero point 0."""
    e = Emitter(g, params)
    planned = set(plan.tensors)
    outputs = set(g.outputs)

    def dq_name(t):
        return t if t in outputs else t + "_DequantizeLinear_Output"

    def emit_qdq(t, src):
        s, z = e.qparams(t, plan)
        q = t + "_QuantizeLinear_Output"
        e.node("QuantizeLinear", [src, s, z], [q], t + "_QuantizeLinear")
        e.node("DequantizeLinear", [q, s, z], [dq_name(t)], t + "_DequantizeLinear")

    for t in g.inputs:
        if t in planned:
            emit_qdq(t, t)
    for n in g.model.graph.node:
        inputs = [dq_name(t) if t in planned else t for t in n.input]
        kind = plan.kind.get(n.output[0]) if n.output else None
        if kind in WEIGHTED:
            w_name = _weight_key(g, n)
            axis = _weight_axis(n, per_channel)
            b = g.const(n.input[2]) if len(n.input) > 2 and n.input[2] else None
            if b is not None and (b.ndim != 1 or (n.op_type == "Gemm" and attr(n, "beta", 1.0) != 1.0)):
                b = None  # stays float
            q, ws, wz, bq, bs = quantize_weight_and_bias(g.const(n.input[1]), b, params[n.input[0]][0], wt, axis)
            kw = {"axis": axis} if axis is not None else {}
            e.init(w_name + "_quantized", q)
            e.init(w_name + "_scale", ws)
            e.init(w_name + "_zero_point", wz)
            inputs[1] = w_name + "_DequantizeLinear_Output"
            if inputs[1] not in e.made:
                e.made.add(inputs[1])
                e.node("DequantizeLinear", [w_name + "_quantized", w_name + "_scale", w_name + "_zero_point"],
                       [inputs[1]], w_name + "_DequantizeLinear", **kw)
            if b is not None:
                bn = n.output[0] + "_bias"
                e.init(bn + "_quantized", bq)
                e.init(bn + "_scale", bs)
                e.init(bn + "_zero_point", np.zeros(bs.shape, np.int32))
                e.node("DequantizeLinear", [bn + "_quantized", bn + "_scale", bn + "_zero_point"],
                       [bn + "_DequantizeLinear_Output"], bn + "_DequantizeLinear", axis=0)
                inputs[2] = bn + "_DequantizeLinear_Output"
        outs = [t + "_QuantizeLinear_Input" if t in planned and t in outputs else t for t in n.output]
        e.nodes.append(_copy(n, inputs, outs))
        for t, src in zip(n.output, outs):
            if t in planned:
                emit_qdq(t, src)
    e.finish()


def write_qoperator(g, plan, params, wt, per_channel):
    """QOperator form: planned nodes become QLinear* ops on quantized tensors (<t>_quantized);
    a float tensor is quantized (QuantizeLinear) where a QLinear op first reads it, and a quantized
    one dequantized back under its own name where a float op or a graph output needs it."""
    e = Emitter(g, params)
    qmap = {}  # tensor -> (quantized name, scale name, zero point name)
    floats = set(g.inputs) | set(g.initializers) | set(g.constants)

    def quantized(t):
        if t not in qmap:
            s, z = e.qparams(t, plan)
            e.node("QuantizeLinear", [t, s, z], [t + "_quantized"], t + "_QuantizeLinear")
            qmap[t] = (t + "_quantized", s, z)
        return qmap[t]

    def as_float(t):
        if t and t not in floats and t in qmap:
            e.node("DequantizeLinear", list(qmap[t]), [t], t + "_DequantizeLinear")
            floats.add(t)
        return t

    for n in g.model.graph.node:
        out = n.output[0] if n.output else None
        kind = plan.kind.get(out)
        if kind is None or (kind in PASS_THROUGH["qoperator"] and n.input[0] not in qmap):
            for t in n.input:
                as_float(t)
            e.nodes.append(_copy(n))
            floats.update(n.output)
            continue
        if kind in PASS_THROUGH["qoperator"]:
            q, s, z = qmap[n.input[0]]
            e.nodes.append(_copy(n, [q] + list(n.input[1:]), [out + "_quantized"]))
            qmap[out] = (out + "_quantized", s, z)
            continue
        ys, yz = e.qparams(out, plan)
        y = out + "_quantized"
        if kind in ("Conv", "MatMul"):
            x = quantized(n.input[0])
            axis = _weight_axis(n, per_channel)
            b = g.const(n.input[2]) if kind == "Conv" and len(n.input) > 2 and n.input[2] else None
            wq, ws, wz, bq, _ = quantize_weight_and_bias(g.const(n.input[1]), b, params[n.input[0]][0], wt, axis)
            wk = _weight_key(g, n)
            w = e.init(wk + "_quantized", wq)
            wsn, wzn = e.init(wk + "_scale", ws), e.init(wk + "_zero_point", wz)
            ins = [x[0], x[1], x[2], w, wsn, wzn, ys, yz]
            if kind == "Conv":
                if bq is not None:
                    ins.append(e.init(out + "_bias_quantized", bq))
                c = helper.make_node("QLinearConv", ins, [y], name=(n.name or out) + "_quant")
                c.attribute.extend(n.attribute)
                e.nodes.append(c)
            else:
                e.node("QLinearMatMul", ins, [y], (n.name or out) + "_quant")
        elif kind in QLINEAR_BINARY:
            a, b = quantized(n.input[0]), quantized(n.input[1])
            e.node(QLINEAR_BINARY[kind], list(a) + list(b) + [ys, yz], [y], (n.name or out) + "_quant",
                   domain="com.microsoft")
        elif kind == "GlobalAveragePool":
            x = quantized(n.input[0])
            e.node("QLinearGlobalAveragePool", list(x) + [ys, yz], [y], (n.name or out) + "_quant",
                   domain="com.microsoft", channels_last=0)
        else:
            raise AssertionError(f"planned op {kind} has no QOperator form")
        qmap[out] = (y, ys, yz)
    for t in g.outputs:
        as_float(t)
    e.finish()


def write_dynamic(g, wt, per_channel):
    """Dynamic form: x -> DynamicQuantizeLinear (uint8, one per activation however many read it),
    ConvInteger / MatMulInteger with the quantized weight and both zero points (int8 weights are
    symmetric: no weight zero point), Cast to float, Mul by x_scale * w_scale, Add of a Conv bias."""
    e = Emitter(g, {})
    dyn = {}
    for n in g.model.graph.node:
        if n.op_type not in ("Conv", "MatMul") or _weight_input(g, n) is None:
            e.nodes.append(_copy(n))
            continue
        x, out = n.input[0], n.output[0]
        if x not in dyn:
            dyn[x] = (x + "_quantized", x + "_scale", x + "_zero_point")
            e.node("DynamicQuantizeLinear", [x], list(dyn[x]), x + "_DynamicQuantizeLinear")
        xq, xs, xz = dyn[x]
        w = g.const(n.input[1])
        axis = (0 if n.op_type == "Conv" else 1) if per_channel else None
        wq, ws, wz = quantize_weight(w, wt, axis)
        ins = [xq, e.init(n.input[1] + "_quantized", wq), xz]
        if wt == np.uint8:
            ins.append(e.init(n.input[1] + "_zero_point", wz))
        if n.op_type == "Conv" and axis is not None:
            ws = ws.reshape([-1] + [1] * (w.ndim - 2))
        integer = out + "_output_quantized"
        if n.op_type == "Conv":
            c = helper.make_node("ConvInteger", ins, [integer], name=(n.name or out) + "_quant")
            c.attribute.extend(n.attribute)
            e.nodes.append(c)
        else:
            e.node("MatMulInteger", ins, [integer], (n.name or out) + "_quant")
        e.node("Cast", [integer], [integer + "_cast_output"], integer + "_cast", to=TensorProto.FLOAT)
        scale = e.init(n.input[1] + "_scale", ws)
        e.node("Mul", [xs, scale], [out + "_scales_mul"], out + "_scales_mul")
        b = g.const(n.input[2]) if n.op_type == "Conv" and len(n.input) > 2 and n.input[2] else None
        mul_out = out if b is None else out + "_scaled"
        e.node("Mul", [integer + "_cast_output", out + "_scales_mul"], [mul_out], out + "_scale_output")
        if b is not None:
            bias = e.init(n.input[2] + "_reshaped", b.astype(np.float32).reshape([-1] + [1] * (w.ndim - 2)))
            e.node("Add", [mul_out, bias], [out], out + "_bias_add")
    e.finish()
