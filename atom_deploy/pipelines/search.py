"""Rank indexed clips against a prompt: MiniLM embedding, cosine, top-k.

The embeddings are unit length (normalised inside the MiniLM graph), so cosine is a dot
product. By default the vector index (vector_index.py) proposes the candidates and they are
ranked here by their exact cosine; `exact=True`, a search within given videos, and an index
without a vector file yet rank every clip, read from SQLite as one matrix: the reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from atom_deploy.pipelines import vector_index
from atom_deploy.pipelines.index_db import ClipIndex
from atom_runner.errors import AtomError
from atom_runner.session import Session


@dataclass(frozen=True)
class Hit:
    rank: int  # 1-based
    score: float  # cosine similarity in [-1, 1]
    video: str
    start_s: float
    end_s: float
    caption: str
    clip_id: int

    def as_dict(self) -> dict:
        return asdict(self)


def top_k(matrix: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(row indices, scores) of the k best rows, best first; ties keep index order."""
    scores = matrix @ query
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    # argpartition is O(n); only the k survivors are sorted. Stable sort on -score keeps ties in order.
    candidates = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    order = candidates[np.lexsort((candidates, -scores[candidates]))]
    return order, scores[order]


def search(session: Session, index: ClipIndex, prompt: str, k: int = 10, videos: Sequence[str] | None = None,
           exact: bool = False) -> list[Hit]:
    """The k clips whose captions are closest to `prompt`; only `videos` when given."""
    return ranked(session, index, prompt, k, videos, exact)[0]


def ranked(session: Session, index: ClipIndex, prompt: str, k: int = 10, videos: Sequence[str] | None = None,
           exact: bool = False) -> tuple[list[Hit], str]:
    """search(), and how it ranked: 'ann', 'exact' (asked for, or within videos) or
    'exact: no vector file' (an index from before vector search, until the next `index` run)."""
    if k < 1:
        raise AtomError(f"k must be at least 1, got {k}")
    query = session.embed([prompt])[0].astype(np.float32)
    how = "exact"
    found = None
    if not exact and videos is None:
        found = vector_index.candidates(index, query, k)
        how = "ann" if found is not None else "exact: no vector file"
    ids, matrix = found if found is not None else index.embedding_matrix(videos)
    if len(ids) == 0:
        where = "for these videos" if videos is not None else "at all"
        raise AtomError(f"{index.path} holds no clips {where}: run `atom-deploy index` first")
    if matrix.shape[1] != query.shape[0]:
        raise AtomError(f"{index.path} stores {matrix.shape[1]}-d embeddings, the MiniLM module makes {query.shape[0]}-d")
    rows, scores = top_k(matrix, query, k)
    chosen = ids[rows].tolist()
    clips = index.clips_by_id(chosen)
    hits = [(clips[i], float(s)) for i, s in zip(chosen, scores) if i in clips]  # a row deleted meanwhile drops out
    return [Hit(rank, score, c.video_path, c.start_s, c.end_s, c.caption, c.id) for rank, (c, score) in enumerate(hits, 1)], how
