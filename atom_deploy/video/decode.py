"""Open a video with PyAV: probe its facts, and stream out upright RGB frames at chosen times.

Time: a frame's time is its pts * time_base, never index / fps. Phones record variable
frame rate, where index / fps drifts from the real time. Times are on the
file's own timeline (a first frame may sit at 0.033 s; earlier requests get that frame).

Rotation (PyAV 18.1 on FFmpeg 8 libraries, checked on mp4, mov, mkv and webm): phones
store frames as the sensor saw them and put a display matrix in the container. The
decoder copies that matrix onto every decoded frame. `VideoFrame.rotation` reads it as
the angle, in degrees, to turn the frame counter-clockwise for display (range
[-180, 180]). VideoStream has a writer (`set_display_rotation`) but no reader in this
version, so probe() takes the rotation from the first decoded frame. Mirror flags in the
matrix are not undone: front cameras mirror, and a mirrored scene captions the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from atom_deploy.video.segment import TIME_EPS_S
from atom_runner.errors import AtomError

# When the frames run out this far before a requested time, the file was cut off or is
# damaged. One second is well over a frame plus the usual audio/video end mismatch.
TRUNCATION_SLACK_S = 1.0
_FALLBACK_FPS = 25.0  # only to step frames that carry no timestamp at all
_MKV_DURATION = re.compile(r"^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$")


@dataclass(frozen=True)
class VideoInfo:
    path: str
    duration_s: float  # end of the video on the file's timeline
    fps: float  # average rate; 0.0 when the container does not say
    width: int  # as stored, before rotation
    height: int
    rotation: int  # counter-clockwise turn applied to stored frames: 0, 90, 180 or 270
    codec: str
    has_audio: bool

    @property
    def upright_size(self) -> tuple[int, int]:
        """(width, height) of the frames iter_frames_at yields."""
        turned = self.rotation in (90, 270)
        return (self.height, self.width) if turned else (self.width, self.height)


def _reason(err: Exception) -> str:
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return " ".join(str(text).split())  # the message must stay one line


@contextmanager
def open_video(path: str | Path) -> Iterator[tuple[av.container.InputContainer, av.video.stream.VideoStream]]:
    """The container and its first real video stream; every failure is an AtomError."""
    path = Path(path)
    if not path.is_file():
        raise AtomError(f"{path}: no such video file")
    try:
        container = av.open(str(path), mode="r")
    except av.error.FFmpegError as err:
        raise AtomError(f"{path}: not a readable media file ({_reason(err)})") from err
    try:
        # Cover art in audio files shows up as a one-picture "video" stream; skip it.
        videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if not videos:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "none"
            raise AtomError(f"{path}: no video stream (streams found: {kinds})")
        stream = videos[0]
        stream.thread_type = "AUTO"  # frame + slice threads: decoding is the slow part
        yield container, stream
    finally:
        container.close()


def decoded_frames(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
    """Every decodable frame in order. A damaged packet is skipped; a cut-off file just ends."""
    try:
        for packet in container.demux(stream):
            try:
                yield from packet.decode()
            except av.error.FFmpegError:
                continue  # the decoder resynchronises at the next keyframe
    except av.error.FFmpegError:
        # The demuxer gave up mid-file. Flush the frames the decoder still holds (B-frames).
        try:
            yield from stream.codec_context.decode(None)
        except av.error.FFmpegError:
            pass


def quarter_turns(rotation_degrees: float) -> int:
    """Counter-clockwise quarter turns, 0-3. Phones only write multiples of 90; others round."""
    return round(rotation_degrees / 90) % 4  # also folds -180 and 180, which FFmpeg both returns


def to_upright_rgb(frame: av.VideoFrame) -> np.ndarray:
    """HxWx3 uint8 RGB, turned by the frame's display rotation."""
    rgb = frame.to_ndarray(format="rgb24")
    quarter_turns_ccw = quarter_turns(frame.rotation)
    if quarter_turns_ccw:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=quarter_turns_ccw))  # rot90 turns counter-clockwise
    return rgb


def _seconds(value: int | None, time_base) -> float | None:
    return None if value is None or time_base is None else float(value * time_base)


