#!/usr/bin/env python3
"""Turns the files bench/gpu/run_all.sh writes (tests.jsonl, gpuhive.jsonl, torch.jsonl,
memory.json, nvml.txt, run.log) into one Markdown summary on stdout. Works on partial files: a run
stopped at its limit is summarized as far as it got.

    python3 bench/gpu/summarize.py OUT_DIR > OUT_DIR/results.md
"""
import json
import os
import sys


def lines(path):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return rows


def fmt(v, spec=".3f"):
    return format(v, spec) if isinstance(v, (int, float)) else "-"


def scenario_summary(out):
    """Scenario 1 on the GPU (scenario.json from `gpuhive bench scenario --json`): per-model throughput
    and p99 ratios of gpuhive against naive, peak device memory against the budget, and the GPU
    utilization nvidia-smi sampled meanwhile (from nvml.txt)."""
    path = os.path.join(out, "scenario.json")
    if not os.path.exists(path):
        return []
    try:
        report = json.load(open(path))
    except (OSError, json.JSONDecodeError) as e:
        return ["", "## Scenario 1 on the GPU", "", f"scenario.json unreadable: {e}"]
    md = ["", "## Scenario 1 on the GPU (visual_analysis_gpu.json)", ""]
    comparison = report.get("comparison", {})
    for mode in comparison.get("modes", []):
        md.append(f"{mode.get('mode')} vs {comparison.get('baseline')}: total throughput "
                  f"{fmt(mode.get('total_throughput_ratio'), '.2f')}x")
        md += ["", "| model | throughput ratio | p99 ratio | errors (baseline) |", "|---|---|---|---|"]
        for name, m in sorted(mode.get("models", {}).items()):
            md.append(f"| {name} | {fmt(m.get('throughput_ratio'), '.2f')} | {fmt(m.get('p99_ratio'), '.2f')} | "
                      f"{m.get('errors')} ({m.get('baseline_errors')}) |")
    for mode, devices in sorted(comparison.get("peak_memory", {}).items()):
        for device, p in sorted(devices.items()):
            md.append(f"- peak memory {mode} on {device}: {fmt(p.get('peak_bytes', 0) / 2**20, '.1f')} MiB of "
                      f"{fmt(p.get('budget_bytes', 0) / 2**20, '.1f')} MiB budget")
    smi = os.path.join(out, "nvml.txt")
    util = []
    if os.path.exists(smi):
        inside = False
        for line in open(smi):
            if line.startswith("## nvidia-smi every 0.5 s during scenario 1"):
                inside = True
                continue
            if inside and line.startswith("##"):
                break
            parts = [p.strip() for p in line.split(",")]
            if inside and len(parts) >= 2 and parts[1].endswith("%"):
                try:
                    util.append(float(parts[1].rstrip(" %")))
                except ValueError:
                    pass
    if util:
        busy = [u for u in util if u > 0]
        md.append(f"- GPU utilization while it ran (nvidia-smi, {len(util)} samples): mean {sum(util) / len(util):.0f} %, "
                  f"max {max(util):.0f} %, mean over non-idle samples {sum(busy) / max(len(busy), 1):.0f} %")
    return md


