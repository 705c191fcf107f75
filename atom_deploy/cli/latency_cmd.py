"""atom-deploy latency: per-module load and run latency of exported artifacts vs eager PyTorch fp32."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from atom_deploy.cli.table import print_table
from atom_runner.errors import AtomError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("latency", help=__doc__.split(": ", 1)[1])
    p.add_argument("folders", nargs="+", type=Path, help="artifact folders (OUT/<backend>)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per stage (median reported)")
    p.add_argument("--no-eager", action="store_true", help="skip the eager PyTorch fp32 reference")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atom_runner.manifest import load_manifest

    jobs = [(folder, load_manifest(folder).backend) for folder in args.folders]
    if not args.no_eager:
        jobs.append((args.folders[0], "eager"))
    results = []
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
         f"{ms(r['prefill_s'])} ({r['prefill_tokens']} tok)", ms(r["greedy_step_s"]), ms(r["beam4_step_s"]),
         ms(r["minilm_batch32_s"]), f"{r['peak_rss_mb']:.0f}")
        for r in results
    ]
    print_table(("model", "runtime", "quant", "import ms", "load ms", "encoder ms/clip", "prefill ms", "greedy step ms",
                 "beam-4 step ms", "MiniLM x32 ms", "peak RSS MB"), rows)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("import: the runtime itself; load: the three modules (eager: building the model and its weights)")
    return 0


def _module_load(result: dict) -> float:
    return sum(v for k, v in result["load_s"].items() if k != "runtime import")
