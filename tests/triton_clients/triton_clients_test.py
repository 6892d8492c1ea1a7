#!/usr/bin/python3
"""Triton-style clients against the gpuhive binary (issue 18).

gRPC stubs are generated at test time from proto/grpc_service.proto and proto/model_config.proto
with grpc_tools.protoc (Debian's python3-grpc-tools), as a Triton user would generate KServe v2
stubs; HTTP requests are plain urllib. Usage:
  triton_clients_test.py --binary build/src/cli/gpuhive --source-dir . [unittest args]
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

ARGS = None
pb = None        # grpc_service_pb2
pb_grpc = None   # grpc_service_pb2_grpc
grpc = None


def generate_stubs(out_dir):
    global pb, pb_grpc, grpc
    from grpc_tools import protoc
    proto_dir = os.path.join(ARGS.source_dir, "proto")
    rc = protoc.main(["protoc", "-I" + proto_dir, "--python_out=" + out_dir, "--grpc_python_out=" + out_dir,
                      os.path.join(proto_dir, "grpc_service.proto"), os.path.join(proto_dir, "model_config.proto")])
    if rc != 0:
        raise RuntimeError("grpc_tools.protoc failed")
    sys.path.insert(0, out_dir)
    import grpc as grpc_module
    import grpc_service_pb2
    import grpc_service_pb2_grpc
    grpc, pb, pb_grpc = grpc_module, grpc_service_pb2, grpc_service_pb2_grpc


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(v)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The gpuhive binary serving a private copy of tests/data/repository.

    With `config` (a dict), the server is started as `serve --config FILE` alone, the file holding
    the repository, the ports and every key of `config`; otherwise with flags (and `extra_args`).
    `expect_exit` starts it and waits for it to exit (a refused start)."""

    def __init__(self, extra_args=(), config=None, expect_exit=False, copy_repository=True):
        self.tmp = tempfile.mkdtemp(prefix="gpuhive_triton_")
        self.repo = os.path.join(self.tmp, "repository")
        if copy_repository:
            shutil.copytree(os.path.join(ARGS.source_dir, "tests", "data", "repository"), self.repo)
        self.http_port, self.grpc_port = free_port(), free_port()
        # The child writes through its own O_APPEND handle and output() reads through a fresh one: a
        # shared "w+" handle shares the file offset, so output()'s seek(0) made the child's next log
        # line overwrite the start of the log (the options line, seen as a CI failure).
        self.log_path = os.path.join(self.tmp, "server.log")
        self.log = open(self.log_path, "a")
        self.channel = None
        if config is None:
            self.args = [ARGS.binary, "serve", "--http-port", str(self.http_port),
                         "--grpc-port", str(self.grpc_port), "--cpu-workers", "2", "--threads-per-worker", "1"]
            if copy_repository:
                self.args += ["--model-repository", self.repo]
            self.args += list(extra_args)
        else:
            values = {"model-repository": self.repo, "http-port": self.http_port, "grpc-port": self.grpc_port,
                      "cpu-workers": 2, "threads-per-worker": 1}
            values.update(config)
            path = os.path.join(self.tmp, "gpuhive.toml")
            with open(path, "w") as f:
                for k, v in values.items():
                    f.write("%s = %s\n" % (k, toml_value(v)))
            self.args = [ARGS.binary, "serve", "--config", path] + list(extra_args)
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        if expect_exit:
            self.returncode = self.proc.wait(timeout=60)
            return
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("gpuhive exited: " + self.output())
            ready = [l for l in self.output().splitlines() if l.startswith("gpuhive ready ")]
            if ready:
                fields = dict(kv.split("=") for kv in ready[0].split()[2:])
                self.http_port, self.grpc_port = int(fields["http_port"]), int(fields["grpc_port"])
                self.metrics_port = int(fields.get("metrics_port", 0))
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("gpuhive did not become ready: " + self.output())
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.grpc_port)
        self.stub = pb_grpc.GRPCInferenceServiceStub(self.channel)

    def options(self):
        """The effective options the server logged at start."""
        for line in self.output().splitlines():
            if "serve: options: " in line:
                return json.loads(line.split("serve: options: ", 1)[1])
            if '"options: ' in line:  # JSON log format
                return json.loads(json.loads(line)["msg"].split("options: ", 1)[1])
        raise AssertionError("no options line in the log:\n" + self.output())

    def output(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def http(self, method, path, body=None, headers=None):
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.http_port, path), data=data, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def http_json(self, method, path, body=None):
        status, data = self.http(method, path, json.dumps(body) if body is not None else None)
        return status, json.loads(data) if data else None

    def close(self):
        if self.channel is not None:
            self.channel.close()
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def tiny_mlp_request(rows=1, model="tiny_mlp"):
    req = pb.ModelInferRequest(model_name=model)
    t = req.inputs.add(name="INPUT0", datatype="FP32", shape=[rows, 16])
    t.contents.fp32_contents.extend([i * 0.25 - r for r in range(rows) for i in range(16)])
    return req


