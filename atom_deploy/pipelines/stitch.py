"""Stitch clip ranges of several videos into one H.264 mp4 with PyAV.

Every piece is re-encoded to one size and one constant frame rate: sources differ in
both (and in rotation), and concatenating their packets as they are would not play.
Output frame k of a piece shows the source frame on screen at the middle of its slot,
start + (k + 0.5) / fps, so a piece of d seconds is round(d * fps) frames (within half
a frame of d) whatever the source's own rate. Pictures are scaled to fit and centred
on black (letterboxed), never stretched or cropped. Audio is not carried over.

The mp4 is written under a temporary name and renamed when complete: a failure never
leaves a half-written reel at the requested path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from atom_deploy.video.decode import decoded_frames, iter_frames_at, open_video, to_upright_rgb
from atom_runner.errors import AtomError

CODEC = "libx264"
_SEEK_MARGIN_S = 0.5  # seek a little before the first wanted time; the keyframe before it is decoded from


@dataclass(frozen=True)
class Piece:
    path: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class ReelFormat:
    width: int = 640
    height: int = 360
    fps: int = 25

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2 or min(self.width, self.height) < 16:
            raise AtomError(f"reel size must be even and >= 16 px per side (yuv420p), got {self.width}x{self.height}")
        if not (isinstance(self.fps, int) and 1 <= self.fps <= 120):
            raise AtomError(f"reel frame rate must be a whole number from 1 to 120, got {self.fps!r}")

    def frames_for(self, piece: Piece) -> int:
        return max(1, round((piece.end_s - piece.start_s) * self.fps))


def stitch(pieces: Sequence[Piece], out: str | Path, fmt: ReelFormat = ReelFormat()) -> float:
    """Write the reel; return its duration in seconds (frames / fps)."""
    if not pieces:
        raise AtomError("nothing to stitch: no clips were selected")
    try:
        av.codec.Codec(CODEC, "w")
    except Exception:  # PyAV's error type for a missing codec varies by version
        raise AtomError(f"this PyAV build has no {CODEC} encoder; reels are H.264") from None
    out = Path(out)
    partial = out.with_name(f".{out.name}.partial")
    written = 0
    try:
        with av.open(str(partial), mode="w", format="mp4") as container:
            stream = container.add_stream(CODEC, rate=fmt.fps)
            stream.width, stream.height, stream.pix_fmt = fmt.width, fmt.height, "yuv420p"
            stream.options = {"crf": "20", "preset": "veryfast"}
            time_base = Fraction(1, fmt.fps)
            for piece in pieces:
                times = [piece.start_s + (k + 0.5) / fmt.fps for k in range(fmt.frames_for(piece))]
                for rgb in frames_at(piece.path, times):
                    frame = av.VideoFrame.from_ndarray(letterbox(rgb, fmt.width, fmt.height), format="rgb24")
                    frame.pts, frame.time_base = written, time_base
                    written += 1
                    container.mux(stream.encode(frame))
            container.mux(stream.encode(None))  # flush the frames the encoder still holds
        os.replace(partial, out)
    except av.error.FFmpegError as exc:
        raise AtomError(f"{out}: cannot write the reel ({' '.join(str(exc).split())})") from None
    finally:
        partial.unlink(missing_ok=True)
    return written / fmt.fps


def frames_at(path: str, times: Sequence[float]) -> Iterator[np.ndarray]:
    """Like video.decode.iter_frames_at (the frame on screen at each sorted time), but it
    seeks first: a clip near the end of a long video does not decode the whole file."""
    if not times or times[0] <= _SEEK_MARGIN_S:
        yield from iter_frames_at(path, times)
        return
    with open_video(path) as (container, stream):
        try:
            container.seek(int((times[0] - _SEEK_MARGIN_S) / stream.time_base), stream=stream, backward=True)
            frames = decoded_frames(container, stream)
            first = next(frames, None)
        except av.error.FFmpegError:
            first = None
        if first is not None and first.time is not None and first.time <= times[0]:
            yield from _pick(first, frames, times)
            return
    # Some containers seek imprecisely (or have no index): decode from the start instead.
    yield from iter_frames_at(path, times)


def _pick(first: av.VideoFrame, rest: Iterator[av.VideoFrame], times: Sequence[float]) -> Iterator[np.ndarray]:
    shown, rgb, at = first, None, 0
    for frame in rest:
        if frame.time is None:
            continue
        while at < len(times) and times[at] < frame.time:
            if rgb is None:  # converted once per source frame, however many slots show it
                rgb = to_upright_rgb(shown)
            yield rgb
            at += 1
        if at == len(times):
            return
        shown, rgb = frame, None
    rgb = to_upright_rgb(shown)
    for _ in times[at:]:  # past the last frame it stays on screen (the window ends at the video's end)
        yield rgb


def letterbox(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to fit width x height keeping the aspect ratio, centred on black."""
    src_h, src_w = rgb.shape[:2]
    if (src_w, src_h) == (width, height):
        return rgb
    scale = min(width / src_w, height / src_h)
    fit_w, fit_h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
    canvas = np.zeros((height, width, 3), np.uint8)
    left, top = (width - fit_w) // 2, (height - fit_h) // 2
    canvas[top:top + fit_h, left:left + fit_w] = np.asarray(Image.fromarray(rgb).resize((fit_w, fit_h), Image.Resampling.BILINEAR))
    return canvas
