"""Shared pieces of the pipeline tests: sessions, demo videos with known colours, DB peeks.

Real videos are read in place from ../shared/data/videos; demo videos are written into
tmp folders with atom_deploy.demo.write_video, so their content is known.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from atom_deploy.demo import write_video
from atom_deploy.demo.scene import Background, Scene, SceneObject
from atom_deploy.pipelines.index_db import ClipIndex
from atom_deploy.pipelines.model_facts import artifacts_label, manifest_sha256
from atom_runner.session import Session

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
# name -> clip windows with the default 10 s / 5 s segmentation (see tests/test_video_input.py)
SHARED_CLIPS = {
    "asl-book.mkv": 1, "bigbuckbunny.mp4": 1, "bikes.mp4": 1,
    "bottle-detection.mp4": 7, "car-detection.mp4": 6, "one-by-one-person-detection.mp4": 27,
}
needs_videos = pytest.mark.skipif(not VIDEOS.is_dir(), reason="shared test videos not present")


def open_session(tiny_exports: dict[str, Path], backend: str = "onnx", mode: str = "int8") -> Session:
    return Session(tiny_exports[mode], backend=backend, overlap="auto")


def open_index(path: Path, session: Session) -> ClipIndex:
    return ClipIndex(path, manifest_sha256(session), artifacts_label(session))


def scene(background: str, object_colour: str, kind: str = "square", motion: str = "moves left") -> Scene:
    return Scene(
        objects=(SceneObject(kind, object_colour, "medium", motion, (0.6, 0.5)),),
        background=Background("gradient", background),
        camera_pan=False,
    )


def demo_video(path: Path, background: str, seconds: float = 8.0, scenes: int = 2, fps: int = 8,
               size: tuple[int, int] = (160, 120)) -> list[tuple[float, float, str]]:
    """An mp4 of `scenes` scenes on one background colour; returns (start, end, caption) per scene."""
    colours = ["red", "yellow", "white", "black"]
    return write_video(path, [scene(background, colours[i % 4]) for i in range(scenes)], seconds / scenes, fps, size)


def mean_rgb(frame: np.ndarray) -> np.ndarray:
    return frame.reshape(-1, 3).astype(np.float64).mean(axis=0)


def rows(index_path: Path) -> list[tuple]:
    """(video_path, start_s, end_s, caption, id) of every clip, read by a separate connection."""
    with closing(sqlite3.connect(index_path)) as db:
        return db.execute("SELECT video_path, start_s, end_s, caption, id FROM clips ORDER BY id").fetchall()
