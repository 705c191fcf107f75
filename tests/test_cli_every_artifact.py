"""Every CLI command (export aside) on every shipped artifact kind: ExecuTorch and ONNX, int8
and fp32 (issue 23 item 4). Each must exit 0 and print what it promises.

`latency` once failed on every ExecuTorch folder (its worker sent MiniLM a batch of 32 while
exports cap it at 16) and no test ran it there; this file is the net for that kind of slip.
Kept cheap: tiny exports, 1-2 repeats, a 10 s demo video, one index per artifact kind.
`device` runs through the adb stand-in in tests/test_device.py, `train-demo` in
tests/test_demo_model.py, `bench` (both variants over many clips) in tests/test_bench.py.
`parity` on each tiny export runs once, in tests/test_export.py, and `eval` on the int8 and
fp32 exports (every row, both backends) in tests/test_eval.py: each is a minute or more, and
running the same command here again bought no coverage.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import atom_deploy

pytestmark = pytest.mark.slow

KINDS = [(quant, backend) for quant in ("int8", "fp32") for backend in ("executorch", "onnx")]


@pytest.fixture(scope="module")
def inputs(tiny_exports, tmp_path_factory):
    """demo.mp4 (two 10 s scenes of the demo world) and clip.npy at the tiny export's clip shape."""
    folder = tmp_path_factory.mktemp("inputs")
    made = subprocess.run([sys.executable, "-m", "atom_deploy.demo", str(folder), "--artifacts", str(tiny_exports["int8"]),
                           "--scenes", "2"], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-2000:]
    assert np.load(folder / "clip.npy").shape == (1, 3, 6, 32, 32)
    return folder


def ok(*args: str) -> str:
    result = atom_deploy(*args, check=True, timeout=900)
    assert result.stdout.strip(), f"atom-deploy {' '.join(args)} printed nothing"
    return result.stdout


@pytest.mark.parametrize("quant, backend", KINDS)
def test_runner_commands(tiny_exports, inputs, tmp_path, quant, backend):
    art = str(tiny_exports[quant] / backend)
    assert f"backend     {backend}" in ok("inspect", art)
    embedded = [json.loads(line) for line in ok("embed", "--artifacts", art, "--json", "a red car", "a dog").splitlines()]
    assert [len(e["embedding"]) for e in embedded] == [384, 384]
    assert json.loads(ok("generate", "--artifacts", art, "--json", "--steps", "4", "summary:"))["prompt"] == "summary:"
    assert ok("caption", "--artifacts", art, "--beam", "2", str(inputs / "clip.npy"))
    assert ok("latency", art, "--repeat", "1", "--no-eager", "--out", str(tmp_path / "lat.json"))
    assert json.loads((tmp_path / "lat.json").read_text())
    assert ok("overlap", "--artifacts", art, "--clips", "2", "--beam", "2", "--out", str(tmp_path / "overlap.json"))
    if backend == "executorch":  # ETDump is ExecuTorch's own profiler
        assert ok("profile", art, "--steps", "2", "--out", str(tmp_path / "profile.json"))


@pytest.mark.parametrize("quant, backend", KINDS)
def test_pipeline_commands(tiny_exports, inputs, tmp_path, quant, backend):
    art = str(tiny_exports[quant] / backend)
    video = str(inputs / "demo.mp4")
    index = str(tmp_path / "clips.db")
    common = ("--artifacts", art, "--index", index, "--no-progress")
    assert ok("index", *common, video)
    assert ok("search", "--artifacts", art, "--index", index, "-k", "1", "a red shape")
    assert ok("summarize", *common, video)
    assert ok("ask", *common, video, "how many clips show a red object?")
    ok("assemble", *common, "-k", "1", "--size", "64x36", "-o", str(tmp_path / "reel.mp4"), "a red shape", video)
    assert (tmp_path / "reel.mp4").stat().st_size > 0
