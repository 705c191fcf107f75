"""The retrieval index: one SQLite file (standard library), WAL mode, explicit transactions.

Tables:
    meta    key -> value: schema version, the artifacts' manifest sha256 and a label for
            messages. One index belongs to one set of artifacts: captions and embeddings
            from another model would rank against each other as noise.
    videos  one row per file: content sha256, the segmentation it was cut with, and
            status 'partial' until its last clip is committed, then 'complete'.
    clips   one row per clip window: video path and content sha256, start/end seconds,
            caption, MiniLM embedding (float32 bytes), manifest sha256, creation time.
            UNIQUE(video_path, start_s, end_s): a resumed run can never add a duplicate.
    clip_log every insert into and delete from clips, written by triggers inside the same
            transaction: the change feed the vector index (vector_index.py) replays, so
            it can never disagree with the rows, whatever point a process is killed at.
            meta 'vectors_seq' names the log position the vector file on disk covers;
            the log up to it is dropped once that file is in place.

Crash safety: every write is one `BEGIN IMMEDIATE ... COMMIT`; synchronous=FULL in WAL
mode makes a commit durable before it returns, so a killed process loses at most the
transaction it was in, and the next run finds the file 'partial' and resumes it.

One segmentation per video: all of a video's clips were cut from the content and with
the window/stride its row names. `start_video` with other content or another
segmentation drops the old clips and makes the new row in one transaction; a writer
then adds clips, and finishes the video, only while the row is still the one it
started (checked inside the same transaction as the write), so two runs on one file
with different --window/--stride never mix their clips: the later start wins.
Every statement is parameterized: paths, captions and prompts are only ever data.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atom_runner.errors import AtomError

SCHEMA_VERSION = "2"  # 2 added clip_log and its triggers; a version-1 index migrates on open
EMBEDDING_DTYPE = np.float32

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    path TEXT PRIMARY KEY,
    content_sha256 TEXT NOT NULL,
    window_s REAL NOT NULL,
    stride_s REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('partial', 'complete')),
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS clips (
    id INTEGER PRIMARY KEY,
    video_path TEXT NOT NULL REFERENCES videos(path) ON DELETE CASCADE,
    content_sha256 TEXT NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    caption TEXT NOT NULL,
    embedding BLOB NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (video_path, start_s, end_s)
);
"""

# AUTOINCREMENT: a log position is never reused, even after the log up to it is dropped.
# Foreign-key cascades fire these triggers too, so dropping a video logs each of its clips.
_LOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS clip_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    clip_id INTEGER NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('add', 'del'))
);
CREATE TRIGGER IF NOT EXISTS clips_logged_add AFTER INSERT ON clips
    BEGIN INSERT INTO clip_log (clip_id, op) VALUES (NEW.id, 'add'); END;
CREATE TRIGGER IF NOT EXISTS clips_logged_del AFTER DELETE ON clips
    BEGIN INSERT INTO clip_log (clip_id, op) VALUES (OLD.id, 'del'); END
