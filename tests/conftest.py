"""Shared fixtures: one tiny export per quantization mode, made once per test session.

The int8 and fp32 exports run as two concurrent `atom-deploy export` processes: the real
CLI, and on two cores about half the wall time of running them in turn.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
VIDEOS = SHARED / "data" / "videos"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def atom_deploy(*args: str, check: bool = False, **kwargs) -> subprocess.CompletedProcess:
    """Run the CLI as a user would, in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-m", "atom_deploy", *args], capture_output=True, text=True, **kwargs
    )
    if check and result.returncode != 0:
        raise AssertionError(f"atom-deploy {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def tiny_exports(tmp_path_factory) -> dict[str, Path]:
    """{'int8': OUT, 'fp32': OUT}, each with executorch/ and onnx/ subfolders."""
    root = tmp_path_factory.mktemp("exports")
    outs = {mode: root / mode for mode in ("int8", "fp32")}
    procs = {
        mode: subprocess.Popen(
            [sys.executable, "-m", "atom_deploy", "export", "--model", "tiny", "--backend", "all",
             "--quant", mode, "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for mode, out in outs.items()
    }
    for mode, proc in procs.items():
        output, _ = proc.communicate(timeout=1200)
        if proc.returncode != 0:
            raise AssertionError(f"tiny {mode} export failed:\n{output[-4000:]}")
    return outs
