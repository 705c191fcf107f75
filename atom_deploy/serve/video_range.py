"""A clip tensor from a video file and a time range, sampled exactly as the index samples
a window (six frame centres, resize, crop, CLIP-normalise): the caption of the range
[0, 10] equals the index's caption of its first window."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atom_deploy.video.decode import iter_frames_at, probe
from atom_deploy.video.preprocess import ClipSpec, normalize_frame, sample_times, stack_clip
from atom_deploy.video.segment import TIME_EPS_S, ClipWindow
from atom_runner.errors import AtomError


def range_clip(path: str | Path, start_s: float, end_s: float, spec: ClipSpec) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise AtomError(f"{path}: no such video file")
    if end_s <= start_s:
        raise AtomError(f"video range end_s ({end_s}) must be after start_s ({start_s})")
    duration = probe(path).duration_s
    if end_s > duration + TIME_EPS_S:
        raise AtomError(f"video range ends at {end_s} s; {path.name} is {duration:.3f} s long")
    times = sample_times(ClipWindow(float(start_s), float(end_s)), spec.num_frames)
    # normalize_frame + stack_clip: the same steps, in the same order, as video/clips.iter_clips
    return stack_clip([normalize_frame(frame, spec) for frame in iter_frames_at(path, times)])
