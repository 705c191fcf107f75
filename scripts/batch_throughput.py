"""Captioning throughput (captions/s), batched against one clip at a time, per runner.

    .venv/bin/python scripts/batch_throughput.py ART/executorch --clips 16 --beam 1 \
        --runners python cpp-host cpp-qemu --rounds 2 --out /tmp/tp

Each round runs both modes, each in a fresh process, in alternating order (batched first in
even rounds, one at a time first in odd ones) so that a drift in the machine's load falls on
both. Batched decodes the most clips the KV-cache rows hold at this beam (max_batch // beam);
one at a time decodes each clip alone (Python `caption_stream(batch=1)`, C++
`caption --batch 1`). The time is the runner's captioning time, loading excluded: Python's
around `caption_stream`, C++'s `timings.wall_s`. Captions of the two modes must be identical;
any difference is listed. Writes OUT/throughput.json and OUT/throughput.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from test_cpp_common import QEMU_ENV, command  # noqa: E402  (the qemu argv, defined once)

RUNNER_BINARIES = {
    "cpp-host": REPO / "runners" / "android" / "build-host" / "atom_runner",
    "cpp-qemu": REPO / "runners" / "android" / "build-aarch64" / "atom_runner",
}
RUNNERS = ("python", *RUNNER_BINARIES)
MODES = ("batched", "one_at_a_time")


@dataclass(frozen=True)
class Plan:
    artifacts: Path
    clips: int
    beam: int
    rounds: int
    runners: tuple[str, ...]
    out: Path
    timeout: int


def write_clips(plan: Plan) -> tuple[Path, list[str]]:
    """Demo-world clips, as clips.npy (Python) and one raw float32 file each (C++)."""
    from atom_deploy.bench.reuse import make_clips

    clips = make_clips(plan.artifacts, plan.clips, seed=7)
    npy = plan.out / "clips.npy"
    np.save(npy, clips)
    paths = []
    for i, clip in enumerate(clips):
        path = plan.out / f"clip{i}.bin"
        clip.tofile(path)
        paths.append(str(path))
    return npy, paths


def run_once(plan: Plan, runner: str, mode: str, npy: Path, paths: list[str]) -> dict:
    """One fresh process: {"seconds", "captions": [text]}, and from C++ "tokens" and "stages_s"."""
    batch = ["--batch", "1"] if mode == "one_at_a_time" else []
    if runner == "python":
        argv = [sys.executable, __file__, "python-worker", str(plan.artifacts), str(npy), "--beam", str(plan.beam), *batch]
        env = dict(os.environ)
    else:
        argv = command(RUNNER_BINARIES[runner], "caption", "--artifacts", str(plan.artifacts), "--beam",
                       str(plan.beam), *batch, *paths)
        env = dict(os.environ, **QEMU_ENV)
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=plan.timeout)
    if proc.returncode != 0:
        raise SystemExit(f"{runner} {mode} exited {proc.returncode}: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    out = json.loads(proc.stdout)
    if runner == "python":
        return out
    return {"seconds": out["timings"]["wall_s"], "captions": [c["text"] for c in out["captions"]],
            "tokens": [c["tokens"] for c in out["captions"]],
            "stages_s": {k: out["timings"][k] for k in ("encode_s", "decode_s", "encode_wait_s")}}


def python_worker(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="batch_throughput.py python-worker")
    parser.add_argument("artifacts", type=Path)
    parser.add_argument("clips", type=Path)
    parser.add_argument("--beam", type=int, required=True)
    parser.add_argument("--batch", type=int, default=None)
    args = parser.parse_args(argv)
    from atom_runner.session import Session

    clips = list(np.load(args.clips))
    with Session(args.artifacts) as session:
        start = time.perf_counter()
        captions = list(session.caption_stream(clips, beam=args.beam, batch=args.batch))
        seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "captions": captions}))
    return 0


def differences(a: dict, b: dict) -> list[dict]:
    key = "tokens" if "tokens" in a else "captions"
    return [{"clip": i, "batched": a["captions"][i], "one_at_a_time": b["captions"][i]}
            for i, (x, y) in enumerate(zip(a[key], b[key], strict=True)) if x != y]


def measure(plan: Plan, progress=print) -> dict:
    plan.out.mkdir(parents=True, exist_ok=True)
    npy, paths = write_clips(plan)
    results = {}
    for runner in plan.runners:
        rounds = []
        for r in range(plan.rounds):
            order = MODES if r % 2 == 0 else MODES[::-1]
            runs, load = {}, os.getloadavg()[0]
            for mode in order:
                progress(f"{runner} round {r + 1}/{plan.rounds}: {mode}")
                runs[mode] = run_once(plan, runner, mode, npy, paths)
            rate = {mode: plan.clips / runs[mode]["seconds"] for mode in MODES}
            rounds.append({"order": list(order), "load_average_1min": load, "captions_per_s": rate,
                           "ratio": rate["batched"] / rate["one_at_a_time"],
                           "differences": differences(runs["batched"], runs["one_at_a_time"]),
                           "captions": runs["batched"]["captions"],
                           "stages_s": {mode: runs[mode].get("stages_s") for mode in MODES}})
        results[runner] = {
            "rounds": rounds,
            "median_captions_per_s": {m: statistics.median(r["captions_per_s"][m] for r in rounds) for m in MODES},
            "median_ratio": statistics.median(r["ratio"] for r in rounds),
            "identical": all(not r["differences"] for r in rounds),
        }
    first = next(iter(results.values()))["rounds"][0]["captions"]
    return {"artifacts": str(plan.artifacts), "clips": plan.clips, "beam": plan.beam, "rounds": plan.rounds,
            "clips_per_batch": clips_per_batch(plan), "load_average": os.getloadavg(), "runners": results,
            "same_captions_across_runners": {k: v["rounds"][0]["captions"] == first for k, v in results.items()}}


def clips_per_batch(plan: Plan) -> int:
    from atom_runner.manifest import load_manifest
    from atom_runner.schema import Key
    from atom_runner.session import clips_per_batch as per_batch

    return per_batch(int(load_manifest(plan.artifacts).data[Key.DECODE][Key.MAX_BATCH]), plan.beam)


def markdown(report: dict) -> str:
    n, per = report["clips"], report["clips_per_batch"]
    lines = [f"beam {report['beam']}, {n} clips ({-(-n // per)} batch(es) of up to {per} vs {n} singles), "
             f"{report['rounds']} rounds, load average at the end {report['load_average'][0]:.1f}",
             "", "| runner | one at a time (captions/s) | batched (captions/s) | ratio per round | median ratio | captions identical |",
             "|---|---|---|---|---|---|"]
    for runner, r in report["runners"].items():
        rate = r["median_captions_per_s"]
        ratios = ", ".join(f"{x['ratio']:.2f}" for x in r["rounds"])
        same = "yes" if r["identical"] else f"**no** ({sum(len(x['differences']) for x in r['rounds'])} differ)"
        lines.append(f"| {runner} | {rate['one_at_a_time']:.3g} | {rate['batched']:.3g} | {ratios} | "
                     f"**{r['median_ratio']:.2f}×** | {same} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    if sys.argv[1:2] == ["python-worker"]:
        return python_worker(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", type=Path, help="an ExecuTorch export folder (OUT/executorch)")
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--beam", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--runners", nargs="+", choices=RUNNERS, default=list(RUNNERS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per runner process")
    args = parser.parse_args()
    if not (args.artifacts / "manifest.json").is_file():
        parser.error(f"{args.artifacts} has no manifest.json")
    if args.clips < 1 or args.rounds < 1:
        parser.error("--clips and --rounds must be at least 1")
    for runner in args.runners:
        if runner in RUNNER_BINARIES and not RUNNER_BINARIES[runner].is_file():
            parser.error(f"{RUNNER_BINARIES[runner]} is not built (scripts/build_runner.sh)")
    plan = Plan(args.artifacts, args.clips, args.beam, args.rounds, tuple(args.runners), args.out, args.timeout)
    report = measure(plan, progress=lambda line: print(line, file=sys.stderr, flush=True))
    (args.out / "throughput.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    (args.out / "throughput.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
