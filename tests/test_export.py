"""atom-deploy export / inspect / parity on the tiny preset, through the real CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from atom_deploy.parity.run import QUANT_TEACHER_FORCED_AGREEMENT
from atom_runner.manifest import load_manifest, sha256_file
from atom_runner.schema import MANIFEST_FILE, TOKENIZER_FILES, DecoderRole, Entry, Key, KVStyle, Module
from conftest import atom_deploy

EXPECTED_FILES = {
    "executorch": {"video_encoder.pte", "decoder.pte", "minilm.pte"},
    "onnx": {"video_encoder.onnx", "decoder.token_embedding.onnx", "decoder.text_decoder.onnx", "minilm.onnx"},
}


@pytest.mark.parametrize("backend", ["executorch", "onnx"])
def test_every_module_is_a_separate_artifact_with_a_verified_manifest(tiny_exports, backend):
    folder = tiny_exports["int8"] / backend
    manifest = load_manifest(folder)
    names = {p.name for p in folder.iterdir()}
    assert EXPECTED_FILES[backend] <= names
    assert set(TOKENIZER_FILES.values()) <= names
    assert set(manifest.data[Key.MODULES]) == set(Module.ALL)
    for name in Module.ALL:
        module = manifest.module(name)
        for record in module[Key.FILES]:
            path = folder / record[Key.FILE]
            assert record[Key.SHA256] == sha256_file(path)
            assert record[Key.BYTES] == path.stat().st_size > 0
        assert module[Key.QUANTIZATION]["mode"] == "int8"
        assert "per output channel" in module[Key.QUANTIZATION]["linear"]["weights"]
        assert "per row" in module[Key.QUANTIZATION]["embedding"]["weights"]
    decode = manifest.decode
    assert decode[Key.DECODE_STEPS] == 23
    assert (decode[Key.BOS_ID], decode[Key.EOS_ID], decode[Key.PAD_ID]) == (1, 2, 0)
    assert decode[Key.MAX_CONTEXT] >= 1 + decode[Key.NUM_VISUAL_TOKENS] + 23
    versions = manifest.data[Key.VERSIONS]
    assert versions["torch"].startswith("2.13") and versions["executorch"] == "1.5.1"
    assert {"onnx", "onnxruntime"} <= set(versions)


def test_manifest_describes_entry_points_and_dynamic_dims(tiny_exports):
    et = load_manifest(tiny_exports["int8"] / "executorch")
    onnx = load_manifest(tiny_exports["int8"] / "onnx")
    step = et.module(Module.DECODER)[Key.ENTRY_POINTS][Entry.TEXT_DECODER]
    assert [t[Key.NAME] for t in step[Key.INPUTS]] == ["embeds", "input_pos", "cache_index", "reorder_pos", "attend_pos"]
    assert step[Key.INPUTS][0][Key.DYNAMIC]["1"][Key.NAME] == "seq"
    assert step[Key.OUTPUTS][0][Key.SHAPE][0] == "batch"
    assert et.module(Module.DECODER)[Key.KV_CACHE][Key.KV_STYLE] == KVStyle.IN_PLACE
    onnx_step = onnx.module(Module.DECODER)[Key.ENTRY_POINTS][Entry.TEXT_DECODER]
    layers = onnx.module(Module.DECODER)[Key.KV_CACHE][Key.SHAPE][0]
    assert [t[Key.NAME] for t in onnx_step[Key.INPUTS]] == ["embeds", "input_pos"] + [
        f"{side}_{i}" for i in range(layers) for side in ("k_cache", "v_cache")]
    assert [t[Key.NAME] for t in onnx_step[Key.OUTPUTS]] == ["logits", "k_new", "v_new"]
    assert onnx.module(Module.DECODER)[Key.KV_CACHE][Key.KV_STYLE] == KVStyle.RUNNER_HELD
    enc = et.module(Module.VIDEO_ENCODER)[Key.ENTRY_POINTS][Entry.FORWARD]
    assert enc[Key.INPUTS][0][Key.SHAPE] == [1, 3, 6, 32, 32]
    assert enc[Key.OUTPUTS][0][Key.SHAPE] == [1, et.decode[Key.NUM_VISUAL_TOKENS], et.decode[Key.DIM]]


def test_executorch_programs_carry_metadata_as_constant_methods(tiny_exports):
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(str(tiny_exports["int8"] / "executorch" / "decoder.pte"))
    assert {"token_embedding", "text_decoder", "get_vocab_size", "get_dim"} <= set(program.method_names)
    assert int(program.load_method("get_vocab_size").execute([])[0]) == 512


def test_int8_artifacts_are_smaller_than_fp32(tiny_exports):
    for backend in ("executorch", "onnx"):
        for name in ("minilm.pte", "minilm.onnx"):
            int8, fp32 = tiny_exports["int8"] / backend / name, tiny_exports["fp32"] / backend / name
            if int8.exists():
                assert int8.stat().st_size < 0.4 * fp32.stat().st_size


def test_onnx_int8_graphs_use_integer_matmul(tiny_exports):
    import onnx

    graph = onnx.load(str(tiny_exports["int8"] / "onnx" / "decoder.text_decoder.onnx")).graph
    ops = [n.op_type for n in graph.node]
    # 7 Linear per layer, 4 kernels once the export fuses q/k/v and gate/up (models/fused_linear.py), + lm_head
    assert ops.count("MatMulInteger") == 2 * 4 + 1
    weights = {i.name: i for i in graph.initializer}
    integer_matmuls = [n for n in graph.node if n.op_type == "MatMulInteger"]
    # int8 weights stored offset by 128 with a zero point (the fast, non-saturating u8 x u8 path)
    assert all(weights[n.input[1]].data_type == onnx.TensorProto.UINT8 and n.input[3] for n in integer_matmuls)
    assert not any(i.data_type == onnx.TensorProto.FLOAT and len(i.dims) == 2 and i.dims[0] * i.dims[1] > 4096 for i in graph.initializer)


@pytest.mark.parametrize("mode", ["int8", "fp32"])
def test_parity_passes_on_tiny_exports(tiny_exports, mode, tmp_path):
    """The one parity run on each tiny export: the README's `parity artifacts` (int8) and the
    every-artifact CLI check rely on it (tests/test_readme.py, tests/test_cli_every_artifact.py)."""
    result = atom_deploy("parity", str(tiny_exports[mode]), "--json", str(tmp_path / "parity.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "teacher-forced agreement" in result.stdout
    rows = json.loads((tmp_path / "parity.json").read_text())
    runs = {r["run"] for r in rows}
    assert {f"executorch {mode}", f"onnx {mode}"} <= runs
    decoder_rows = [
        r for r in rows
        if r["module"] == Module.DECODER and r["reference"] == f"eager {mode}" and not r["run"].startswith("eager")
    ]
    assert decoder_rows and all(r["passed"] for r in rows)
    if mode == "int8":  # sound int8 exports pass the LM gates (a doctored one fails: test_lm_fidelity.py)
        # the tiny model is a captioner: its tokens stay gated against eager int8 beside the LM rows
        forced = [r for r in decoder_rows if r["metric"] == "teacher-forced agreement"]
        assert len(forced) == 2 and all(r["threshold"] == QUANT_TEACHER_FORCED_AGREEMENT for r in forced)
        gated = {(r["run"], r["metric"]) for r in rows if r["metric"].startswith("LM ") and r["threshold"] is not None}
        assert {(f"{b} int8", m) for b in ("executorch", "onnx") for m in
                ("LM top-1 agreement", "LM mean KL", "LM p99 KL", "LM perplexity ratio")} == gated
    if mode == "fp32":
        # fp32 backends reproduce eager tokens exactly, greedy and teacher-forced.
        assert all(r["value"] == 1.0 and r["first_divergence"] is None for r in decoder_rows)
        assert all(r["value"] <= 1e-4 for r in rows if r["metric"] == "rel max-abs")


def test_a_quantized_decoders_token_gate_follows_what_the_decoder_is():
    """A captioner's tokens are always gated; a language model's are reported where its LM
    rows gate it, and gated where nothing else would (no LM tokens, a recipe without bounds)."""
    from atom_deploy.parity.run import quantized_token_gate

    lm_tokens = 2048
    assert quantized_token_gate(DecoderRole.CAPTIONER, "int8", lm_tokens) == QUANT_TEACHER_FORCED_AGREEMENT
    assert quantized_token_gate(DecoderRole.CAPTIONER, "8da4w", lm_tokens) == QUANT_TEACHER_FORCED_AGREEMENT
    assert quantized_token_gate(DecoderRole.LANGUAGE_MODEL, "int8", lm_tokens) is None
    assert quantized_token_gate(DecoderRole.LANGUAGE_MODEL, "int8", 0) == QUANT_TEACHER_FORCED_AGREEMENT
    assert quantized_token_gate(DecoderRole.LANGUAGE_MODEL, "8da4w", lm_tokens) == QUANT_TEACHER_FORCED_AGREEMENT


def test_the_decoder_role_comes_from_the_model_source():
    from atom_deploy.model_source import resolve_model

    assert resolve_model("tiny").decoder_role == DecoderRole.CAPTIONER
    # HF and GGUF imports: tests/test_checkpoint_conventions.py and tests/test_smollm2.py


def test_parity_refuses_an_unknown_decoder_role(tiny_exports, tmp_path):
    from artifact_helpers import edit_manifest, linked_copy

    folder = linked_copy(tiny_exports["int8"] / "onnx", tmp_path / "onnx")
    edit_manifest(folder, lambda d: d[Key.MODEL].update({Key.DECODER_ROLE: "chatbot"}))
    result = atom_deploy("parity", str(folder))
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "model.decoder_role is 'chatbot'; valid: ['captioner', 'language_model']" in result.stderr


def test_parity_fails_when_artifacts_do_not_match_the_model(tiny_exports, tmp_path):
    # Same files, but the manifest now claims another seed: eager weights differ, so
    # tokens and embeddings must disagree and the command must exit non-zero.
    copy = tmp_path / "executorch"
    shutil.copytree(tiny_exports["fp32"] / "executorch", copy)
    data = json.loads((copy / MANIFEST_FILE).read_text())
    data[Key.MODEL][Key.SEED] = 99
    (copy / MANIFEST_FILE).write_text(json.dumps(data))
    result = atom_deploy("parity", str(copy))
    assert result.returncode == 1
    rows = json.loads((copy / "parity.json").read_text())
    assert any(not r["passed"] and r["module"] == Module.DECODER for r in rows)


def test_inspect_prints_the_manifest(tiny_exports):
    result = atom_deploy("inspect", str(tiny_exports["int8"] / "onnx"), check=True)
    assert "decoder.text_decoder.onnx" in result.stdout
    assert "decode_steps=23" in result.stdout
    assert "k_cache_i, v_cache_i (i < 2):float32[batch,2,context,16]" in result.stdout


def test_export_embeds_tokenizers_that_round_trip(tiny_exports):
    from tokenizers import Tokenizer

    folder = tiny_exports["int8"] / "executorch"
    decoder_tok = Tokenizer.from_file(str(folder / TOKENIZER_FILES["decoder"]))
    text = "a small red square moves left — ünïcödé 東京"
    assert decoder_tok.decode(decoder_tok.encode(text).ids) == text
    assert max(decoder_tok.encode(text).ids) < 512
    minilm_tok = Tokenizer.from_file(str(folder / TOKENIZER_FILES["minilm"]))
    assert minilm_tok.encode("hello world").ids[0] == 101  # [CLS]


def test_exported_encoder_runs_in_both_runtimes_on_the_same_input(tiny_exports):
    from atom_runner.runtimes import load_module

    clip = np.random.default_rng(0).standard_normal((1, 3, 6, 32, 32)).astype(np.float32)
    outs = []
    for backend, name in (("executorch", "video_encoder.pte"), ("onnx", "video_encoder.onnx")):
        module = load_module(backend, {Entry.FORWARD: tiny_exports["fp32"] / backend / name})
        outs.append(module.run(Entry.FORWARD, [clip])[0])
    assert outs[0].shape == outs[1].shape
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-5)
