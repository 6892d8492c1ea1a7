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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The gpuhive binary serving a private copy of tests/data/repository."""

    def __init__(self, extra_args=(), repo=None):
        self.tmp = tempfile.mkdtemp(prefix="gpuhive_triton_")
        self.repo = repo or os.path.join(self.tmp, "repository")
        if repo is None:
            shutil.copytree(os.path.join(ARGS.source_dir, "tests", "data", "repository"), self.repo)
        self.http_port, self.grpc_port = free_port(), free_port()
        self.log = open(os.path.join(self.tmp, "server.log"), "w+")
        self.args = [ARGS.binary, "serve", "--model-repository", self.repo, "--http-port", str(self.http_port),
                     "--grpc-port", str(self.grpc_port), "--cpu-workers", "2", "--threads-per-worker", "1"]
        self.args += list(extra_args)
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("gpuhive exited: " + self.output())
            try:
                if self.http("GET", "/v2/health/ready")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("gpuhive did not become ready: " + self.output())
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.grpc_port)
        self.stub = pb_grpc.GRPCInferenceServiceStub(self.channel)

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

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
        self.channel.close()
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
