"""A video file -> its clip tensors, one decode pass, memory flat in the video's length.

All windows and their sample times are known up front (the length comes from probe),
so the times of every window are merged into one sorted list and the file is decoded
once. Windows overlap, so their times interleave: a clip is yielded as soon as its last
frame arrives, and its frames are dropped then. Only the clips whose windows cover the
current decode position are held (window / stride + 1 of them, 3 with the defaults),
and they hold frames already shrunk to the encoder's size, not full-size frames.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from atom_deploy.video.decode import iter_frames_at, probe
from atom_deploy.video.preprocess import ClipSpec, normalize_frame, sample_times, stack_clip
from atom_deploy.video.segment import segment


@dataclass(frozen=True, eq=False)  # eq=False: comparing tensors with == is ambiguous
class Clip:
    path: str
    start: float  # seconds on the file's timeline
    end: float
    tensor: np.ndarray = field(repr=False)  # float32 (1, 3, T, size, size)


@dataclass(frozen=True)
class _Request:
    """One sample time, and which clip and frame slot it fills."""

    time_s: float
    clip_index: int
    slot: int


def iter_clips(
    path: str | Path,
    spec: ClipSpec = ClipSpec(),
    window_s: float = 10.0,
    stride_s: float = 5.0,
    only: Collection[tuple[float, float]] | None = None,
) -> Iterator[Clip]:
    """Clips in timeline order. A truncated file yields the clips it can, then AtomError.
    only: just these (start, end) windows, decoded from the keyframe before the first."""
    info = probe(path)
    windows = segment(info.duration_s, window_s, stride_s)
    if only is not None:
        wanted = set(only)
        windows = [w for w in windows if (w.start, w.end) in wanted]
    requests = sorted(
        (
            _Request(time_s, clip_index, slot)
            for clip_index, window in enumerate(windows)
            for slot, time_s in enumerate(sample_times(window, spec.num_frames))
        ),
        key=lambda r: (r.time_s, r.clip_index, r.slot),
    )

    filling: dict[int, list[np.ndarray | None]] = {}
    last_frame: np.ndarray | None = None
    last_normalized: np.ndarray | None = None
    frames = iter_frames_at(path, [r.time_s for r in requests], seek=only is not None)
    for request, frame in zip(requests, frames, strict=True):
        if frame is not last_frame:
            # Overlapping windows often sample the same decoded frame: shrink it once.
            last_frame, last_normalized = frame, normalize_frame(frame, spec)
        slots = filling.setdefault(request.clip_index, [None] * spec.num_frames)
        slots[request.slot] = last_normalized
        if all(s is not None for s in slots):
            window = windows[request.clip_index]
            del filling[request.clip_index]
            yield Clip(str(path), window.start, window.end, stack_clip(slots))
