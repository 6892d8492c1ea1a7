#!/usr/bin/python3
"""Converts an FP32 ONNX model into the FP16 form exporters produce: float initializers, Constant
tensors, graph inputs, outputs and value_info become float16, and casts to float cast to float16.
Tensors that ONNX requires as float (Resize scales) stay float32. Debian's python3-onnx and numpy only.

    /usr/bin/python3 bench/convert_fp16.py models/generated/resnet50.onnx /tmp/resnet50_fp16.onnx
"""
import argparse
import sys

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

FLOAT, FLOAT16 = TensorProto.FLOAT, TensorProto.FLOAT16
# (op_type, input index) that must stay float32 by the ONNX spec.
KEEP_FLOAT = {("Resize", 2), ("Upsample", 1)}


def to_fp16(t):
    a = numpy_helper.to_array(t)
    if a.dtype != np.float32:
        return t
    return numpy_helper.from_array(np.clip(a, -65504, 65504).astype(np.float16), t.name)


def convert_graph(g):
    keep = set()
    for n in g.node:
        for i, name in enumerate(n.input):
            if (n.op_type, i) in KEEP_FLOAT:
                keep.add(name)
    for i, t in enumerate(g.initializer):
        if t.data_type == FLOAT and t.name not in keep:
            g.initializer[i].CopyFrom(to_fp16(t))
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        tt = vi.type.tensor_type
        if tt.elem_type == FLOAT and vi.name not in keep:
            tt.elem_type = FLOAT16
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == FLOAT and not set(n.output) & keep:
                a.t.CopyFrom(to_fp16(a.t))
            elif a.type == onnx.AttributeProto.GRAPH:
                convert_graph(a.g)
        if n.op_type == "Cast":
            for a in n.attribute:
                if a.name == "to" and a.i == FLOAT:
                    a.i = FLOAT16


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    args = ap.parse_args()
    m = onnx.load(args.src)
    convert_graph(m.graph)
    onnx.checker.check_model(m)
    onnx.save(m, args.dst)
    print(f"{args.dst}: FP16 model of {args.src}", file=sys.stderr)


if __name__ == "__main__":
    main()