"""


@dataclass(frozen=True)
class ClipRow:
    id: int
    video_path: str
    start_s: float
    end_s: float
    caption: str


@dataclass(frozen=True)
class VideoRow:
    path: str
    content_sha256: str
    window_s: float
    stride_s: float
    status: str

    def same_cut(self, other: "VideoRow | None") -> bool:
        """Same content cut the same way (whatever either's status)."""
        return other is not None and (self.path, self.content_sha256, self.window_s, self.stride_s) == (
            other.path, other.content_sha256, other.window_s, other.stride_s)


class VideoTakenOver(AtomError):
    """Another run re-started this video with other content or another segmentation."""


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class ClipIndex:
    """An open index bound to one set of artifacts (its manifest sha256)."""

    def __init__(self, path: str | Path, manifest_sha256: str, label: str, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise AtomError(f"no index at {self.path}: build one with `atom-deploy index`")
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30.0)
            self._db.execute("PRAGMA foreign_keys = ON")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            self._db.execute("PRAGMA synchronous = FULL")
            with self.transaction():
                tables = {name for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if not create and "meta" not in tables:
                    raise AtomError(f"{self.path} is an SQLite file but not an atom-deploy index")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)  # not executescript: that would commit early
                meta = dict(self._db.execute("SELECT key, value FROM meta"))
                if not meta:
                    self._db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [
                        ("schema_version", SCHEMA_VERSION), ("manifest_sha256", manifest_sha256), ("artifacts", label),
                    ])
                    meta = {"schema_version": SCHEMA_VERSION, "manifest_sha256": manifest_sha256, "artifacts": label}
                if meta.get("schema_version") in ("1", SCHEMA_VERSION) and meta.get("manifest_sha256") == manifest_sha256:
                    # Version 1 had no log: its rows are all in the table, and the vector file,
                    # absent, is built from the table (vector_index.refresh).
                    for statement in _LOG_SCHEMA.split(";\n"):
                        self._db.execute(statement)
                    self._db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))
                    meta["schema_version"] = SCHEMA_VERSION
        except sqlite3.DatabaseError as exc:
            raise AtomError(f"{self.path} is not a usable index ({exc})") from None
        if mode.lower() != "wal":
            raise AtomError(f"{self.path}: SQLite would not switch to WAL mode (got {mode}); is it on a network drive?")
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise AtomError(f"{self.path} has index schema {meta.get('schema_version')!r}; this kit reads {SCHEMA_VERSION}")
        if meta.get("manifest_sha256") != manifest_sha256:
            raise AtomError(
                f"{self.path} was built with other artifacts ({meta.get('artifacts')}, manifest sha256 "
                f"{str(meta.get('manifest_sha256'))[:12]}); these are {label} ({manifest_sha256[:12]}): "
                "use one index file per model"
            )
        self.manifest_sha256 = manifest_sha256

    # --- transactions ------------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every read inside sees one committed state (WAL: writers go on)."""
        self._db.execute("BEGIN")
        try:
            yield self._db
        finally:
            self._db.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so two writers queue instead of failing mid-way.
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # locked past the timeout, disk full, read-only file
            raise AtomError(f"{self.path}: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ClipIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- videos ------------------------------------------------------------------------

    def video(self, path: str) -> VideoRow | None:
        row = self._db.execute(
            "SELECT path, content_sha256, window_s, stride_s, status FROM videos WHERE path = ?", (path,)
        ).fetchone()
        return VideoRow(*row) if row else None

    def start_video(self, path: str, content_sha256: str, window_s: float, stride_s: float) -> VideoRow:
        """Make `path` a video with this content and segmentation ('partial' unless it already
        is one, complete or not); clips of other content or another segmentation go in the
        same transaction. Returns the row to hand to add_clips and finish_video."""
        wanted = VideoRow(path, content_sha256, float(window_s), float(stride_s), "partial")
        with self.transaction() as db:
            old = self.video(path)
            if old is not None and not wanted.same_cut(old):
                db.execute("DELETE FROM videos WHERE path = ?", (path,))  # cascades to its clips
                old = None
            if old is None:
                db.execute(
                    "INSERT INTO videos (path, content_sha256, window_s, stride_s, status, updated_at) VALUES (?, ?, ?, ?, 'partial', ?)",
                    (path, content_sha256, wanted.window_s, wanted.stride_s, utc_now()),
                )
        return old or wanted

    def finish_video(self, video: VideoRow) -> None:
        with self.transaction() as db:
            self._still(video)
            db.execute("UPDATE videos SET status = 'complete', updated_at = ? WHERE path = ?", (utc_now(), video.path))

    def _still(self, video: VideoRow) -> None:
        """Inside a write transaction: the row is still the one `video` started, or VideoTakenOver."""
        now = self.video(video.path)
        if not video.same_cut(now):
            change = "removed it" if now is None else (
                f"re-indexed it with window {now.window_s:g} s, stride {now.stride_s:g} s"
                if now.content_sha256 == video.content_sha256 else "re-indexed it with new content")
            raise VideoTakenOver(f"{video.path}: another run {change} meanwhile; its clips are that run's now")

    def windows_done(self, path: str) -> set[tuple[float, float]]:
        return set(self._db.execute("SELECT start_s, end_s FROM clips WHERE video_path = ?", (path,)))

    def drop_videos(self, paths: Iterable[str]) -> int:
        with self.transaction() as db:
            return sum(db.execute("DELETE FROM videos WHERE path = ?", (p,)).rowcount for p in paths)

    def video_paths(self) -> list[str]:
        return [p for (p,) in self._db.execute("SELECT path FROM videos ORDER BY path")]

    # --- clips -------------------------------------------------------------------------

    def add_clips(self, video: VideoRow, rows: Sequence[tuple[float, float, str, np.ndarray]]) -> int:
        """rows: (start_s, end_s, caption, embedding[dim]) of `video` as start_video returned it;
        all committed together or none. Returns how many were new (a window already stored,
        by an earlier or a concurrent run, is kept as it is)."""
        now = utc_now()
        with self.transaction() as db:
            self._still(video)
            return db.executemany(
                "INSERT OR IGNORE INTO clips (video_path, content_sha256, start_s, end_s, caption, embedding, "
                "manifest_sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(video.path, video.content_sha256, float(s), float(e), caption, _blob(vec), self.manifest_sha256, now)
                 for s, e, caption, vec in rows],
            ).rowcount

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM clips").fetchone()[0]

    def clips_of(self, path: str) -> list[ClipRow]:
        return [ClipRow(*r) for r in self._db.execute(
            "SELECT id, video_path, start_s, end_s, caption FROM clips WHERE video_path = ? ORDER BY start_s, end_s", (path,)
        )]

    def clips_by_id(self, ids: Sequence[int]) -> dict[int, ClipRow]:
        found: dict[int, ClipRow] = {}
        for chunk_start in range(0, len(ids), 500):  # stay far below SQLite's parameter limit
            chunk = [int(i) for i in ids[chunk_start:chunk_start + 500]]
            marks = ",".join("?" * len(chunk))
            for r in self._db.execute(f"SELECT id, video_path, start_s, end_s, caption FROM clips WHERE id IN ({marks})", chunk):
                found[r[0]] = ClipRow(*r)
        return found

    def embedding_matrix(self, paths: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids [n] int64, embeddings [n, dim] float32) in one read, optionally only these videos."""
        if paths is None:
            rows = self._db.execute("SELECT id, embedding FROM clips ORDER BY id").fetchall()
        else:  # the list travels as one JSON parameter: any number of paths, nothing spliced into the SQL
            rows = self._db.execute(
                "SELECT id, embedding FROM clips WHERE video_path IN (SELECT value FROM json_each(?)) ORDER BY id",
                (json.dumps(list(paths)),),
            ).fetchall()
        return _matrix(self.path, rows)


    # --- the change log the vector index replays ------------------------------------------

    def vectors_seq(self) -> int | None:
        """The log position the vector file covers; None before one was ever written."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'vectors_seq'").fetchone()
        return int(row[0]) if row else None

    def log_after(self, seq: int) -> list[tuple[int, int, str]]:
        """(seq, clip_id, op) of every change after `seq`, in order."""
        return self._db.execute("SELECT seq, clip_id, op FROM clip_log WHERE seq > ? ORDER BY seq", (seq,)).fetchall()

    def log_end(self) -> int:
        """The last log position ever written (0 for none): kept by AUTOINCREMENT after the log is dropped."""
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'clip_log'").fetchone()
        return int(row[0]) if row else 0

    def vectors_written(self, seq: int) -> None:
        """A vector file covering the log up to `seq` is in place: record it, drop that log."""
        with self.transaction() as db:
            recorded = self.vectors_seq()
            if recorded is not None and recorded >= seq:
                return  # another run recorded a newer file meanwhile
            db.execute("INSERT INTO meta (key, value) VALUES ('vectors_seq', ?) "
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(seq),))
            db.execute("DELETE FROM clip_log WHERE seq <= ?", (seq,))

    def embeddings_by_id(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(ids [n] ascending, embeddings [n, dim]) of those of `ids` still stored."""
        rows = self._db.execute(
            "SELECT id, embedding FROM clips WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id",
            (json.dumps([int(i) for i in ids]),),
        ).fetchall()
        return _matrix(self.path, rows)

    def embedding_chunks(self, chunk: int = 100_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every (ids, embeddings) in id order, `chunk` rows at a time (call inside snapshot())."""
        last = -1
        while True:
            rows = self._db.execute("SELECT id, embedding FROM clips WHERE id > ? ORDER BY id LIMIT ?", (last, chunk)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield _matrix(self.path, rows)


def _matrix(path: Path, rows: list[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 0), EMBEDDING_DTYPE)
    ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    flat = np.frombuffer(b"".join(r[1] for r in rows), EMBEDDING_DTYPE)
    if flat.size % len(rows):
        raise AtomError(f"{path}: stored embeddings have mixed sizes (index damaged?)")
    return ids, flat.reshape(len(rows), -1)


def _blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, EMBEDDING_DTYPE).tobytes()
