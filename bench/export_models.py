#!/usr/bin/python3
"""Exports the benchmark and built-in model architectures to ONNX with random weights.

Uses Debian's python3-torch / python3-torchvision only (no downloads: weights=None, seeded).
Every model gets a dynamic batch dimension. Files are cached: an existing file is kept unless
--force is given.

    /usr/bin/python3 bench/export_models.py --out models/generated [--only resnet50,bert_base]
"""
import argparse
import inspect
import math
import os
import sys

import torch
import torch.nn as nn
import torchvision

OPSET = 17


class BertEmbeddings(nn.Module):
    def __init__(self, vocab, hidden, max_pos, type_vocab):
        super().__init__()
        self.word = nn.Embedding(vocab, hidden)
        self.position = nn.Embedding(max_pos, hidden)
        self.token_type = nn.Embedding(type_vocab, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, input_ids, token_type_ids):
        seq = input_ids.shape[1]
        pos = torch.arange(seq, dtype=torch.long, device=input_ids.device).unsqueeze(0)
        x = self.word(input_ids) + self.position(pos) + self.token_type(token_type_ids)
        return self.norm(x)


class BertLayer(nn.Module):
    def __init__(self, hidden, heads, ffn):
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.q = nn.Linear(hidden, hidden)
        self.k = nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, hidden)
        self.o = nn.Linear(hidden, hidden)
        self.norm1 = nn.LayerNorm(hidden, eps=1e-12)
        self.ff1 = nn.Linear(hidden, ffn)
        self.ff2 = nn.Linear(ffn, hidden)
        self.norm2 = nn.LayerNorm(hidden, eps=1e-12)

    def split(self, x):
        b, s, _ = x.shape
        return x.view(b, s, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x, mask_bias):
        b, s, h = x.shape
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim) + mask_bias
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v)
        ctx = ctx.transpose(1, 2).reshape(b, s, h)
        x = self.norm1(x + self.o(ctx))
        y = self.ff2(nn.functional.gelu(self.ff1(x)))
        return self.norm2(x + y)


class BertEncoder(nn.Module):
    """BERT-base shaped: 12 layers, hidden 768, 12 heads, FFN 3072, vocab 30522; returns the
    last hidden state and a mean-pooled embedding."""

    def __init__(self, layers=12, hidden=768, heads=12, ffn=3072, vocab=30522):
        super().__init__()
        self.emb = BertEmbeddings(vocab, hidden, 512, 2)
        self.layers = nn.ModuleList([BertLayer(hidden, heads, ffn) for _ in range(layers)])

    def forward(self, input_ids, attention_mask, token_type_ids):
        x = self.emb(input_ids, token_type_ids)
        mask = attention_mask.to(x.dtype)  # float32 when exported; half when the peer runs in FP16
        bias = (1.0 - mask[:, None, None, :]) * -10000.0
        for layer in self.layers:
            x = layer(x, bias)
        pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)
        return x, pooled


class AudioLstm(nn.Module):
    """Keyword-spotting shaped: 40 mel features per frame, 2-layer LSTM, 12 classes."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(40, 128, num_layers=2, batch_first=True)
        self.head = nn.Linear(128, 12)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.head(y[:, -1, :])


class SegmentationWrapper(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)["out"]


def vision(ctor, **kw):
    return ctor(weights=None, **kw)


def spec(name):
    """(module, example inputs, input names, output names, dynamic axes)"""
    img = torch.randn(1, 3, 224, 224)
    img_axes = {"input": {0: "batch"}, "output": {0: "batch"}}
    if name == "resnet50":
        return vision(torchvision.models.resnet50), (img,), ["input"], ["output"], img_axes
    if name == "mobilenet_v3_large":
        return vision(torchvision.models.mobilenet_v3_large), (img,), ["input"], ["output"], img_axes
    if name == "efficientnet_b0":
        return vision(torchvision.models.efficientnet_b0), (img,), ["input"], ["output"], img_axes
    if name == "lraspp_mobilenet_v3":
        net = torchvision.models.segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                                       num_classes=21)
        return SegmentationWrapper(net), (img,), ["input"], ["output"], img_axes
    if name == "bert_base":
        seq = 128
        ids = torch.randint(0, 30522, (1, seq))
        mask = torch.ones(1, seq, dtype=torch.long)
        types = torch.zeros(1, seq, dtype=torch.long)
        axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                "token_type_ids": {0: "batch", 1: "sequence"}, "last_hidden_state": {0: "batch", 1: "sequence"},
                "embedding": {0: "batch"}}
        return (BertEncoder(), (ids, mask, types), ["input_ids", "attention_mask", "token_type_ids"],
                ["last_hidden_state", "embedding"], axes)
    if name == "audio_lstm":
        x = torch.randn(1, 49, 40)
        axes = {"features": {0: "batch"}, "logits": {0: "batch"}}
        return AudioLstm(), (x,), ["features"], ["logits"], axes
    raise KeyError(name)


ALL = ["resnet50", "mobilenet_v3_large", "efficientnet_b0", "lraspp_mobilenet_v3", "bert_base", "audio_lstm"]


def export_module(module, inputs, in_names, out_names, axes, path):
    """Writes `module` (in eval mode) to `path` as ONNX opset OPSET with the given dynamic axes."""
    module.eval()
    tmp = path + ".tmp"
    kw = {}
    # PyTorch 2.9+ defaults to the dynamo exporter (opset 18, which the importer refuses): ask for
    # the TorchScript exporter wherever the argument exists. Debian's 1.13 has only that one.
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kw["dynamo"] = False
    with torch.no_grad():
        torch.onnx.export(module, inputs, tmp, opset_version=OPSET, input_names=in_names, output_names=out_names,
                          dynamic_axes=axes, do_constant_folding=True, **kw)
    os.replace(tmp, path)
    print(f"{path}: exported ({os.path.getsize(path) / 1e6:.1f} MB)")
    return path


def export(name, out_dir, force):
    path = os.path.join(out_dir, name + ".onnx")
    if os.path.exists(path) and not force:
        print(f"{path}: cached")
        return path
    torch.manual_seed(0)
    module, inputs, in_names, out_names, axes = spec(name)
    return export_module(module, inputs, in_names, out_names, axes, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="models/generated")
    ap.add_argument("--only", default="", help="comma-separated subset of " + ",".join(ALL))
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    names = [n for n in args.only.split(",") if n] or ALL
    for n in names:
        if n not in ALL:
            sys.exit(f"unknown model {n}; choose from {ALL}")
        export(n, args.out, args.force)


if __name__ == "__main__":
    main()
