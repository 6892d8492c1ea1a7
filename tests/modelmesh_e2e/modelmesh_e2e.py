#!/usr/bin/python3
"""Drives the real `gpuhive serve --modelmesh-port` process as ModelMesh does (issue 19).

The gRPC clients are generated here, at test time, with grpc_tools.protoc from
proto/modelmesh.proto and proto/grpc_service.proto (with the model_config.proto it imports): nothing of gpuhive's own C++ types is used.
ModelMesh's sequence: runtimeStatus (READY, capacity = budget), predictModelSize, loadModel of
three models (sizes against what /v2/gpuhive/devices reports), inference over KServe v2 gRPC by
injected model id and by the mm-model-id header, a cancelled load followed by unloadModel (no
leaked bytes), unloadModel (memory back, model gone), a load beyond capacity
(RESOURCE_EXHAUSTED, nothing left behind), and runtimeStatus over the unix socket.

Exit status: 0 pass, 1 fail, 77 skip (python3-grpcio / python3-grpc-tools / python3-onnx missing).
Usage: modelmesh_e2e.py --gpuhive build/bin/gpuhive --source-dir .
"""
import argparse
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

try:
    import grpc
    from grpc_tools import protoc
    import onnx
    from onnx import helper, TensorProto
except ImportError as e:  # pragma: no cover - the environment decides
    print(f"SKIP: {e} (apt-get install python3-grpcio python3-grpc-tools python3-onnx)")
    sys.exit(77)

MiB = 1 << 20
# Room for every model this test loads at once (their packed weights included: a MatMul's weights
# are held twice), so nothing is evicted between the checks; the "huge" model's file alone is
# larger than the budget.
BUDGET = 96 * MiB
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def generate_stubs(source_dir, out):
    proto_dir = os.path.join(source_dir, "proto")
    os.makedirs(out, exist_ok=True)
    for name in ("modelmesh.proto", "model_config.proto", "grpc_service.proto"):
        rc = protoc.main(["protoc", f"-I{proto_dir}", f"--python_out={out}", f"--grpc_python_out={out}",
                          os.path.join(proto_dir, name)])
        if rc != 0:
            raise SystemExit(f"protoc failed for {name}")
    sys.path.insert(0, out)


