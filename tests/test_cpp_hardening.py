"""Hostile artifacts against the C++ runner (issue 19, items 1-2): no signal from any
manifest, every key range-checked and named, and only hashed files inside the folder opened."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from artifact_helpers import edit_manifest, linked_copy, read_manifest, replace_file, vouch_for, write_manifest
from atom_runner.schema import MANIFEST_FILE, Key
from test_cpp_common import run


@pytest.fixture()
def art(tiny_exports, tmp_path):
    return linked_copy(tiny_exports["int8"] / "executorch", tmp_path / "art")


@pytest.fixture()
def clip(tmp_path):
    path = tmp_path / "clip.bin"
    np.zeros((1, 3, 6, 32, 32), np.float32).tofile(path)
    return str(path)


def one_line_failure(binary, *args) -> str:
    out = run(binary, *args, check=False, timeout=120)
    assert out.returncode == 1, f"exit {out.returncode} ({_signal(out.returncode)}): {out.stderr[-2000:]}"
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


def _signal(code: int) -> str:
    return signal.Signals(-code).name if code < 0 else "no signal"


def test_deep_nesting_is_one_line_not_sigsegv(host_runner, art):
    (art / MANIFEST_FILE).write_text('{"format": "atom-deploy-manifest", "x": ' + "[" * 200_000 + "]" * 200_000 + "}")
    assert "nested deeper than 32 levels" in one_line_failure(host_runner, "generate", "--artifacts", str(art), "x")


def test_decode_dim_zero_is_one_line_not_sigfpe(host_runner, art):
    edit_manifest(art, lambda d: d[Key.DECODE].update({Key.DIM: 0}))
    line = one_line_failure(host_runner, "generate", "--artifacts", str(art), "--steps", "2", "x")
    assert "decode.dim must be an integer in [1, 2147483647], got 0" in line


@pytest.mark.parametrize("shape, expected", [
    ([-1, -3, 6, 32, 32], "clip.shape[0] must be an integer in [1, 2147483647], got -1"),  # product wraps to the file's size
    ([2**31 - 1] * 5, "clip.shape would take more than 16 GiB"),
])
def test_clip_shape_overflow_is_one_line_not_abort(host_runner, art, clip, shape, expected):
    edit_manifest(art, lambda d: d[Key.CLIP].update({Key.SHAPE: shape}))
    assert expected in one_line_failure(host_runner, "caption", "--artifacts", str(art), clip)


def test_type_errors_name_their_key(host_runner, art):
    edit_manifest(art, lambda d: d[Key.DECODE].update({Key.MAX_CONTEXT: "64"}))
    assert "decode.max_context must be an integer, got a string" in one_line_failure(host_runner, "generate", "--artifacts", str(art), "x")
    edit_manifest(art, lambda d: d[Key.DECODE].update({Key.MAX_CONTEXT: 64}) or d[Key.MODULES]["decoder"].update({Key.FILES: {}}))
    assert "modules.decoder.files must be a list, got an object" in one_line_failure(host_runner, "generate", "--artifacts", str(art), "x")


def test_symlink_out_of_the_folder_is_refused(host_runner, art, tmp_path):
    outside = tmp_path / "outside.pte"
    outside.write_bytes((art / "video_encoder.pte").read_bytes())
    (art / "video_encoder.pte").unlink()
    os.symlink(outside, art / "video_encoder.pte")
    line = one_line_failure(host_runner, "generate", "--artifacts", str(art), "x")
    assert "outside the artifact folder: video_encoder.pte" in line


def test_entry_point_must_name_a_hashed_file(host_runner, art):
    os.link(art / "video_encoder.pte", art / "unlisted.pte")
    edit_manifest(art, lambda d: d[Key.MODULES]["video_encoder"][Key.ENTRY_POINTS]["forward"].update({Key.FILE: "unlisted.pte"}))
    line = one_line_failure(host_runner, "generate", "--artifacts", str(art), "x")
    assert "modules.video_encoder.entry_points.forward.file names \"unlisted.pte\", which is not in the module's hashed files" in line


@pytest.mark.parametrize("content", [os.urandom(4096), b"short"], ids=["random", "short"])
def test_hashed_non_program_is_one_line(host_runner, art, content):
    replace_file(art / "decoder.pte", content)
    data = read_manifest(art)
    vouch_for(art, data, "decoder.pte")
    write_manifest(art, data)
    assert "not an ExecuTorch program (no ET12 header)" in one_line_failure(host_runner, "generate", "--artifacts", str(art), "x")


def test_hashed_garbage_tokenizer_is_one_line(host_runner, art):
    replace_file(art / "decoder_tokenizer.json", b'{"model": {"type": "BPE", "vocab": {"a": -4}}}')
    data = read_manifest(art)
    vouch_for(art, data, "decoder_tokenizer.json")
    write_manifest(art, data)
    assert "decoder_tokenizer.json could not be read" in one_line_failure(host_runner, "generate", "--artifacts", str(art), "x")


def test_intact_linked_copy_runs(host_runner, art, clip):
    assert run(host_runner, "caption", "--artifacts", str(art), "--beam", "1", clip).returncode == 0
