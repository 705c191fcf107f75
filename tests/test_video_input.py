"""Video input layer: segmentation, sampling, preprocessing, streaming decode, bad files.

Real videos are read in place from ../shared/data/videos (never copied whole);
synthetic ones are written with PyAV into tmp_path so their content is known exactly.
"""

from __future__ import annotations

import math
import tracemalloc
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from atom_deploy.video.clips import iter_clips
from atom_deploy.video.decode import iter_frames_at, probe
from atom_deploy.video.preprocess import CLIP_MEAN, CLIP_STD, ClipSpec, sample_times, to_clip_tensor
from atom_deploy.video.segment import ClipWindow, segment
from atom_runner.errors import AtomError

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"  # shared/ sits beside the repo
# name: (duration s, width, height, has audio), from SOURCES.md (ffprobe's container duration;
# ours prefers the video stream's own, which for bigbuckbunny is 0.03 s shorter).
REAL = {
    "asl-book.mkv": (3.67, 640, 480, False),
    "bigbuckbunny.mp4": (5.31, 1280, 720, True),
    "bikes.mp4": (10.00, 640, 272, False),
    "car-detection.mp4": (30.21, 768, 432, True),
    "bottle-detection.mp4": (39.86, 640, 360, False),
    "one-by-one-person-detection.mp4": (139.40, 768, 432, False),
}
needs_videos = pytest.mark.skipif(not VIDEOS.is_dir(), reason="shared test videos not present")


def spans(windows: list[ClipWindow]) -> list[tuple[float, float]]:
    return [(round(w.start, 6), round(w.end, 6)) for w in windows]


# --- segmentation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        (3.7, [(0, 3.7)]),
        (10.0, [(0, 10)]),
        (12.0, [(0, 10), (2, 12)]),
        (25.0, [(0, 10), (5, 15), (10, 20), (15, 25)]),
        (27.0, [(0, 10), (5, 15), (10, 20), (15, 25), (17, 27)]),
    ],
)
def test_segment_default_windows(duration, expected):
    assert spans(segment(duration)) == expected


def test_segment_custom_window_and_stride():
    assert spans(segment(20.0, window_s=4.0, stride_s=4.0)) == [(0, 4), (4, 8), (8, 12), (12, 16), (16, 20)]
    assert spans(segment(7.0, window_s=4.0, stride_s=2.0)) == [(0, 4), (2, 6), (3, 7)]


def test_segment_long_video_starts_do_not_drift():
    assert spans(segment(139.4))[-2:] == [(125, 135), (129.4, 139.4)] and len(segment(139.4)) == 27
    # 0.1 s strides: a running sum would drift and add a spurious sliver window at the end.
    windows = segment(100.0, window_s=0.3, stride_s=0.1)
    assert len(windows) == 998 and math.isclose(windows[-1].end, 100.0)
    assert all(math.isclose(w.start, 0.1 * i, abs_tol=1e-9) for i, w in enumerate(windows))


@pytest.mark.parametrize(
    "args",
    [(0.0, 10, 5), (-3.0, 10, 5), (float("nan"), 10, 5), (float("inf"), 10, 5), (12.0, 0, 5), (12.0, 10, 0), (12.0, 5, 6), (True, 10, 5)],
)
def test_segment_rejects_bad_arguments(args):
    with pytest.raises(AtomError):
        segment(*args)


# --- sampling and preprocessing -----------------------------------------------------


def test_sample_times_are_slice_centres():
    times = sample_times(ClipWindow(5.0, 15.0), 6)
    assert len(times) == 6
    assert all(5.0 < t < 15.0 for t in times)
    assert np.allclose(np.diff(times), 10.0 / 6)
    assert math.isclose(times[0], 5.0 + 10.0 / 12) and math.isclose(times[-1], 15.0 - 10.0 / 12)


def test_clip_spec_defaults_and_validation():
    spec = ClipSpec()
    assert (spec.num_frames, spec.size, spec.mean, spec.std) == (6, 224, CLIP_MEAN, CLIP_STD)
    for bad in (dict(num_frames=0), dict(size=0), dict(std=(1.0, 0.0, 1.0)), dict(mean=(0.5, 0.5))):
        with pytest.raises(AtomError):
            ClipSpec(**bad)


def denormalized(tensor: np.ndarray, spec: ClipSpec) -> np.ndarray:
    mean = np.asarray(spec.mean, np.float32).reshape(1, 3, 1, 1, 1)
    std = np.asarray(spec.std, np.float32).reshape(1, 3, 1, 1, 1)
    return tensor * std + mean


