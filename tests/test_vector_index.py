"""The vector index: ANN answers vs exact ones, and the vector file never disagreeing with the
rows: after adds, re-indexing and deletes, a kill -9 at each step of a refresh or mid-write,
and an index built before vector search (schema 1) migrating on open."""

from __future__ import annotations

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

from atom_deploy.bench.search_vectors import NOISE_STD, world_captions
from atom_deploy.pipelines import vector_index
from atom_deploy.pipelines.index_db import ClipIndex
from atom_deploy.pipelines.search import ranked, search, top_k
from atom_runner.errors import AtomError
from pipeline_helpers import open_index

MANIFEST = "a" * 64
PER_VIDEO = 1000


@pytest.fixture(scope="module")
def vectors(session) -> dict[str, np.ndarray]:
    """Perturbed real MiniLM embeddings of demo-world captions (the bench's recipe, smaller),
    and held-out captions as queries."""
    texts = world_captions(400, seed=3)
    embedded = session.embed(texts).astype(np.float32)
    queries, bases = embedded[:40], embedded[40:]
    rng = np.random.default_rng(0)
    library = bases[rng.integers(0, len(bases), 12 * PER_VIDEO)]
    library = library + rng.standard_normal(library.shape, dtype=np.float32) * NOISE_STD
    return {"library": library / np.linalg.norm(library, axis=1, keepdims=True), "queries": queries,
            "query_texts": np.array(texts[:40])}


def fill(index: ClipIndex, library: np.ndarray, videos: range, window_s: float = 10.0) -> None:
    for v in videos:
        video = index.start_video(f"/videos/{v}.mp4", f"{v:064d}", window_s, 5.0)
        part = library[v * PER_VIDEO:(v + 1) * PER_VIDEO]
        index.add_clips(video, [(5.0 * i, 5.0 * i + window_s, f"clip {v}/{i}", vec) for i, vec in enumerate(part)])


def clip_ids(index: ClipIndex) -> set[int]:
    return {i for (i,) in index._db.execute("SELECT id FROM clips")}


def vector_view(index: ClipIndex) -> set[int]:
    """The ids a search can return: the vector file's, less those changed since, plus those added since."""
    with index.snapshot():
        seq = index.vectors_seq()
        latest = {clip_id: op for _, clip_id, op in index.log_after(seq or 0)}
    stored = vector_index.stored_ids(index.path, seq) if seq is not None else set()
    return (stored - set(latest)) | {i for i, op in latest.items() if op == "add"}


def recall_at_10(index: ClipIndex, queries: np.ndarray) -> float:
    found = []
    for q in queries:
        ids, matrix = vector_index.candidates(index, q, 10)
        exact_ids, exact_matrix = index.embedding_matrix()
        ann = set(ids[top_k(matrix, q, 10)[0]].tolist())
        exact = set(exact_ids[top_k(exact_matrix, q, 10)[0]].tolist())
        found.append(len(ann & exact) / 10)
    return float(np.mean(found))


def test_ann_search_finds_what_exact_search_finds(session, vectors, tmp_path):
    with ClipIndex(tmp_path / "idx.sqlite", MANIFEST, "x") as index:
        fill(index, vectors["library"], range(12))
        assert vector_index.refresh(index).action == "rebuilt"
        assert recall_at_10(index, vectors["queries"]) >= 0.95
    with open_index(tmp_path / "s.sqlite", session) as index:  # through the real MiniLM query path
        fill(index, vectors["library"], range(3))
        vector_index.refresh(index)
        for text in vectors["query_texts"][:10]:
            ann, how = ranked(session, index, str(text), k=10)
            exact, exact_how = ranked(session, index, str(text), k=10, exact=True)
            assert (how, exact_how) == ("ann", "exact")
            assert len({h.clip_id for h in ann} & {h.clip_id for h in exact}) >= 8
            assert [h.score for h in ann] == sorted((h.score for h in ann), reverse=True)


def test_exact_search_is_the_full_ranking_of_every_clip(session, vectors, tmp_path):
    with open_index(tmp_path / "idx.sqlite", session) as index:
        fill(index, vectors["library"], range(2))
        vector_index.refresh(index)
        ids, matrix = index.embedding_matrix()
        for text in vectors["query_texts"][:5]:
            query = session.embed([str(text)])[0]
            reference = ids[np.argsort(-(matrix @ query), kind="stable")[:10]].tolist()  # every clip, sorted
            assert [h.clip_id for h in search(session, index, str(text), k=10, exact=True)] == reference


