"""atom-deploy latency: per-module load and run latency of exported artifacts vs eager PyTorch fp32."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from atom_deploy.bench.bandwidth import measure_bandwidth
from atom_deploy.table import print_table
from atom_runner.errors import AtomError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("latency", help=__doc__.split(": ", 1)[1])
    p.add_argument("folders", nargs="+", type=Path, help="artifact folders (OUT/<backend>)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per stage (median reported)")
    p.add_argument("--no-eager", action="store_true", help="skip the eager PyTorch fp32 reference")
    p.add_argument("--cpp-runner", type=Path, default=None,
                   help="also time this C++ atom_runner build (e.g. runners/android/build-host/atom_runner) on each ExecuTorch folder")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atom_runner.manifest import load_manifest

    if args.cpp_runner and not args.cpp_runner.is_file():
        raise AtomError(f"--cpp-runner {args.cpp_runner} does not exist (scripts/build_runner.sh host builds it)")
    jobs = [(folder, load_manifest(folder).backend) for folder in args.folders]
    if not args.no_eager:
        jobs.append((args.folders[0], "eager"))
    results = []
    print("measuring memory bandwidth ...", file=sys.stderr)
    bandwidth = measure_bandwidth()
    for folder, backend in jobs:  # one fresh process each: load time and peak RSS are per config
        print(f"measuring {backend} on {folder} ...", file=sys.stderr)
        proc = subprocess.run(
            [sys.executable, "-m", "atom_deploy.bench.latency_worker", str(folder), backend, str(args.repeat)],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise AtomError(f"latency run for {backend} on {folder} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    ms = lambda s: f"{1000 * s:.1f}"  # noqa: E731
    rows = [
        (r["model"], r["backend"], r["quant"], ms(r["load_s"]["runtime import"]), ms(_module_load(r)),
         ms(r["encoder_s"]),
         f"{ms(r['prefill_s'])} ({r['prefill_tokens'] / r['prefill_s']:.0f} tok/s)", ms(r["greedy_step_s"]), ms(r["beam4_step_s"]),
         ms(r["minilm_batch32_s"]), f"{r['peak_rss_mb']:.0f}")
        for r in results
    ]
    print_table(("model", "runtime", "quant", "import ms", "load ms", "encoder ms/clip", "prefill ms", "greedy step ms",
                 "beam-4 step ms", "MiniLM x32 ms", "peak RSS MB"), rows)
    print()
    print(f"memory bandwidth (1 GiB copy, read + write): {bandwidth.one_thread_gbs:.1f} GB/s on 1 thread, "
          f"{bandwidth.all_threads_gbs:.1f} GB/s on {bandwidth.threads}; the floor uses {bandwidth.best_gbs:.1f}")
    floor_rows = []
    for r in results:
        if "weight_bytes_per_step" not in r:
            continue
        floor = r["weight_bytes_per_step"] / (bandwidth.best_gbs * 1e9)
        r["floor_s"] = floor
        floor_rows.append((r["backend"], r["quant"], f"{r['weight_bytes_per_step'] / 1e6:.1f}", ms(floor), ms(r["greedy_step_s"]),
                           f"{r['greedy_step_s'] / floor:.2f}", f"{r['beam4_step_s'] / floor:.2f}"))
    print_table(("runtime", "quant", "weight MB / step", "floor ms", "greedy step ms", "greedy / floor", "beam-4 / floor"), floor_rows)
    print_table(("runtime", "quant", "batch rows", "greedy step ms", "ms per row", "step / 1-row step"), [
        (r["backend"], r["quant"], rows, ms(step), ms(step / int(rows)), f"{step / r['step_s_by_rows']['1']:.2f}")
        for r in results for rows, step in r["step_s_by_rows"].items()
    ])
    print_table(("runtime", "quant", "decode", "clips per batch", "captions/s one at a time", "captions/s batched", "ratio"), [
        (r["backend"], r["quant"], name, t["clips"], f"{t['one_at_a_time']:.2f}", f"{t['batched']:.2f}", f"{t['ratio']:.2f}")
        for r in results for name, t in r["decode_captions_per_s"].items()
    ])
    cpp = _cpp_rows(args, results) if args.cpp_runner else []
    if cpp:
        print_table(("runner", "folder", "prefill ms", "greedy step ms", "beam-4 step ms", "C++ / Python greedy", "C++ / Python beam-4"), [
            ("C++ atom_runner", c["folder"], ms(c["prefill_s"]), ms(c["greedy_step_s"]), ms(c["beam4_step_s"]),
             f"{c['greedy_step_s'] / c['python']['greedy_step_s']:.2f}", f"{c['beam4_step_s'] / c['python']['beam4_step_s']:.2f}")
            for c in cpp
        ])
    if args.out:
        args.out.write_text(json.dumps({"bandwidth": vars(bandwidth), "results": results, "cpp": cpp}, indent=2) + "\n")
    print("import: the runtime itself; load: the three modules (eager: building the model and its weights); "
          "steps: a whole decode (decode_steps selections) per decoder call, selection and cache reorder included")
    return 0


def _cpp_rows(args: argparse.Namespace, results: list[dict]) -> list[dict]:
    """The C++ runner on every ExecuTorch folder, beside that folder's Python row."""
    rows = []
    for folder, python in zip(args.folders, results):
        if python["backend"] != "executorch":
            continue
        print(f"measuring the C++ runner on {folder} ...", file=sys.stderr)
        proc = subprocess.run([str(args.cpp_runner), "latency", "--artifacts", str(folder), "--iters", str(args.repeat)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise AtomError(f"C++ latency on {folder} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        rows.append({**json.loads(proc.stdout), "folder": str(folder), "python": python})
    return rows


def _module_load(result: dict) -> float:
    return sum(v for k, v in result["load_s"].items() if k != "runtime import")
