#!/usr/bin/env python
"""N tasks through one resident `atom_runner serve` against N one-shot `atom_runner` processes.

    .venv/bin/python scripts/resident_vs_oneshot.py --artifacts artifacts/executorch [--tasks 12 --repeat 3]
    .venv/bin/python scripts/resident_vs_oneshot.py --device [--bundle B --serial S] --tasks 4 --repeat 1

Host: the host build (scripts/build_runner.sh host). --device: the pushed bundle over adb
(`atom-deploy device push` first), one `adb shell` per one-shot task against one kept open.
The tasks cycle caption (one clip, the manifest's beam), embed, generate and search. The two
modes alternate within each repeat (one-shot, resident, one-shot, ...), so load on the machine
falls on both; each repeat checks that both modes gave the same tokens and embeddings.
Prints a markdown table; --out writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "runners" / "python"))

from atom_deploy.device.resident import ResidentRunner  # noqa: E402
from atom_runner.manifest import load_manifest  # noqa: E402
from atom_runner.schema import Key  # noqa: E402

TEXTS = ["a red car on a road", "a dog runs in the park"]


def tasks(n: int, clip: str) -> list[tuple[dict, list[str]]]:
    """(serve request, one-shot argv after the subcommand's --artifacts) for n tasks."""
    cycle = [({"op": "caption", "clips": [clip]}, ["caption", clip]),
             ({"op": "embed", "texts": TEXTS}, ["embed", *TEXTS]),
             ({"op": "generate", "prompt": "summary: a dog"}, ["generate", "summary: a dog"]),
             ({"op": "search", "query": "a dog", "texts": TEXTS, "top": 2}, ["search", "--query", "a dog", "--top", "2", *TEXTS])]
    return [cycle[i % len(cycle)] for i in range(n)]


def essence(reply: dict) -> object:
    """What must agree between the modes: tokens, embeddings (rounded to float32 noise), ranks."""
    if "captions" in reply:
        return [c["tokens"] for c in reply["captions"]]
    if "embeddings" in reply:
        return np.round(np.asarray(reply["embeddings"]), 5).tolist()
    if "results" in reply:
        return [r["index"] for r in reply["results"]]
    return reply["tokens"]


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def one_shot(run, work: list) -> tuple[float, list]:
    t0 = time.perf_counter()
    outs = [json.loads(run(argv)) for _, argv in work]
    return time.perf_counter() - t0, outs


def resident(open_runner, work: list) -> tuple[float, float, list, dict]:
    t0 = time.perf_counter()
    with open_runner() as r:
        outs = []
        for request, _ in work:
            outs.append(r.ask(**request))
            if len(outs) == 1:
                first = time.perf_counter() - t0  # load + the first task
        stats = r.stats()
    return time.perf_counter() - t0, first, outs, stats


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--artifacts", type=Path, default=REPO / "artifacts" / "executorch")
    p.add_argument("--tasks", type=int, default=12)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--device", action="store_true", help="the pushed bundle over adb instead of the host build")
    p.add_argument("--serial")
    p.add_argument("--bundle", type=Path, default=REPO / "build" / "device-bundle", help="the bundle pushed (--device)")
    p.add_argument("--out", type=Path)
    args = p.parse_args()

    if args.device:
        from atom_deploy.device.adb import Adb
        from atom_deploy.device.remote import push_files, run_runner

        adb = Adb(args.serial)
        shape = load_manifest(args.bundle / "artifacts").data[Key.CLIP][Key.SHAPE]
        where = f"device {adb.serial}"
    else:
        build = subprocess.run([str(REPO / "scripts" / "build_runner.sh"), "host"], capture_output=True, text=True, check=True)
        binary = build.stdout.strip().splitlines()[-1]
        shape = load_manifest(args.artifacts).data[Key.CLIP][Key.SHAPE]
        where = f"host {platform.machine()}"
    with tempfile.TemporaryDirectory() as tmp:
        local_clip = Path(tmp) / "clip.bin"
        np.random.default_rng(0).standard_normal(shape).astype(np.float32).tofile(local_clip)
        if args.device:
            clip = push_files(adb, [local_clip], "clips")[0]
            run = lambda argv: run_runner(adb, [argv[0], "--artifacts", "artifacts", *argv[1:]])  # noqa: E731
            open_runner = lambda: ResidentRunner.on_device(adb)  # noqa: E731
        else:
            clip = str(local_clip)
            run = lambda argv: subprocess.run([binary, argv[0], "--artifacts", str(args.artifacts), *argv[1:]],  # noqa: E731
                                              capture_output=True, text=True, check=True).stdout
            open_runner = lambda: ResidentRunner.on_host(Path(binary), args.artifacts)  # noqa: E731
        work = tasks(args.tasks, clip)
        load_before = os.getloadavg()
        rows = []
        for _ in range(args.repeat):
            shot_s, shot_outs = one_shot(run, work)
            res_s, first_s, res_outs, stats = resident(open_runner, work)
            same = sum(essence(a) == essence(b) for a, b in zip(shot_outs, res_outs))
            rows.append({"one_shot_s": shot_s, "resident_s": res_s, "resident_first_task_s": first_s,
                         "resident_load_s": stats["load_s"], "resident_loads": stats["loads"], "same_outputs": same})
        load_after = os.getloadavg()
    med = {k: statistics.median(r[k] for r in rows) for k in ("one_shot_s", "resident_s", "resident_load_s")}
    n = args.tasks
    summary = {"where": where, "artifacts": str(args.bundle / "artifacts" if args.device else args.artifacts), "tasks": n, "repeat": args.repeat,
               "cpu": cpu_name(), "cores": os.cpu_count(),
               "loadavg_1m_before_after": [load_before[0], load_after[0]], "runs": rows, "median": med,
               "one_shot_loads": f"{n} processes x 3 modules (each one-shot Runner loads all three)",
               "saved_per_task_s": (med["one_shot_s"] - med["resident_s"]) / n,
               "speedup": med["one_shot_s"] / med["resident_s"]}
    print(f"{n} tasks on {where} ({summary['artifacts']}, {summary['cpu']}), median of {args.repeat}, 1-min load {load_before[0]:.1f} -> {load_after[0]:.1f}\n")
    print("| mode | wall s | per task s | module loads |\n|---|---|---|---|")
    print(f"| one-shot (a process per task) | {med['one_shot_s']:.2f} | {med['one_shot_s'] / n:.3f} | {3 * n} |")
    loads = rows[-1]["resident_loads"]
    print(f"| resident (one serve process) | {med['resident_s']:.2f} | {med['resident_s'] / n:.3f} | "
          f"{sum(loads.values())} ({', '.join(f'{k} {v}' for k, v in sorted(loads.items()))}) |")
    print(f"\nresident {summary['speedup']:.2f}x faster, {summary['saved_per_task_s']:.3f} s saved per task; "
          f"its load {med['resident_load_s']:.2f} s once; outputs equal {[r['same_outputs'] for r in rows]} of {n}")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1))
    return 0 if all(r["same_outputs"] == n for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