@pytest.mark.parametrize(("height", "width"), [(272, 640), (640, 272), (720, 1280), (100, 100)])
def test_to_clip_tensor_crops_the_centre(height, width):
    # Red | green | blue bands along the long side: a centred square crop sees only green.
    frame = np.zeros((height, width, 3), np.uint8)
    long_axis = 1 if width >= height else 0
    band = np.arange(frame.shape[long_axis]) * 3 // frame.shape[long_axis]
    for channel in range(3):
        if long_axis:
            frame[:, band == channel, channel] = 255
        else:
            frame[band == channel, :, channel] = 255
    spec = ClipSpec(num_frames=2, size=112)
    tensor = to_clip_tensor([frame, frame], spec)
    assert tensor.shape == (1, 3, 2, 112, 112) and tensor.dtype == np.float32
    centre = denormalized(tensor, spec)[0, :, 0, 40:72, 40:72].mean(axis=(1, 2))
    assert centre[1] > 0.99 and centre[0] < 0.01 and centre[2] < 0.01


# --- real videos ----------------------------------------------------------------------


@needs_videos
@pytest.mark.parametrize("name", sorted(REAL))
def test_probe_real_videos(name):
    duration, width, height, has_audio = REAL[name]
    info = probe(VIDEOS / name)
    assert info.duration_s == pytest.approx(duration, abs=0.1)
    assert (info.width, info.height, info.has_audio, info.rotation) == (width, height, has_audio, 0)
    assert info.codec == "h264" and 9.9 < info.fps < 30.1


@needs_videos
@pytest.mark.parametrize("name", sorted(REAL))
def test_iter_clips_real_videos(name):
    spec = ClipSpec()
    windows = segment(probe(VIDEOS / name).duration_s)
    clips = list(iter_clips(VIDEOS / name, spec))
    assert [(c.start, c.end) for c in clips] == [(w.start, w.end) for w in windows]
    assert clips[0].start == 0.0 and clips[-1].end == pytest.approx(REAL[name][0], abs=0.1)
    for clip in clips:
        assert clip.tensor.shape == (1, 3, 6, 224, 224) and clip.tensor.dtype == np.float32
        assert np.isfinite(clip.tensor).all()
        pixels = denormalized(clip.tensor, spec)
        assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
        assert pixels.std() > 0.01  # real picture content, not a blank frame


@needs_videos
def test_iter_clips_small_size():
    clips = list(iter_clips(VIDEOS / "bikes.mp4", ClipSpec(num_frames=4, size=112)))
    assert len(clips) == 1 and clips[0].tensor.shape == (1, 3, 4, 112, 112)


@needs_videos
def test_iter_clips_memory_is_flat_on_the_longest_video():
    # All 1394 decoded frames as RGB would be 1394 * 768 * 432 * 3 bytes = 1.4 GB; holding
    # only the open clips (3 x 6 frames of 3 x 224 x 224 float32) is about 11 MB.
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_clips(VIDEOS / "one-by-one-person-detection.mp4", ClipSpec()))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 27
    assert peak < 40 * 2**20, f"peak traced memory {peak / 2**20:.1f} MB"


# --- synthetic videos: known content at known times ------------------------------------

# Irregular timestamps (ms): bursts and pauses, as a phone's variable frame rate makes.
VFR_PTS_MS = [0, 40, 80, 500, 520, 1500, 1540, 3000]
ENCODERS = {"mp4": ("libx264", {"qp": "0"}), "mov": ("libx264", {"qp": "0"}),
            "mkv": ("libx264", {"qp": "0"}), "webm": ("libvpx-vp9", {"lossless": "1"})}


def grey(index: int) -> int:
    return 20 + 25 * index  # frame i is a solid grey of this level


def write_video(path: Path, frames: list[np.ndarray], pts_ms: list[int], rotation: int = 0) -> Path:
    codec, options = ENCODERS[path.suffix[1:]]
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        for array, ms in zip(frames, pts_ms, strict=True):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module", params=sorted(ENCODERS))
def vfr_video(request, tmp_path_factory) -> Path:
    frames = [np.full((32, 48, 3), grey(i), np.uint8) for i in range(len(VFR_PTS_MS))]
    return write_video(tmp_path_factory.mktemp("vfr") / f"vfr.{request.param}", frames, VFR_PTS_MS)


def test_iter_frames_at_uses_timestamps_not_frame_index(vfr_video):
    times = [0.0, 0.03, 0.04, 0.3, 0.51, 1.0, 1.5, 1.6, 2.99, 3.0, 3.5]
    expected = [max(i for i, ms in enumerate(VFR_PTS_MS) if ms <= t * 1000 + 1e-6) for t in times]
    # Index / fps (25 fps) would pick other frames for most of these times.
    assert sum(e != min(round(t * 25), 7) for e, t in zip(expected, times)) >= 6
    frames = list(iter_frames_at(vfr_video, times))
    assert len(frames) == len(times)
    levels = [int(f[..., 0].mean().round()) for f in frames]
    assert all(abs(level - grey(i)) <= 3 for level, i in zip(levels, expected)), (levels, expected)
    assert frames[0].shape == (32, 48, 3) and frames[0].dtype == np.uint8


