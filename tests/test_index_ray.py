"""index --engine ray on a real local Ray cluster (2 worker CPUs): the index equals the
single-process one, exactly once, after a killed worker and after a killed driver.

One cluster for the module (Ray starts slowly on two cores). fp32 tiny exports, beam 8:
2 clips share a decode pass, so the Ray run's ranges (one decode batch each) give many
small tasks and the same batches as the local engine.
"""

from __future__ import annotations

import json
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

from atom_deploy.pipelines.indexing import index_videos
from atom_deploy.pipelines.ray_indexing import RayOptions, Stored, index_videos_ray
from atom_runner.manifest import open_artifacts
from conftest import atom_deploy
from pipeline_helpers import VIDEOS, needs_videos, open_index, open_session

BEAM = 8
NAMES = ("car-detection.mp4", "bottle-detection.mp4", "bikes.mp4")
OPTIONS = RayOptions(workers=2, batches_per_range=1)

pytestmark = needs_videos


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster: 2 CPUs (one per worker), a small object store, no dashboard."""
    ray = pytest.importorskip("ray", reason="Ray is installed by scripts/setup.sh (the [ray] extra)")
    ray.init(num_cpus=2, object_store_memory=200 * 1024 * 1024, include_dashboard=False, log_to_driver=False,
             logging_level="WARNING")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[Path]:
    """Three shared videos and a truncated copy of one (it fails part-way in the worker)."""
    cut = tmp_path_factory.mktemp("cut") / "cut-car.mp4"
    data = (VIDEOS / "car-detection.mp4").read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # index at the front: probes as 30 s, frames end near 15 s
    return [VIDEOS / n for n in NAMES] + [cut]


@pytest.fixture(scope="module")
def local(tiny_exports, videos, tmp_path_factory):
    """The single-process index of the same files: (rows, embeddings by window, report)."""
    path = tmp_path_factory.mktemp("local") / "idx.sqlite"
    session = open_session(tiny_exports, "onnx", "fp32")
    try:
        with open_index(path, session) as index:
            report = index_videos(session, index, videos, beam=BEAM, progress=False)
    finally:
        session.close()
    return read(path), report


@pytest.fixture(scope="module")
def manifest(tiny_exports):
    return open_artifacts(tiny_exports["fp32"], "onnx")


def read(path: Path) -> dict:
    with closing(sqlite3.connect(path)) as db:
        clips = db.execute("SELECT video_path, start_s, end_s, caption, embedding FROM clips ORDER BY video_path, start_s").fetchall()
        videos = db.execute("SELECT path, status FROM videos ORDER BY path").fetchall()
    return {
        "windows": [c[:3] for c in clips], "captions": [c[:4] for c in clips], "videos": videos,
        "embeddings": np.stack([np.frombuffer(c[4], np.float32) for c in clips]),
    }


def assert_same_index(got: dict, want: dict) -> None:
    assert len(got["windows"]) == len(set(got["windows"])), "a window stored twice"
    assert got["windows"] == want["windows"], "windows missing or extra"
    assert got["captions"] == want["captions"]  # fp32: the very same text
    assert got["videos"] == want["videos"]  # the cut file 'partial' in both, the others 'complete'
    np.testing.assert_allclose(got["embeddings"], want["embeddings"], atol=1e-5)


def ray_run(manifest, path: Path, videos: list[Path], on_stored=None):
    with open_index_from_manifest(path, manifest) as index:
        return index_videos_ray(manifest, index, videos, beam=BEAM, options=OPTIONS, progress=False, on_stored=on_stored)


def open_index_from_manifest(path: Path, manifest):
    from atom_deploy.pipelines.index_db import ClipIndex
    from atom_deploy.pipelines.model_facts import artifacts_label, manifest_sha256

    return ClipIndex(path, manifest_sha256(manifest), artifacts_label(manifest))


@pytest.mark.slow
def test_ray_index_equals_the_local_one(cluster, manifest, videos, local, tmp_path):
    want, local_report = local
    path = tmp_path / "idx.sqlite"
    report = ray_run(manifest, path, videos)
    assert_same_index(read(path), want)
    assert report.clips_added == local_report.clips_added == len(want["windows"])
    assert sorted(report.indexed) == sorted(local_report.indexed) == sorted(str(v.resolve()) for v in videos[:3])
    (cut, reason), = report.skipped
    assert cut == str(videos[3].resolve()) and "corrupt" in reason and "(Ray worker" in reason and "\n" not in reason
    assert len(report.workers) == 2 and sum(report.workers.values()) == report.clips_added  # both actors captioned


@pytest.mark.slow
def test_a_killed_worker_costs_no_rows_and_makes_no_duplicates(cluster, manifest, videos, local, tmp_path):
    want, _ = local
    path = tmp_path / "idx.sqlite"
    killed: list[tuple[int, int]] = []  # (pid, clips committed when it was killed)
    committed = [0]

    def kill_first_worker(stored: Stored) -> None:
        committed[0] += stored.added
        if not killed and stored.workers:
            pid = int(stored.workers[0].rsplit(":", 1)[1])
            os.kill(pid, signal.SIGKILL)  # the actor's process, mid-run: its next range is in flight
            killed.append((pid, committed[0]))

    report = ray_run(manifest, path, videos, on_stored=kill_first_worker)
    (pid, at), = killed
    assert 0 < at < len(want["windows"])  # mid-run
    assert_same_index(read(path), want)
    assert report.clips_added == len(want["windows"])
    restarted = [w for w in report.workers if int(w.rsplit(":", 1)[1]) != pid]
    assert len(restarted) == 2  # the other actor and the one Ray started in place of the killed one
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.slow
def test_a_killed_driver_loses_nothing_and_a_rerun_resumes(cluster, manifest, tiny_exports, videos, local, tmp_path):
    want, _ = local
    path = tmp_path / "idx.sqlite"
    # One decode batch (2 clips at beam 8) per task: 8 tasks on 2 actors commit over several
    # rounds, so the driver is killed with some committed and some not, also on a fast machine.
    args = ["index", "--engine", "ray", "--address", cluster, "--workers", "2", "--beam", str(BEAM),
            "--range-batches", "1", "--artifacts", str(tiny_exports["fp32"]), "--backend", "onnx",
            "--index", str(path), "--no-progress", "--json", *map(str, videos)]
    driver = subprocess.Popen([sys.executable, "-m", "atom_deploy", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        stored = 0
        deadline = time.monotonic() + 120
        while stored == 0 and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
            stored = count(path)
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.communicate()
    before = len(read(path)["windows"])
    assert 0 < before < len(want["windows"])  # killed mid-run
    result = atom_deploy(*args)
    assert result.returncode == 1, result.stderr  # the cut file is reported, as locally
    assert_same_index(read(path), want)
    out = json.loads(result.stdout)
    assert out["clips_added"] == len(want["windows"]) - before  # only what was missing
    assert out["total_clips"] == len(want["windows"])


def count(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with closing(sqlite3.connect(path, timeout=5)) as db:
            return db.execute("SELECT COUNT(*) FROM clips").fetchone()[0]
    except sqlite3.OperationalError:  # the driver is creating the schema
        return 0


def test_without_ray_the_engine_is_one_line_naming_the_install(tiny_exports, tmp_path):
    code = ("import sys; sys.modules['ray'] = None; from atom_deploy.cli import main; "
            f"sys.exit(main(['index', '--engine', 'ray', '--artifacts', {str(tiny_exports['fp32'])!r}, "
            f"'--index', {str(tmp_path / 'idx.sqlite')!r}, {str(VIDEOS / 'bikes.mp4')!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip() == ("atom-deploy index: error: --engine ray needs Ray, which is not installed: "
                                     "pip install 'atom-deploy[ray]'")
    assert not (tmp_path / "idx.sqlite").exists()  # refused before anything was written


def test_a_bad_worker_count_is_one_line_before_anything_is_written(tiny_exports, tmp_path):
    pytest.importorskip("ray", reason="Ray is installed by scripts/setup.sh (the [ray] extra)")
    index = tmp_path / "idx.sqlite"
    result = atom_deploy("index", "--engine", "ray", "--workers", "0", "--artifacts", str(tiny_exports["fp32"]),
                         "--index", str(index), str(VIDEOS / "bikes.mp4"))
    assert result.returncode == 1
    assert result.stderr.strip() == ("atom-deploy index: error: --workers (0), --worker-cpus (1) and --range-batches (4) "
                                     "must each be at least 1")
    assert not index.exists()