def matmul_model(path, dim, layers):
    """A chain of MatMuls with dim x dim float weights (layers * dim * dim * 4 bytes)."""
    inits, nodes, prev = [], [], "x"
    for i in range(layers):
        w = struct.pack("<f", 0.001) * (dim * dim)
        inits.append(helper.make_tensor(f"w{i}", TensorProto.FLOAT, [dim, dim], w, raw=True))
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"h{i}" if i + 1 < layers else "y"]))
        prev = f"h{i}"
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", dim])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", dim])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def http_json(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
        return json.loads(r.read())


def device(port):
    return http_json(port, "/v2/gpuhive/devices")[0]


def tiny_mlp_expected(x):
    w1 = [[((i * 8 + j) % 7 - 3) / 8 for j in range(8)] for i in range(16)]
    b1 = [(j % 3 - 1) / 4 for j in range(8)]
    w2 = [[((i * 4 + j) % 5 - 2) / 4 for j in range(4)] for i in range(8)]
    b2 = [j / 4 for j in range(4)]
    h = [max(0.0, sum(x[i] * w1[i][j] for i in range(16)) + b1[j]) for j in range(8)]
    return [sum(h[i] * w2[i][j] for i in range(8)) + b2[j] for j in range(4)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpuhive", required=True)
    ap.add_argument("--source-dir", required=True)
    args = ap.parse_args()
    data = os.path.join(args.source_dir, "tests", "data", "repository")

    work = tempfile.mkdtemp(prefix="gpuhive_mm_e2e_")
    proc = None
    try:
        generate_stubs(args.source_dir, os.path.join(work, "stubs"))
        import modelmesh_pb2 as mm
        import modelmesh_pb2_grpc as mm_grpc
        import grpc_service_pb2 as kserve
        import grpc_service_pb2_grpc as kserve_grpc

        repo = os.path.join(work, "repository")
        models = os.path.join(work, "models")
        os.makedirs(repo)
        os.makedirs(models)
        big = matmul_model(os.path.join(models, "big.onnx"), 512, 16)          # 16 MiB of weights
        slow = matmul_model(os.path.join(models, "slow.onnx"), 512, 12)        # 12 MiB
        huge = matmul_model(os.path.join(models, "huge.onnx"), 1024, 28)       # 112 MiB > budget
        sock = os.path.join(work, "mm.sock")

        cmd = [args.gpuhive, "serve", "--model-repository", repo, "--http-port", "0", "--grpc-port", "0",
               "--modelmesh-port", "0", "--modelmesh-socket", sock, "--memory-budget", f"{BUDGET}",
               "--cpu-workers", "1", "--threads-per-worker", "1", "--no-preload",
               "--modelmesh-load-timeout-secs", "120", "--modelmesh-default-model-size", "8MiB"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        ports = {}
        for line in proc.stdout:
            if line.startswith("gpuhive ready"):
                ports = dict(kv.split("=") for kv in line.split()[2:])
                break
        if not check(int(ports.get("modelmesh_port", 0)) > 0, f"serve started with a ModelMesh port: {ports}"):
            return 1
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
        http_port, grpc_port, mm_port = (int(ports[k]) for k in ("http_port", "grpc_port", "modelmesh_port"))

        mm_channel = grpc.insecure_channel(f"127.0.0.1:{mm_port}")
        runtime = mm_grpc.ModelRuntimeStub(mm_channel)
        infer = kserve_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(f"127.0.0.1:{grpc_port}"))

        # --- runtimeStatus ------------------------------------------------------------------------
        st = runtime.runtimeStatus(mm.RuntimeStatusRequest(), timeout=30)
        check(st.status == mm.RuntimeStatusResponse.READY, "runtimeStatus READY")
        check(st.capacityInBytes == BUDGET == device(http_port)["budget_bytes"],
              f"capacityInBytes {st.capacityInBytes} = budget {BUDGET} = /v2/gpuhive/devices budget")
        check(st.modelLoadingTimeoutMs == 120000 and st.defaultModelSizeInBytes == 8 * MiB,
              "load timeout and default model size as configured")
        check(st.maxLoadingConcurrency >= 1 and not st.limitModelConcurrency, "loading concurrency reported")
        check(st.runtimeVersion.startswith("gpuhive"), f"runtimeVersion '{st.runtimeVersion}'")
        mi = st.methodInfos.get("inference.GRPCInferenceService/ModelInfer")
        check(mi is not None and list(mi.idInjectionPath) == [1], "ModelInfer id injection at model_name (field 1)")

        # --- predictModelSize and three loads -------------------------------------------------------
        pred = runtime.predictModelSize(mm.PredictModelSizeRequest(modelId="big", modelType="onnx", modelPath=big),
                                        timeout=30)
        check(pred.sizeInBytes >= os.path.getsize(big), f"predictModelSize {pred.sizeInBytes} >= file size")
        check(device(http_port)["used_by_model"] == {}, "predictModelSize loads nothing")

        loads = {"tiny-mlp__isvc-0a1b": os.path.join(data, "tiny_mlp"),
                 "add/sub:v1": os.path.join(data, "add_sub"),
                 "big": big}
        sizes = {}
        for model_id, path in loads.items():
            r = runtime.loadModel(mm.LoadModelRequest(modelId=model_id, modelType="onnx", modelPath=path,
                                                      modelKey="{}"), timeout=120)
            sizes[model_id] = r.sizeInBytes
            check(r.sizeInBytes > 0, f"loadModel '{model_id}': sizeInBytes {r.sizeInBytes}")
            ms = runtime.modelSize(mm.ModelSizeRequest(modelId=model_id), timeout=30)
            check(ms.sizeInBytes == r.sizeInBytes, f"modelSize '{model_id}' = loadModel's size")
        used = device(http_port)["used_by_model"]
        big_used = used.get("big", 0)
        check(big_used > 16 * MiB * 0.99, f"/v2/gpuhive/devices: 'big' holds {big_used} bytes")
        check(abs(sizes["big"] - big_used) <= 0.10 * big_used,
              f"'big' sizeInBytes {sizes['big']} within 10% of the device's {big_used}")
        tiny_used = used.get("tiny-mlp__isvc-0a1b", 0)
        check(tiny_used > 0 and sizes["tiny-mlp__isvc-0a1b"] >= tiny_used,
              f"tiny sizeInBytes {sizes['tiny-mlp__isvc-0a1b']} >= device bytes {tiny_used}")

        # --- inference over KServe v2 gRPC -----------------------------------------------------------
        x = [i * 0.25 for i in range(16)]
        req = kserve.ModelInferRequest(model_name="tiny-mlp__isvc-0a1b")  # the id, as ModelMesh injects it
        t = req.inputs.add(name="INPUT0", datatype="FP32", shape=[1, 16])
        req.raw_input_contents.append(struct.pack("<16f", *x))
        resp = infer.ModelInfer(req, timeout=30)
        got = list(struct.unpack("<4f", resp.raw_output_contents[0]))
        want = tiny_mlp_expected(x)
        check(all(abs(a - b) < 1e-4 for a, b in zip(got, want)), f"tiny_mlp by injected id: {got} == {want}")

        req = kserve.ModelInferRequest(model_name="ignored-when-the-header-is-set")
        for n in ("INPUT0", "INPUT1"):
            req.inputs.add(name=n, datatype="INT32", shape=[1, 16])
        req.raw_input_contents.append(struct.pack("<16i", *range(16)))
        req.raw_input_contents.append(struct.pack("<16i", *([3] * 16)))
        resp = infer.ModelInfer(req, metadata=[("mm-model-id", "add/sub:v1")], timeout=30)
        out0 = list(struct.unpack("<16i", resp.raw_output_contents[0]))
        check(out0 == [i + 3 for i in range(16)], "add_sub by mm-model-id header (an id that is no model name)")

        # --- a cancelled load followed by unloadModel -------------------------------------------------
        before = device(http_port)["used_bytes"]
        fut = runtime.loadModel.future(mm.LoadModelRequest(modelId="slow", modelType="onnx", modelPath=slow),
                                       timeout=120)
        time.sleep(0.002)
        fut.cancel()
        runtime.unloadModel(mm.UnloadModelRequest(modelId="slow"), timeout=120)
        dev = device(http_port)
        check("slow" not in dev["used_by_model"], f"cancelled load then unload: not on the device {dev['used_by_model']}")
        check(dev["used_bytes"] <= before, f"cancelled load then unload: used bytes {dev['used_bytes']} <= {before}")
        try:
            runtime.modelSize(mm.ModelSizeRequest(modelId="slow"), timeout=30)
            check(False, "modelSize after the cancelled load's unload is NOT_FOUND")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.NOT_FOUND, f"modelSize after unload: {e.code()}")

        # --- unloadModel -------------------------------------------------------------------------------
        before = device(http_port)["used_bytes"]
        runtime.unloadModel(mm.UnloadModelRequest(modelId="big"), timeout=60)
        dev = device(http_port)
        check("big" not in dev["used_by_model"], "unloadModel: 'big' is off the device")
        check(before - dev["used_bytes"] >= big_used * 0.99,
              f"unloadModel gave back {before - dev['used_bytes']} of 'big''s {big_used} bytes")
        try:
            infer.ModelInfer(kserve.ModelInferRequest(model_name="big"), timeout=30)
            check(False, "inference on an unloaded model fails")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.NOT_FOUND, f"inference on the unloaded model: {e.code()}")
        try:
            names = [m.name for m in infer.RepositoryIndex(kserve.RepositoryIndexRequest(), timeout=30).models]
            check("big" not in names and "slow" not in names, f"repository index after unloads: {names}")
        except grpc.RpcError as e:
            check(False, f"repository index: {e}")
        runtime.unloadModel(mm.UnloadModelRequest(modelId="never-loaded"), timeout=30)
        check(True, "unloadModel of an unknown id is OK")

        # --- a load beyond capacity ----------------------------------------------------------------------
        before = device(http_port)["used_bytes"]
        try:
            runtime.loadModel(mm.LoadModelRequest(modelId="huge", modelType="onnx", modelPath=huge), timeout=120)
            check(False, "a model larger than the budget is refused")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, f"load beyond capacity: {e.code()} {e.details()}")
        dev = device(http_port)
        check("huge" not in dev["used_by_model"] and dev["used_bytes"] <= before,
              "the refused load left nothing on the device")
        check(not os.path.exists(os.path.join(repo, "huge")), "the refused load left no repository directory")

        # --- bad requests ----------------------------------------------------------------------------------
        for model_id, path, what in (("x", "relative/path.onnx", "a relative path"),
                                     ("x", os.path.join(models, "..", "models", "big.onnx"), "a path with '..'"),
                                     ("", big, "an empty id")):
            try:
                runtime.loadModel(mm.LoadModelRequest(modelId=model_id, modelPath=path), timeout=30)
                check(False, f"{what} is refused")
            except grpc.RpcError as e:
                check(e.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{what}: {e.code()}")

        # --- the unix socket -------------------------------------------------------------------------------
        unix = mm_grpc.ModelRuntimeStub(grpc.insecure_channel(f"unix:{sock}"))
        ms = unix.modelSize(mm.ModelSizeRequest(modelId="tiny-mlp__isvc-0a1b"), timeout=30)
        check(ms.sizeInBytes == sizes["tiny-mlp__isvc-0a1b"], "modelSize over the unix socket")

        for model_id in ("tiny-mlp__isvc-0a1b", "add/sub:v1"):
            runtime.unloadModel(mm.UnloadModelRequest(modelId=model_id), timeout=60)
        dev = device(http_port)
        check(dev["used_by_model"] == {}, f"every model unloaded: {dev['used_by_model']}")
        check(os.listdir(repo) == [], f"the scratch repository is empty: {os.listdir(repo)}")

        proc.send_signal(signal.SIGTERM)
        check(proc.wait(timeout=60) == 0, "SIGTERM: clean exit")
        proc = None
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed:\n  " + "\n  ".join(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
