"""Decode speed side by side with optimum-executorch, on SmolLM2-135M-Instruct (issue 16).

    scripts/setup_peer.sh                       # .venv-peer, the HF folder, every export
    python3 scripts/bench_peer.py [--rounds 9] [--steps 30] [--prefill 50] [--threads 2] \
        [--out results/decode_peer.json] [--only NAME,...] [--no-accuracy]

Every configuration runs in a fresh process; the configurations are interleaved over the
rounds, in an order rotated each round. A process loads, warms up once (prefill + steps),
then times a 50-token prefill and 30 greedy steps; its number is the median step. The
table gives the median of those per-process medians, and each kit row's per-round ratio
to each peer row of the same weight width (median and range). A bandwidth process runs
each round too: weight bytes read per step / copy bandwidth is the floor no runner beats.
Accuracy (one more process per configuration): greedy tokens and teacher-forced top-1
against transformers fp32 on the same checkpoint. Needs only the standard library here;
the workers run in .venv and .venv-peer.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER, KIT = ROOT / ".venv-peer/bin/python", ROOT / ".venv/bin/python"
ART = ROOT / "artifacts/peer"
RUNNER_TOKENIZER = ART / "smollm2/tokenizer_runner.json"  # what TextLLMRunner reads (scripts/setup_peer.sh)
KIT_PATHS = ("atom_deploy", "backends", "runners")
QUESTIONS = ["Give me three tips for staying healthy.", "Explain photosynthesis in one paragraph.",
             "Describe a typical day of a software engineer.", "List five famous painters and one work by each."]

# name -> (python, worker script, job fields, weight width "8" or "4", what it is)
CONFIGS = {
    "oe-8da8w-runner": (PEER, "peer_worker_runner.py", {"pte": ART / "oe/8da8w/model.pte", "tokenizer": RUNNER_TOKENIZER}, "8",
                        "optimum-executorch 8da8w, C++ TextLLMRunner"),
    "oe-8da8w-pybind": (PEER, "peer_worker_pybind.py", {"pte": ART / "oe/8da8w/model.pte"}, "8",
                        "optimum-executorch 8da8w, pybindings forward()"),
    "oe-8da4w-runner": (PEER, "peer_worker_runner.py", {"pte": ART / "oe/8da4w/model.pte", "tokenizer": RUNNER_TOKENIZER}, "4",
                        "optimum-executorch 8da4w, C++ TextLLMRunner"),
    "oe-8da4w-pybind": (PEER, "peer_worker_pybind.py", {"pte": ART / "oe/8da4w/model.pte"}, "4",
                        "optimum-executorch 8da4w, pybindings forward()"),
    "kit-et-int8": (KIT, "peer_worker_kit.py", {"artifacts": ART / "kit-int8/executorch"}, "8",
                    "kit ExecuTorch int8, atom_runner DecoderStepper"),
    "kit-et-int8-cpp": (KIT, "peer_worker_cpp.py", {"artifacts": ART / "kit-int8/executorch"}, "8",
                        "kit ExecuTorch int8, C++ atom_runner (its own latency command; whole process as load s)"),
    "kit-ort-int8": (KIT, "peer_worker_kit.py", {"artifacts": ART / "kit-int8/onnx"}, "8",
                     "kit ONNX Runtime int8, atom_runner DecoderStepper"),
    "kit-ort-int8-nbits": (KIT, "peer_worker_kit.py", {"artifacts": ART / "kit-int8-nbits/onnx"}, "8",
                           "kit ONNX Runtime int8 on MatMulNBits (--onnx-kernel matmulnbits), atom_runner DecoderStepper"),
    "kit-et-8da4w": (KIT, "peer_worker_kit.py", {"artifacts": ART / "kit-8da4w/executorch"}, "4",
                     "kit ExecuTorch 8da4w, atom_runner DecoderStepper"),
    "kit-ort-8da4w": (KIT, "peer_worker_kit.py", {"artifacts": ART / "kit-8da4w/onnx"}, "4",
                      "kit ONNX Runtime 8da4w, atom_runner DecoderStepper"),
}


def worker(python: Path, script: str, job: dict, threads: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(job, f, default=str)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT / "scripts"))
    try:
        proc = subprocess.run([str(python), str(ROOT / "scripts" / script), f.name], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=1200)
    finally:
        os.unlink(f.name)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-3:]
    return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}


def available(name: str) -> bool:
    _, _, fields, _, _ = CONFIGS[name]
    path = Path(fields.get("pte") or Path(fields["artifacts"]) / "manifest.json")
    return path.is_file()


def weight_bytes(config: dict, width: str) -> float:
    """Linear weights read per step (every Linear, lm_head included; one embedding row is noise).

    8: int8 per output channel + one fp32 scale a row. 4: int4 in groups of 32 + one bf16
    scale a group (XNNPACK's blockwise int4 keeps bf16 scales).
    """
    d, f, v, n = config["hidden_size"], config["intermediate_size"], config["vocab_size"], config["num_hidden_layers"]
    hd = config.get("head_dim") or d // config["num_attention_heads"]
    q, kv = config["num_attention_heads"] * hd, config["num_key_value_heads"] * hd
    shapes = [(q, d), (kv, d), (kv, d), (d, q), (f, d), (f, d), (d, f)] * n + [(v, d)]
    params, rows = sum(o * i for o, i in shapes), sum(o for o, _ in shapes)
    return params + 4 * rows if width == "8" else params / 2 + 2 * params / 32


def common_prefix(a: list, b: list) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def agreement(result: dict, ref: dict) -> dict:
    if "error" in result:
        return {"error": result["error"]}
    if "not_applicable" in result:
        return {}
    if "greedy_pieces" in result:  # TextLLMRunner: text pieces, up to its EOS stop
        eos = ref["eos_id"]
        refs = [p[: r.index(eos)] if eos in r else p for p, r in zip(ref["pieces"], ref["reference"])]
        got = result["greedy_pieces"]
        return {"greedy_prefix": [common_prefix(g, r) for g, r in zip(got, refs)], "greedy_len": [len(r) for r in refs],
                "greedy_exact": sum(g[: len(r)] == r for g, r in zip(got, refs)), "prompts": len(refs)}
    refs = ref["reference"]
    forced = [sum(a == b for a, b in zip(f, r)) for f, r in zip(result["forced_top1"], refs)]
    return {"greedy_prefix": [common_prefix(g, r) for g, r in zip(result["greedy"], refs)],
            "greedy_len": [len(r) for r in refs], "greedy_exact": sum(g == r for g, r in zip(result["greedy"], refs)),
            "forced_top1": sum(forced) / sum(len(r) for r in refs), "prompts": len(refs)}


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()  # noqa: E731
    return {"cpu": cpu, "cores": os.cpu_count(), "commit": git("rev-parse", "HEAD"),
            "kit_tree_dirty": bool(git("status", "--porcelain", "--", *KIT_PATHS)),
            # names the uncommitted kit state the run used (others edit the tree while it runs)
            "kit_tree_diff_sha256": hashlib.sha256(git("diff", "HEAD", "--", *KIT_PATHS).encode()).hexdigest()[:16],
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "load_avg_start": os.getloadavg()}


def summarize(names: list[str], rounds: list[dict], ratios_for: dict) -> dict:
    out = {}
    for name in names:
        runs = [r[name] for r in rounds if name in r and "error" not in r[name]]
        if not runs:
            out[name] = {"error": next((r[name]["error"] for r in rounds if name in r), "not run")}
            continue
        med = lambda key: statistics.median(run[key] for run in runs)  # noqa: E731
        out[name] = {"step_ms": 1e3 * med("step_median_s"), "prefill_ms": 1e3 * med("prefill_s"),
                     "load_s": med("load_s"), "peak_rss_mb": med("peak_rss_mb"), "processes": len(runs)}
    for kit, peers in ratios_for.items():
        for peer in peers:
            pairs = [r[kit]["step_median_s"] / r[peer]["step_median_s"] for r in rounds
                     if "step_median_s" in r.get(kit, {}) and "step_median_s" in r.get(peer, {})]
            if pairs and "error" not in out.get(kit, {}):
                out[kit].setdefault("ratio", {})[peer] = {"median": statistics.median(pairs), "min": min(pairs),
                                                          "max": max(pairs), "rounds": len(pairs)}
    return out


def table(names: list[str], summary: dict, acc: dict, floors: dict, bw: dict) -> str:
    lines = ["| configuration | step ms | tok/s | prefill 50 ms | floor ms | step / floor | kit / peer step (median, range) "
             "| greedy = fp32 (prefix, exact) | teacher-forced top-1 | load s | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        s, a = summary[name], acc.get(name, {})
        if "error" in s:
            lines.append(f"| {name} | failed: {s['error'][:120]} |" + " |" * 9)
            continue
        ratio = "; ".join(f"/{p}: {r['median']:.2f} ({r['min']:.2f}–{r['max']:.2f})" for p, r in s.get("ratio", {}).items())
        greedy = forced = "n/a"
        if "greedy_prefix" in a:
            greedy = f"{sum(a['greedy_prefix'])}/{sum(a['greedy_len'])} tok, {a['greedy_exact']}/{a['prompts']}"
        if "forced_top1" in a:
            forced = f"{100 * a['forced_top1']:.1f}%"
        elif "error" in a:
            greedy = "failed"
        floor = floors[CONFIGS[name][3]]
        lines.append(f"| {name} | {s['step_ms']:.1f} | {1e3 / s['step_ms']:.1f} | {s['prefill_ms']:.0f} | {floor:.1f} | "
                     f"{s['step_ms'] / floor:.2f} | {ratio or '–'} | {greedy} | {forced} | {s['load_s']:.2f} | "
                     f"{s['peak_rss_mb']:.0f} |")
    lines.append("\nCopy bandwidth (read + write, 1 GiB arrays, median over rounds): "
                 + ", ".join(f"{t} thread{'s' if t != '1' else ''} {g:.1f} GB/s" for t, g in bw.items())
                 + ". Floor = weight bytes per step / the 2-thread figure.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--prefill", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "results/decode_peer.json")
    ap.add_argument("--only", default="", help=f"comma-separated subset of {list(CONFIGS)}")
    ap.add_argument("--no-accuracy", action="store_true")
    args = ap.parse_args()
    wanted = [n for n in args.only.split(",") if n] or list(CONFIGS)
    unknown = sorted(set(wanted) - set(CONFIGS))
    if unknown:
        sys.exit(f"unknown configuration(s) {unknown}; valid: {list(CONFIGS)}")
    names = [n for n in wanted if available(n)]
    skipped = [n for n in wanted if n not in names]
    for n in skipped:
        print(f"skipped {n}: its export is not in {ART} (run scripts/setup_peer.sh)", file=sys.stderr)

    info = machine()
    base = {"threads": args.threads, "steps": args.steps, "tokenizer": ART / "smollm2/tokenizer.json"}
    print("reference: transformers fp32 ...", file=sys.stderr)
    ref = worker(PEER, "peer_worker_reference.py", {**base, "model": ART / "smollm2", "prefill_tokens": args.prefill,
                                                   "questions": QUESTIONS}, args.threads)
    if "error" in ref:
        sys.exit(f"reference failed: {ref['error']}")
    timing_job = {**base, "kind": "timing", "prefill_ids": ref["prefill_ids"], "prefill_text": ref["prefill_text"]}
    rounds, bandwidth = [], []
    for r in range(args.rounds):
        order = names[r % len(names):] + names[: r % len(names)] if names else []
        row = {}
        bandwidth.append(worker(Path(sys.executable), "peer_worker_bandwidth.py",
                                {"gib": 1, "repeat": 3, "threads": [1, 2]}, args.threads))
        for name in order:
            python, script, fields, _, _ = CONFIGS[name]
            row[name] = worker(python, script, {**timing_job, **fields}, args.threads)
            shown = f"{1e3 * row[name]['step_median_s']:.1f} ms" if "step_median_s" in row[name] else row[name]["error"]
            print(f"round {r + 1}/{args.rounds} {name}: {shown}", file=sys.stderr)
        rounds.append(row)
    acc = {}
    if not args.no_accuracy:
        acc_job = {**base, "kind": "accuracy", "prompts": ref["prompts"], "prompt_texts": ref["prompt_texts"],
                   "reference": ref["reference"]}
        for name in names:
            python, script, fields, _, _ = CONFIGS[name]
            acc[name] = agreement(worker(python, script, {**acc_job, **fields}, args.threads), ref)
            print(f"accuracy {name}: {acc[name]}", file=sys.stderr)

    config = json.loads((ART / "smollm2/config.json").read_text())
    bw = {t: statistics.median(b["copy_gbps"][t] for b in bandwidth if "copy_gbps" in b) for t in ("1", "2")}
    floors = {w: 1e3 * weight_bytes(config, w) / (bw["2"] * 1e9) for w in ("8", "4")}
    ratios_for = {k: [p for p in names if p.startswith("oe-") and CONFIGS[p][3] == CONFIGS[k][3]]
                  for k in names if k.startswith("kit-")}
    summary = summarize(names, rounds, ratios_for)
    text = table(names, summary, acc, floors, bw)
    head = (f"SmolLM2-135M-Instruct, {args.threads} threads, {args.prefill}-token prefill + {args.steps} greedy steps, "
            f"{args.rounds} rounds; {info['cpu']} ({info['cores']} cores), commit {info['commit'][:10]}"
            f"{' (kit files modified in the working tree)' if info['kit_tree_dirty'] else ''}, {info['date']}")
    print(head + "\n\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": info, "args": {k: str(v) for k, v in vars(args).items()}, "skipped": skipped,
        "configs": {n: CONFIGS[n][4] for n in names}, "weight_bytes": {w: weight_bytes(config, w) for w in ("8", "4")},
        "bandwidth_gbps": bw, "floor_ms": floors, "summary": summary, "accuracy": acc, "reference": ref,
        "rounds": rounds, "bandwidth_rounds": bandwidth, "table": text}, indent=1, default=str))
    print(f"\nwrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
