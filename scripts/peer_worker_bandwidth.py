"""Streaming memory bandwidth, in this fresh process: numpy copies of 1 GiB arrays.

    python scripts/peer_worker_bandwidth.py JOB.json      (job: {"gib": 1, "repeat": 5, "threads": [1, 2]})

Each thread copies its own slice of src into dst (numpy releases the GIL while it copies).
Bandwidth counts the bytes read plus the bytes written, per second; the best of `repeat`.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from peer_worker_common import emit, read_job


def copy_gbps(src: np.ndarray, dst: np.ndarray, threads: int, repeat: int) -> float:
    bounds = np.linspace(0, src.size, threads + 1).astype(int)

    def part(i: int) -> None:
        np.copyto(dst[bounds[i] : bounds[i + 1]], src[bounds[i] : bounds[i + 1]])

    best = float("inf")
    for _ in range(repeat):
        workers = [threading.Thread(target=part, args=(i,)) for i in range(threads)]
        start = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best / 1e9


def main() -> None:
    job = read_job()
    n = int(job["gib"] * 2**30) // 8
    src = np.arange(n, dtype=np.float64)  # touched: every page is resident before timing
    dst = np.ones_like(src)
    emit({"copy_gbps": {str(t): copy_gbps(src, dst, t, job["repeat"]) for t in job["threads"]}, "gib": job["gib"]})


if __name__ == "__main__":
    main()
