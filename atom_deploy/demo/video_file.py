"""Write several scenes back to back as one mp4, with the caption of each time range.

Pipeline tests need a long video whose content is known per time range. Every scene
plays for `seconds_per_scene`, rendered at the video's own frame rate so motion is
smooth; frame k of a scene shows the centre of its slice, (k + 0.5) / frames, the same
convention render_clip uses, so a 6-frame sampler over one scene sees the training
frames. H.264 (libx264) when this PyAV build has it, otherwise MPEG-4 Part 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from atom_deploy.demo.captions import canonical_caption
from atom_deploy.demo.render import render_frame
from atom_deploy.demo.scene import Scene
from atom_runner.errors import AtomError

PREFERRED_CODECS = ("libx264", "mpeg4")


def available_codec() -> str:
    for name in PREFERRED_CODECS:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # PyAV raises its own error types per version; absence is all we need
            continue
        return name
    raise AtomError(f"this PyAV build has none of the encoders {list(PREFERRED_CODECS)}")


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
    if width % 2 or height % 2 or min(width, height) < 16:
        raise AtomError(f"video size must be even and >= 16 px per side (yuv420p), got {size}")
    frames_per_scene = round(seconds_per_scene * fps)
    if frames_per_scene < 1:
        raise AtomError(f"{seconds_per_scene} s at {fps} fps is less than one frame per scene")
    scene_seconds = frames_per_scene / fps  # what is actually written, to the frame

    codec = available_codec()
    segments: list[tuple[float, float, str]] = []
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "veryfast"}
        else:
            stream.bit_rate = 2_000_000  # mpeg4's default bit rate smears the sprites
        time_base = Fraction(1, fps)
        pts = 0
        for index, scene in enumerate(scenes):
            rng = np.random.default_rng([seed, index])  # noise per scene, order-independent
            for k in range(frames_per_scene):
                pixels = render_frame(scene, (k + 0.5) / frames_per_scene, width, height, rng)
                frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
                frame.pts, frame.time_base = pts, time_base
                pts += 1
                container.mux(stream.encode(frame))
            segments.append((index * scene_seconds, (index + 1) * scene_seconds, canonical_caption(scene)))
        container.mux(stream.encode(None))  # flush the encoder's delayed frames
    return segments
