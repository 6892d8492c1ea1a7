#!/usr/bin/python3
"""Writes Triton-layout model repositories for gpuhive: `<repo>/<model>/config.pbtxt` and
`<repo>/<model>/<version>/model.onnx`.

    /usr/bin/python3 scripts/make-repository.py --out models/repository        # built-in repository
    /usr/bin/python3 scripts/make-repository.py --zoo models/zoo-repository    # 20 models, "small card"
    /usr/bin/python3 scripts/make-repository.py --tiny tests/data/repository   # committed test models

Real architectures from Debian's python3-torch / python3-torchvision with random, seeded weights
(no downloads). The built-in models that bench/export_models.py already exports are taken from its
cache (--generated, default models/generated) instead of being exported twice. The tiny test models
are built with onnx.helper only (no torch) and are byte-for-byte reproducible.

Idempotent: a model whose files exist and whose generator parameters (recorded in
`<model>/.make-repository.json`) are unchanged is skipped; a config.pbtxt is rewritten only when
its text changes. Every action is printed.
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAMP = ".make-repository.json"
# Bump when the way a torch model is exported changes (invalidates every stamp).
GENERATOR_VERSION = 1
TINY_OPSET = 17
TINY_IR_VERSION = 8

ONNX_TO_TRITON = {
    TensorProto.FLOAT: "TYPE_FP32", TensorProto.FLOAT16: "TYPE_FP16", TensorProto.BFLOAT16: "TYPE_BF16",
    TensorProto.DOUBLE: "TYPE_FP64", TensorProto.INT8: "TYPE_INT8", TensorProto.INT16: "TYPE_INT16",
    TensorProto.INT32: "TYPE_INT32", TensorProto.INT64: "TYPE_INT64", TensorProto.UINT8: "TYPE_UINT8",
    TensorProto.UINT16: "TYPE_UINT16", TensorProto.UINT32: "TYPE_UINT32", TensorProto.UINT64: "TYPE_UINT64",
    TensorProto.BOOL: "TYPE_BOOL", TensorProto.STRING: "TYPE_STRING",
}


# ---------------------------------------------------------------------------------------------
# config.pbtxt


def graph_io(model, batched):
    """[(name, TYPE_*, dims)] for the graph's inputs and outputs; the batch dim is dropped when
    `batched` (it must then be dynamic). Dynamic dims are -1."""
    init = {t.name for t in model.graph.initializer}

    def conv(vi):
        t = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in t.shape.dim]
        if batched:
            if not dims or dims[0] != -1:
                sys.exit(f"error: {vi.name} has no dynamic batch dim 0 (shape {dims})")
            dims = dims[1:]
        return [vi.name, ONNX_TO_TRITON[t.elem_type], dims]

    ins = [conv(v) for v in model.graph.input if v.name not in init]
    outs = [conv(v) for v in model.graph.output]
    return ins, outs


def config_text(name, io, max_batch_size, batching=None, gpuhive=None, version_policy=None, instance_group=None,
                comment=None, warmup=False):
    """Triton-style config.pbtxt text. batching: (preferred sizes, max queue delay us).
    gpuhive: dict of the gpuhive block's fields, written in a fixed order.
    warmup: a Triton model_warmup sample (batch 1, zeros) when every input dim is fixed, so the
    model is compiled and resident before it reports READY."""
    ins, outs = io
    lines = []
    if comment:
        lines += [f"# {c}" for c in comment.split("\n")]
    lines += [f'name: "{name}"', 'platform: "onnxruntime_onnx"', f"max_batch_size: {max_batch_size}"]
    if version_policy:
        lines.append(f"version_policy: {version_policy}")

    def block(kind, tensors):
        lines.append(f"{kind} [")
        for i, (n, t, dims) in enumerate(tensors):
            sep = "," if i + 1 < len(tensors) else ""
            lines.append("  {")
            lines.append(f'    name: "{n}"')
            lines.append(f"    data_type: {t}")
            lines.append(f"    dims: [ {', '.join(str(d) for d in dims)} ]")
            lines.append("  }" + sep)
        lines.append("]")

    block("input", ins)
    block("output", outs)
    if batching:
        preferred, delay_us = batching
        lines.append("dynamic_batching {")
        lines.append(f"  preferred_batch_size: [ {', '.join(str(b) for b in preferred)} ]")
        lines.append(f"  max_queue_delay_microseconds: {delay_us}")
        lines.append("}")
    if instance_group:
        lines.append(f"instance_group [ {instance_group} ]")
    if warmup and all(d >= 0 for _, _, dims in ins for d in dims):
        lines.append("model_warmup [")
        lines.append("  {")
        lines.append('    name: "zeros"')
        lines.append(f"    batch_size: {1 if max_batch_size > 0 else 0}")
        for n, t, dims in ins:
            lines.append(f'    inputs {{ key: "{n}" value {{ data_type: {t} dims: [ {", ".join(str(d) for d in dims)} ] '
                         "zero_data: true } }")
        lines.append("  }")
        lines.append("]")
    if gpuhive:
        lines.append("gpuhive {")
        for key in ("memory_limit", "tenant", "priority", "precision", "preload", "keep_alive"):
            if key in gpuhive:
                v = gpuhive[key]
                if isinstance(v, bool):
                    v = "true" if v else "false"
                elif isinstance(v, str):
                    v = f'"{v}"'
                lines.append(f"  {key}: {v}")
        lines.append("}")
    return "\n".join(lines) + "\n"


def write_if_changed(path, data, what):
    """Writes bytes/text atomically unless the file already holds exactly that. Returns True if written."""
    if isinstance(data, str):
        data = data.encode()
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return False
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    print(f"{path}: {what}")
    return True


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024


# ---------------------------------------------------------------------------------------------
# Tiny test models (onnx.helper; deterministic; documented in tests/data/repository/README.md)


def tiny_model(graph_name, nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, graph_name, inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", TINY_OPSET)],
                              producer_name="gpuhive scripts/make-repository.py")
    model.ir_version = TINY_IR_VERSION
    onnx.checker.check_model(model)
    return model


def tiny_mlp_weights():
    """tiny_mlp's weights: exact multiples of 1/8 so any implementation can recompute the outputs."""
    w1 = np.array([[((i * 8 + j) % 7 - 3) / 8 for j in range(8)] for i in range(16)], dtype=np.float32)
    b1 = np.array([(j % 3 - 1) / 4 for j in range(8)], dtype=np.float32)
    w2 = np.array([[((i * 4 + j) % 5 - 2) / 4 for j in range(4)] for i in range(8)], dtype=np.float32)
    b2 = np.array([j / 4 for j in range(4)], dtype=np.float32)
    return w1, b1, w2, b2


