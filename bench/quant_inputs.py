#!/usr/bin/python3
"""Structured, deterministic inputs for calibrating and checking quantized models.

Post-training quantization ranges come from the activations that calibration inputs produce;
uniform noise gives every layer a narrow, symmetric, featureless distribution that real inputs
never do, so ranges calibrated on it clip real data and checks run on it hide the clipping. These
inputs have structure instead, and are the same for the same seed on every machine:

- images: filled circles, rectangles, triangles, stripe patches over colour gradients, in varied
  colours and positions; normalised with the ImageNet mean/std, NCHW float32;
- BERT: [CLS] sentences [SEP] from a fixed word list, padded to the sequence length with the
  attention mask cleared over the padding (bench/export_models.py exports input_ids,
  attention_mask and token_type_ids, int64 [batch, 128]);
- audio_lstm: smooth log-mel-like frames [batch, 49, 40]: a few tones whose pitch glides over
  time, as Gaussian bumps across the 40 bands, over a slowly varying floor.

    import quant_inputs; feeds = quant_inputs.model_inputs(onnx_model, count=16, seed=0)
    /usr/bin/python3 bench/quant_inputs.py MODEL.onnx OUT_DIR [--count 8] [--seed 0]   (writes .pb)
"""
import argparse
import os
import zlib

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)

WORDS = ("the a of and to in is was for on with as by at from that this it he she they we you "
         "model image server memory network layer time data request batch queue thread device "
         "small large fast slow red green blue black white cat dog bird tree river city road "
         "house car train light night day runs reads writes waits sees finds makes holds moves "
         "under over before after between across near far quickly quietly again never always").split()
CLS, SEP, PAD = 101, 102, 0
BERT_VOCAB = 30522


def word_id(word):
    """A fixed id in BERT's vocabulary range (the benchmark BERT has random weights, so only
    stability and variety matter, not the real WordPiece id)."""
    return 1000 + zlib.crc32(word.encode()) % (BERT_VOCAB - 1000)


def _gradient(rng, h, w):
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)
    t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    return c0[:, None, None] * (1 - t) + c1[:, None, None] * t


def _shape_mask(rng, kind, h, w, yy, xx):
    cy, cx = rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w
    size = rng.uniform(0.08, 0.35) * min(h, w)
    if kind == "circle":
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= size ** 2
    if kind == "rectangle":
        ry, rx = size * rng.uniform(0.4, 1.2), size * rng.uniform(0.4, 1.2)
        return (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
    if kind == "triangle":
        pts = np.array([[cy - size, cx], [cy + size, cx - size], [cy + size, cx + size]])
        pts = pts + rng.uniform(-0.3, 0.3, pts.shape) * size
        signs = []
        for i in range(3):
            (y0, x0), (y1, x1) = pts[i], pts[(i + 1) % 3]
            signs.append((x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0))
        s = np.stack(signs)
        return np.all(s >= 0, 0) | np.all(s <= 0, 0)
    # stripes: a square patch of parallel bands at a random angle and period
    period, angle = rng.uniform(4, 16), rng.uniform(0, np.pi)
    bands = np.sin(2 * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy) / period) > 0
    return bands & (np.abs(yy - cy) <= size) & (np.abs(xx - cx) <= size)


KINDS = ("circle", "rectangle", "triangle", "stripes")


def labelled_image(rng, size, yy, xx):
    """One image (float32 [3, size, size], ImageNet-normalised) and the visible pixels of each
    shape kind (KINDS order): 2-6 shapes drawn over a gradient, later ones on top."""
    img = _gradient(rng, size, size)
    owner = np.full((size, size), -1, np.int8)
    for _ in range(rng.integers(2, 7)):
        k = int(rng.integers(0, 4))
        mask = _shape_mask(rng, KINDS[k], size, size, yy, xx)
        colour = rng.uniform(0, 255, 3)
        img = np.where(mask[None], colour[:, None, None], img)
        owner[mask] = k
    img = np.clip(img, 0, 255) / 255.0
    visible = np.bincount(owner[owner >= 0].ravel(), minlength=len(KINDS))
    return ((img - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None]).astype(np.float32), visible