def test_adds_reindexing_and_deletes_after_the_vector_file_are_seen_at_once(vectors, tmp_path):
    library = vectors["library"]
    with ClipIndex(tmp_path / "idx.sqlite", MANIFEST, "x") as index:
        fill(index, library, range(4))
        target = library[11 * PER_VIDEO]  # in no video yet
        twins = index.start_video("/videos/twins.mp4", "7" * 64, 10.0, 5.0)
        index.add_clips(twins, [(5.0 * i, 5.0 * i + 10, "twin", target + 1e-4 * library[i]) for i in range(15)])
        vector_index.refresh(index)
        index.drop_videos(["/videos/1.mp4", "/videos/twins.mp4"])  # the file's 15 nearest to `target` go
        fill(index, library, range(2, 3), window_s=8.0)  # another segmentation replaces its clips
        fill(index, library, range(5, 6))
        assert vector_view(index) == clip_ids(index)
        exact_ids, exact_matrix = index.embedding_matrix()
        for q in [target, *library[PER_VIDEO:PER_VIDEO + 20]]:  # the dropped clips' own vectors as queries
            ids, matrix = vector_index.candidates(index, q, 10)
            found = ids[top_k(matrix, q, 10)[0]].tolist()
            rows = index.clips_by_id(found).values()  # ids are re-used after a delete: check what the rows are
            assert not {c.video_path for c in rows} & {"/videos/1.mp4", "/videos/twins.mp4"}
            assert all(c.end_s - c.start_s == 8.0 for c in rows if c.video_path == "/videos/2.mp4")
            # the file's nearest were the dropped clips: the live ones behind them still fill the 10
            assert len(found) == 10 and len(set(found) & set(exact_ids[top_k(exact_matrix, q, 10)[0]].tolist())) >= 8
        added = index.clips_of("/videos/5.mp4")[7]
        ids, matrix = vector_index.candidates(index, library[5 * PER_VIDEO + 7], 10)
        assert ids[top_k(matrix, library[5 * PER_VIDEO + 7], 1)[0][0]] == added.id
        assert vector_index.refresh(index).action == "updated"
        assert vector_index.stored_ids(index.path, index.vectors_seq()) == clip_ids(index)
        assert index.log_after(0) == []  # the log up to the file is dropped


REFRESH_KILLED_AT = """
import os, signal, sys
import numpy as np
from atom_deploy.pipelines import vector_index
from atom_deploy.pipelines.index_db import ClipIndex
vector_index._crash_point = lambda step: os.kill(os.getpid(), signal.SIGKILL) if step == sys.argv[2] else None
index = ClipIndex(sys.argv[1], "a" * 64, "x")
library = np.load(sys.argv[3])
index.drop_videos(["/videos/0.mp4"])
video = index.start_video("/videos/9.mp4", "9" * 64, 10.0, 5.0)
index.add_clips(video, [(5.0 * i, 5.0 * i + 10, f"new {i}", v) for i, v in enumerate(library[:300])])
print(vector_index.refresh(index).action)
"""


@pytest.mark.parametrize("step", ["built", "partial", "written", "recorded", "none"])
def test_kill_9_at_each_step_of_a_refresh_leaves_search_equal_to_the_rows(vectors, tmp_path, step):
    path = tmp_path / "idx.sqlite"
    with ClipIndex(path, MANIFEST, "x") as index:
        fill(index, vectors["library"], range(3))
        vector_index.refresh(index)
    np.save(tmp_path / "lib.npy", vectors["library"][-300:])
    proc = subprocess.run([sys.executable, "-c", REFRESH_KILLED_AT, str(path), step, str(tmp_path / "lib.npy")],
                          capture_output=True, text=True)
    assert proc.returncode == (0 if step == "none" else -signal.SIGKILL), proc.stderr
    with ClipIndex(path, MANIFEST, "x") as index:
        rows_now = clip_ids(index)
        assert len(rows_now) == 2 * PER_VIDEO + 300
        assert vector_view(index) == rows_now
        assert len(list(vector_index.vector_dir(path).glob("*.partial"))) == (1 if step == "partial" else 0)
        for clip, own in zip(index.clips_of("/videos/9.mp4")[-5:], vectors["library"][-5:]):
            ids, matrix = vector_index.candidates(index, own, 10)  # a new clip's own vector finds it first
            assert ids[top_k(matrix, own, 1)[0][0]] == clip.id
        vector_index.refresh(index)
        assert vector_index.stored_ids(path, index.vectors_seq()) == rows_now
        assert [f.name for f in vector_index.vector_dir(path).glob("ivf-*.faiss")] == [f"ivf-{index.vectors_seq():012d}.faiss"]


WRITER = """
import sys
import numpy as np
from atom_deploy.pipelines.index_db import ClipIndex
index = ClipIndex(sys.argv[1], "a" * 64, "x")
library = np.load(sys.argv[2])
for v in range(100, 10_000):
    if v % 3 == 0:
        index.drop_videos([f"/videos/{v - 2}.mp4"])
    video = index.start_video(f"/videos/{v}.mp4", "9" * 64, 10.0, 5.0)
    index.add_clips(video, [(5.0 * i, 5.0 * i + 10, "c", vec) for i, vec in enumerate(library[v % 20 * 50:][:50])])
    print(v, flush=True)
"""


