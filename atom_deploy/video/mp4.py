"""The kit's one mp4 writer: RGB frames in, a constant-frame-rate yuv420p mp4 out (PyAV).

Demo videos (demo/video_file.py) and assembled reels (pipelines/stitch.py) both write
through it. The file is written under a temporary name and renamed when complete, so a
failure never leaves a half-written mp4 at the requested path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from atom_runner.errors import AtomError

H264 = "libx264"
MPEG4 = "mpeg4"  # MPEG-4 Part 2: in every FFmpeg build, for PyAV builds without libx264


def check_frame_size(width: int, height: int, what: str) -> None:
    if width % 2 or height % 2 or min(width, height) < 16:
        raise AtomError(f"{what} size must be even and >= 16 px per side (yuv420p), got {width}x{height}")


def has_encoder(codec: str) -> bool:
    try:
        av.codec.Codec(codec, "w")
    except Exception:  # PyAV's error type for a missing codec varies by version; absence is all we need
        return False
    return True


def first_encoder(codecs: Sequence[str]) -> str:
    for codec in codecs:
        if has_encoder(codec):
            return codec
    raise AtomError(f"this PyAV build has none of the encoders {list(codecs)}")


@contextmanager
def mp4_writer(path: str | Path, width: int, height: int, fps: int, codec: str = H264,
               crf: int = 20, what: str = "video") -> Iterator[Callable[[np.ndarray], None]]:
    """Yield write(rgb [height, width, 3] uint8); frame k is shown at k / fps seconds.

    `crf` sets libx264's quality; mpeg4 gets a fixed 2 Mbit/s instead (its default bit
    rate smears small sprites). `what` names the file in errors ("reel", "video").
    """
    check_frame_size(width, height, what)
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with av.open(str(partial), mode="w", format="mp4") as container:
            stream = container.add_stream(codec, rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            if codec == H264:
                stream.options = {"crf": str(crf), "preset": "veryfast"}
            else:
                stream.bit_rate = 2_000_000
            time_base, written = Fraction(1, fps), 0

            def write(rgb: np.ndarray) -> None:
                nonlocal written
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts, frame.time_base = written, time_base
                written += 1
                container.mux(stream.encode(frame))

            yield write
            container.mux(stream.encode(None))  # flush the frames the encoder still holds
        os.replace(partial, path)
    except av.error.FFmpegError as exc:
        raise AtomError(f"{path}: cannot write the {what} ({' '.join(str(exc).split())})") from None
    finally:
        partial.unlink(missing_ok=True)
