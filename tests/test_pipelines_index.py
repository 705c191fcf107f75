"""The retrieval index: end-to-end on the shared videos, incremental, crash-safe, isolated, bad files."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from atom_deploy.pipelines.index_db import ClipIndex
from atom_deploy.pipelines.indexing import index_videos
from atom_deploy.video.decode import probe
from atom_deploy.video.segment import segment
from atom_runner.errors import AtomError
from atom_runner.schema import Module
from conftest import atom_deploy
from pipeline_helpers import SHARED_CLIPS, VIDEOS, demo_video, needs_videos, open_index, open_session, rows


@pytest.fixture(scope="module", params=["onnx", "executorch"])
def session(request, tiny_exports):
    s = open_session(tiny_exports, request.param)
    yield s
    s.close()


@pytest.fixture(scope="module")
def onnx_session(tiny_exports):
    s = open_session(tiny_exports, "onnx")
    yield s
    s.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@needs_videos
@pytest.mark.slow
def test_index_every_shared_video_end_to_end(session, tmp_path):
    with open_index(tmp_path / "idx.sqlite", session) as index:
        report = index_videos(session, index, [VIDEOS], progress=False)
        assert report.skipped == []  # the licences and SOURCES.md beside the videos are not videos
        assert sorted(Path(p).name for p in report.indexed) == sorted(SHARED_CLIPS)
        assert report.clips_added == sum(SHARED_CLIPS.values()) == index.count()
        ids, matrix = index.embedding_matrix()
    assert matrix.shape == (43, 384) and matrix.dtype == np.float32
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-3)
    with closing(sqlite3.connect(tmp_path / "idx.sqlite")) as db:
        stored = db.execute("SELECT video_path, content_sha256, start_s, end_s, caption, manifest_sha256, created_at FROM clips").fetchall()
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    manifest = sha256(session.manifest.root / "manifest.json")
    for name, count in SHARED_CLIPS.items():
        path = VIDEOS / name
        mine = sorted((r for r in stored if r[0] == str(path.resolve())), key=lambda r: r[2])
        windows = segment(probe(path).duration_s)
        assert [(r[2], r[3]) for r in mine] == [(w.start, w.end) for w in windows] and len(mine) == count
        assert {r[1] for r in mine} == {sha256(path)} and {r[5] for r in mine} == {manifest}
    assert all("\n" not in r[4] and r[6].endswith("Z") for r in stored)
    assert session.stats.loads == {m: 1 for m in Module.ALL}


@needs_videos
def test_reindex_is_idempotent(onnx_session, tmp_path):
    path = tmp_path / "idx.sqlite"
    with open_index(path, onnx_session) as index:
        index_videos(onnx_session, index, [VIDEOS / "bikes.mp4", VIDEOS / "car-detection.mp4"], progress=False)
        before = rows(path)
        again = index_videos(onnx_session, index, [VIDEOS / "car-detection.mp4", VIDEOS / "bikes.mp4"], progress=False)
    assert again.clips_added == 0 and again.indexed == [] and len(again.unchanged) == 2
    assert rows(path) == before and len(before) == 7


def test_changed_files_are_redone_and_removed_ones_pruned_on_request(onnx_session, tmp_path):
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    demo_video(a, "blue", seconds=6, scenes=1)
    demo_video(b, "pink", seconds=6, scenes=1)
    path = tmp_path / "idx.sqlite"
    with open_index(path, onnx_session) as index:
        index_videos(onnx_session, index, [tmp_path], progress=False)
        first = {r[0]: r for r in rows(path)}
        demo_video(a, "green", seconds=12, scenes=2)  # new content, new length
        report = index_videos(onnx_session, index, [tmp_path], progress=False)
        assert report.indexed == [str(a)] and report.unchanged == [str(b)]
        after = rows(path)
        assert [(r[1], r[2]) for r in after if r[0] == str(a)] == [(0.0, 10.0), (2.0, 12.0)]
        assert first[str(b)] in after and first[str(a)] not in after
        assert {r[0] for r in after} == {str(a), str(b)}
        b.unlink()
        kept = index_videos(onnx_session, index, [tmp_path], progress=False)
        assert kept.pruned == [] and str(b) in {r[0] for r in rows(path)}  # only dropped on request
        pruned = index_videos(onnx_session, index, [tmp_path], prune=True, progress=False)
        assert pruned.pruned == [str(b)] and {r[0] for r in rows(path)} == {str(a)}
        assert index.video_paths() == [str(a)]


@needs_videos
def test_bad_files_are_reported_and_the_batch_goes_on(session, tmp_path):
    notes = tmp_path / "notes.mp4"
    notes.write_bytes(b"hello, this is not a video\n")
    text = tmp_path / "readme.txt"
    text.write_text("a text file named on the command line is tried, and fails\n")
    data = (VIDEOS / "one-by-one-person-detection.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"  # index at the front: opens, decodes about 27 s of 139 s, then stops
    cut.write_bytes(data[: len(data) // 5])
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(data[:4096] + bytes(len(data) // 5))  # a real header, then zeros
    good = tmp_path / "good.mp4"
    demo_video(good, "blue", seconds=6, scenes=1)
    inputs = [cut, notes, tmp_path / "missing.mp4", corrupt, text, good]  # the good one last: the stream must still work
    with open_index(tmp_path / "idx.sqlite", session) as index:
        report = index_videos(session, index, inputs, progress=False)
        assert report.indexed == [str(good)]
        reasons = dict(report.skipped)
        assert set(reasons) == {str(p) for p in inputs if p != good}
        for path, reason in reasons.items():
            assert Path(path).name in reason and "\n" not in reason
        assert "truncated or corrupt" in reasons[str(cut)] and "not a readable media file" in reasons[str(notes)]
        partial = index.clips_of(str(cut))
        assert 1 <= len(partial) < 27 and index.video(str(cut)).status == "partial"  # its whole clips are kept
        assert len(index.clips_of(str(good))) == 1 and index.video(str(good)).status == "complete"
        # A re-run retries the failed files (and reports them again) without duplicating the kept clips.
        again = index_videos(session, index, inputs, progress=False)
        assert set(dict(again.skipped)) == set(reasons) and again.clips_added == 0
        assert len(index.clips_of(str(cut))) == len(partial)


def test_an_index_refuses_other_artifacts(onnx_session, tiny_exports, tmp_path):
    path = tmp_path / "idx.sqlite"
    good = tmp_path / "v.mp4"
    demo_video(good, "blue", seconds=4, scenes=1)
    with open_index(path, onnx_session) as index:
        index_videos(onnx_session, index, [good], progress=False)
    with pytest.raises(AtomError, match="built with other artifacts") as error:
        ClipIndex(path, "0" * 64, "model other, onnx")
    assert "\n" not in str(error.value) and "use one index file per model" in str(error.value)
    # The fp32 export is another model as far as the index is concerned.
    result = atom_deploy("search", "--artifacts", str(tiny_exports["fp32"]), "--backend", "onnx", "--index", str(path), "a square")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("atom-deploy search: error:")
    assert "built with other artifacts" in result.stderr and len(rows(path)) == 1


def test_files_that_are_not_indexes(onnx_session, tmp_path):
    text = tmp_path / "notes.sqlite"
    text.write_text("not a database at all, just some text that is long enough to have a header" * 20)
    with pytest.raises(AtomError, match="not a usable index"):
        open_index(text, onnx_session)
    other = tmp_path / "other.sqlite"
    with closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(AtomError, match="not an atom-deploy index"):
        ClipIndex(other, "0" * 64, "x", create=False)
    with pytest.raises(AtomError, match="no index at"):
        ClipIndex(tmp_path / "absent.sqlite", "0" * 64, "x", create=False)


@needs_videos
def test_kill_9_during_indexing_loses_nothing_and_the_next_run_resumes(tiny_exports, tmp_path):
    path = tmp_path / "idx.sqlite"
    args = ["index", "--artifacts", str(tiny_exports["int8"]), "--backend", "onnx", "--index", str(path),
            "--commit-every", "2", "--no-progress", str(VIDEOS)]
    proc = subprocess.Popen([sys.executable, "-m", "atom_deploy", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    snapshot: list[tuple] = []
    try:
        deadline = time.monotonic() + 120
        # Kill inside the longest video (sorted last, 27 clips), with clips of it committed.
        while time.monotonic() < deadline and proc.poll() is None:
            if path.exists():
                try:
                    snapshot = rows(path)
                except sqlite3.OperationalError:  # the schema is being created
                    snapshot = []
                if len(snapshot) >= 20:
                    break
            time.sleep(0.01)
        assert proc.poll() is None, "indexing finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    after_kill = rows(path)
    assert set(snapshot) <= set(after_kill) and len(after_kill) < 43  # nothing committed was lost
    with closing(sqlite3.connect(path)) as db:
        statuses = dict(db.execute("SELECT path, status FROM videos"))
    assert "partial" in statuses.values()

    resumed = atom_deploy(*args, "--json", check=True)
    final = rows(path)
    assert len(final) == 43 and len({(r[0], r[1], r[2]) for r in final}) == 43  # no duplicates, no gaps
    assert set(after_kill) <= set(final)  # committed clips were kept, not captioned again
    assert '"clips_added": ' + str(43 - len(after_kill)) in resumed.stdout
    with closing(sqlite3.connect(path)) as db:
        assert set(dict(db.execute("SELECT path, status FROM videos")).values()) == {"complete"}


def test_cli_reports_skipped_files_at_the_end_and_exits_1(tiny_exports, tmp_path):
    good, bad = tmp_path / "good.mp4", tmp_path / "bad.mp4"
    demo_video(good, "blue", seconds=4, scenes=1)
    bad.write_bytes(b"\x00" * 1000)
    result = atom_deploy("index", "--artifacts", str(tiny_exports["int8"]), "--backend", "onnx",
                         "--index", str(tmp_path / "idx.sqlite"), str(bad), str(good))
    assert result.returncode == 1, result.stderr
    assert "indexed 1 file(s), 1 clips" in result.stdout
    tail = result.stderr.strip().splitlines()[-2:]
    assert tail[0] == "atom-deploy index: skipped 1 file(s):" and str(bad) in tail[1]
