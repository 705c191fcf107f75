"""The ANN side of the index: a FAISS IVF file beside the SQLite index, derived from its rows.

The rows stay the truth. The vector file is a snapshot of their embeddings up to a position
of `clip_log` (index_db.py: triggers log every insert and delete in the same transaction as
the rows). A search reads, in one SQLite read transaction, the position the file covers and
every change after it; clips changed since are taken out of the file's answers and the ones
added since are scored directly, so answers match the rows at every moment, however stale
the file is. `refresh` (run at the end of every `index`) writes a new file and only then,
in one transaction, records its position and drops the log up to it. A kill at any point
leaves either the old file with its log, or the new file with (or without yet) the log it
covers: both answer the same. No file yet (an index from before this change, or the file
removed) searches exactly and the next `refresh` builds the file from the rows.

Why FAISS IVF (docs/search_scale.md has the numbers): on this 2-core machine it builds 1M
vectors in well under a minute where HNSW (usearch) took 2-3 minutes per 100k, supports
removing ids (which the log replay needs), and memory-maps its file, so a cold query reads
only the lists it probes. sqlite-vec keeps vectors in the same file and transaction but only
scans them all (194 ms at 100k), and this Python's sqlite3 cannot load extensions.

Vectors are stored as float16 (SQfp16: half the bytes, recall unchanged on MiniLM vectors);
the candidates are re-scored in float32 from the rows, so scores are the exact cosines.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atom_deploy.pipelines.index_db import ClipIndex

# Training and adding both cost lists x vectors dot products (k-means on 40 points a list,
# then each vector against every list), measured 58 GFLOP/s on one core here: at 10M, 4,096
# lists take about 11 minutes of one idle core, 12,649 (the sqrt rule) 42. Past 4.2M clips
# the lists therefore stop growing and get longer; the probes below keep the scan bounded.
MAX_LISTS = 4096
POINTS_PER_LIST = 40  # k-means training points per list (FAISS warns below 39)
# Lists probed per query. Recall follows the count more than the fraction: on MiniLM-like
# vectors 64 gave recall@10 0.995 at 100k (of 1,024 lists) and 1.000 at 1M (of 4,096), where
# one in 16 at 1M took 18 ms (docs/search_scale.md).
PROBES = 64
# Vectors one query scans, at most, once lists grow long (at 10M: 2,441 a list, 32 probes):
# a single-threaded scan of 78k float16 vectors took 33 ms with the machine at load 16, 156k 62.
MAX_SCAN = 80_000
MIN_PROBES = 32  # 32 of 4,096 lists gave recall@10 0.9995 at 1M


def _crash_point(step: str) -> None:
    """Tests replace this to kill the process between the steps of a refresh."""


def vector_dir(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".vectors")


def _file(db_path: Path, seq: int) -> Path:
    return vector_dir(db_path) / f"ivf-{seq:012d}.faiss"


def lists_for(count: int) -> int:
    """IVF lists for `count` vectors: about 4 sqrt(n), each with enough points to train."""
    return max(1, min(MAX_LISTS, round(4 * math.sqrt(count)), count // POINTS_PER_LIST))


def probes_for(lists: int, vectors: int) -> int:
    per_list = max(1, vectors // max(lists, 1))
    return min(lists, PROBES, max(MIN_PROBES, MAX_SCAN // per_list))


@dataclass(frozen=True)
class RefreshReport:
    action: str  # 'none', 'updated' or 'rebuilt'
    vectors: int
    seconds: float


# --- search ------------------------------------------------------------------------------

_opened: dict[Path, tuple[int, object]] = {}  # db path -> (seq, memory-mapped index): warm queries reuse it


def candidates(index: ClipIndex, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(ids, embeddings) among which the exact top k lies (as far as the ANN finds it), read
    in one SQLite read transaction; None when no vector file covers the index (search exactly)."""
    with index.snapshot():
        seq = index.vectors_seq()
        if seq is None:
            return None
        ann = _open(index.path, seq)
        if ann is None:
            return None
        latest: dict[int, str] = {}
        for _, clip_id, op in index.log_after(seq):
            latest[clip_id] = op
        ids: set[int] = set()
        if ann.ntotal:
            # Clips deleted since still come out of the file and take places (so ask for more);
            # they drop out at the row read below, and an id re-used since is read as it is now.
            _, found = ann.search(query[None].astype(np.float32), k + len(latest))
            ids = {int(i) for i in found[0] if i >= 0}
        ids.update(i for i, op in latest.items() if op == "add")
        return index.embeddings_by_id(sorted(ids))


