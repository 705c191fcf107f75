"""Write several scenes back to back as one mp4, with the caption of each time range.

Pipeline tests need a long video whose content is known per time range. Every scene
plays for `seconds_per_scene`, rendered at the video's own frame rate so motion is
smooth; frame k of a scene shows the centre of its slice, (k + 0.5) / frames, the same
convention render_clip uses, so a 6-frame sampler over one scene sees the training
frames. H.264 (libx264) when this PyAV build has it, otherwise MPEG-4 Part 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from atom_deploy.demo.captions import canonical_caption
from atom_deploy.demo.render import render_frame
from atom_deploy.demo.scene import Scene
from atom_deploy.video.mp4 import H264, MPEG4, check_frame_size, first_encoder, mp4_writer
from atom_runner.errors import AtomError

PREFERRED_CODECS = (H264, MPEG4)


def write_video(
    path: str | Path,
    scenes: Sequence[Scene],
    seconds_per_scene: float = 10.0,
    fps: int = 8,
    size: tuple[int, int] = (320, 240),
    seed: int = 0,
) -> list[tuple[float, float, str]]:
    """Write the mp4; return [(start s, end s, canonical caption)] per scene, in order."""
    width, height = size
    if not scenes:
        raise AtomError("write_video needs at least one scene")
    check_frame_size(width, height, "video")
    frames_per_scene = round(seconds_per_scene * fps)
    if frames_per_scene < 1:
        raise AtomError(f"{seconds_per_scene} s at {fps} fps is less than one frame per scene")
    scene_seconds = frames_per_scene / fps  # what is actually written, to the frame

    segments: list[tuple[float, float, str]] = []
    with mp4_writer(path, width, height, fps, first_encoder(PREFERRED_CODECS), crf=18) as write:
        for index, scene in enumerate(scenes):
            rng = np.random.default_rng([seed, index])  # noise per scene, order-independent
            for k in range(frames_per_scene):
                write(render_frame(scene, (k + 0.5) / frames_per_scene, width, height, rng))
            segments.append((index * scene_seconds, (index + 1) * scene_seconds, canonical_caption(scene)))
    return segments
