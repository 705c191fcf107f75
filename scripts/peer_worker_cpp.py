"""Time the kit's C++ runner on the same export: `atom_runner latency`, in this fresh process's child.

    .venv/bin/python scripts/peer_worker_cpp.py JOB.json      (job["artifacts"]: DIR/executorch)

The C++ runner's own per-step timing (runners/android/src/latency.cpp): a whole greedy
decode of the manifest's decode steps after BOS + the visual prefix, per step, median of
3 runs after a warm-up; its default threadpool takes every core (2 here). It decodes from
a clip, not from the 50-token text prompt, so its context is shorter than the other rows':
on a 135M model at these lengths attention is a small part of a step. It takes token ids
only through a clip, so it has no accuracy row; test_cpp_runner checks its tokens equal
the Python runner's.
"""

from __future__ import annotations

import json
import resource
import subprocess
import time
from pathlib import Path

from peer_worker_common import emit, read_job

BINARY = Path(__file__).resolve().parent.parent / "runners/android/build-host/atom_runner"


def main() -> None:
    job = read_job()
    if job["kind"] != "timing":
        emit({"not_applicable": "the C++ runner decodes from a clip; its tokens are checked by tests/test_cpp_runner.py"})
        return
    if not BINARY.is_file():
        emit({"error": f"no {BINARY} (scripts/build_runner.sh host)"})
        return
    start = time.perf_counter()
    proc = subprocess.run([str(BINARY), "latency", "--artifacts", str(job["artifacts"]), "--iters", "3"],
                          capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        emit({"error": (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1]})
        return
    stages = json.loads(proc.stdout.strip().splitlines()[-1])
    emit({"step_median_s": stages["greedy_step_s"], "prefill_s": stages["prefill_s"],
          "prefill_tokens": stages["prefill_tokens"], "load_s": time.perf_counter() - start,
          "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024})


if __name__ == "__main__":
    main()