def images(count, size=224, seed=0):
    """float32 [count, 3, size, size]: shapes over gradients, ImageNet-normalised."""
    out = np.empty((count, 3, size, size), np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for i in range(count):
        out[i], _ = labelled_image(np.random.default_rng([seed, i]), size, yy, xx)
    return out


def bert(count, seq=128, seed=0):
    """(input_ids, attention_mask, token_type_ids), int64 [count, seq]: one or two sentences."""
    ids = np.full((count, seq), PAD, np.int64)
    mask = np.zeros((count, seq), np.int64)
    types = np.zeros((count, seq), np.int64)
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        toks, segs = [CLS], [0]
        for segment in range(1 + int(rng.integers(0, 2))):
            n = int(rng.integers(6, max(7, seq // 3)))
            toks += [word_id(WORDS[j]) for j in rng.integers(0, len(WORDS), n)] + [SEP]
            segs += [segment] * (n + 1)
        toks, segs = toks[:seq], segs[:seq]
        ids[i, :len(toks)] = toks
        types[i, :len(segs)] = segs
        mask[i, :len(toks)] = 1
    return ids, mask, types


def audio(count, frames=49, bands=40, seed=0):
    """float32 [count, frames, bands]: gliding tones as Gaussian bumps over a smooth floor,
    roughly zero mean and unit variance like normalised log-mel features."""
    out = np.empty((count, frames, bands), np.float32)
    t = np.linspace(0, 1, frames)[:, None]
    f = np.arange(bands)[None, :]
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        x = 0.3 * np.sin(2 * np.pi * (rng.uniform(0.2, 1.5) * t + rng.uniform(0, 1))) * np.ones_like(f)
        x = x + 0.2 * np.cos(2 * np.pi * f / bands * rng.uniform(0.5, 2))
        for _ in range(rng.integers(1, 4)):
            start, end = rng.uniform(3, bands - 3, 2)
            centre = start + (end - start) * t
            width = rng.uniform(1, 4)
            onset, offset = sorted(rng.uniform(0, 1, 2))
            env = 1 / (1 + np.exp(-(t - onset) * 40)) / (1 + np.exp((t - offset) * 40))
            x = x + rng.uniform(1, 3) * env * np.exp(-((f - centre) ** 2) / (2 * width ** 2))
        out[i] = (x - x.mean()) / max(x.std(), 1e-6)
    return out


def _dims(vi):
    return [d.dim_value if d.dim_value > 0 else None for d in vi.type.tensor_type.shape.dim]


def model_inputs(model, count, seed=0):
    """{input name: array with batch `count`} for a benchmark model (an onnx.ModelProto),
    chosen by its graph inputs: three int64 inputs -> BERT, [b, 3, H, W] -> images,
    [b, T, F] -> audio frames."""
    inits = {t.name for t in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in inits]
    names = [vi.name for vi in inputs]
    if {"input_ids", "attention_mask"} <= set(names):
        seq = _dims(inputs[names.index("input_ids")])[1] or 128
        arrays = dict(zip(("input_ids", "attention_mask", "token_type_ids"), bert(count, seq, seed)))
        return {n: arrays[n] for n in names}
    if len(inputs) != 1 or inputs[0].type.tensor_type.elem_type != 1:
        raise ValueError(f"no structured inputs for graph inputs {names}")
    dims = _dims(inputs[0])
    if len(dims) == 4 and dims[1] == 3:
        return {names[0]: images(count, dims[2] or 224, seed)}
    if len(dims) == 3:
        return {names[0]: audio(count, dims[1] or 49, dims[2] or 40, seed)}
    raise ValueError(f"no structured inputs for {names[0]} of shape {dims}")


def main():
    import onnx
    from onnx import numpy_helper
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("out_dir")
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    m = onnx.load(args.model, load_external_data=False)
    for name, a in model_inputs(m, args.count, args.seed).items():
        path = os.path.join(args.out_dir, name + ".pb")
        with open(path, "wb") as f:
            f.write(numpy_helper.from_array(a, name).SerializeToString())
        print(path, a.dtype, "x".join(map(str, a.shape)))


if __name__ == "__main__":
    main()
