"""Comparison metrics for parity: cosine, relative max-abs, token agreement."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / denom) if denom else float(np.array_equal(a, b))


def relative_max_abs(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|: 1e-4 means agreement to about four significant digits."""
    scale = float(np.abs(b).max()) or 1.0
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max() / scale)


@dataclass(frozen=True)
class TokenAgreement:
    agreement: float  # fraction of positions with the same token
    first_divergence: int | None  # first differing position, None when identical

    @classmethod
    def of(cls, a: list[int], b: list[int]) -> "TokenAgreement":
        same = [x == y for x, y in zip(a, b)]
        first = next((i for i, s in enumerate(same) if not s), None)
        if first is None and len(a) != len(b):
            first = min(len(a), len(b))
        return cls(sum(same) / max(len(a), len(b), 1), first)