def _duration_s(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    """Stream duration first (the video's own), then the container's, then the last packet's end."""
    start = max(_seconds(stream.start_time, stream.time_base) or 0.0, 0.0)
    length = _seconds(stream.duration, stream.time_base)
    if length:
        return start + length
    tag = _MKV_DURATION.match(stream.metadata.get("DURATION", ""))  # mkv/webm per-track end time
    if tag:
        hours, minutes, seconds = tag.groups()
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    if container.duration:
        return container.duration / av.time_base
    end = 0.0
    for packet in container.demux(stream):  # demux only, no decoding: cheap even when long
        if packet.pts is not None:
            end = max(end, _seconds(packet.pts + (packet.duration or 0), packet.time_base))
    return end


def probe(path: str | Path) -> VideoInfo:
    with open_video(path) as (container, stream):
        first = next(decoded_frames(container, stream), None)
        if first is None:
            raise AtomError(f"{path}: no decodable video frames (corrupt file or unsupported {stream.codec_context.name})")
        rotation = 90 * quarter_turns(first.rotation)
        try:
            duration = _duration_s(container, stream)
        except av.error.FFmpegError as err:
            raise AtomError(f"{path}: cannot read the video's length ({_reason(err)})") from err
        if duration <= 0:
            raise AtomError(f"{path}: video has no duration")
        rate = stream.average_rate or stream.guessed_rate
        return VideoInfo(
            path=str(path),
            duration_s=duration,
            fps=float(rate) if rate else 0.0,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            rotation=rotation,
            codec=stream.codec_context.name,
            has_audio=bool(container.streams.audio),
        )


def _seek_before(container: av.container.InputContainer, stream: av.video.stream.VideoStream, time_s: float) -> None:
    """Position the demuxer at the keyframe at or before `time_s`."""
    container.seek(int(time_s / stream.time_base), stream=stream, backward=True, any_frame=False)


def _seeks(path: str | Path, time_s: float) -> bool:
    """Whether the file can seek there (tried on a container of its own, left as it was)."""
    with open_video(path) as (container, stream):
        try:
            _seek_before(container, stream, time_s)
            return True
        except (av.error.FFmpegError, TypeError, ZeroDivisionError):  # no index, no time base
            return False


def iter_frames_at(path: str | Path, times_s: Sequence[float], seek: bool = False) -> Iterator[np.ndarray]:
    """For each time (sorted, seconds), the frame shown then: the last one at or before it.

    One streaming pass: only the previous and the current decoded frame are held, so
    memory does not grow with the video. A time before the first frame gets the first
    frame. Raises AtomError when the frames stop well before a requested time (truncated
    or damaged file), after yielding the frames for all earlier times.

    seek: start decoding at the keyframe at or before the first time instead of at the
    file's start (the same frames: decoding restarts at keyframes; a file that cannot
    seek is decoded from its start).
    """
    times = [float(t) for t in times_s]
    if any(later < earlier for earlier, later in zip(times, times[1:])):
        raise ValueError("iter_frames_at: times_s must be sorted ascending")
    if not times:
        return
    with open_video(path) as (container, stream):
        rate = stream.average_rate or stream.guessed_rate
        step_s = 1.0 / float(rate) if rate else 1.0 / _FALLBACK_FPS
        if seek and times[0] > 0 and _seeks(path, times[0]):
            _seek_before(container, stream, times[0])
        converted: tuple[av.VideoFrame | None, np.ndarray | None] = (None, None)

        def rgb(frame: av.VideoFrame) -> np.ndarray:
            # Neighbouring times often land on one frame: convert it once.
            nonlocal converted
            if converted[0] is not frame:
                converted = (frame, to_upright_rgb(frame))
            return converted[1]

        next_time = 0
        previous: av.VideoFrame | None = None
        previous_t = previous_end = -step_s
        for frame in decoded_frames(container, stream):
            t = frame.time if frame.time is not None else previous_t + step_s
            while next_time < len(times) and times[next_time] < t - TIME_EPS_S:
                yield rgb(previous if previous is not None else frame)
                next_time += 1
            if next_time == len(times):
                return
            previous, previous_t = frame, t
            previous_end = t + (_seconds(frame.duration, frame.time_base) or step_s)

        if previous is None:
            raise AtomError(f"{path}: no decodable video frames (corrupt file or unsupported {stream.codec_context.name})")
        for t in times[next_time:]:  # past the last frame: it stays on screen until the end
            if t > previous_end + TRUNCATION_SLACK_S:
                raise AtomError(
                    f"{path}: video frames end at {previous_end:.2f} s but {t:.2f} s was requested (file truncated or corrupt)"
                )
            yield rgb(previous)
