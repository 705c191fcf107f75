"""What reaches the terminal: only what the user can act on; toolchain warnings and runtime
log lines only with --verbose (ATOM_VERBOSE=1). The lines checked here are real ones: torch's
ONNX exporter warning 'torchvision is not installed', and ONNX Runtime's red error line."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from atom_runner.errors import AtomError
from atom_runner.runtimes.onnxruntime import OnnxModule
from atom_runner.runtimes.quiet import VERBOSE_ENV

# The real CLI, with ONNX lowering replaced by one that does what torch.onnx does first
# (build its op registry, which logs the torchvision warnings) and then fails. The
# replacement is put in place when the export command runs, so torch is first imported
# where a real run imports it.
EXPORT_DRIVER = """
import sys
from atom_deploy.cli import export_cmd, main

def lowering_that_warns_then_fails(self, module, out_dir, mode):
    from torch.onnx._internal.exporter import _registration
    _registration.ONNXRegistry.from_torchlib()
    raise RuntimeError("simulated lowering failure")

def run(args, real_run=export_cmd.run):
    from atom_deploy.backends.onnx import OnnxBackend
    OnnxBackend.export = lowering_that_warns_then_fails
    return real_run(args)

export_cmd.run = run
sys.exit(main(sys.argv[1:]))
"""


def export(tmp_path, *extra: str) -> subprocess.CompletedProcess:
    args = ["export", "--model", "tiny", "--backend", "onnx", "--out", str(tmp_path / "out"), *extra]
    env = {k: v for k, v in os.environ.items() if k != VERBOSE_ENV}
    return subprocess.run([sys.executable, "-c", EXPORT_DRIVER, *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_a_failed_export_shows_one_line_and_verbose_shows_the_toolchain(tmp_path):
    quiet = export(tmp_path)
    assert quiet.returncode == 1
    assert quiet.stderr.splitlines() == [
        "atom-deploy export: error: export failed: module video_encoder, backend onnx, stage lower: simulated lowering failure"
    ]
    loud = export(tmp_path, "--verbose")
    assert loud.returncode == 1 and "torchvision is not installed" in loud.stderr
    assert loud.stderr.splitlines()[-1] == quiet.stderr.splitlines()[0]


@pytest.fixture()
def reshape_model(tmp_path):
    """x [n] reshaped to the shape it is given: a wrong shape fails inside ONNX Runtime's run."""
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])], "reshape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"]),
         helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    path = tmp_path / "reshape.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


@pytest.mark.parametrize("verbose", [False, True])
def test_onnx_runtime_error_lines_only_with_verbose(reshape_model, capfd, monkeypatch, verbose):
    if verbose:
        monkeypatch.setenv(VERBOSE_ENV, "1")
    else:
        monkeypatch.delenv(VERBOSE_ENV, raising=False)
    module = OnnxModule({"forward": reshape_model})
    with pytest.raises(AtomError, match="ONNX Runtime entry 'forward' failed"):
        module.run("forward", [np.zeros(6, np.float32), np.array([4, 4], np.int64)])
    logged = "onnxruntime" in capfd.readouterr().err  # written by ONNX Runtime's C++ to descriptor 2
    assert logged == verbose
