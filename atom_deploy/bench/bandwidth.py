"""The memory-bandwidth floor of a decode step: weight bytes read per step / bandwidth.

A decode step of a memory-bound decoder reads every Linear weight once, so no runtime can
beat bytes / bandwidth. Bandwidth is measured here, in the same run as the steps it
judges: a streaming copy of a 1 GiB array (read + write counted), on 1 thread and split
over every core, the best of a few repeats. The floor uses the faster of the two, so a
ratio against it is never flattering.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from atom_runner.schema import Key

_COPY_BYTES = 1 << 30


@dataclass(frozen=True)
class Bandwidth:
    one_thread_gbs: float
    all_threads_gbs: float
    threads: int

    @property
    def best_gbs(self) -> float:
        return max(self.one_thread_gbs, self.all_threads_gbs)


def measure_bandwidth(repeats: int = 5, threads: int | None = None) -> Bandwidth:
    threads = threads or os.cpu_count() or 1
    src = np.ones(_COPY_BYTES // 8, dtype=np.float64)
    dst = np.empty_like(src)
    chunks = np.array_split(np.arange(src.size), threads)
    bounds = [(int(c[0]), int(c[-1]) + 1) for c in chunks]

    def copy_part(bound: tuple[int, int]) -> None:
        np.copyto(dst[bound[0] : bound[1]], src[bound[0] : bound[1]])  # numpy drops the GIL for this

    def best(fn) -> float:
        fn()  # first touch of dst's pages is not bandwidth
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return 2 * src.nbytes / min(times) / 1e9

    one = best(lambda: np.copyto(dst, src))
    with ThreadPoolExecutor(threads) as pool:
        many = best(lambda: list(pool.map(copy_part, bounds)))
    return Bandwidth(one, many, threads)


def weight_bytes_per_step(decoder_file_bytes: int, config: dict, quant: str) -> int:
    """Bytes a decode step must read: the decoder file less its token-embedding table, of
    which a step reads only one row per token (the tied lm_head is a separate Linear copy)."""
    vocab, dim = config[Key.VOCAB_SIZE], config[Key.DIM]
    table = vocab * dim * 4 if quant == "fp32" else vocab * dim + vocab * 4  # int8 rows + one fp32 scale each
    return decoder_file_bytes - table
