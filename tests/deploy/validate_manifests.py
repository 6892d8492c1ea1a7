#!/usr/bin/python3
"""Validates deploy/ (issue 19) without a cluster.

1. Every YAML file parses (python3-yaml); every document has apiVersion, kind and a DNS-1123
   metadata.name, and its kind is one we mean to ship.
2. A schema check of the fields we set: ServingRuntime / ClusterServingRuntime (onnx, multiModel,
   endpoints that match the container's flags), Deployment (selector matches the template,
   probes on /v2/health/live and /v2/health/ready at declared ports, one GPU), Service (selects
   the Deployment, target ports exist), PVC, ServiceMonitor (selects the Service, port exists),
   InferenceService (uses the runtime), the dashboard ConfigMap (up to date with
   monitoring/gpu-dashboard.json).
3. Every container's args are accepted by the real `gpuhive serve` (started with directories
   and ports swapped for temporary ones, until it prints its ready line, then SIGTERM).
4. When kubectl is installed: `kubectl kustomize` builds every kustomization offline (a real
   parse of the manifests by Kubernetes' own tooling). Without kubectl that part is skipped.

Exit status: 0 pass, 1 fail, 77 skip (python3-yaml missing).
Usage: validate_manifests.py --source-dir . [--gpuhive build/bin/gpuhive]
"""
import argparse
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    print("SKIP: python3-yaml is not installed (apt-get install python3-yaml)")
    sys.exit(77)

failures = []
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
KINDS = {
    ("serving.kserve.io/v1alpha1", "ServingRuntime"), ("serving.kserve.io/v1alpha1", "ClusterServingRuntime"),
    ("serving.kserve.io/v1beta1", "InferenceService"), ("apps/v1", "Deployment"), ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"), ("v1", "ConfigMap"), ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
}


def check(cond, what):
    if not cond:
        print("FAIL " + what, flush=True)
        failures.append(what)
    return cond


def flag(args, name):
    """The value of --name=V or --name V in a container's args (None when absent)."""
    for i, a in enumerate(args):
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
        if a == name and i + 1 < len(args):
            return args[i + 1]
    return None


def container_ports(c):
    return {p.get("name"): p["containerPort"] for p in c.get("ports", [])} | \
        {p["containerPort"]: p["containerPort"] for p in c.get("ports", [])}


def check_probes(where, c):
    ports = container_ports(c)
    http_port = flag(c.get("args", []), "--http-port")
    for probe, path in (("livenessProbe", "/v2/health/live"), ("readinessProbe", "/v2/health/ready")):
        p = c.get(probe, {}).get("httpGet", {})
        check(p.get("path") == path, f"{where}: {probe} on {path}")
        port = p.get("port")
        check(port in ports or (http_port is not None and str(port) == http_port),
              f"{where}: {probe} port {port} is declared or the HTTP port")


def check_gpu(where, c):
    res = c.get("resources", {})
    check(str(res.get("limits", {}).get("nvidia.com/gpu")) == "1", f"{where}: one GPU per pod (limits)")


def check_container(where, c):
    check(c.get("image", "").startswith("gpuhive"), f"{where}: the gpuhive image")
    args = c.get("args", [])
    check(args[:1] == ["serve"], f"{where}: runs `gpuhive serve`")
    check(flag(args, "--model-repository") is not None, f"{where}: --model-repository set")
    check_probes(where, c)
    check_gpu(where, c)


