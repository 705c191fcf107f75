"""atom-deploy profile: where ExecuTorch spends a decoder step and an encoder call (its ETDump profiler)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from atom_deploy.table import print_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help=__doc__.split(": ", 1)[1])
    p.add_argument("folder", type=Path, help="an ExecuTorch artifact folder (OUT/executorch)")
    p.add_argument("--steps", type=int, default=20, help="decode steps profiled per mode (greedy, beam 4)")
    p.add_argument("--top", type=int, default=12, help="operators listed per mode")
    p.add_argument("--out", type=Path, default=None, help="write the whole profile as JSON here")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atom_deploy.bench.profile import profile_artifacts
    from atom_runner.errors import AtomError

    if args.steps < 1 or args.top < 1:
        raise AtomError("--steps and --top must be at least 1")
    profiles = profile_artifacts(args.folder, args.steps)
    for profile in profiles:
        print(f"{profile.what}: {profile.ms_per_run:.2f} ms of operator time per call ({profile.runs} calls)")
        print_table(
            ("operator", "runs / call", "ms / call", "share"),
            [(o.name, f"{o.calls_per_run:g}", f"{o.ms_per_run:.3f}", f"{100 * o.share:.1f}%") for o in profile.ops[: args.top]],
        )
        print()
    if args.out:
        args.out.write_text(json.dumps([asdict(p) for p in profiles], indent=2) + "\n")
    return 0