def make_tiny_mlp():
    w1, b1, w2, b2 = tiny_mlp_weights()
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))]
    nodes = [
        helper.make_node("MatMul", ["INPUT0", "w1"], ["h0"], name="fc1"),
        helper.make_node("Add", ["h0", "b1"], ["h1"], name="fc1_bias"),
        helper.make_node("Relu", ["h1"], ["h2"], name="relu"),
        helper.make_node("MatMul", ["h2", "w2"], ["h3"], name="fc2"),
        helper.make_node("Add", ["h3", "b2"], ["OUTPUT0"], name="fc2_bias"),
    ]
    return tiny_model("tiny_mlp", nodes, [helper.make_tensor_value_info("INPUT0", TensorProto.FLOAT, ["batch", 16])],
                      [helper.make_tensor_value_info("OUTPUT0", TensorProto.FLOAT, ["batch", 4])], inits)


def make_add_sub():
    nodes = [helper.make_node("Add", ["INPUT0", "INPUT1"], ["OUTPUT0"], name="add"),
             helper.make_node("Sub", ["INPUT0", "INPUT1"], ["OUTPUT1"], name="sub")]
    ins = [helper.make_tensor_value_info(n, TensorProto.INT32, ["batch", 16]) for n in ("INPUT0", "INPUT1")]
    outs = [helper.make_tensor_value_info(n, TensorProto.INT32, ["batch", 16]) for n in ("OUTPUT0", "OUTPUT1")]
    return tiny_model("add_sub", nodes, ins, outs)


