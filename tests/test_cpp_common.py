"""Shared helpers for the C++ runner tests: build, run, compare with Python.

The session fixtures that build the runner once (host_runner, aarch64_runner) are in
conftest.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "runners" / "python"))

QEMU_ENV = {"QEMU_CPU": "cortex-a76", "QEMU_LD_PREFIX": "/usr/aarch64-linux-gnu"}
COSINE_MIN = 0.999


def build(target: str) -> Path:
    out = subprocess.run([str(REPO / "scripts" / "build_runner.sh"), target], capture_output=True, text=True)
    if out.returncode != 0:
        raise AssertionError(f"build_runner.sh {target} failed:\n{out.stderr[-4000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


def have_aarch64_tools() -> bool:
    return bool(shutil.which("aarch64-linux-gnu-g++") and shutil.which("qemu-aarch64"))


def command(binary: Path, *args: str) -> list[str]:
    """The argv for a host binary, or for an aarch64 one under qemu (CPU pinned)."""
    if "aarch64" in binary.parent.name:
        return ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", "-cpu", "cortex-a76", str(binary), *args]
    return [str(binary), *args]


def run(binary: Path, *args: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, **QEMU_ENV)
    out = subprocess.run(command(binary, *args), capture_output=True, text=True, env=env, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"atom_runner {' '.join(args)} exited {out.returncode}:\n{out.stderr[-3000:]}")
    return out


def run_json(binary: Path, *args: str) -> dict:
    return json.loads(run(binary, *args).stdout)


def write_clips(folder: Path, shape, n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"clip{i}.bin"
        rng.standard_normal(shape).astype(np.float32).tofile(path)
        paths.append(str(path))
    return paths


def python_tokens(session, clip: np.ndarray, beam: int, prompt: list[int] | None = None) -> list[int]:
    """The Python runner's decode as token ids, trimmed after EOS as the C++ runner reports them."""
    from atom_runner.decoding import trim_after_eos

    prefix = session.encode(clip) if clip is not None else None
    return trim_after_eos(session.decode_ids(prompt or [], prefix, beam), session.eos_id)


def parity_failures(cpp: dict, py: dict, cosine_min: float = COSINE_MIN) -> list[str]:
    """The parity check: captions token-for-token equal, embeddings cosine >= cosine_min.

    cpp/py: {"captions": [[ids]...], "texts": [str...], "embeddings": [n, d]}; returns what differs.
    """
    failures = []
    for i, (a, b) in enumerate(zip(cpp["captions"], py["captions"], strict=True)):
        if list(a) != list(b):
            failures.append(f"caption {i}: tokens {a} != {b}")
    for i, (a, b) in enumerate(zip(cpp.get("texts", []), py.get("texts", []), strict=True)):
        if a != b:
            failures.append(f"caption {i}: text {a!r} != {b!r}")
    if "embeddings" in cpp:
        cos = cosines(cpp["embeddings"], py["embeddings"])
        for i, c in enumerate(cos):
            if not c >= cosine_min:
                failures.append(f"embedding {i}: cosine {c:.6f} < {cosine_min}")
    return failures


def cosines(a, b) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return np.full(max(len(a), len(b)), -1.0)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
