#!/usr/bin/env python3
"""What the safe path costs: `atom_runner latency` on the device with and without --cpu-disable.

    .venv/bin/python scripts/safe_path_cost.py --bundle DIR [--serial S] [--disable sme]
        [--rounds 3] [--iters 3] [--stand-in-cpu max,sme=off]

Each round runs `latency` once per variant, in turn (default, then `--cpu-disable FEATURES`), so
load drift falls on every variant alike; it prints each variant's median encoder time, greedy step
and beam-4 step, and their ratio to the default. `--stand-in-cpu MODEL` adds a variant run
through tests/fake_adb under `qemu-aarch64 -cpu MODEL` with no flag: under `max,sme=off` it runs
the safe path's kernels on a CPU that really lacks SME, so its ratio to the safe path is the
cost of the mask itself.

Under the adb stand-in every time is qemu's emulation: an SME instruction costs what qemu's
translator makes it cost, not what a phone's core does. Only the ratios between variants on the
same emulated CPU mean anything there, and only a phone prices the safe path
(docs/device_parity.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from atom_deploy.device.adb import Adb
from atom_deploy.device.remote import push_bundle, run_runner

METRICS = ("encoder_s", "greedy_step_s", "beam4_step_s")


def latency(adb: Adb, iters: int, flags: list[str], stand_in_cpu: str | None) -> dict:
    # The stand-in reads FAKE_ADB_CPU each time adb runs (unset: its default); a phone ignores it.
    os.environ.pop("FAKE_ADB_CPU", None)
    if stand_in_cpu:
        os.environ["FAKE_ADB_CPU"] = stand_in_cpu
    return json.loads(run_runner(adb, ["latency", "--artifacts", "artifacts", "--iters", str(iters), *flags]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--serial")
    p.add_argument("--disable", default="sme", help="the --cpu-disable features of the safe path")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iters", type=int, default=3, help="latency's own repeats (median) per run")
    p.add_argument("--stand-in-cpu", help="add a variant under the adb stand-in's qemu -cpu MODEL, no flag")
    args = p.parse_args()
    adb = Adb(args.serial)
    default_cpu = os.environ.get("FAKE_ADB_CPU")
    push_bundle(adb, args.bundle)
    variants = {"default": ([], default_cpu), f"--cpu-disable {args.disable}": (["--cpu-disable", args.disable], default_cpu)}
    if args.stand_in_cpu:
        variants[f"-cpu {args.stand_in_cpu}"] = ([], args.stand_in_cpu)
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for r in range(args.rounds):
        for name, (flags, cpu) in variants.items():
            runs[name].append(latency(adb, args.iters, flags, cpu))
            print(f"round {r + 1} {name}: " + " ".join(f"{m}={runs[name][-1][m] * 1e3:.1f}ms" for m in METRICS),
                  file=sys.stderr, flush=True)
    median = {name: {m: statistics.median(x[m] for x in rs) for m in METRICS} for name, rs in runs.items()}
    print(f"| variant | {' | '.join(m.removesuffix('_s') + ' ms' for m in METRICS)} | "
          f"{' | '.join(m.removesuffix('_s') + ' / default' for m in METRICS)} |")
    print("|---" * (1 + 2 * len(METRICS)) + "|")
    base = median["default"]
    for name, med in median.items():
        print(f"| {name} | {' | '.join(f'{med[m] * 1e3:.1f}' for m in METRICS)} | "
              f"{' | '.join(f'{med[m] / base[m]:.2f}' for m in METRICS)} |")
    print(f"{args.rounds} rounds x {args.iters} iters on {adb.serial}, medians; bundle runner "
          f"{json.loads((args.bundle / 'bundle.json').read_text()).get('runner_build', {}).get('commit', '?')[:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