def make_identity():
    return tiny_model("identity_fp32", [helper.make_node("Identity", ["INPUT0"], ["OUTPUT0"], name="identity")],
                      [helper.make_tensor_value_info("INPUT0", TensorProto.FLOAT, ["batch", 8])],
                      [helper.make_tensor_value_info("OUTPUT0", TensorProto.FLOAT, ["batch", 8])])


def make_no_batch():
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    return tiny_model("no_batch", [helper.make_node("ReduceSum", ["INPUT0", "axes"], ["OUTPUT0"], keepdims=0,
                                                    name="row_sum")],
                      [helper.make_tensor_value_info("INPUT0", TensorProto.FLOAT, [3, 4])],
                      [helper.make_tensor_value_info("OUTPUT0", TensorProto.FLOAT, [3])], [axes])


def make_add_constant(graph_name, value):
    c = numpy_helper.from_array(np.array([value], dtype=np.float32), "offset")
    return tiny_model(graph_name, [helper.make_node("Add", ["INPUT0", "offset"], ["OUTPUT0"], name="add_offset")],
                      [helper.make_tensor_value_info("INPUT0", TensorProto.FLOAT, ["batch", 4])],
                      [helper.make_tensor_value_info("OUTPUT0", TensorProto.FLOAT, ["batch", 4])], [c])


TINY_README = """\
# Test model repository (generated, committed)

Written by `/usr/bin/python3 scripts/make-repository.py --tiny tests/data/repository`, deterministic
(onnx.helper, opset 17, IR 8); tests/repository_data checks that every model loads and computes what is
written here, and that regenerating gives the same bytes. Do not edit the files by hand.

| model | config | inputs -> outputs | computes |
|---|---|---|---|
| `tiny_mlp` | max_batch_size 8, dynamic batching, tenant interactive, priority 1 | INPUT0 FP32 [-1,16] -> OUTPUT0 FP32 [-1,4] | relu(x W1 + b1) W2 + b2 |
| `add_sub` | max_batch_size 8, dynamic batching, tenant batch, priority 3 | INPUT0, INPUT1 INT32 [-1,16] -> OUTPUT0, OUTPUT1 INT32 [-1,16] | OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1 (Triton's "simple") |
| `identity_fp32` | no config.pbtxt: derived (max_batch_size 0) | INPUT0 FP32 [-1,8] -> OUTPUT0 FP32 [-1,8] | OUTPUT0 = INPUT0 |
| `no_batch` | max_batch_size 0 | INPUT0 FP32 [3,4] -> OUTPUT0 FP32 [3] | row sums of INPUT0 |
| `two_versions` | max_batch_size 8, version_policy all, versions 1 and 2 | INPUT0 FP32 [-1,4] -> OUTPUT0 FP32 [-1,4] | version 1: INPUT0 + 1, version 2: INPUT0 + 2 |
| `broken_model` | valid config.pbtxt | 1/model.onnx is a truncated protobuf | loading fails with a data-loss error for this model only |

tiny_mlp's weights (exact in FP32): W1[i][j] = ((8i + j) mod 7 - 3) / 8 (16x8), b1[j] = (j mod 3 - 1) / 4,
W2[i][j] = ((4i + j) mod 5 - 2) / 4 (8x4), b2[j] = j / 4.
"""