def _open(db_path: Path, seq: int):
    import faiss

    cached = _opened.get(db_path)
    if cached is not None and cached[0] == seq:
        return cached[1]
    try:
        ann = faiss.read_index(str(_file(db_path, seq)), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError:  # removed by hand, or by a newer refresh since the position was read
        return None
    ivf = faiss.extract_index_ivf(ann)
    ivf.nprobe = probes_for(ivf.nlist, ivf.ntotal)
    _opened[db_path] = (seq, ann)
    return ann


# --- refresh -----------------------------------------------------------------------------


def refresh(index: ClipIndex) -> RefreshReport:
    """Bring the vector file up to the rows: apply the log to it, or rebuild it from the rows
    when there is none or the library grew or shrank 4x since its lists were trained."""
    import time

    import faiss

    started = time.perf_counter()
    with index.snapshot():
        seq = index.vectors_seq()
        log = index.log_after(seq) if seq is not None else []
        count = index.count()
        path = _file(index.path, seq) if seq is not None else None
        current = faiss.read_index(str(path)) if path is not None and path.is_file() else None
        if current is not None and not log:
            _drop_older(index.path, seq)  # a run killed before its clean-up left them
            return RefreshReport("none", current.ntotal, time.perf_counter() - started)
        ivf = faiss.extract_index_ivf(current) if current is not None else None
        if ivf is not None and 0.5 <= lists_for(count) / ivf.nlist <= 2:
            latest: dict[int, str] = {}
            for _, clip_id, op in log:
                latest[clip_id] = op
            current.remove_ids(np.fromiter(latest, np.int64, len(latest)))
            ids, vectors = index.embeddings_by_id([i for i, op in latest.items() if op == "add"])
            if len(ids):
                current.add_with_ids(vectors, ids)
            new_seq, action, built = log[-1][0], "updated", current
        else:
            new_seq, action, built = index.log_end(), "rebuilt", _build(index, count)
    _crash_point("built")
    _write(built, _file(index.path, new_seq))
    _crash_point("written")
    index.vectors_written(new_seq)
    _crash_point("recorded")
    _drop_older(index.path, new_seq)
    return RefreshReport(action, built.ntotal, time.perf_counter() - started)


def _drop_older(db_path: Path, seq: int) -> None:
    """Files older than `seq` (a search that read their position a moment ago falls back to exact)."""
    for old in vector_dir(db_path).glob("ivf-*.faiss"):
        if old.name < _file(db_path, seq).name:
            old.unlink(missing_ok=True)


def _build(index: ClipIndex, count: int):
    """A trained IVF index of every row (call inside index.snapshot())."""
    import faiss

    lists = lists_for(count)
    rng = np.random.default_rng(0)
    keep = min(1.0, POINTS_PER_LIST * lists / max(count, 1))
    sample = [m[rng.random(len(m)) < keep] for _, m in index.embedding_chunks()]
    sample = np.concatenate(sample) if sample else np.zeros((0, 0), np.float32)
    dim = sample.shape[1] if sample.size else 384
    ann = faiss.index_factory(dim, f"IVF{lists},SQfp16", faiss.METRIC_INNER_PRODUCT)
    if len(sample) < lists:  # the random draw fell short: train on every row
        sample = np.concatenate([m for _, m in index.embedding_chunks()] or [np.zeros((0, dim), np.float32)])
    if len(sample):
        ann.train(sample)
        for ids, vectors in index.embedding_chunks():
            ann.add_with_ids(vectors, ids)
    return ann


def _write(ann, target: Path) -> None:
    """Whole or not at all: a temporary file, flushed, renamed over, the folder flushed."""
    import faiss

    target.parent.mkdir(exist_ok=True)
    partial = target.with_suffix(".partial")
    faiss.write_index(ann, str(partial))
    with open(partial, "rb") as f:
        os.fsync(f.fileno())
    _crash_point("partial")
    os.replace(partial, target)
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def stored_ids(db_path: Path, seq: int) -> set[int]:
    """Every id in the vector file at `seq` (for consistency checks)."""
    import faiss

    ann = faiss.read_index(str(_file(db_path, seq)))  # held: the IVF part below points into it
    ivf = faiss.extract_index_ivf(ann)
    found: set[int] = set()
    for n in range(ivf.nlist):
        size = ivf.invlists.list_size(n)
        if size:
            found.update(faiss.rev_swig_ptr(ivf.invlists.get_ids(n), size).tolist())
    return found
