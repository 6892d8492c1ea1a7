"""Seed corpus for fuzz/grpc_request_fuzzer.cc: each file is one selector byte (the fuzzer's
metadata choice) followed by a serialized inference.ModelInferRequest.
Usage: PYTHONPATH=<dir with grpc_service_pb2.py> python3 fuzz/grpc_seeds.py CORPUS_DIR"""
import os
import struct
import sys

import grpc_service_pb2 as pb


def request(inputs, outputs=(), params=None):
    r = pb.ModelInferRequest(model_name="m", model_version="1", id="seed")
    for k, v in (params or {}).items():
        if isinstance(v, str):
            r.parameters[k].string_param = v
        else:
            r.parameters[k].int64_param = v
    for name, dtype, shape, fill in inputs:
        t = r.inputs.add(name=name, datatype=dtype, shape=shape)
        fill(r, t)
    for name, oparams in outputs:
        o = r.outputs.add(name=name)
        for k, v in oparams.items():
            if isinstance(v, str):
                o.parameters[k].string_param = v
            else:
                o.parameters[k].int64_param = v
    return r


def raw(data):
    return lambda r, t: r.raw_input_contents.append(data)


def ints(values):
    return lambda r, t: t.contents.int_contents.extend(values)


def floats(values):
    return lambda r, t: t.contents.fp32_contents.extend(values)


def shm(region, offset, size):
    def fill(r, t):
        t.parameters["shared_memory_region"].string_param = region
        t.parameters["shared_memory_offset"].int64_param = offset
        t.parameters["shared_memory_byte_size"].int64_param = size
    return fill


seeds = {
    # selector 0: INT32, unbatched [2,2] and [-1]; typed contents.
    "typed_int32": (0, request([("INPUT0", "INT32", [2, 2], ints([1, 2, 3, 4])),
                                ("INPUT1", "INT32", [3], ints([5, 6, 7]))],
                               [("OUTPUT0", {"class_count": 2}), ("OUTPUT1", {})],
                               {"priority": 1, "timeout": 100000, "tenant": "a"})),
    # selector 9: FP32 batched, raw contents.
    "raw_fp32_batched": (9, request([("INPUT0", "FP32", [2, 4], raw(struct.pack("<8f", *range(8)))),
                                     ("INPUT1", "FP32", [2, 1], raw(struct.pack("<2f", 1.5, -2)))],
                                    [("OUTPUT0", {"classification": 3})])),
    "typed_fp32": (1, request([("INPUT0", "FP32", [2, 2], floats([1, 2, 3, 4])),
                               ("INPUT1", "FP32", [1], floats([0.5]))])),
    # Shared memory: inputs read from r0, an output written to r1.
    "shm": (1, request([("INPUT0", "FP32", [2, 2], shm("r0", 0, 16)),
                        ("INPUT1", "FP32", [2], shm("r0", 64, 8))],
                       [("OUTPUT0", {"shared_memory_region": "r1", "shared_memory_byte_size": 16,
                                     "shared_memory_offset": 0})])),
    # Near-valid: both raw and typed contents, a wrong element count, an unknown output.
    "both_contents": (0, request([("INPUT0", "INT32", [2, 2], lambda r, t: (ints([1, 2, 3, 4])(r, t),
                                                                             raw(b"\0" * 16)(r, t))),
                                  ("INPUT1", "INT32", [1], raw(b"\0" * 4))])),
    "wrong_count": (0, request([("INPUT0", "INT32", [2, 2], ints([1, 2, 3])),
                                ("INPUT1", "INT32", [1], ints([1]))], [("NOPE", {})])),
    "int8_bool": (6, request([("INPUT0", "INT8", [2, 2], ints([1, -2, 300, 4])),
                              ("INPUT1", "INT8", [0], ints([]))])),
}

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, (selector, req) in seeds.items():
    with open(os.path.join(out, "seed_" + name), "wb") as f:
        f.write(bytes([selector]) + req.SerializeToString())