def run_args(gpuhive, where, args):
    """Starts the real binary with these args (paths and ports made local) until it is ready."""
    tmp = tempfile.mkdtemp(prefix="gpuhive_deploy_")
    try:
        out = []
        for a in args[1:]:
            name, eq, value = a.partition("=")
            if eq and name in ("--model-repository", "--modelmesh-model-root"):
                a = f"{name}={tmp}"
            elif eq and name in ("--http-port", "--grpc-port", "--modelmesh-port"):
                a = f"{name}=0"
            elif eq and name in ("--http-address", "--grpc-address", "--modelmesh-address"):
                a = f"{name}=127.0.0.1"
            out.append(a)
        proc = subprocess.Popen([gpuhive, "serve"] + out, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready = False
        for line in proc.stdout:
            if line.startswith("gpuhive ready"):
                ready = True
                break
        if ready:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err = proc.stderr.read()
        check(ready and proc.returncode == 0, f"{where}: `gpuhive serve` accepts the args {out}: rc {proc.returncode} {err[-500:]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--gpuhive", default="")
    args = ap.parse_args()
    deploy = os.path.join(args.source_dir, "deploy")

    docs = []  # (file, doc)
    files = sorted(glob.glob(os.path.join(deploy, "**", "*.yaml"), recursive=True))
    check(len(files) >= 10, f"deploy/ has its manifests ({len(files)} files)")
    for path in files:
        rel = os.path.relpath(path, args.source_dir)
        try:
            with open(path, encoding="utf-8") as f:
                loaded = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            check(False, f"{rel} parses: {e}")
            continue
        for d in loaded:
            if os.path.basename(path) == "kustomization.yaml":
                check(isinstance(d.get("resources"), list) and d["resources"], f"{rel}: lists resources")
                for r in d.get("resources", []):
                    check(os.path.exists(os.path.join(os.path.dirname(path), r)), f"{rel}: resource {r} exists")
                continue
            check(isinstance(d, dict) and isinstance(d.get("apiVersion"), str) and isinstance(d.get("kind"), str),
                  f"{rel}: apiVersion and kind")
            name = d.get("metadata", {}).get("name")
            check(isinstance(name, str) and DNS1123.match(name) is not None, f"{rel}: metadata.name '{name}' is DNS-1123")
            check((d.get("apiVersion"), d.get("kind")) in KINDS, f"{rel}: known kind {d.get('apiVersion')} {d.get('kind')}")
            docs.append((rel, d))

    by_kind = {}
    for rel, d in docs:
        by_kind.setdefault(d["kind"], []).append((rel, d))
    for kind in ("ServingRuntime", "ClusterServingRuntime", "InferenceService", "Deployment", "Service",
                 "PersistentVolumeClaim", "ServiceMonitor", "ConfigMap"):
        check(kind in by_kind, f"deploy/ has a {kind}")

    commands = []  # (where, args) for the binary
    runtimes = {}
    for kind in ("ServingRuntime", "ClusterServingRuntime"):
        for rel, d in by_kind.get(kind, []):
            spec = d.get("spec", {})
            runtimes[d["metadata"]["name"]] = d
            formats = [f.get("name") for f in spec.get("supportedModelFormats", [])]
            check("onnx" in formats, f"{rel}: supportedModelFormats has onnx")
            cs = spec.get("containers", [])
            check(len(cs) == 1, f"{rel}: one container")
            if not cs:
                continue
            c = cs[0]
            check_container(f"{rel} container", c)
            a = c.get("args", [])
            commands.append((rel, a))
            if kind == "ServingRuntime":
                check(spec.get("multiModel") is True, f"{rel}: multiModel true (ModelMesh)")
                check(spec.get("grpcEndpoint") == f"port:{flag(a, '--modelmesh-port')}",
                      f"{rel}: grpcEndpoint {spec.get('grpcEndpoint')} is --modelmesh-port")
                check(spec.get("grpcDataEndpoint") == f"port:{flag(a, '--grpc-port')}",
                      f"{rel}: grpcDataEndpoint {spec.get('grpcDataEndpoint')} is --grpc-port")
                check(flag(a, "--modelmesh-model-root") == "/models", f"{rel}: model paths confined to /models")
            else:
                check("v2" in spec.get("protocolVersions", []), f"{rel}: KServe v2 protocol")
                check(flag(a, "--model-repository") == "/mnt/models", f"{rel}: serves KServe's /mnt/models")

    for rel, d in by_kind.get("InferenceService", []):
        model = d.get("spec", {}).get("predictor", {}).get("model", {})
        check(model.get("modelFormat", {}).get("name") == "onnx", f"{rel}: modelFormat onnx")
        check(model.get("runtime") in runtimes, f"{rel}: runtime '{model.get('runtime')}' is defined in deploy/")

    deployments = by_kind.get("Deployment", [])
    for rel, d in deployments:
        spec = d["spec"]
        sel = spec.get("selector", {}).get("matchLabels", {})
        labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
        check(sel and all(labels.get(k) == v for k, v in sel.items()), f"{rel}: selector matches the pod labels")
        pod = spec.get("template", {}).get("spec", {})
        for c in pod.get("containers", []):
            check_container(f"{rel} container {c.get('name')}", c)
            commands.append((rel, c.get("args", [])))
            mounts = {m["name"] for m in c.get("volumeMounts", [])}
            vols = {v["name"] for v in pod.get("volumes", [])}
            check(mounts <= vols, f"{rel}: every volume mount has a volume")
        claims = [v["persistentVolumeClaim"]["claimName"] for v in pod.get("volumes", []) if "persistentVolumeClaim" in v]
        pvcs = {p["metadata"]["name"] for _, p in by_kind.get("PersistentVolumeClaim", [])}
        check(all(c in pvcs for c in claims), f"{rel}: claims {claims} are defined")

    for rel, p in by_kind.get("PersistentVolumeClaim", []):
        check(p["spec"].get("accessModes") and p["spec"].get("resources", {}).get("requests", {}).get("storage"),
              f"{rel}: access modes and a storage request")

    services = by_kind.get("Service", [])
    for rel, s in services:
        sel = s["spec"].get("selector", {})
        targets = [d for _, d in deployments
                   if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())]
        check(sel and targets, f"{rel}: selects a Deployment")
        for port in s["spec"].get("ports", []):
            tp = port.get("targetPort", port.get("port"))
            ok = any(tp in container_ports(c) for d in targets for c in d["spec"]["template"]["spec"]["containers"])
            check(ok, f"{rel}: targetPort {tp} is a container port")

    for rel, m in by_kind.get("ServiceMonitor", []):
        sel = m["spec"].get("selector", {}).get("matchLabels", {})
        matched = [s for _, s in services if all(s["metadata"].get("labels", {}).get(k) == v for k, v in sel.items())]
        check(matched, f"{rel}: selects a Service")
        for ep in m["spec"].get("endpoints", []):
            check(ep.get("path") == "/metrics", f"{rel}: scrapes /metrics")
            check(any(ep.get("port") in [p.get("name") for p in s["spec"]["ports"]] for s in matched),
                  f"{rel}: endpoint port '{ep.get('port')}' is a Service port name")

    dashboard_maps = [(rel, c) for rel, c in by_kind.get("ConfigMap", []) if c["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    check(len(dashboard_maps) == 1, "one Grafana dashboard ConfigMap (label grafana_dashboard: \"1\")")
    with open(os.path.join(args.source_dir, "monitoring", "gpu-dashboard.json"), encoding="utf-8") as f:
        dashboard = json.load(f)
    for rel, c in dashboard_maps:
        values = list(c.get("data", {}).values())
        check(len(values) == 1 and json.loads(values[0]) == dashboard, f"{rel}: holds monitoring/gpu-dashboard.json")
    gen = subprocess.run([sys.executable, os.path.join(args.source_dir, "scripts", "make-dashboard-configmap.py"),
                          "--check", "--source-dir", args.source_dir], capture_output=True, text=True)
    check(gen.returncode == 0, f"the dashboard ConfigMap is what the script generates: {gen.stdout.strip()}")

    dockerfile = os.path.join(deploy, "Dockerfile")
    with open(dockerfile, encoding="utf-8") as f:
        df = f.read()
    check(re.search(r"^FROM debian:12", df, re.M) is not None, "deploy/Dockerfile builds from Debian 12")
    check("make build" in df and "scripts/install-deps.sh" in df, "deploy/Dockerfile builds with make build")

    if args.gpuhive:
        for where, a in commands:
            run_args(args.gpuhive, where, a)
    else:
        print("note: no --gpuhive: container args not run")

    kubectl = shutil.which("kubectl")
    if kubectl:
        for k in sorted(glob.glob(os.path.join(deploy, "*", "kustomization.yaml"))):
            d = os.path.dirname(k)
            r = subprocess.run([kubectl, "kustomize", d], capture_output=True, text=True, timeout=120)
            check(r.returncode == 0, f"kubectl kustomize {os.path.relpath(d, args.source_dir)}: {r.stderr.strip()[-300:]}")
            if r.returncode == 0:
                built = [x for x in yaml.safe_load_all(r.stdout) if x]
                check(len(built) >= 2, f"kubectl kustomize {os.path.relpath(d, args.source_dir)}: {len(built)} objects")
    else:
        print("SKIP (part): kubectl not installed; `kubectl kustomize` not run")

    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print(f"all checks passed ({len(docs)} objects in {len(files)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
