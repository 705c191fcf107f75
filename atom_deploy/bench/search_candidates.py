"""The measurement behind the vector index's library choice (docs/search_scale.md): the same
perturbed MiniLM vectors (search_vectors.py) in usearch (HNSW), sqlite-vec (vec0, brute
force) and FAISS IVF, in one process: build time, recall@10 against numpy exact, query p50/p99,
file size. The candidates are not the kit's dependencies; install them beside it first:

    .venv/bin/pip install --target /tmp/cand usearch==2.26.6 sqlite-vec==0.1.9 apsw==3.54.1.0
    PYTHONPATH=/tmp/cand .venv/bin/python -m atom_deploy.bench.search_candidates 100000 OUT_DIR

sqlite-vec runs through apsw: this Python's sqlite3 module is built without extension loading.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from atom_deploy.bench.search_vectors import VectorSource

K = 10


def _timed(fn, queries: np.ndarray) -> tuple[list, float, float]:
    found, ms = [], []
    for q in queries:
        t0 = time.perf_counter()
        found.append(list(fn(q)))
        ms.append((time.perf_counter() - t0) * 1000)
    return found, float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def main(size: int, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    source = VectorSource(queries=200)
    vectors, queries = np.concatenate(list(source.chunks(size))), source.queries
    truth = [set(np.argsort(-(vectors @ q), kind="stable")[:K].tolist()) for q in queries]
    rows = []

    def report(engine: str, build_s: float, found: list, p50: float, p99: float, path: Path) -> None:
        recall = float(np.mean([len(set(f) & t) / K for f, t in zip(found, truth)]))
        rows.append({"engine": engine, "build_s": round(build_s, 1), "recall_at_10": round(recall, 4),
                     "p50_ms": round(p50, 2), "p99_ms": round(p99, 2), "file_mb": round(path.stat().st_size / 2**20, 1)})
        print(rows[-1], flush=True)

    from usearch.index import Index

    for dtype in ("i8", "f16"):
        index = Index(ndim=vectors.shape[1], metric="cos", dtype=dtype, connectivity=16, expansion_add=128)
        t0 = time.perf_counter()
        index.add(np.arange(size), vectors, threads=os.cpu_count())
        build = time.perf_counter() - t0
        index.save(str(out / f"usearch-{dtype}.usearch"))
        for ef in (64, 128):
            index.expansion_search = ef
            report(f"usearch HNSW {dtype} ef={ef}", build, *_timed(lambda q: index.search(q, K).keys, queries),
                   out / f"usearch-{dtype}.usearch")

    import apsw
    import sqlite_vec

    path = out / "sqlite-vec.db"
    path.unlink(missing_ok=True)
    db = apsw.Connection(str(path))
    db.enable_load_extension(True)
    db.load_extension(sqlite_vec.loadable_path())
    db.execute(f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{vectors.shape[1]}])")
    t0 = time.perf_counter()
    with db:
        db.executemany("INSERT INTO v (rowid, embedding) VALUES (?, ?)", ((i, v.tobytes()) for i, v in enumerate(vectors)))
    build = time.perf_counter() - t0
    query = "SELECT rowid FROM v WHERE embedding MATCH ? AND k = ? ORDER BY distance"
    report("sqlite-vec vec0 float (exact scan)", build,
           *_timed(lambda q: [r[0] for r in db.execute(query, (q.tobytes(), K))], queries[:50]), path)

    import faiss

    lists = round(4 * np.sqrt(size))
    for code in ("Flat", "SQfp16"):
        index = faiss.index_factory(vectors.shape[1], f"IVF{lists},{code}", faiss.METRIC_INNER_PRODUCT)
        t0 = time.perf_counter()
        index.train(vectors[np.random.default_rng(1).choice(size, min(size, 40 * lists), replace=False)])
        index.add(vectors)
        build = time.perf_counter() - t0
        faiss.write_index(index, str(out / f"faiss-{code}.faiss"))
        for probes in (lists // 32, lists // 16):
            index.nprobe = probes
            report(f"faiss IVF{lists},{code} nprobe={probes}", build,
                   *_timed(lambda q: index.search(q[None], K)[1][0], queries), out / f"faiss-{code}.faiss")
    (out / f"candidates-{size}.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
