"""Clips of a few windows (iter_clips(only=), what a Ray worker decodes for its range) equal
the same clips of a full pass bit for bit: decoding starts at the keyframe before the range."""

from __future__ import annotations

import numpy as np
import pytest

from atom_deploy.video.clips import iter_clips
from atom_deploy.video.preprocess import ClipSpec
from pipeline_helpers import VIDEOS, demo_video, needs_videos

SPEC = ClipSpec(num_frames=6, size=32)


def assert_ranges_equal_full_pass(path, per_range: int) -> None:
    full = {(c.start, c.end): c.tensor for c in iter_clips(path, SPEC)}
    windows = list(full)
    for first in range(0, len(windows), per_range):
        wanted = windows[first:first + per_range]
        part = [(c.start, c.end, c.tensor) for c in iter_clips(path, SPEC, only=wanted)]
        assert [(s, e) for s, e, _ in part] == wanted
        for start, end, tensor in part:
            assert np.array_equal(tensor, full[(start, end)]), f"{path.name} {start}-{end} s differs from the full pass"


@needs_videos
@pytest.mark.parametrize("name", ["bottle-detection.mp4", "car-detection.mp4"])  # H.264, 360p and 432p, 6-7 windows each
def test_ranges_of_the_shared_videos_equal_the_full_pass(name):
    assert_ranges_equal_full_pass(VIDEOS / name, per_range=4)


def test_ranges_of_a_rendered_video_equal_the_full_pass(tmp_path):
    path = tmp_path / "v.mp4"
    demo_video(path, "blue", seconds=40, scenes=4)
    assert_ranges_equal_full_pass(path, per_range=1)
