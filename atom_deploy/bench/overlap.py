"""How much encode/decode overlap `caption_stream` really buys, against its ideal bound.

Sequential: encode clip i, then decode it, for every clip (no overlap). Overlapped:
caption_stream, which encodes clip i+1 while clip i decodes. The ideal overlapped time is
max(sum of encodes, sum of decodes); on 2 cores both stages compete for the same cores.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from atom_runner.session import Session


def clips_for(session: Session, count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(session.clip_shape).astype(np.float32) for _ in range(count)]


def measure_overlap(folder: Path, backend: str, count: int, beam: int, overlap: str, threads: int | None) -> dict:
    with Session(folder, backend=backend, overlap="off", threads=threads) as s:
        clips = clips_for(s, count)
        s.caption(clips[0], beam=beam)  # warm-up
        encode, decode = [], []
        start = time.perf_counter()
        for clip in clips:
            t0 = time.perf_counter()
            prefix = s.encode(clip)
            t1 = time.perf_counter()
            s.decode_ids([], prefix, beam, s.decode_steps)
            encode.append(t1 - t0)
            decode.append(time.perf_counter() - t1)
        sequential = time.perf_counter() - start
    with Session(folder, backend=backend, overlap=overlap, threads=threads) as s:
        list(s.caption_stream(clips[:1], beam=beam))  # warm-up (and the worker's first call)
        start = time.perf_counter()
        captions = list(s.caption_stream(clips, beam=beam))
        overlapped = time.perf_counter() - start
    ideal = max(sum(encode), sum(decode))
    return {
        "backend": backend, "overlap": overlap, "threads": threads or "default", "clips": count, "beam": beam,
        "sum_encode_s": sum(encode), "sum_decode_s": sum(decode), "sequential_s": sequential,
        "overlapped_s": overlapped, "ideal_s": ideal, "speedup": sequential / overlapped,
        "vs_ideal": overlapped / ideal, "captions": len(captions),
    }
