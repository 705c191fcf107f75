"""Text-to-video retrieval through generated captions, as in the paper.

Every test clip is captioned, the captions are embedded with MiniLM, and each clip's
held-out reference caption is the query: rank all clips by cosine between the query and
their caption embeddings. Recall@k is the share of queries whose own clip ranks in the
top k. MiniLM's embeddings are unit length (L2 in the graph), so cosine is a dot product;
we normalise anyway so the metric does not depend on that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from atom_runner.errors import AtomError

KS = (1, 5, 10)


@dataclass(frozen=True)
class RetrievalScores:
    r1: float  # percent
    r5: float
    r10: float
    median_rank: float  # 1-based
    gallery: int  # clips ranked; R@k with k >= gallery is 100 by construction
    hits_at_1: tuple[bool, ...] = ()  # per query: its own clip ranked first (R@1 is their mean x100)


def ranks_of_targets(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """1-based rank of gallery item i for query i (ties count against the target)."""
    if queries.shape != gallery.shape or queries.ndim != 2:
        raise AtomError(f"queries {queries.shape} and gallery {gallery.shape} must be the same [n, d]")
    sims = _unit(queries) @ _unit(gallery).T
    target = np.diag(sims)[:, None]
    # Pessimistic ties: a clip whose caption equals another's cannot win by index order.
    return (sims >= target).sum(axis=1)


def recall_at_k(queries: np.ndarray, gallery: np.ndarray) -> RetrievalScores:
    ranks = ranks_of_targets(queries, gallery)
    r1, r5, r10 = (100.0 * float(np.mean(ranks <= k)) for k in KS)
    return RetrievalScores(r1, r5, r10, float(np.median(ranks)), int(len(ranks)), tuple(bool(r == 1) for r in ranks))


def caption_retrieval(session, captions: list[str], queries: list[str]) -> RetrievalScores:
    """Embed captions (gallery) and queries with the session's MiniLM, then rank."""
    if len(captions) != len(queries):
        raise AtomError("caption_retrieval: one query per caption")
    # An empty caption would be refused by embed(); a blank stand-in ranks as noise.
    gallery = session.embed([c if c.strip() else "." for c in captions])
    return recall_at_k(session.embed(list(queries)), gallery)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