def tiny_models():
    """(model name, {version: ModelProto or raw bytes}, config text or None)"""
    mlp = make_tiny_mlp()
    add_sub = make_add_sub()
    no_batch = make_no_batch()
    v1, v2 = make_add_constant("two_versions_v1", 1.0), make_add_constant("two_versions_v2", 2.0)
    broken_src = make_add_constant("broken_model", 1.0).SerializeToString()
    # Cut inside the graph: a length-delimited field that claims more bytes than remain.
    broken = broken_src[: len(broken_src) * 2 // 3]
    return [
        ("tiny_mlp", {1: mlp}, config_text("tiny_mlp", graph_io(mlp, True), 8, batching=([4, 8], 500),
                                           gpuhive={"tenant": "interactive", "priority": 1, "keep_alive": "-1"})),
        ("add_sub", {1: add_sub}, config_text("add_sub", graph_io(add_sub, True), 8, batching=([8], 1000),
                                              instance_group="{ count: 1 kind: KIND_CPU }",
                                              gpuhive={"tenant": "batch", "priority": 3, "keep_alive": "30s"})),
        ("identity_fp32", {1: make_identity()}, None),
        ("no_batch", {1: no_batch}, config_text("no_batch", graph_io(no_batch, False), 0)),
        ("two_versions", {1: v1, 2: v2}, config_text("two_versions", graph_io(v2, True), 8, batching=([4], 100),
                                                     version_policy="{ all {} }")),
        ("broken_model", {1: broken}, config_text("broken_model", graph_io(v1, True), 8,
                                                  comment="1/model.onnx is deliberately truncated: the load "
                                                          "error must be reported for this model only")),
    ]


def make_tiny(out):
    os.makedirs(out, exist_ok=True)
    wrote = 0
    for name, versions, config in tiny_models():
        for v, m in versions.items():
            data = m if isinstance(m, bytes) else m.SerializeToString()
            wrote += write_if_changed(os.path.join(out, name, str(v), "model.onnx"), data, f"written ({len(data)} B)")
        if config is not None:
            wrote += write_if_changed(os.path.join(out, name, "config.pbtxt"), config, "written")
        else:
            stale = os.path.join(out, name, "config.pbtxt")
            if os.path.exists(stale):
                os.remove(stale)
                print(f"{stale}: removed (this model's config is derived)")
                wrote += 1
    wrote += write_if_changed(os.path.join(out, "README.md"), TINY_README, "written")
    print(f"{out}: tiny repository {'updated' if wrote else 'unchanged'}")
    for name, versions, _ in tiny_models():
        for v in versions:
            p = os.path.join(out, name, str(v), "model.onnx")
            print(f"  {name}/{v}/model.onnx  {human(os.path.getsize(p))}")


# ---------------------------------------------------------------------------------------------
# torch-exported models


def torch_modules():
    """Imported lazily: --tiny needs no torch."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torchvision

    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import export_models

    class TextDetector(nn.Module):
        """DBNet-shaped text detector: MobileNetV3-Large backbone, FPN neck (Resize upsampling),
        head with two ConvTranspose x2 upsamplers; returns a text probability map at input size."""

        def __init__(self, inner=96, branch=24):
            super().__init__()
            self.features = torchvision.models.mobilenet_v3_large(weights=None).features
            self.taps = (3, 6, 12, 16)  # strides 4, 8, 16, 32
            chans = (24, 40, 112, 960)
            self.lateral = nn.ModuleList([nn.Conv2d(c, inner, 1, bias=False) for c in chans])
            self.smooth = nn.ModuleList([nn.Conv2d(inner, branch, 3, padding=1, bias=False) for _ in chans])
            fused = branch * len(chans)
            self.head = nn.Sequential(
                nn.Conv2d(fused, branch, 3, padding=1, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True),
                nn.ConvTranspose2d(branch, branch, 2, stride=2), nn.BatchNorm2d(branch), nn.ReLU(inplace=True),
                nn.ConvTranspose2d(branch, 1, 2, stride=2), nn.Sigmoid())

        def forward(self, x):
            feats = []
            for i, layer in enumerate(self.features):
                x = layer(x)
                if i in self.taps:
                    feats.append(x)
            lat = [l(f) for l, f in zip(self.lateral, feats)]
            for i in range(len(lat) - 2, -1, -1):  # top-down: nearest x2
                lat[i] = lat[i] + F.interpolate(lat[i + 1], scale_factor=2.0, mode="nearest")
            outs = []
            for i, (s, p) in enumerate(zip(self.smooth, lat)):
                y = s(p)
                if i > 0:
                    y = F.interpolate(y, scale_factor=float(2 ** i), mode="bilinear", align_corners=False)
                outs.append(y)
            return self.head(torch.cat(outs, dim=1)).squeeze(1)

    def mlp(widths):
        layers = []
        for i in range(len(widths) - 1):
            layers.append(nn.Linear(widths[i], widths[i + 1]))
            if i + 2 < len(widths):
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    class ConvNet(nn.Module):
        """Plain conv stack (conv-bn-relu x2 + maxpool per stage) with a chosen width."""

        def __init__(self, width, stages=4, classes=100):
            super().__init__()
            layers, c = [], 3
            for s in range(stages):
                w = width * (2 ** s)
                layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                           nn.Conv2d(w, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                           nn.MaxPool2d(2)]
                c = w
            self.body = nn.Sequential(*layers)
            self.fc = nn.Linear(c, classes)

        def forward(self, x):
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.body(x), 1), 1))

    return torch, torchvision, export_models, TextDetector, mlp, ConvNet


def export_torch(torch, opset, module, example, in_names, out_names, path):
    axes = {n: {0: "batch"} for n in in_names + out_names}
    module.eval()
    tmp = path + ".tmp"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(module, example, tmp, opset_version=opset, input_names=in_names, output_names=out_names,
                          dynamic_axes=axes, do_constant_folding=True)
    os.replace(tmp, path)


def read_stamp(model_dir):
    try:
        with open(os.path.join(model_dir, STAMP)) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class Spec:
    """One torch-built model of a repository."""

    def __init__(self, name, arch, build, max_batch_size, batching, gpuhive=None, note=None):
        self.name, self.arch, self.build = name, arch, build
        self.max_batch_size, self.batching, self.gpuhive, self.note = max_batch_size, batching, gpuhive, note


def materialize(repo, spec, tools):
    """Makes `<repo>/<name>/1/model.onnx` (unless cached) and its config.pbtxt. Returns the file size."""
    torch, export_models = tools[0], tools[2]
    model_dir = os.path.join(repo, spec.name)
    onnx_path = os.path.join(model_dir, "1", "model.onnx")
    # A model also exported by bench/export_models.py comes from its cache (one export for both).
    source = None
    if spec.arch.startswith("generated:"):
        source = export_models.export(spec.arch.split(":", 1)[1], tools[6], False)
        st = os.stat(source)
        params = {"generator": GENERATOR_VERSION, "arch": spec.arch, "source_bytes": st.st_size,
                  "source_mtime_ns": st.st_mtime_ns}
    else:
        params = {"generator": GENERATOR_VERSION, "arch": spec.arch, "opset": export_models.OPSET,
                  "torch": torch.__version__}
    stamp = read_stamp(model_dir)
    if stamp and stamp.get("params") == params and os.path.exists(onnx_path):
        io = stamp["io"]
        print(f"{onnx_path}: cached")
    else:
        os.makedirs(os.path.dirname(onnx_path), exist_ok=True)
        if source:
            if os.path.exists(onnx_path):
                os.remove(onnx_path)
            try:
                os.link(source, onnx_path)  # same bytes, no second copy on disk
            except OSError:
                shutil.copyfile(source, onnx_path)
            print(f"{onnx_path}: from {source}")
        else:
            torch.manual_seed(0)
            module, example, in_names, out_names = spec.build()
            export_torch(torch, export_models.OPSET, module, example, in_names, out_names, onnx_path)
            print(f"{onnx_path}: exported")
        io = graph_io(onnx.load(onnx_path), spec.max_batch_size > 0)
        with open(os.path.join(model_dir, STAMP), "w") as f:
            json.dump({"params": params, "io": io}, f, indent=1)
    # Real-time models (priority 1) are warmed up before they report READY: their first requests
    # must not pay for compiling the model.
    text = config_text(spec.name, io, spec.max_batch_size, batching=spec.batching, gpuhive=spec.gpuhive,
                       warmup=(spec.gpuhive or {}).get("priority") == 1,
                       comment=spec.note)
    write_if_changed(os.path.join(model_dir, "config.pbtxt"), text, "config written")
    return os.path.getsize(onnx_path)


def builtin_specs(tools):
    torch, torchvision, export_models, TextDetector, mlp, ConvNet, _ = tools
    img = lambda size=224: torch.randn(1, 3, size, size)  # noqa: E731
    return [
        Spec("resnet50", "generated:resnet50", None, 32, ([8, 16, 32], 10000),
             {"tenant": "batch", "priority": 3, "keep_alive": "10m"},
             "ResNet-50 image classifier (torchvision, random weights): background batch work"),
        Spec("mobilenet_v3", "generated:mobilenet_v3_large", None, 16, ([1, 4, 8], 500),
             {"tenant": "interactive", "priority": 1, "keep_alive": "-1"},
             "MobileNetV3-Large classifier: real-time, never unloaded for being idle"),
        Spec("text_detector", "text_detector_dbnet_mbv3_320_v1",
             lambda: (TextDetector(), (img(320),), ["image"], ["probability_map"]), 8, ([2, 4, 8], 5000),
             {"tenant": "vision", "priority": 2, "keep_alive": "10m"},
             "DBNet-shaped text detector: MobileNetV3-Large backbone, FPN with Resize, ConvTranspose head;\n"
             "320x320 RGB in, per-pixel text probability out"),
        Spec("bert_encoder", "generated:bert_base", None, 16, ([4, 8, 16], 20000),
             {"memory_limit": "2GiB", "tenant": "batch", "priority": 4, "keep_alive": "5m"},
             "BERT-base-shaped encoder for embeddings (12 layers, hidden 768); dynamic sequence length\n"
             "(requests batch together when their sequence lengths match)"),
        Spec("audio_lstm", "generated:audio_lstm", None, 32, ([8, 16, 32], 1000),
             {"tenant": "interactive", "priority": 1, "keep_alive": "-1"},
             "keyword spotting shaped: 49 frames x 40 mel features, 2-layer LSTM, 12 classes"),
    ]


def make_builtin(out, tools):
    os.makedirs(out, exist_ok=True)
    sizes = {}
    for spec in builtin_specs(tools):
        sizes[spec.name] = materialize(out, spec, tools)
    # tiny_mlp: the same few-KB network as the test repository's, configured for throughput tests.
    mlp = make_tiny_mlp()
    data = mlp.SerializeToString()
    write_if_changed(os.path.join(out, "tiny_mlp", "1", "model.onnx"), data, f"written ({len(data)} B)")
    text = config_text("tiny_mlp", graph_io(mlp, True), 64, batching=([16, 32, 64], 200),
                       gpuhive={"tenant": "interactive", "priority": 1, "keep_alive": "-1"},
                       comment="16 -> 8 -> 4 MLP, a few KB: per-request overhead and throughput tests")
    write_if_changed(os.path.join(out, "tiny_mlp", "config.pbtxt"), text, "config written")
    sizes["tiny_mlp"] = len(data)
    report(out, sizes)


def zoo_specs(tools):
    torch, torchvision, export_models, TextDetector, mlp, ConvNet, _ = tools
    tv = torchvision.models

    def vision(ctor, size=224, **kw):
        return lambda: (ctor(weights=None, **kw), (torch.randn(1, 3, size, size),), ["input"], ["output"])

    def dense(widths):
        return lambda: (mlp(widths), (torch.randn(1, widths[0]),), ["input"], ["output"])

    def convnet(width, size):
        return lambda: (ConvNet(width), (torch.randn(1, 3, size, size),), ["input"], ["output"])

    archs = [
        ("squeezenet1_1", vision(tv.squeezenet1_1)),
        ("shufflenet_v2_x0_5", vision(tv.shufflenet_v2_x0_5)),
        ("mlp_512_1024_1024_10", dense([512, 1024, 1024, 10])),
        ("mnasnet0_5", vision(tv.mnasnet0_5)),
        ("shufflenet_v2_x1_0", vision(tv.shufflenet_v2_x1_0)),
        ("mobilenet_v3_small", vision(tv.mobilenet_v3_small)),
        ("mobilenet_v2", vision(tv.mobilenet_v2)),
        # RegNetY-800MF, not -400MF: 400MF's 8-channel conv groups hit oneDNN's reference convolution
        # in blocked layouts (~1.7 s per image here), which would measure that, not residency.
        ("regnet_y_800mf", vision(tv.regnet_y_800mf)),
        ("mnasnet1_0", vision(tv.mnasnet1_0)),
        ("convnet_w48_96px", convnet(48, 96)),
        ("efficientnet_b0", vision(tv.efficientnet_b0)),
        ("mobilenet_v3_large", vision(tv.mobilenet_v3_large)),
        ("regnet_x_400mf", vision(tv.regnet_x_400mf)),
        ("googlenet", vision(tv.googlenet, aux_logits=False, init_weights=True)),
        ("shufflenet_v2_x2_0", vision(tv.shufflenet_v2_x2_0)),
        ("densenet121", vision(tv.densenet121)),
        ("resnet18", vision(tv.resnet18)),
        ("mlp_2048_4096_2048_1000", dense([2048, 4096, 2048, 1000])),
        ("resnet34", vision(tv.resnet34)),
        ("resnet50", vision(tv.resnet50)),
    ]
    specs = []
    for i, (arch, build) in enumerate(archs):
        # Three popularity classes so the scenario has priorities to weigh when it evicts.
        priority = 2 if i % 3 == 0 else 3 if i % 3 == 1 else 4
        specs.append(Spec(f"zoo_{i:02d}", "zoo:" + arch, build, 8, ([4, 8], 2000),
                          {"tenant": "zoo", "priority": priority, "keep_alive": "5m"},
                          f"{arch} (random weights), one of the 20 \"many models, small card\" models"))
    return specs


def make_zoo(out, tools):
    os.makedirs(out, exist_ok=True)
    sizes = {}
    for spec in zoo_specs(tools):
        sizes[spec.name] = materialize(out, spec, tools)
    total = report(out, sizes)
    print(f"zoo total {total} bytes ({human(total)}); the scenario's budget is a third: {total // 3} bytes "
          f"({human(total // 3)})")


def report(out, sizes):
    total = sum(sizes.values())
    print(f"{out}: {len(sizes)} models, {human(total)}")
    for name, n in sizes.items():
        print(f"  {name:<16} {human(n):>10}  ({n} bytes)")
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="built-in repository (e.g. models/repository)")
    ap.add_argument("--zoo", help="20-model repository for the many-models scenario (e.g. models/zoo-repository)")
    ap.add_argument("--tiny", help="tiny test repository (e.g. tests/data/repository)")
    ap.add_argument("--generated", default=os.path.join(ROOT, "models", "generated"),
                    help="bench/export_models.py's cache, shared with it (default: models/generated)")
    args = ap.parse_args()
    if not (args.out or args.zoo or args.tiny):
        ap.error("give at least one of --out, --zoo, --tiny")
    if args.tiny:
        make_tiny(args.tiny)
    if args.out or args.zoo:
        tools = torch_modules() + (args.generated,)
        os.makedirs(args.generated, exist_ok=True)
        if args.out:
            make_builtin(args.out, tools)
        if args.zoo:
            make_zoo(args.zoo, tools)


if __name__ == "__main__":
    main()
