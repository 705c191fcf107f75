#!/usr/bin/env python3
"""The qemu CPU-model matrix of `atom-deploy device parity`, outside CI (slow: `max` emulates SME).

    .venv/bin/python scripts/parity_matrix.py --bundle DIR [--clips 6] [--beams 1] [--out DIR]
        [--cpus cortex-a76,max,...] [--runtime-off sme,sve,...]

Every row is one `device parity` run through tests/fake_adb/adb, whose "phone" runs the bundle
under `qemu-aarch64 -cpu MODEL`. Rows, in order:
  - every model `qemu-aarch64 -cpu help` lists (or --cpus);
  - `max` with one qemu feature off at a time (--qemu-off; the CPU really lacks it);
  - `max` with one feature hidden by the runner (--runtime-off; `--cpu-disable F`, the safe path:
    the CPU has it, the runtime does not use it).
Prints a Markdown table (docs/device_parity.md) and writes each report to OUT/<row>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FAKE_ADB = REPO / "tests" / "fake_adb"
QEMU_OFF = ("sme", "sve", "pauth")  # the boolean features qemu 7.2's `max` takes as name=off
RUNTIME_OFF = ("sme", "sve", "i8mm", "dotprod")


def qemu_models() -> list[str]:
    # qemu 7.2 prints the list and exits 1 (it never ran a program): read the list, not the status.
    out = subprocess.run(["qemu-aarch64", "-cpu", "help"], capture_output=True, text=True).stdout
    models = [line.split()[0] for line in out.splitlines()[1:] if line.strip()]
    if not models:
        raise SystemExit("qemu-aarch64 -cpu help listed no CPU models")
    return models


def run_row(name: str, cpu: str, cpu_disable: str, args: argparse.Namespace, phone: Path) -> dict:
    env = dict(os.environ, PATH=f"{FAKE_ADB}{os.pathsep}{os.environ['PATH']}", FAKE_ADB_ROOT=str(phone),
               FAKE_ADB_CPU=cpu)
    out = args.out / f"{name.replace(',', '_').replace('=', '-').replace(' ', '_')}.json"
    cmd = [sys.executable, "-m", "atom_deploy", "device", "parity", "--bundle", str(args.bundle),
           "--clips", str(args.clips), "--beams", args.beams, "--out", str(out)]
    if cpu_disable:
        cmd += ["--cpu-disable", cpu_disable]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    seconds = time.perf_counter() - start
    if not out.is_file():
        return {"name": name, "error": (proc.stderr.strip().splitlines() or ["?"])[-1], "seconds": seconds}
    report = json.loads(out.read_text())
    return {"name": name, "report": report, "seconds": seconds}


def row_line(row: dict) -> str:
    if "error" in row:
        return f"| {row['name']} | error: {row['error']} | | | | | {row['seconds']:.0f} |"
    r = row["report"]
    greedy = [t for t in r["tokens"] if t["decode"] == "greedy" and t["name"] != "generate"]
    beam = [t for t in r["tokens"] if t["decode"] == "beam4"]
    gen = next(t for t in r["tokens"] if t["name"] == "generate")
    firsts = sorted({f"{t['first_diff']} at {t['host_margin']:.1%}" if t.get("host_margin") is not None
                     else str(t["first_diff"]) for t in greedy if t["first_diff"] is not None})
    kernels = sorted({k.split("_")[-2] + "_" + k.split("_")[-1] for calls in (r["device"].get("kernels") or {}).values()
                      for k in calls})
    return (f"| {row['name']} | {sum(t['ok'] for t in greedy)}/{len(greedy)}"
            f"{' (first diff ' + ', '.join(firsts) + ' of the logit range)' if firsts else ''} | "
            f"{str(sum(t['ok'] for t in beam)) + '/' + str(len(beam)) if beam else '-'} | "
            f"{'ok' if gen['ok'] else 'differs'} | {min(r['cosines']):.6f} | "
            f"{', '.join(kernels) or 'none'} | {row['seconds']:.0f} | {'pass' if r['ok'] else 'FAIL'} |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--clips", type=int, default=6)
    p.add_argument("--beams", default="1")
    p.add_argument("--cpus", default="", help="comma list (default: every model qemu-aarch64 -cpu help lists)")
    p.add_argument("--qemu-off", default=",".join(QEMU_OFF), help="max with each of these qemu features off")
    p.add_argument("--runtime-off", default=",".join(RUNTIME_OFF), help="max with each hidden by --cpu-disable")
    p.add_argument("--out", type=Path, default=Path("parity_matrix"))
    p.add_argument("--timeout", type=int, default=7200)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [(c, c, "") for c in (args.cpus.split(",") if args.cpus else qemu_models())]
    rows += [(f"max,{f}=off", f"max,{f}=off", "") for f in args.qemu_off.split(",") if f]
    rows += [(f"max --cpu-disable {f}", "max", f) for f in args.runtime_off.split(",") if f]
    print("| CPU | greedy ok | beam-4 ok | generate | min cosine | KleidiAI kernels | s | parity |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as phone:
        for name, cpu, off in rows:
            print(row_line(run_row(name, cpu, off, args, Path(phone))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
