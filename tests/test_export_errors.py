"""Bad input to `atom-deploy export`: one line naming the problem, non-zero exit, nothing half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from atom_deploy.config import preset
from atom_deploy.export.pipeline import ExportRequest, run_export
from atom_deploy.model import build_model
from atom_deploy.model_source import KIT_CONFIG, KIT_WEIGHTS
from atom_deploy.weights.kit import save_kit_weights
from atom_runner.errors import AtomError
from conftest import atom_deploy


def assert_one_line_error(result, *needles: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("atom-deploy")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_unknown_backend(tmp_path):
    result = atom_deploy("export", "--backend", "tflite", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "unknown backend 'tflite'", "executorch", "onnx")


def test_unknown_model(tmp_path):
    result = atom_deploy("export", "--model", "gpt5", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "unknown model 'gpt5'", "mplug2plus", "tiny")


def test_unknown_quantization(tmp_path):
    assert_one_line_error(atom_deploy("export", "--quant", "int4", "--out", str(tmp_path)), "int4", "int8")


def test_existing_output_needs_force(tmp_path):
    (tmp_path / "onnx").mkdir()
    result = atom_deploy("export", "--backend", "onnx", "--out", str(tmp_path))
    assert_one_line_error(result, "already exists", "--force")


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = atom_deploy("export", "--backend", "onnx", "--out", str(blocker / "out"))
    assert_one_line_error(result, "cannot create output folder")


def test_decode_steps_that_do_not_fit_the_context(tmp_path):
    result = atom_deploy("export", "--decode-steps", "500", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "max_context")


def test_failing_module_names_module_backend_and_stage_and_leaves_nothing(tmp_path, monkeypatch):
    from atom_deploy.backends.onnx import OnnxBackend

    def broken(self, module, out_dir, mode):
        raise RuntimeError("simulated lowering failure\nsecond line")

    monkeypatch.setattr(OnnxBackend, "export", broken)
    request = ExportRequest(model="tiny", backends=("onnx",), out=tmp_path, modules=("video_encoder",))
    with pytest.raises(AtomError, match="module video_encoder, backend onnx, stage lower: simulated lowering failure$"):
        run_export(request, progress=lambda _: None)
    assert list(tmp_path.iterdir()) == []  # no OUT/onnx, no staging folder


def _kit_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    config = preset("tiny")
    (folder / KIT_CONFIG).write_text(json.dumps(config.to_dict()))
    save_kit_weights(build_model(config, seed=5), folder / KIT_WEIGHTS)
    return folder


def test_weight_folder_with_a_missing_tensor_names_it(tmp_path):
    folder = _kit_folder(tmp_path)
    tensors = load_file(str(folder / KIT_WEIGHTS))
    del tensors["decoder.layers.1.mlp.up_proj.weight"]
    save_file(tensors, str(folder / KIT_WEIGHTS))
    result = atom_deploy("export", "--model", str(folder), "--backend", "onnx", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "missing tensor", "layers.1.mlp.up_proj.weight")


def test_weight_folder_with_a_wrong_shape_names_it(tmp_path):
    folder = _kit_folder(tmp_path)
    tensors = load_file(str(folder / KIT_WEIGHTS))
    tensors["video_encoder.projector.weight"] = tensors["video_encoder.projector.weight"][:, :10].contiguous()
    save_file(tensors, str(folder / KIT_WEIGHTS))
    result = atom_deploy("export", "--model", str(folder), "--backend", "onnx", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "projector.weight", "shape")


def test_kit_config_with_an_unknown_key_is_an_error(tmp_path):
    folder = _kit_folder(tmp_path)
    data = json.loads((folder / KIT_CONFIG).read_text())
    data["decoder"]["n_layer"] = 3
    (folder / KIT_CONFIG).write_text(json.dumps(data))
    result = atom_deploy("export", "--model", str(folder), "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "unknown decoder config key", "n_layer")