def main():
    out = sys.argv[1]
    md = ["# gpuhive GPU run", ""]
    log = os.path.join(out, "run.log")
    if os.path.exists(log):
        head = open(log).read().splitlines()[:8]
        md += ["```"] + head + ["```", ""]

    tests = lines(os.path.join(out, "tests.jsonl"))
    md += ["## Tests", "", "| binary | filter rc | passed | failed | skipped |", "|---|---|---|---|---|"]
    for t in tests:
        c = t.get("cases", [])
        md.append(f"| {t['binary']} | {t['rc']} | {sum(x['status'] == 'passed' for x in c)} | "
                  f"{sum(x['status'] == 'failed' for x in c)} | {sum(x['status'] == 'skipped' for x in c)} |")
    for t in tests:
        for x in t.get("cases", []):
            if x["status"] == "failed":
                md += ["", f"**{t['binary']} {x['name']}**", "```", "\n".join(x["failures"])[:1200], "```"]

    gh = lines(os.path.join(out, "gpuhive.jsonl"))
    th = lines(os.path.join(out, "torch.jsonl"))
    dev = [r for r in gh if r.get("kind") == "device"]
    if dev:
        md += ["", f"Device: {dev[0].get('name', '?')}, pinned H2D {fmt(dev[0].get('h2d_pinned_gb_per_s'), '.1f')} GB/s"]
    tver = [r for r in th if r.get("kind") == "torch"]
    if tver:
        md += [f"PyTorch {tver[0]['version']} (CUDA {tver[0]['cuda']}, cuDNN {tver[0]['cudnn']})"]

    g = {(r["model"], r["batch"], r["math"]): r for r in gh if r.get("kind") == "model" and "batch" in r}
    e = {(r["model"], r["batch"], r["mode"]): r for r in th if r.get("kind") == "eager"}
    c = {(r["model"], r["batch"]): r for r in th if r.get("kind") == "compile"}
    keys = sorted({(m, b) for (m, b, _) in list(g) + list(e)}, key=lambda k: (k[0], k[1]))
    if keys:
        md += ["", "## Latency, ms (median); gpuhive = host inputs in, host outputs out, CUDA Graph replay",
               "", "| model | batch | gpuhive fp32 | gpuhive tf32 | gpuhive tf32 plain | gpuhive fp16 | torch fp32 e2e | "
               "torch fp32 | torch tf32 | torch fp16 | compile fp16 | gpuhive tf32 / torch tf32 | "
               "gpuhive fp16 / torch fp16 | gpuhive fp16 items/s | err fp32 | err tf32 | err fp16 |",
               "|" + "---|" * 17]
        for m, b in keys:
            g32, gtf, g16 = g.get((m, b, "fp32"), {}), g.get((m, b, "tf32"), {}), g.get((m, b, "fp16"), {})
            e32, etf, e16 = e.get((m, b, "fp32"), {}), e.get((m, b, "tf32"), {}), e.get((m, b, "fp16"), {})
            cc = c.get((m, b), {})
            ratio = (gtf.get("cuda_graph_ms") / etf["device_ms"]
                     if isinstance(gtf.get("cuda_graph_ms"), (int, float)) and etf.get("device_ms") else None)
            ratio16 = (g16.get("cuda_graph_ms") / e16["device_ms"]
                       if isinstance(g16.get("cuda_graph_ms"), (int, float)) and e16.get("device_ms") else None)
            md.append(f"| {m} | {b} | {fmt(g32.get('cuda_graph_ms'))} | {fmt(gtf.get('cuda_graph_ms'))} | "
                      f"{fmt(gtf.get('cuda_ms'))} | {fmt(g16.get('cuda_graph_ms'))} | {fmt(e32.get('e2e_ms'))} | "
                      f"{fmt(e32.get('device_ms'))} | {fmt(etf.get('device_ms'))} | {fmt(e16.get('device_ms'))} | "
                      f"{fmt(cc.get('device_ms'))} | {fmt(ratio, '.2f')} | {fmt(ratio16, '.2f')} | "
                      f"{fmt(g16.get('items_per_s_graph'), '.0f')} | {fmt(g32.get('norm_error_vs_cpu'), '.1e')} | "
                      f"{fmt(gtf.get('norm_error_vs_cpu'), '.1e')} | {fmt(g16.get('norm_error_vs_cpu'), '.1e')} |")
    prof = [r for r in gh if r.get("kind") == "model" and r.get("profile_ms") and r.get("math") == "tf32"]
    if prof:
        md += ["", "## Where gpuhive's device time goes (TF32, step by step, top operators: steps, ms)", ""]
        for r in prof:
            top = sorted(r["profile_ms"].items(), key=lambda kv: -kv[1][1])[:6]
            total = sum(v[1] for v in r["profile_ms"].values())
            md.append(f"- {r['model']} b{r['batch']}: {total:.2f} ms in steps; " +
                      ", ".join(f"{op} {v[0]}x {v[1]:.2f}" for op, v in top))
    errs = [r for r in gh + th if r.get("error") or r.get("run_error")]
    if errs:
        md += ["", "## Errors", ""] + [f"- `{json.dumps(r)[:400]}`" for r in errs]
    created = [r for r in gh if r.get("event") == "created"]
    if created:
        md += ["", "## Executor creation (weights uploaded) vs weight bytes / pinned H2D bandwidth", "",
               "| model | math | create ms | first run ms (plan + weights) | weight MiB | floor ms |", "|---|---|---|---|---|---|"]
        for r in created:
            md.append(f"| {r['model']} | {r['math']} | {fmt(r['create_ms'], '.1f')} | {fmt(r.get('first_run_ms'), '.1f')} | "
                      f"{r['weight_bytes'] / 2**20:.1f} | {fmt(r.get('weights_over_h2d_bandwidth_ms'), '.2f')} |")
    copies = [r for r in gh if r.get("kind") == "copy" and "mib" in r and "error" not in r]
    if copies:
        md += ["", "## Host-to-device copies from pinned memory", "",
               "| MiB | one copy ms | chunked (8 MiB, events) ms | first chunk ms | bytes/bandwidth ms | ratio one | "
               "ratio chunked | ms per GiB |", "|---|---|---|---|---|---|---|---|"]
        for r in copies:
            md.append(f"| {r['mib']} | {fmt(r['one_copy_ms'])} | {fmt(r['chunked_total_ms'])} | "
                      f"{fmt(r['chunked_first_chunk_ms'])} | {fmt(r['bytes_over_bandwidth_ms'])} | "
                      f"{fmt(r['ratio_one'], '.2f')} | {fmt(r['ratio_chunked'], '.2f')} | {fmt(r['ms_per_gib_chunked'], '.1f')} |")
    mem = os.path.join(out, "memory.json")
    if os.path.exists(mem):
        md += ["", "## memory.json (first 3000 characters)", "", "```", open(mem).read()[:3000], "```"]
    md += scenario_summary(out)
    nv = os.path.join(out, "nvml.txt")
    if os.path.exists(nv):
        md += ["", "## NVML", "", "```", open(nv).read()[:3000], "```"]
    print("\n".join(md))


if __name__ == "__main__":
    main()
