"""The Ray Data actor of `index --engine ray`: one Session per worker, clip ranges in, rows out.

Each actor loads the modules once and serves every range handed to it: it decodes the
range's windows (stopping at the last one), captions them through caption_stream (the
clips of a range share decode passes) and embeds the captions. It never writes to the
index: the driver commits what comes back (ray_indexing.py), so a worker killed at any
point costs only the range Ray hands again to a restarted actor.

A failure of one file (damaged, or absent on this node) is an error row, not an
exception: an exception in the actor would fail the whole Ray run.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np

from atom_deploy.pipelines.captioning import FileOutcome, caption_file
from atom_deploy.pipelines.model_facts import clip_spec, manifest_sha256
from atom_deploy.pipelines.sources import content_sha256
from atom_runner.errors import AtomError
from atom_runner.session import Session

# Item columns (one row = one clip range of one video)
PATH, SHA256, WINDOWS = "path", "sha256", "windows"
# Result columns (one row = one clip, or an error row: ERROR set, no clip)
START, END, CAPTION, EMBEDDING, ERROR, WORKER = "start_s", "end_s", "caption", "embedding", "error", "worker"


def range_item(path: Path, sha256: str, windows: list[tuple[float, float]]) -> dict[str, str]:
    """One unit of work: the windows travel as JSON text, so every item has the same columns."""
    return {PATH: str(path), SHA256: sha256, WINDOWS: json.dumps(windows)}


class RangeCaptioner:
    """Constructed once per Ray actor (map_batches' callable class), called per range."""

    def __init__(self, artifacts: str, backend: str, expected_sha256: str, window_s: float, stride_s: float,
                 beam: int, threads: int | None):
        self.session = Session(artifacts, backend=backend, overlap="auto", threads=threads)
        found = manifest_sha256(self.session)
        if found != expected_sha256:
            raise AtomError(f"{artifacts} on Ray node {socket.gethostname()} holds other artifacts "
                            f"(manifest sha256 {found[:12]}, the index's {expected_sha256[:12]}); "
                            "every node needs the same export at the same path")
        self.spec = clip_spec(self.session)
        self.window_s, self.stride_s, self.beam = window_s, stride_s, beam
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.dim = int(self.session.embed(["warm-up"]).shape[1])  # error rows carry a zero vector of this size
        self._verified: dict[str, str] = {}  # path -> sha256 this node read, hashed once per actor

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out: list[tuple[str, float, float, str, str]] = []
        vectors: list[np.ndarray] = []
        for path, sha256, windows in zip(batch[PATH], batch[SHA256], batch[WINDOWS]):
            path, wanted = str(path), [tuple(w) for w in json.loads(str(windows))]
            outcome = FileOutcome()
            captions = []
            try:
                self._check_content(path, str(sha256))
                captions = list(caption_file(self.session, Path(path), self.spec, self.window_s, self.stride_s,
                                             self.beam, outcome, only=wanted))
            except AtomError as exc:
                outcome.error = str(exc)
            if captions:
                vectors.append(self.session.embed([c.caption for c in captions]))
                out.extend((path, c.start_s, c.end_s, c.caption, "") for c in captions)
            if outcome.error is not None:
                out.append((path, float("nan"), float("nan"), "", f"{outcome.error} (Ray worker {self.worker})"))
                vectors.append(np.zeros((1, self.dim), np.float32))
        return {
            PATH: np.array([r[0] for r in out], dtype=object),
            START: np.array([r[1] for r in out], np.float64),
            END: np.array([r[2] for r in out], np.float64),
            CAPTION: np.array([r[3] for r in out], dtype=object),
            ERROR: np.array([r[4] for r in out], dtype=object),
            EMBEDDING: np.concatenate(vectors) if vectors else np.zeros((0, self.dim), np.float32),
            WORKER: np.array([self.worker] * len(out), dtype=object),
        }

    def _check_content(self, path: str, sha256: str) -> None:
        if path not in self._verified:
            try:
                self._verified[path] = content_sha256(path)
            except OSError as exc:
                raise AtomError(f"{path}: {exc.strerror or exc} on Ray node {socket.gethostname()}") from None
        if self._verified[path] != sha256:
            raise AtomError(f"{path} on Ray node {socket.gethostname()} differs from the driver's copy "
                            f"(sha256 {self._verified[path][:12]}, expected {sha256[:12]}); "
                            "every node needs the same file at the same path")
