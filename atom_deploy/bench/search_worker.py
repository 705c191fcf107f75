"""One fresh process of the search scale bench: open an index on disk, answer queries, report.

`python -m atom_deploy.bench.search_worker INDEX ENGINE QUERIES.npy FIRST` prints one JSON
line: the cold query (open the index + the first query, query FIRST of the file: the search
itself, not the interpreter's start or imports, whose FAISS part is reported apart), then every query warm, the ids each found,
and the process's peak RSS. ENGINE is 'ann' (the vector index's candidates, re-ranked by
exact cosine: what `atom-deploy search` does) or 'exact' (every row: `search --exact`).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from atom_deploy.bench.memory import peak_rss_mb
from atom_deploy.pipelines import vector_index
from atom_deploy.pipelines.index_db import ClipIndex
from atom_deploy.pipelines.search import top_k

K = 10
MANIFEST = "5ea7c4" * 10 + "beef"  # the bench's own index: no artifacts behind it
LABEL = "search scale bench (synthetic MiniLM vectors)"


def query(index: ClipIndex, engine: str, vector: np.ndarray) -> list[int]:
    found = vector_index.candidates(index, vector, K) if engine == "ann" else None
    if engine == "ann" and found is None:
        raise SystemExit(f"{index.path} has no vector file")
    ids, matrix = found if found is not None else index.embedding_matrix()
    rows, _ = top_k(matrix, vector, K)
    return ids[rows].tolist()


def main(argv: list[str]) -> None:
    path, engine, queries_path, first = argv[0], argv[1], argv[2], int(argv[3])
    queries = np.load(queries_path)
    before_import = time.perf_counter()
    import faiss  # noqa: F401  (imported by the search module on first use: process start, timed apart)

    started = time.perf_counter()
    index = ClipIndex(path, MANIFEST, LABEL, create=False)
    opened = time.perf_counter()
    query(index, engine, queries[first])
    cold = time.perf_counter()
    warm_ms, found = [], []
    for vector in queries:
        t0 = time.perf_counter()
        found.append(query(index, engine, vector))
        warm_ms.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({"import_ms": (started - before_import) * 1000, "open_ms": (opened - started) * 1000, "cold_ms": (cold - started) * 1000,
                      "warm_ms": warm_ms, "found": found, "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main(sys.argv[1:])