class StatisticsAndConfig(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def test_grpc_statistics_follow_inferences(self):
        s = self.server
        before = s.stub.ModelStatistics(pb.ModelStatisticsRequest(name="tiny_mlp"))
        base = before.model_stats[0].inference_stats.success.count
        for _ in range(4):
            s.stub.ModelInfer(tiny_mlp_request(rows=2))
        after = s.stub.ModelStatistics(pb.ModelStatisticsRequest(name="tiny_mlp", version="1"))
        self.assertEqual(len(after.model_stats), 1)
        st = after.model_stats[0]
        self.assertEqual(st.name, "tiny_mlp")
        self.assertEqual(st.version, "1")
        self.assertEqual(st.inference_stats.success.count, base + 4)
        self.assertGreater(st.inference_stats.compute_infer.ns, 0)
        self.assertGreaterEqual(st.inference_count, 8)
        self.assertGreater(st.last_inference, 0)
        self.assertEqual(sum(b.compute_infer.count for b in st.batch_stats), st.execution_count)
        # HTTP says the same.
        status, j = s.http_json("GET", "/v2/models/tiny_mlp/versions/1/stats")
        self.assertEqual(status, 200)
        self.assertEqual(j["model_stats"][0]["inference_count"], st.inference_count)
        self.assertEqual(j["model_stats"][0]["inference_stats"]["success"]["count"], base + 4)
        with self.assertRaises(grpc.RpcError) as e:
            s.stub.ModelStatistics(pb.ModelStatisticsRequest(name="no_such_model"))
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_model_config_over_grpc_and_http(self):
        s = self.server
        c = s.stub.ModelConfig(pb.ModelConfigRequest(name="tiny_mlp")).config
        self.assertEqual(c.name, "tiny_mlp")
        self.assertEqual(c.max_batch_size, 8)
        self.assertEqual(list(c.input[0].dims), [16])
        self.assertEqual(list(c.dynamic_batching.preferred_batch_size), [4, 8])
        status, j = s.http_json("GET", "/v2/models/tiny_mlp/config")
        self.assertEqual(status, 200)
        # What perf_analyzer reads.
        self.assertEqual(j["max_batch_size"], 8)
        self.assertEqual(j["input"][0]["dims"], [16])
        self.assertEqual(j["input"][0]["data_type"], "TYPE_FP32")
        self.assertIn("dynamic_batching", j)
        status, _ = s.http_json("GET", "/v2/models/no_such_model/config")
        self.assertEqual(status, 404)


def decode_bytes(raw):
    """KServe BYTES contents: 4-byte little-endian length, then the bytes, per element."""
    out, i = [], 0
    while i < len(raw):
        n = int.from_bytes(raw[i:i + 4], "little")
        out.append(raw[i + 4:i + 4 + n].decode())
        i += 4 + n
    return out


def floats(raw):
    import struct
    return list(struct.unpack("<%df" % (len(raw) // 4), raw))


class StreamingAndClassification(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def test_stream_answers_every_request_with_errors_in_place(self):
        s = self.server
        good = [tiny_mlp_request(rows=r + 1) for r in range(3)]
        for i, g in enumerate(good):
            g.id = "good-%d" % i
        bad_input = tiny_mlp_request()
        bad_input.id = "bad-input"
        bad_input.inputs[0].name = "NOPE"
        unknown = tiny_mlp_request(model="no_such_model")
        unknown.id = "unknown"
        requests = [good[0], bad_input, good[1], unknown, good[2]]
        responses = list(s.stub.ModelStreamInfer(iter(requests), timeout=60))
        self.assertEqual(len(responses), 5)
        errors = [r.error_message for r in responses if r.error_message]
        self.assertEqual(len(errors), 2, errors)
        self.assertTrue(any("NOPE" in e for e in errors), errors)
        self.assertTrue(any("no_such_model" in e for e in errors), errors)
        by_id = {r.infer_response.id: r.infer_response for r in responses if not r.error_message}
        self.assertEqual(sorted(by_id), ["good-0", "good-1", "good-2"])
        for i, g in enumerate(good):
            unary = s.stub.ModelInfer(g)
            self.assertEqual(by_id["good-%d" % i].raw_output_contents, unary.raw_output_contents)
            self.assertEqual(list(by_id["good-%d" % i].outputs[0].shape), [i + 1, 4])
        # An empty stream ends cleanly, and the server still serves.
        self.assertEqual(list(s.stub.ModelStreamInfer(iter([]), timeout=30)), [])
        self.assertEqual(len(s.stub.ModelInfer(tiny_mlp_request()).outputs), 1)

    def test_classification_over_grpc_and_http(self):
        s = self.server
        full = s.stub.ModelInfer(tiny_mlp_request(rows=2))
        values = floats(full.raw_output_contents[0])
        req = tiny_mlp_request(rows=2)
        out = req.outputs.add(name="OUTPUT0")
        out.parameters["classification"].int64_param = 2
        resp = s.stub.ModelInfer(req)
        self.assertEqual(resp.outputs[0].datatype, "BYTES")
        self.assertEqual(list(resp.outputs[0].shape), [2, 2])
        got = decode_bytes(resp.raw_output_contents[0])
        for row in range(2):
            rv = values[row * 4:(row + 1) * 4]
            want = sorted(range(4), key=lambda i: (-rv[i], i))[:2]
            entries = got[row * 2:(row + 1) * 2]
            self.assertEqual([int(e.split(":")[1]) for e in entries], want, entries)
            for e in entries:
                value, index = e.split(":")[:2]
                self.assertAlmostEqual(float(value), rv[int(index)], places=5)
        # HTTP: Triton's "classification" output parameter, JSON data as strings.
        body = {"inputs": [{"name": "INPUT0", "shape": [2, 16], "datatype": "FP32",
                            "data": list(req.inputs[0].contents.fp32_contents)}],
                "outputs": [{"name": "OUTPUT0", "parameters": {"classification": 2}}]}
        status, j = s.http_json("POST", "/v2/models/tiny_mlp/infer", body)
        self.assertEqual(status, 200, j)
        self.assertEqual(j["outputs"][0]["datatype"], "BYTES")
        self.assertEqual(j["outputs"][0]["shape"], [2, 2])
        self.assertEqual([e.split(":")[1] for e in j["outputs"][0]["data"]], [g.split(":")[1] for g in got])
        # A count below 1 is the client's mistake.
        bad = tiny_mlp_request()
        bad.outputs.add(name="OUTPUT0").parameters["classification"].int64_param = 0
        with self.assertRaises(grpc.RpcError) as e:
            s.stub.ModelInfer(bad)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        body["outputs"][0]["parameters"]["classification"] = 0
        self.assertEqual(s.http_json("POST", "/v2/models/tiny_mlp/infer", body)[0], 400)


class SystemSharedMemory(unittest.TestCase):
    """Triton's system shared memory extension over HTTP and gRPC, with a POSIX region made here."""

    @classmethod
    def setUpClass(cls):
        from multiprocessing import shared_memory
        cls.server = Server()
        cls.shm = shared_memory.SharedMemory(create=True, size=256)
        cls.key = "/" + cls.shm.name

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        cls.shm.close()
        cls.shm.unlink()

    def register(self, name, offset, size, key=None):
        return self.server.http_json("POST", "/v2/systemsharedmemory/region/%s/register" % name,
                                     {"key": key or self.key, "offset": offset, "byte_size": size})

    def test_inputs_and_outputs_through_shared_memory(self):
        import struct
        s = self.server
        s.http("POST", "/v2/systemsharedmemory/unregister")
        self.assertEqual(self.register("inputs", 0, 128)[0], 200)
        s.stub.SystemSharedMemoryRegister(pb.SystemSharedMemoryRegisterRequest(
            name="outputs", key=self.key, offset=128, byte_size=128))
        status, regions = s.http_json("GET", "/v2/systemsharedmemory/status")
        self.assertEqual(status, 200)
        self.assertEqual(sorted(r["name"] for r in regions), ["inputs", "outputs"])
        g = s.stub.SystemSharedMemoryStatus(pb.SystemSharedMemoryStatusRequest())
        self.assertEqual(g.regions["outputs"].offset, 128)
        self.assertEqual(g.regions["inputs"].byte_size, 128)

        plain = tiny_mlp_request(rows=2)
        values = list(plain.inputs[0].contents.fp32_contents)
        want = s.stub.ModelInfer(plain).raw_output_contents[0]
        self.shm.buf[0:128] = struct.pack("<32f", *values)

        # gRPC: the input read from "inputs", the output written to "outputs".
        req = pb.ModelInferRequest(model_name="tiny_mlp")
        t = req.inputs.add(name="INPUT0", datatype="FP32", shape=[2, 16])
        t.parameters["shared_memory_region"].string_param = "inputs"
        t.parameters["shared_memory_byte_size"].int64_param = 128
        o = req.outputs.add(name="OUTPUT0")
        o.parameters["shared_memory_region"].string_param = "outputs"
        o.parameters["shared_memory_byte_size"].int64_param = 128
        resp = s.stub.ModelInfer(req)
        self.assertEqual(resp.outputs[0].parameters["shared_memory_region"].string_param, "outputs")
        self.assertEqual(resp.raw_output_contents[0], b"")
        self.assertEqual(bytes(self.shm.buf[128:160]), want)

        # HTTP: the same through JSON parameters; the output lands at an offset inside the region.
        self.shm.buf[128:256] = bytes(128)
        body = {"inputs": [{"name": "INPUT0", "shape": [2, 16], "datatype": "FP32",
                            "parameters": {"shared_memory_region": "inputs", "shared_memory_byte_size": 128}}],
                "outputs": [{"name": "OUTPUT0", "parameters": {"shared_memory_region": "outputs",
                                                               "shared_memory_offset": 64,
                                                               "shared_memory_byte_size": 64}}]}
        status, j = s.http_json("POST", "/v2/models/tiny_mlp/infer", body)
        self.assertEqual(status, 200, j)
        self.assertNotIn("data", j["outputs"][0])
        self.assertEqual(j["outputs"][0]["parameters"]["shared_memory_byte_size"], 32)
        self.assertEqual(bytes(self.shm.buf[192:224]), want)

    def test_bad_regions_and_windows_are_client_errors(self):
        s = self.server
        s.http("POST", "/v2/systemsharedmemory/unregister")
        self.assertEqual(self.register("r", 0, 128)[0], 200)
        self.assertEqual(self.register("r", 0, 128)[0], 409)                  # the name is taken
        self.assertEqual(self.register("big", 0, 4096)[0], 400)               # beyond the object
        self.assertEqual(self.register("off", 250, 16)[0], 400)               # offset + size beyond it
        self.assertEqual(self.register("nokey", 0, 16, key="/gpuhive_no_such_key")[0], 404)
        self.assertEqual(s.http_json("POST", "/v2/systemsharedmemory/region/x/register", {"key": 3})[0], 400)
        self.assertEqual(s.http("POST", "/v2/systemsharedmemory/region/x/register", "not json")[0], 400)
        self.assertEqual(s.http("GET", "/v2/systemsharedmemory/region/nope/status")[0], 404)
        with self.assertRaises(grpc.RpcError) as e:
            s.stub.SystemSharedMemoryRegister(pb.SystemSharedMemoryRegisterRequest(name="r", key=self.key, byte_size=8))
        self.assertEqual(e.exception.code(), grpc.StatusCode.ALREADY_EXISTS)

        def infer(in_size, in_offset=0, out_size=128, region="r"):
            body = {"inputs": [{"name": "INPUT0", "shape": [2, 16], "datatype": "FP32",
                                "parameters": {"shared_memory_region": region, "shared_memory_byte_size": in_size,
                                               "shared_memory_offset": in_offset}}],
                    "outputs": [{"name": "OUTPUT0", "parameters": {"shared_memory_region": "r",
                                                                   "shared_memory_byte_size": out_size}}]}
            return s.http_json("POST", "/v2/models/tiny_mlp/infer", body)

        self.assertEqual(infer(128)[0], 200)
        self.assertEqual(infer(64)[0], 400)                # not the input's size
        self.assertEqual(infer(128, in_offset=64)[0], 400)  # past the region's end
        self.assertEqual(infer(128, out_size=16)[0], 400)   # the output does not fit its window
        self.assertEqual(infer(128, region="gone")[0], 400)
        req = tiny_mlp_request()
        req.inputs[0].ClearField("contents")
        req.inputs[0].parameters["shared_memory_region"].string_param = "r"
        req.inputs[0].parameters["shared_memory_byte_size"].int64_param = 1 << 40
        with self.assertRaises(grpc.RpcError) as e:
            s.stub.ModelInfer(req)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        # Unregistering one, then all; the server keeps serving.
        s.stub.SystemSharedMemoryUnregister(pb.SystemSharedMemoryUnregisterRequest(name="r"))
        self.assertEqual(s.http_json("GET", "/v2/systemsharedmemory/status")[1], [])
        self.assertEqual(infer(128)[0], 400)
        self.assertEqual(s.http("POST", "/v2/systemsharedmemory/unregister")[0], 200)
        self.assertEqual(len(s.stub.ModelInfer(tiny_mlp_request()).outputs), 1)


class LoadWithConfigOverride(unittest.TestCase):
    """Triton's load with parameters.config: the given config replaces the model's config.pbtxt."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def infer_rows(self, rows):
        body = {"inputs": [{"name": "INPUT0", "shape": [rows, 16], "datatype": "FP32", "data": [0.25] * (16 * rows)}]}
        return self.server.http_json("POST", "/v2/models/tiny_mlp/infer", body)[0]

    def test_override_over_http_and_grpc_then_back_to_the_file(self):
        s = self.server
        status, config = s.http_json("GET", "/v2/models/tiny_mlp/config")
        self.assertEqual(config["max_batch_size"], 8)
        self.assertEqual(self.infer_rows(8), 200)
        config["max_batch_size"] = 4
        config["dynamic_batching"]["preferred_batch_size"] = [2, 4]
        status, body = s.http_json("POST", "/v2/repository/models/tiny_mlp/load",
                                   {"parameters": {"config": json.dumps(config)}})
        self.assertEqual(status, 200, body)
        status, now = s.http_json("GET", "/v2/models/tiny_mlp/config")
        self.assertEqual(now["max_batch_size"], 4)
        self.assertEqual(now["dynamic_batching"]["preferred_batch_size"], [2, 4])
        self.assertEqual(self.infer_rows(8), 400)   # beyond the new max_batch_size
        self.assertEqual(self.infer_rows(4), 200)
        # gRPC, Triton's client form: parameters["config"].string_param.
        grpc_config = {"name": "tiny_mlp", "platform": "onnxruntime_onnx", "max_batch_size": 2,
                       "input": [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [16]}],
                       "output": [{"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": [4]}]}
        req = pb.RepositoryModelLoadRequest(model_name="tiny_mlp")
        req.parameters["config"].string_param = json.dumps(grpc_config)
        s.stub.RepositoryModelLoad(req)
        self.assertEqual(s.stub.ModelConfig(pb.ModelConfigRequest(name="tiny_mlp")).config.max_batch_size, 2)
        self.assertEqual(self.infer_rows(4), 400)
        self.assertEqual(self.infer_rows(2), 200)
        # A plain load reads config.pbtxt again.
        self.assertEqual(s.http("POST", "/v2/repository/models/tiny_mlp/load")[0], 200)
        self.assertEqual(s.http_json("GET", "/v2/models/tiny_mlp/config")[1]["max_batch_size"], 8)
        self.assertEqual(self.infer_rows(8), 200)

    def test_labels_from_label_filename(self):
        """Triton's label_filename: classification entries become "<value>:<index>:<label>" (an index
        beyond the file's lines keeps "<value>:<index>"); a file outside the model's directory or a
        missing one fails the load with a 400 naming it; a plain load reads config.pbtxt again."""
        s = self.server
        with open(os.path.join(s.repo, "tiny_mlp", "labels.txt"), "w") as f:
            f.write("cat\r\ndog\nbird\n")  # three labels for four classes; CRLF accepted
        status, config = s.http_json("GET", "/v2/models/tiny_mlp/config")
        config["output"][0]["label_filename"] = "labels.txt"
        load = "/v2/repository/models/tiny_mlp/load"
        status, body = s.http_json("POST", load, {"parameters": {"config": json.dumps(config)}})
        self.assertEqual(status, 200, body)
        self.assertEqual(s.http_json("GET", "/v2/models/tiny_mlp/config")[1]["output"][0]["label_filename"],
                         "labels.txt")
        labels = ["cat", "dog", "bird"]
        req = tiny_mlp_request(rows=2)
        req.outputs.add(name="OUTPUT0").parameters["classification"].int64_param = 4
        got = decode_bytes(s.stub.ModelInfer(req).raw_output_contents[0])
        self.assertEqual(len(got), 8)
        for e in got:
            parts = e.split(":")
            index = int(parts[1])
            self.assertEqual(parts[2:], [labels[index]] if index < 3 else [], e)
        body = {"inputs": [{"name": "INPUT0", "shape": [2, 16], "datatype": "FP32",
                            "data": list(req.inputs[0].contents.fp32_contents)}],
                "outputs": [{"name": "OUTPUT0", "parameters": {"classification": 4}}]}
        status, j = s.http_json("POST", "/v2/models/tiny_mlp/infer", body)
        self.assertEqual(status, 200, j)
        self.assertEqual(j["outputs"][0]["data"], got)
        for name, fragment in (("../identity_fp32/config.pbtxt", "model's directory"),
                               ("/etc/passwd", "model's directory"), ("missing.txt", "is not a file")):
            config["output"][0]["label_filename"] = name
            status, body = s.http_json("POST", load, {"parameters": {"config": json.dumps(config)}})
            self.assertEqual(status, 400, body)
            self.assertIn("label_filename '%s' " % name, body["error"])
            self.assertIn(fragment, body["error"])
            self.assertNotIn(s.repo, body["error"])  # no server path in what any client reads
        self.assertEqual(s.http("POST", load)[0], 200)
        status, plain = s.http_json("GET", "/v2/models/tiny_mlp/config")
        self.assertEqual(plain["output"][0].get("label_filename", ""), "")

    def test_bad_overrides_are_client_errors(self):
        s = self.server
        load = "/v2/repository/models/tiny_mlp/load"
        for body, fragment in (({"parameters": {"config": "{not json"}}, "JSON"),
                               ({"parameters": {"config": json.dumps({"name": "other"})}}, "other"),
                               ({"parameters": {"config": json.dumps({"name": "tiny_mlp", "max_batch_size": -1})}},
                                "max_batch_size"),
                               ({"parameters": {"file:1/model.onnx": "AAAA"}}, "not supported"),
                               ({"parameters": {"config": 7}}, "string")):
            status, j = s.http_json("POST", load, body)
            self.assertEqual(status, 400, (body, j))
            self.assertIn(fragment, j["error"])
        self.assertEqual(s.http("POST", load, "[1]")[0], 400)
        req = pb.RepositoryModelLoadRequest(model_name="tiny_mlp")
        req.parameters["config"].string_param = "{"
        with self.assertRaises(grpc.RpcError) as e:
            s.stub.RepositoryModelLoad(req)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(self.infer_rows(1), 200)


# ---- serve --config FILE alone: every documented key applied (one test per key) -------------------

def _infer_status(server, model="tiny_mlp", params=None):
    body = {"inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "data": [0.5] * 16}]}
    if params:
        body["parameters"] = params
    return server.http_json("POST", "/v2/models/%s/infer" % model, body)[0]


def _check_options(key, want):
    def check(test, server):
        test.assertEqual(server.options()[key], want, key)
    return check


def _check_budget(test, server):
    _check_options("memory-budget", "1GiB")(test, server)
    status, devices = server.http_json("GET", "/v2/gpuhive/devices")
    test.assertEqual(devices[0]["budget_bytes"], 1 << 30)


def _check_explicit(test, server):
    test.assertEqual(server.options()["model-control-mode"], "explicit")
    test.assertEqual(server.http("GET", "/v2/models/tiny_mlp")[0], 404)


def _check_load_model(test, server):
    test.assertEqual(_infer_status(server), 200)
    test.assertEqual(server.http("GET", "/v2/models/add_sub")[0], 404)


def _check_grpc_off(test, server):
    test.assertEqual(server.options()["allow-grpc"], False)
    test.assertEqual(server.grpc_port, 0)


def _check_http_off(test, server):
    test.assertEqual(server.http_port, 0)
    test.assertTrue(server.stub.ServerReady(pb.ServerReadyRequest()).ready)


def _check_max_body(test, server):
    body = json.dumps({"inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "data": [0.5] * 400}]})
    test.assertEqual(server.http("POST", "/v2/models/tiny_mlp/infer", body)[0], 413)


def _check_workers(test, server):
    test.assertEqual(server.options()["cpu-workers"], 3)
    test.assertIn("4 worker(s) x 1 thread(s) (one kept for priority 1)", server.output())


def _check_tenant(test, server):
    test.assertEqual(_infer_status(server, params={"tenant": "team-x"}), 200)
    metrics = server.http("GET", "/metrics")[1].decode()
    test.assertIn('gpuhive_tenant_device_seconds_total{tenant="team-x"}', metrics)


def _check_token(test, server):
    test.assertEqual(server.http("POST", "/v2/repository/models/tiny_mlp/unload")[0], 401)
    test.assertEqual(server.http("POST", "/v2/repository/models/tiny_mlp/unload",
                                 headers={"Authorization": "Bearer s3cret"})[0], 200)


def _check_json_logs(test, server):
    lines = [l for l in server.output().splitlines() if l.startswith("{")]
    test.assertTrue(lines, server.output())
    test.assertEqual(json.loads(lines[0])["level"], "info")


def _check_warning_level(test, server):
    test.assertNotIn(" info ", server.output())
    test.assertIn("gpuhive ready", server.output())


def _check_metrics_port(test, server):
    test.assertNotEqual(server.metrics_port, server.http_port)
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % server.metrics_port, timeout=10) as r:
        test.assertIn("nv_inference_count", r.read().decode())
    with test.assertRaises(urllib.error.HTTPError) as e:
        urllib.request.urlopen("http://127.0.0.1:%d/v2" % server.metrics_port, timeout=10)
    test.assertEqual(e.exception.code, 404)


def _check_strict_config(test, server):
    test.assertEqual(_infer_status(server), 200)
    # identity_fp32 has no config.pbtxt: refused under --strict-model-config=true.
    test.assertNotEqual(_infer_status(server, "identity_fp32"), 200)
    index = server.http_json("POST", "/v2/repository/index", {})[1]
    entry = [e for e in index if e["name"] == "identity_fp32"][0]
    test.assertEqual(entry["state"], "UNAVAILABLE")
    test.assertIn("strict-model-config", entry["reason"])


def _check_naive(test, server):
    test.assertEqual(server.options()["mode"], "naive")
    test.assertIn("in naive mode", server.output())


# key -> (value, check(test, server)). The keys are serve's long flag names (docs/server.md).
CONFIG_KEYS = {
    "http-address": ("127.0.0.1", _check_options("http-address", "127.0.0.1")),
    "grpc-address": ("127.0.0.1", _check_options("grpc-address", "127.0.0.1")),
    "allow-http": (False, _check_http_off),
    "allow-grpc": (False, _check_grpc_off),
    "http-thread-count": (3, _check_options("http-thread-count", 3)),
    "max-body-size": ("1KiB", _check_max_body),
    "max-buffered-bodies": ("256MiB", _check_options("max-buffered-bodies", "256MiB")),
    "max-connections": (77, _check_options("max-connections", 77)),
    "idle-timeout-ms": (12345, _check_options("idle-timeout-ms", 12345)),
    "model-control-mode": ("explicit", _check_explicit),
    "repository-poll-secs": (2.5, _check_options("repository-poll-secs", 2.5)),
    "mode": ("naive", _check_naive),
    "memory-budget": ("1GiB", _check_budget),
    "cpu-workers": (3, _check_workers),
    "threads-per-worker": (1, _check_options("threads-per-worker", 1)),
    "priority-levels": (3, _check_options("priority-levels", 3)),
    "max-queue-size": (55, _check_options("max-queue-size", 55)),
    "tenant-weight": (["a=7", "b=3"], _check_options("tenant-weight", ["a=7", "b=3"])),
    "tenant": (["team-x"], _check_tenant),
    "keep-alive-secs": (42, _check_options("keep-alive-secs", 42)),
    "no-preload": (True, _check_options("no-preload", True)),
    "no-optimize": (True, _check_options("no-optimize", True)),
    "no-pipelined-swap": (True, _check_options("no-pipelined-swap", True)),
    "max-concurrent-loads": (3, _check_options("max-concurrent-loads", 3)),
    "auth-token": ("s3cret", _check_token),
    "exit-timeout-secs": (7, _check_options("exit-timeout-secs", 7)),
    "log-format": ("json", _check_json_logs),
    "log-level": ("warning", _check_warning_level),
    "metrics-port": (0, _check_metrics_port),
    "metrics-address": ("127.0.0.1", _check_options("metrics-address", "127.0.0.1")),
    "log-verbose": (1, _check_options("log-verbose", 1)),
    "strict-model-config": (True, _check_strict_config),
}
# Keys that need a companion key to be observable.
CONFIG_COMPANIONS = {
    "allow-http": {"allow-grpc": True},
    "load-model": {},
}


class ConfigFile(unittest.TestCase):
    """`gpuhive serve --config FILE` with nothing else on the command line."""

    def run_key(self, key, value, check, extra=None):
        config = {key: value}
        config.update(CONFIG_COMPANIONS.get(key, {}))
        config.update(extra or {})
        server = Server(config=config)
        try:
            check(self, server)
        finally:
            server.close()

    def test_base_keys_alone_start_the_server(self):
        # model-repository, http-port, grpc-port, cpu-workers, threads-per-worker: the base file.
        server = Server(config={})
        try:
            self.assertEqual(server.options()["model-repository"], server.repo)
            self.assertEqual(_infer_status(server), 200)
            self.assertTrue(server.stub.ServerLive(pb.ServerLiveRequest()).live)
        finally:
            server.close()

    def test_key_load_model(self):
        self.run_key("load-model", ["tiny_mlp"], _check_load_model, {"model-control-mode": "explicit"})

    def test_model_store_alias_and_underscores(self):
        server = Server(config={"model_control_mode": "explicit"}, extra_args=())
        server.close()
        # model_store (Triton's name, '_' spelling) instead of model-repository.
        tmp = tempfile.mkdtemp(prefix="gpuhive_cfg_")
        try:
            repo = os.path.join(tmp, "repo")
            shutil.copytree(os.path.join(ARGS.source_dir, "tests", "data", "repository"), repo)
            path = os.path.join(tmp, "c.toml")
            with open(path, "w") as f:
                f.write('model_store = "%s"\nhttp-port = 0\ngrpc-port = 0\n' % repo)
            proc = subprocess.Popen([ARGS.binary, "serve", "--config", path], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            try:
                for line in proc.stdout:
                    if line.startswith("gpuhive ready"):
                        break
                self.assertIsNone(proc.poll())
            finally:
                proc.terminate()
                proc.wait(timeout=30)
                proc.stdout.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_triton_flags_on_the_command_line(self):
        # tritonserver's spelling: --model-store, --log-verbose N, --strict-model-config=B, --metrics-port.
        tmp = tempfile.mkdtemp(prefix="gpuhive_flags_")
        try:
            repo = os.path.join(tmp, "repo")
            shutil.copytree(os.path.join(ARGS.source_dir, "tests", "data", "repository"), repo)
            server = Server(extra_args=["--model-store", repo, "--log-verbose", "1", "--strict-model-config=false",
                                        "--metrics-port", "0"], copy_repository=False)
            try:
                opts = server.options()
                self.assertEqual(opts["log-verbose"], 1)
                self.assertFalse(opts["strict-model-config"])
                self.assertEqual(_infer_status(server), 200)
                # A model without config.pbtxt is derived (strict off); its metadata is there.
                self.assertEqual(server.http("GET", "/v2/models/identity_fp32")[0], 200)
                _check_metrics_port(self, server)
            finally:
                server.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_command_line_wins_and_bad_files_are_refused(self):
        server = Server(config={"max-queue-size": 5}, extra_args=["--max-queue-size", "9"])
        try:
            self.assertEqual(server.options()["max-queue-size"], 9)
        finally:
            server.close()
        for bad, message in (({"no-such-key": 1}, "unknown key"), ({"http-port": 99999}, "http-port"),
                             ({"memory-budget": "lots"}, "memory-budget")):
            server = Server(config=bad, expect_exit=True)
            try:
                self.assertNotEqual(server.returncode, 0)
                self.assertIn(message, server.output())
            finally:
                server.close()

    def test_key_strict_gpu(self):
        server = Server(config={"strict-gpu": True}, expect_exit=False) if _has_gpu() else \
            Server(config={"strict-gpu": True}, expect_exit=True)
        try:
            if _has_gpu():
                self.assertTrue(server.options()["strict-gpu"])
            else:
                self.assertNotEqual(server.returncode, 0)
                self.assertIn("strict-gpu", server.output())
        finally:
            server.close()


def _has_gpu():
    return os.path.exists("/dev/nvidia0") and shutil.which("nvidia-smi") is not None and \
        subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0


def _add_key_tests():
    for key, (value, check) in CONFIG_KEYS.items():
        def test(self, key=key, value=value, check=check):
            self.run_key(key, value, check)
        setattr(ConfigFile, "test_key_" + key.replace("-", "_"), test)


_add_key_tests()


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--source-dir", required=True)
    ARGS, rest = parser.parse_known_args()
    stub_dir = tempfile.mkdtemp(prefix="gpuhive_stubs_")
    try:
        generate_stubs(stub_dir)
        unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
    finally:
        shutil.rmtree(stub_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
