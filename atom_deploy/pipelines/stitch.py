"""Stitch clip ranges of several videos into one H.264 mp4 (written by video/mp4.py).

Every piece is re-encoded to one size and one constant frame rate: sources differ in
both (and in rotation), and concatenating their packets as they are would not play.
Output frame k of a piece shows the source frame on screen at the middle of its slot,
start + (k + 0.5) / fps, so a piece of d seconds is round(d * fps) frames (within half
a frame of d) whatever the source's own rate. Pictures are scaled to fit and centred
on black (letterboxed), never stretched or cropped. Audio is not carried over.

The mp4 writer renames the reel into place when complete: a failure never leaves a
half-written reel at the requested path.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from atom_deploy.video.decode import decoded_frames, iter_frames_at, open_video, to_upright_rgb
from atom_deploy.video.mp4 import H264, check_frame_size, has_encoder, mp4_writer
from atom_runner.errors import AtomError

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
        check_frame_size(self.width, self.height, "reel")
        if not (isinstance(self.fps, int) and 1 <= self.fps <= 120):
            raise AtomError(f"reel frame rate must be a whole number from 1 to 120, got {self.fps!r}")

    def frames_for(self, piece: Piece) -> int:
        return max(1, round((piece.end_s - piece.start_s) * self.fps))


def stitch(pieces: Sequence[Piece], out: str | Path, fmt: ReelFormat = ReelFormat()) -> float:
    """Write the reel; return its duration in seconds (frames / fps)."""
    if not pieces:
        raise AtomError("nothing to stitch: no clips were selected")
    if not has_encoder(H264):
        raise AtomError(f"this PyAV build has no {H264} encoder; reels are H.264")
    written = 0
    with mp4_writer(out, fmt.width, fmt.height, fmt.fps, H264, crf=20, what="reel") as write:
        for piece in pieces:
            times = [piece.start_s + (k + 0.5) / fmt.fps for k in range(fmt.frames_for(piece))]
            for rgb in frames_at(piece.path, times):
                write(letterbox(rgb, fmt.width, fmt.height))
                written += 1
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