def test_kill_9_of_a_writer_mid_run_leaves_the_vector_view_equal_to_the_rows(vectors, tmp_path):
    path = tmp_path / "idx.sqlite"
    with ClipIndex(path, MANIFEST, "x") as index:
        fill(index, vectors["library"], range(2))
        vector_index.refresh(index)
    np.save(tmp_path / "lib.npy", vectors["library"][:1000])
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(tmp_path / "lib.npy")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for _ in range(15):  # some videos committed, adds and drops both in the log
            assert proc.stdout.readline(), "the writer stopped before it could be killed"
        time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    with ClipIndex(path, MANIFEST, "x") as index:
        assert len(clip_ids(index)) > 2 * PER_VIDEO
        assert vector_view(index) == clip_ids(index)
        vector_index.refresh(index)
        assert vector_index.stored_ids(path, index.vectors_seq()) == clip_ids(index)


SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE videos (path TEXT PRIMARY KEY, content_sha256 TEXT NOT NULL, window_s REAL NOT NULL,
    stride_s REAL NOT NULL, status TEXT NOT NULL CHECK (status IN ('partial', 'complete')), updated_at TEXT NOT NULL);
CREATE TABLE clips (id INTEGER PRIMARY KEY, video_path TEXT NOT NULL REFERENCES videos(path) ON DELETE CASCADE,
    content_sha256 TEXT NOT NULL, start_s REAL NOT NULL, end_s REAL NOT NULL, caption TEXT NOT NULL,
    embedding BLOB NOT NULL, manifest_sha256 TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE (video_path, start_s, end_s));
"""


def schema_1_index(path: Path, manifest: str, library: np.ndarray, version: str = "1") -> None:
    """An index as the kit wrote it before vector search."""
    with closing(sqlite3.connect(path)) as db:
        db.executescript(SCHEMA_1)
        db.executemany("INSERT INTO meta VALUES (?, ?)", [("schema_version", version), ("manifest_sha256", manifest),
                                                          ("artifacts", "old")])
        db.execute("INSERT INTO videos VALUES ('/videos/old.mp4', ?, 10, 5, 'complete', 'then')", ("0" * 64,))
        db.executemany("INSERT INTO clips (video_path, content_sha256, start_s, end_s, caption, embedding, manifest_sha256, "
                       "created_at) VALUES ('/videos/old.mp4', ?, ?, ?, ?, ?, ?, 'then')",
                       [("0" * 64, 5.0 * i, 5.0 * i + 10, f"old {i}", v.tobytes(), manifest) for i, v in enumerate(library)])
        db.commit()


def test_an_index_from_before_vector_search_migrates_and_searches_exactly_until_refreshed(session, vectors, tmp_path):
    from atom_deploy.pipelines.model_facts import manifest_sha256

    path = tmp_path / "old.sqlite"
    schema_1_index(path, manifest_sha256(session), vectors["library"][:500])
    text = str(vectors["query_texts"][0])
    with open_index(path, session) as index:
        assert index.vectors_seq() is None and len(clip_ids(index)) == 500
        before, how = ranked(session, index, text, k=5)
        assert how == "exact: no vector file"
        assert vector_index.refresh(index).action == "rebuilt"
        after, how = ranked(session, index, text, k=5)
        assert how == "ann" and [h.clip_id for h in after] == [h.clip_id for h in before]
        assert vector_view(index) == clip_ids(index)
        index.drop_videos(["/videos/old.mp4"])  # the migrated triggers log from now on
        assert vector_view(index) == clip_ids(index) == set()
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("2",)


def test_a_newer_schema_is_refused_in_one_line(vectors, tmp_path):
    path = tmp_path / "new.sqlite"
    schema_1_index(path, MANIFEST, vectors["library"][:3], version="3")
    with pytest.raises(AtomError, match=r"has index schema '3'; this kit reads 2$"):
        ClipIndex(path, MANIFEST, "x")


def test_a_removed_vector_file_falls_back_to_exact_and_is_rebuilt(session, vectors, tmp_path):
    with open_index(tmp_path / "idx.sqlite", session) as index:
        fill(index, vectors["library"], range(1))
        vector_index.refresh(index)
        for f in vector_index.vector_dir(index.path).iterdir():
            f.unlink()
        vector_index._opened.clear()  # a fresh process
        assert ranked(session, index, "a red square", k=3)[1] == "exact: no vector file"
        assert vector_index.refresh(index).action == "rebuilt"
        assert ranked(session, index, "a red square", k=3)[1] == "ann"
