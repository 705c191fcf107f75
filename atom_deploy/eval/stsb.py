"""MiniLM on STS-B dev: Pearson correlation of cosine similarity with the gold score.

The file is tab-separated `score, sentence1, sentence2` with a header and NO quoting:
sentences contain bare double quotes, which csv's default dialect would swallow across
tabs and lines, so it is read with QUOTE_NONE.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atom_runner.errors import AtomError

REPO = Path(__file__).resolve().parents[2]
# Same place tests/conftest.py finds shared data: a `shared/` beside the checkout.
DEFAULT_STSB = REPO.parent / "shared" / "data" / "stsb" / "stsb-dev.tsv"


@dataclass(frozen=True)
class StsPair:
    score: float  # gold similarity, 0..5
    sentence1: str
    sentence2: str


@dataclass(frozen=True)
class StsResult:
    pearson: float
    spearman: float
    pairs: int


def read_stsb(path: Path) -> list[StsPair]:
    if not path.is_file():
        raise AtomError(f"STS-B file not found: {path} (give --stsb PATH)")
    pairs = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header[:3]] != ["score", "sentence1", "sentence2"]:
            raise AtomError(f"{path}: expected a header 'score<TAB>sentence1<TAB>sentence2', got {header}")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 3:
                raise AtomError(f"{path}:{line}: expected 3 tab-separated fields, got {len(row)}")
            try:
                score = float(row[0])
            except ValueError:
                raise AtomError(f"{path}:{line}: score {row[0]!r} is not a number") from None
            pairs.append(StsPair(score, row[1], row[2]))
    if not pairs:
        raise AtomError(f"{path}: no sentence pairs")
    return pairs


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return pearson(_ranks(x), _ranks(y))


def evaluate_stsb(embed, pairs: list[StsPair], batch: int = 64) -> StsResult:
    """embed: list[str] -> [n, d] array (e.g. Session.embed)."""
    first = _embed_all(embed, [p.sentence1 for p in pairs], batch)
    second = _embed_all(embed, [p.sentence2 for p in pairs], batch)
    first /= np.linalg.norm(first, axis=1, keepdims=True)
    second /= np.linalg.norm(second, axis=1, keepdims=True)
    cosines = (first * second).sum(axis=1)
    gold = np.array([p.score for p in pairs])
    return StsResult(pearson(cosines, gold), spearman(cosines, gold), len(pairs))


def _embed_all(embed, texts: list[str], batch: int) -> np.ndarray:
    return np.concatenate([np.asarray(embed(texts[i : i + batch]), np.float64) for i in range(0, len(texts), batch)])


def _ranks(x: np.ndarray) -> np.ndarray:
    # Average ranks for ties, as Spearman's definition asks.
    x = np.asarray(x)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    for value in np.unique(x):
        tied = x == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks
