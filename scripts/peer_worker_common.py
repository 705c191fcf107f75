"""What every worker of scripts/bench_peer.py shares: a job file in, one RESULT line out,
and the one greedy loop that times steps and checks tokens.

Standard library + numpy only: the workers run in different venvs (.venv, .venv-peer).

A runner plugs in two functions:
    prefill(ids: list[int]) -> logits [V]        (positions 0..len(ids)-1, cache restarted)
    step(token: int, pos: int) -> logits [V]     (one token at position pos)
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

Prefill = Callable[[list[int]], np.ndarray]
Step = Callable[[int, int], np.ndarray]


def read_job() -> dict:
    """The job is a JSON file named by argv[1] (see bench_peer.py: `job` for its keys)."""
    return json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))


def emit(result: dict) -> None:
    result.setdefault("peak_rss_mb", peak_rss_mb())  # a worker that times a child reports the child's
    print("RESULT " + json.dumps(result), flush=True)


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed_decode(prefill: Prefill, step: Step, ids: list[int], steps: int) -> dict:
    """Prefill `ids`, then `steps` greedy steps; each step's time includes its argmax."""
    start = time.perf_counter()
    token = int(np.argmax(prefill(ids)))
    prefill_s = time.perf_counter() - start
    tokens, times, pos = [token], [], len(ids)
    for _ in range(steps):
        start = time.perf_counter()
        token = int(np.argmax(step(token, pos)))
        times.append(time.perf_counter() - start)
        tokens.append(token)
        pos += 1
    return {"prefill_s": prefill_s, "step_s": times, "tokens": tokens}


def timing(prefill: Prefill, step: Step, job: dict) -> dict:
    """One warm-up pass (weight packing, allocator), then the measured pass."""
    timed_decode(prefill, step, job["prefill_ids"], job["steps"])
    run = timed_decode(prefill, step, job["prefill_ids"], job["steps"])
    run["step_median_s"] = statistics.median(run["step_s"])
    return run


def accuracy(prefill: Prefill, step: Step, job: dict) -> dict:
    """Greedy tokens from each prompt, and top-1 under teacher forcing on the reference tokens."""
    greedy, forced_top1 = [], []
    for ids, ref in zip(job["prompts"], job["reference"]):
        greedy.append(timed_decode(prefill, step, ids, len(ref) - 1)["tokens"])
        top1 = [int(np.argmax(prefill(ids)))]
        for i, token in enumerate(ref[:-1]):
            top1.append(int(np.argmax(step(token, len(ids) + i))))
        forced_top1.append(top1)
    return {"greedy": greedy, "forced_top1": forced_top1}


def run(job: dict, prefill: Prefill, step: Step, info: dict) -> None:
    out = dict(info)
    out.update(timing(prefill, step, job) if job["kind"] == "timing" else accuracy(prefill, step, job))
    emit(out)
