"""Caption a clip set with one session, and time it.

Clips go one at a time through `Session.caption` (inline encoder): the latency is the
per-clip encode + decode cost of that configuration, not an overlap effect, so rows and
ablation settings compare like for like.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CaptionRun:
    captions: tuple[str, ...]
    seconds_per_clip: float  # median over clips


def caption_clips(session, clips: tuple[np.ndarray, ...], beam: int = 4, steps: int | None = None) -> CaptionRun:
    captions, times = [], []
    for clip in clips:
        start = time.perf_counter()
        captions.append(session.caption(clip, beam=beam, steps=steps))
        times.append(time.perf_counter() - start)
    return CaptionRun(tuple(captions), float(np.median(times)))