def test_probe_synthetic_video(vfr_video):
    info = probe(vfr_video)
    assert 3.0 <= info.duration_s <= 3.1 and (info.width, info.height, info.has_audio) == (48, 32, False)


def test_iter_frames_at_contract(vfr_video):
    with pytest.raises(ValueError):
        list(iter_frames_at(vfr_video, [1.0, 0.5]))
    assert list(iter_frames_at(vfr_video, [])) == []
    # Far past the last frame is what a cut-off file looks like: an error, not a frozen frame.
    with pytest.raises(AtomError, match="truncated"):
        list(iter_frames_at(vfr_video, [6.0]))


@pytest.mark.parametrize(
    ("ext", "rotation", "white_at"),
    [("mp4", 90, "bottom"), ("mp4", -90, "top"), ("mp4", 180, "right"), ("mov", 90, "bottom"),
     ("mkv", -90, "top"), ("webm", 90, "bottom")],
)
def test_rotation_metadata_turns_frames_upright(tmp_path, ext, rotation, white_at):
    # Stored frames are 32 high x 48 wide with the left half white. Display rotation is
    # counter-clockwise: +90 carries the left edge to the bottom, -90 to the top.
    stored = np.zeros((32, 48, 3), np.uint8)
    stored[:, :24] = 255
    path = write_video(tmp_path / f"rotated.{ext}", [stored] * 3, [0, 40, 80], rotation=rotation)
    info = probe(path)
    assert info.rotation == rotation % 360  # reported as a counter-clockwise 0/90/180/270
    (frame,) = iter_frames_at(path, [0.0])
    assert frame.shape[:2] == (info.upright_size[1], info.upright_size[0])
    halves = {
        "top": frame[: frame.shape[0] // 2], "bottom": frame[frame.shape[0] // 2 :],
        "right": frame[:, frame.shape[1] // 2 :],
    }
    assert halves[white_at].mean() > 240 and frame.mean() < 140


# --- bad files ------------------------------------------------------------------------


def assert_names_file(error: pytest.ExceptionInfo, path: Path) -> None:
    message = str(error.value)
    assert path.name in message and "\n" not in message, message


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("notes.mp4", b"hello, this is not a video\n", "not a readable media file"),
        ("empty.mp4", b"", "not a readable media file"),
        ("lyrics.mkv", b"[00:01.00]la la la\n[00:02.00]la la\n", "no video stream"),  # read as lrc subtitles
    ],
)
def test_unreadable_files_raise_atom_error(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    for call in (lambda: probe(path), lambda: list(iter_clips(path))):
        with pytest.raises(AtomError, match=problem) as error:
            call()
        assert_names_file(error, path)


def test_missing_file_raises_atom_error(tmp_path):
    with pytest.raises(AtomError, match="no such video file") as error:
        probe(tmp_path / "gone.mp4")
    assert_names_file(error, tmp_path / "gone.mp4")


def test_audio_only_file_raises_atom_error(tmp_path):
    path = tmp_path / "voice.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(AtomError, match="no video stream") as error:
        list(iter_clips(path))
    assert_names_file(error, path)


def truncated_copy(name: str, tmp_path: Path) -> Path:
    data = (VIDEOS / name).read_bytes()
    path = tmp_path / f"cut-{name}"
    path.write_bytes(data[: len(data) // 5])
    return path


@needs_videos
def test_truncated_file_with_index_at_end_cannot_open(tmp_path):
    # bikes.mp4 keeps its sample index (moov) at the end: the first 20% has none.
    path = truncated_copy("bikes.mp4", tmp_path)
    with pytest.raises(AtomError, match="not a readable media file") as error:
        list(iter_clips(path))
    assert_names_file(error, path)


@needs_videos
def test_truncated_file_yields_whole_clips_then_raises(tmp_path):
    # This mp4 has its index first, so the first 20% opens and decodes to about 27 s of
    # the 139 s. Chosen behaviour: the clips that are fully there come out, then an
    # AtomError says the file is cut off; nothing is padded with a frozen last frame.
    path = truncated_copy("one-by-one-person-detection.mp4", tmp_path)
    clips = []
    with pytest.raises(AtomError, match="truncated or corrupt") as error:
        for clip in iter_clips(path):
            clips.append(clip)
    assert_names_file(error, path)
    assert 1 <= len(clips) < 27
    assert [(c.start, c.end) for c in clips] == [(5.0 * i, 5.0 * i + 10.0) for i in range(len(clips))]
