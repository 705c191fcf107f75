"""The index stays consistent when runs overlap or a file name is odd: one segmentation per
video, true clip counts, and a name that is not UTF-8 reported without stopping the batch."""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from atom_deploy.pipelines.indexing import index_videos
from atom_deploy.video.decode import probe
from atom_deploy.video.segment import segment
from atom_runner.session import Session
from conftest import atom_deploy
from pipeline_helpers import demo_video, open_index, rows


class PausedAfterFirstCaption:
    """The session, but its next caption stream runs `meanwhile` once, after the first
    caption was handed out (and committed, with commit_every=1): another run, interleaved."""

    def __init__(self, session: Session, meanwhile):
        self._session, self._meanwhile = session, meanwhile

    def __getattr__(self, name):
        return getattr(self._session, name)

    def caption_stream(self, clips, **kwargs):
        for number, caption in enumerate(self._session.caption_stream(clips, **kwargs)):
            yield caption
            if number == 0 and self._meanwhile is not None:
                self._meanwhile, meanwhile = None, self._meanwhile
                meanwhile()


@pytest.fixture(scope="module")
def other_session(tiny_exports):
    """The second run's own session, as a second process would have."""
    with Session(tiny_exports["int8"], backend="onnx", overlap="off") as s:
        yield s


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("videos") / "v.mp4"
    demo_video(path, "blue", seconds=24, scenes=2)
    return path


def windows(path: Path, window_s: float, stride_s: float) -> list[tuple[float, float]]:
    return [(w.start, w.end) for w in segment(probe(path).duration_s, window_s, stride_s)]


def video_rows(index_path: Path) -> list[tuple]:
    with closing(sqlite3.connect(index_path)) as db:
        return db.execute("SELECT path, window_s, stride_s, status FROM videos").fetchall()


def test_a_run_with_another_segmentation_in_between_never_mixes_them(session, other_session, video, tmp_path):
    path = tmp_path / "idx.sqlite"
    second = {}

    def other_run():
        with open_index(path, other_session) as index:
            second["report"] = index_videos(other_session, index, [video], 8.0, 4.0, beam=1, progress=False)

    with open_index(path, session) as index:
        first = index_videos(PausedAfterFirstCaption(session, other_run), index, [video], 10.0, 5.0, beam=1,
                             progress=False, commit_every=1)
    stored = sorted((r[1], r[2]) for r in rows(path))
    assert stored == windows(video, 8.0, 4.0)  # only the later run's segmentation
    assert video_rows(path) == [(str(video), 8.0, 4.0, "complete")]
    assert second["report"].indexed == [str(video)] and second["report"].clips_added == len(stored)
    # The first run learns at its next commit that the file was taken over: reported, not finished.
    assert first.indexed == [] and [p for p, _ in first.skipped] == [str(video)]
    assert "another run re-indexed it with window 8 s, stride 4 s" in first.skipped[0][1]
    assert first.clips_added == 0  # its one committed clip went with the other run's restart


def test_a_run_with_the_same_segmentation_in_between_counts_only_its_own_clips(session, other_session, video, tmp_path):
    path = tmp_path / "idx.sqlite"
    second = {}

    def other_run():
        with open_index(path, other_session) as index:
            second["report"] = index_videos(other_session, index, [video], 10.0, 5.0, beam=1, progress=False)

    with open_index(path, session) as index:
        first = index_videos(PausedAfterFirstCaption(session, other_run), index, [video], 10.0, 5.0, beam=1,
                             progress=False, commit_every=1)
    stored = rows(path)
    assert sorted((r[1], r[2]) for r in stored) == windows(video, 10.0, 5.0)
    assert first.indexed == [str(video)] and first.clips_added == 1  # the rest were the other run's
    assert first.clips_added + second["report"].clips_added == len(stored)
    assert video_rows(path) == [(str(video), 10.0, 5.0, "complete")]


def test_a_file_name_that_is_not_utf8_is_reported_and_the_rest_indexed(tiny_exports, video, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(video, folder / "good.mp4")
    odd = os.fsdecode(os.fsencode(folder) + b"/caf\xe9.mp4")  # Latin-1 bytes, as old cameras and zips write them
    shutil.copy(video, odd)
    index = tmp_path / "idx.sqlite"
    result = atom_deploy("index", "--artifacts", str(tiny_exports["int8"]), "--backend", "onnx", "--index", str(index),
                         "--beam", "1", "--no-progress", "--json", str(folder))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert '"indexed": ["' + str(folder / "good.mp4") + '"]' in result.stdout
    assert result.stderr.strip().splitlines()[-1] == f"  {folder}/caf\\xe9.mp4: file name is not valid UTF-8; rename the file"
    assert {r[0] for r in rows(index)} == {str(folder / "good.mp4")}
