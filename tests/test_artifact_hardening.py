"""Hostile artifacts against the Python runner (issue 19, items 1-4): only hashed files
inside the folder are opened, every manifest key is checked, and a file that is not what
its name says is a one-line error, never a traceback or a signal."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from artifact_helpers import edit_manifest, linked_copy, read_manifest, replace_file, vouch_for, write_manifest
from atom_runner.errors import AtomError
from atom_runner.manifest import load_manifest
from atom_runner.schema import MANIFEST_FILE, Key
from atom_runner.session import Session
from conftest import atom_deploy


@pytest.fixture()
def onnx_copy(tiny_exports, tmp_path):
    return linked_copy(tiny_exports["int8"] / "onnx", tmp_path / "onnx")


@pytest.fixture()
def et_copy(tiny_exports, tmp_path):
    return linked_copy(tiny_exports["int8"] / "executorch", tmp_path / "executorch")


def one_line_error(call) -> str:
    with pytest.raises(AtomError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    return message


# --- item 1: the only files opened are hashed files named by the manifest, inside the folder


def test_entry_point_must_name_a_hashed_file(onnx_copy):
    """An entry point aimed at an unlisted, modified file used to load and run unchecked."""
    evil = bytearray((onnx_copy / "video_encoder.onnx").read_bytes())
    replace_file(onnx_copy / "evil.onnx", bytes(evil))
    edit_manifest(onnx_copy, lambda d: d[Key.MODULES]["video_encoder"][Key.ENTRY_POINTS]["forward"].update({Key.FILE: "evil.onnx"}))
    message = one_line_error(lambda: Session(onnx_copy, overlap="off"))
    assert "'evil.onnx', which is not in the module's hashed files" in message


def test_tokenizer_is_opened_by_its_record_not_a_fixed_name(onnx_copy):
    """The record names the file: a garbage file under the old fixed name is never opened."""
    os.rename(onnx_copy / "decoder_tokenizer.json", onnx_copy / "tok.json")
    replace_file(onnx_copy / "decoder_tokenizer.json", b"garbage")
    edit_manifest(onnx_copy, lambda d: d[Key.TOKENIZERS]["decoder"].update({Key.FILE: "tok.json"}))
    with Session(onnx_copy, overlap="off") as s:
        assert isinstance(s.generate("caption:", steps=2), str)


def test_hashed_garbage_tokenizer_is_one_line(onnx_copy):
    replace_file(onnx_copy / "decoder_tokenizer.json", b"{not a tokenizer")
    data = read_manifest(onnx_copy)
    vouch_for(onnx_copy, data, "decoder_tokenizer.json")
    write_manifest(onnx_copy, data)
    assert "decoder_tokenizer.json could not be read" in one_line_error(lambda: Session(onnx_copy, overlap="off"))


def test_symlink_out_of_the_folder_is_refused(onnx_copy, tmp_path):
    outside = tmp_path / "outside.onnx"
    outside.write_bytes((onnx_copy / "video_encoder.onnx").read_bytes())
    (onnx_copy / "video_encoder.onnx").unlink()
    (onnx_copy / "video_encoder.onnx").symlink_to(outside)
    assert "outside the artifact folder: 'video_encoder.onnx'" in one_line_error(lambda: Session(onnx_copy, overlap="off"))


# --- item 3: every key checked, one line naming it


def manifest_only(tiny_exports, tmp_path, change):
    folder = tmp_path / "m"
    folder.mkdir()
    data = read_manifest(tiny_exports["int8"] / "onnx")
    change(data)
    write_manifest(folder, data)
    return folder


CASES = {
    "missing key": (lambda d: d[Key.DECODE].pop(Key.DIM), "decode.dim is missing"),
    "string for a number": (lambda d: d[Key.DECODE].update({Key.MAX_CONTEXT: "64"}), "decode.max_context must be an integer, got a string"),
    "object for a list": (lambda d: d[Key.MODULES]["decoder"].update({Key.FILES: {}}), "modules.decoder.files must be a list, got an object"),
    "list for an object": (lambda d: d.update({Key.CLIP: [1, 2]}), "clip must be an object, got a list"),
    "NUL in a file name": (lambda d: d[Key.MODULES]["minilm"][Key.FILES][0].update({Key.FILE: "minilm\0.onnx"}), "modules.minilm.files[0].file contains a NUL"),
    "unknown kv style": (lambda d: d[Key.MODULES]["decoder"][Key.KV_CACHE].update({Key.KV_STYLE: "paged"}), "modules.decoder.kv_cache.style is 'paged'; valid: ['in_place', 'explicit_io', 'runner_held']"),
    "MiniLM dynamic max 0": (
        lambda d: d[Key.MODULES]["minilm"][Key.ENTRY_POINTS]["forward"][Key.INPUTS][0][Key.DYNAMIC]["0"].update({Key.MAX: 0}),
        "modules.minilm.entry_points.forward.inputs[0].dynamic.0.max must be an integer in [1, ",
    ),
    "negative max_seq_length": (lambda d: d[Key.TOKENIZERS]["minilm"].update({Key.MAX_SEQ_LENGTH: -5}), "tokenizers.minilm.max_seq_length must be an integer in [1, 2147483647], got -5"),
    "absurd KV shape": (lambda d: d[Key.MODULES]["decoder"][Key.KV_CACHE].update({Key.SHAPE: [4096, 64, 64, 65536, 2048]}), "modules.decoder.kv_cache.shape [4096, 64, 64, 65536, 2048] would take 8.39e+06 GiB as float32; the limit is 16 GiB"),
    "decode dim 0": (lambda d: d[Key.DECODE].update({Key.DIM: 0}), "decode.dim must be an integer in [1, "),
    "clip shape overflow": (lambda d: d[Key.CLIP].update({Key.SHAPE: [2**31 - 1] * 5}), "clip.shape [2147483647, "),
    "bool for a number": (lambda d: d[Key.DECODE].update({Key.MAX_BATCH: True}), "decode.max_batch must be an integer, got a boolean"),
    "file outside": (lambda d: d[Key.MODULES]["minilm"][Key.ENTRY_POINTS]["forward"].update({Key.FILE: "/etc/passwd"}), "outside the artifact folder: '/etc/passwd'"),
    "unknown backend": (lambda d: d.update({Key.BACKEND: "tflite"}), "backend is 'tflite'; valid: ['executorch', 'onnx']"),
    "eos beyond vocab": (lambda d: d[Key.DECODE].update({Key.EOS_ID: 512}), "decode.eos_id must be an integer in [0, 511], got 512"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_manifest_key_errors_name_the_key(tiny_exports, tmp_path, case):
    change, expected = CASES[case]
    folder = manifest_only(tiny_exports, tmp_path, change)
    assert expected in one_line_error(lambda: load_manifest(folder))


def test_deep_nesting_is_one_line(tmp_path):
    """100k levels used to raise RecursionError out of json.loads."""
    (tmp_path / MANIFEST_FILE).write_text('{"format": "atom-deploy-manifest", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert "nested deeper than 32 levels" in one_line_error(lambda: load_manifest(tmp_path))
    (tmp_path / MANIFEST_FILE).write_text('{"format": "atom-deploy-manifest", "x": ' + "[" * 200 + "]" * 200 + "}")
    assert "nested deeper than 32 levels" in one_line_error(lambda: load_manifest(tmp_path))


def test_cli_prints_one_line_and_exits_1(tiny_exports, tmp_path):
    folder = manifest_only(tiny_exports, tmp_path, lambda d: d[Key.DECODE].update({Key.DIM: "64"}))
    result = atom_deploy("embed", "--artifacts", str(folder), "a dog")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"atom-deploy embed: error: {folder / MANIFEST_FILE}: decode.dim must be an integer, got a string"
    ]


# --- encoder and decoder from different models, caught when the Session is built


def test_manifest_whose_encoder_and_decoder_dims_differ(onnx_copy):
    edit_manifest(onnx_copy, lambda d: d[Key.MODULES]["video_encoder"][Key.ENTRY_POINTS]["forward"][Key.OUTPUTS][0].update({Key.SHAPE: [1, 13, 32]}))
    assert "video_encoder output dim is 32, but decode.dim is 64" in one_line_error(lambda: Session(onnx_copy, overlap="off"))


def other_encoder(path, dim: int) -> None:
    """A small ONNX video encoder of another model: clip [1,3,6,32,32] -> [1,13,dim]."""
    weight = numpy_helper.from_array(np.ones((3, 13 * dim), np.float32), "w")
    shape = numpy_helper.from_array(np.array([1, 13, dim], np.int64), "s")
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["clip"], ["m"], axes=[2, 3, 4], keepdims=0),
         helper.make_node("MatMul", ["m", "w"], ["f"]),
         helper.make_node("Reshape", ["f", "s"], ["visual_prefix"])],
        "other", [helper.make_tensor_value_info("clip", TensorProto.FLOAT, [1, 3, 6, 32, 32])],
        [helper.make_tensor_value_info("visual_prefix", TensorProto.FLOAT, [1, 13, dim])], [weight, shape],
    )
    replace_file(path, helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())


def test_encoder_file_from_another_model_is_refused_at_build(onnx_copy):
    """Hash recomputed, manifest shapes untouched: the file's own shapes give it away
    (it used to fail later, mid-caption, with a reshape error)."""
    other_encoder(onnx_copy / "video_encoder.onnx", dim=32)
    data = read_manifest(onnx_copy)
    vouch_for(onnx_copy, data, "video_encoder.onnx")
    write_manifest(onnx_copy, data)
    message = one_line_error(lambda: Session(onnx_copy, overlap="off"))
    assert "video_encoder forward output 'visual_prefix' has shape [1, 13, 32] in its file, the manifest says [1, 13, 64]" in message


# --- item 4: a hash-matching file that is not a program


@pytest.mark.parametrize("content", [os.urandom(4096), b""], ids=["random", "empty"])
def test_executorch_non_program_is_one_line_not_sigabrt(et_copy, content):
    """Random bytes used to abort the whole process inside the bindings' log callback.
    Run through the CLI: an abort would take pytest down with it."""
    replace_file(et_copy / "video_encoder.pte", content)
    data = read_manifest(et_copy)
    vouch_for(et_copy, data, "video_encoder.pte")
    write_manifest(et_copy, data)
    result = atom_deploy("embed", "--artifacts", str(et_copy), "a dog")
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        "atom-deploy embed: error: video_encoder.pte is not an ExecuTorch program (no ET12 header)"
    ]


def test_onnx_non_model_is_one_line(onnx_copy):
    replace_file(onnx_copy / "video_encoder.onnx", os.urandom(4096))
    data = read_manifest(onnx_copy)
    vouch_for(onnx_copy, data, "video_encoder.onnx")
    write_manifest(onnx_copy, data)
    assert "ONNX Runtime could not load video_encoder.onnx" in one_line_error(lambda: Session(onnx_copy, overlap="off"))


def test_intact_linked_copies_still_load(onnx_copy):
    with Session(onnx_copy, overlap="off") as s:
        assert s.embed(["a dog"]).shape == (1, 384)
    assert hashlib.sha256((onnx_copy / "minilm.onnx").read_bytes()).hexdigest() == read_manifest(onnx_copy)[Key.MODULES]["minilm"][Key.FILES][0][Key.SHA256]
