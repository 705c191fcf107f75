"""8da4w: int4 grouped Linear weights and int8 per-token activations, in both backends.

One Linear runs through the real ExecuTorch runtime (XNNPACK's qd8-f32-qb4w GEMM) and
through the ONNX rewrite (backends/onnx_int4.py), which must give the same floats; a wrong
group size must make that check fail. Then a tiny export with --quant 8da4w on both
backends: the manifest's record, file sizes against int8, and parity.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from atom_deploy.backends.onnx_int4 import BIAS_ROUNDINGS, quantize_matmuls_8da4w, quantize_weight_int4
from atom_deploy.backends.onnx_nbits import quantize_matmuls_nbits, unpack_codes
from atom_deploy.backends.xnnpack_probe import xnnpack_bias_rounding
from atom_deploy.export.quantize import DEFAULT_GROUP_SIZE, QuantRecipe, quantize_linears_torchao
from atom_runner.errors import AtomError
from atom_runner.manifest import load_manifest
from atom_runner.schema import Key, Module
from conftest import atom_deploy
from test_onnx_int8 import activations, linear, run_executorch, run_onnx

GROUP = 32
RECIPE = QuantRecipe("8da4w", GROUP)


def onnx_8da4w(group: int, bias_rounding: str | None = None):
    rounding = bias_rounding or xnnpack_bias_rounding()  # what this machine's XNNPACK kernel does
    return lambda model: quantize_matmuls_8da4w(model, group, rounding)


def test_recipe_checks_its_group_size():
    assert QuantRecipe("8da4w").group_size == DEFAULT_GROUP_SIZE == 32
    assert QuantRecipe("8da4w", 64).linear_group(96) is None  # 96 inputs: the int8 fallback
    assert QuantRecipe("8da4w", 32).linear_group(96) == 32
    for bad in (0, 48, -32):
        with pytest.raises(AtomError, match="multiple of 32"):
            QuantRecipe("8da4w", bad)
    with pytest.raises(AtomError, match="8da4w only"):
        QuantRecipe("int8", 32)
    with pytest.raises(AtomError, match="valid"):
        QuantRecipe("int4")


def test_weights_map_to_torchaos_integers_and_bf16_scales():
    for seed in range(3):
        layer = linear(seed, False)
        w_q, scale = quantize_weight_int4(layer.weight.detach().numpy().T, GROUP)
        model = nn.Sequential(layer)
        quantize_linears_torchao(model, RECIPE)
        weight = model[0].weight
        assert weight.scale.dtype == torch.bfloat16  # what XNNPACK stores
        np.testing.assert_array_equal(w_q.T, weight.qdata.numpy())
        np.testing.assert_array_equal(scale.T, weight.scale.float().numpy())
        assert w_q.min() >= -8 and w_q.max() <= 7


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("tokens", [16, 1])
def test_onnx_8da4w_linear_equals_executorch_8da4w(tmp_path, bias, tokens):
    for seed in range(3):
        layer, x = linear(seed, bias), activations(seed)[:, -tokens:]
        expected = run_executorch(layer, x, tmp_path, RECIPE)
        np.testing.assert_array_equal(run_onnx(layer, x, onnx_8da4w(GROUP)), expected)


def test_the_other_bias_rounding_fails_the_equality(tmp_path):
    # The probe's choice matters: with the other rounding, biased outputs differ from ExecuTorch's.
    other = next(r for r in BIAS_ROUNDINGS if r != xnnpack_bias_rounding())
    layer, x = linear(0, True), activations(0)
    expected = run_executorch(layer, x, tmp_path, RECIPE)
    assert not np.array_equal(run_onnx(layer, x, onnx_8da4w(GROUP, other)), expected)
    layer.bias = None  # and without a bias the two graphs are the same
    np.testing.assert_array_equal(run_onnx(layer, x, onnx_8da4w(GROUP, other)), run_executorch(layer, x, tmp_path, RECIPE))


def test_a_wrong_group_size_fails_the_equality(tmp_path):
    # The check above has teeth: ONNX at group 96 (one scale per column) against ExecuTorch at 32.
    layer, x = linear(0, True), activations(0)
    expected = run_executorch(layer, x, tmp_path, RECIPE)
    wrong = run_onnx(layer, x, onnx_8da4w(96))
    assert not np.array_equal(wrong, expected)
    assert np.abs(wrong - expected).max() > 1e-2
    # and int4 is not int8: the 8da4w outputs are not the int8 ones
    assert np.abs(run_executorch(layer, x, tmp_path) - expected).max() > 1e-2


def test_matmulnbits_holds_torchaos_integers_in_its_nibble_order():
    import onnx
    from onnx import numpy_helper

    layer = linear(0, True)
    w = layer.weight.detach().numpy().T  # [K, N]
    w_q, scale = quantize_weight_int4(w, GROUP)
    with torch.no_grad():
        model = torch.onnx.export(layer, (activations(0),), input_names=["x"], output_names=["y"],
                                  dynamo=True, verbose=False).model_proto
    assert quantize_matmuls_nbits(model, RECIPE) == 1
    node = next(n for n in model.graph.node if n.op_type == "MatMulNBits")
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    packed, scales = inits[node.input[1]], inits[node.input[2]]
    assert packed.shape == (w.shape[1], w.shape[0] // GROUP, GROUP // 2) and packed.dtype == np.uint8
    # MatMulNBits' own layout, read independently of pack_codes: byte j of block b of output n
    # holds inputs b*G + 2j (low nibble) and b*G + 2j + 1 (high), as int4 + 8
    low, high = (packed & 0x0F).astype(np.int16) - 8, (packed >> 4).astype(np.int16) - 8
    np.testing.assert_array_equal(low.reshape(w.shape[1], -1), w_q.T[:, 0::2])
    np.testing.assert_array_equal(high.reshape(w.shape[1], -1), w_q.T[:, 1::2])
    np.testing.assert_array_equal(scales, scale.T)
    np.testing.assert_array_equal(unpack_codes(packed, w.shape[0]), w_q)
    assert not [n for n in model.graph.node if n.op_type == "Constant"]  # the int8 fallback's, unused here
    onnx.checker.check_model(model)


@pytest.mark.parametrize("tokens", [16, 1])
def test_matmulnbits_linear_is_close_to_executorch_8da4w(tmp_path, tokens):
    # Not equal: MatMulNBits quantizes activations per block of K, symmetric; XNNPACK per
    # token, asymmetric. Measured: at most 0.7% of the largest output (docs/quantization.md).
    for seed in range(2):
        layer, x = linear(seed, True), activations(seed)[:, -tokens:]
        expected = run_executorch(layer, x, tmp_path, RECIPE)
        got = run_onnx(layer, x, lambda model: quantize_matmuls_nbits(model, RECIPE))
        assert np.abs(got - expected).max() <= 0.01 * np.abs(expected).max()
    # the bound has teeth: the same codes with their nibbles swapped are well outside it
    wrong = run_onnx(layer, x, lambda model: _swap_nibbles(model, quantize_matmuls_nbits(model, RECIPE)))
    assert np.abs(wrong - expected).max() > 0.01 * np.abs(expected).max()


def _swap_nibbles(model, rewritten: int) -> int:
    from onnx import numpy_helper

    for init in model.graph.initializer:
        if init.name.endswith("w_u4x2"):
            packed = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array(((packed >> 4) | (packed << 4)).astype(np.uint8), init.name))
    return rewritten


def test_onnx_kernel_is_a_choice_of_the_quantized_recipes():
    assert QuantRecipe("8da4w").onnx_kernel == "exact" == QuantRecipe("int8").onnx_kernel
    assert QuantRecipe("8da4w", 32, "matmulnbits") == QuantRecipe("8da4w", 32)  # one eager reference
    assert QuantRecipe("int8", None, "matmulnbits") == QuantRecipe("int8")
    older = {"mode": "8da4w", "group_size": 32, "linear": {"int4_kernel": "matmulnbits"}}  # the name before int8 had it
    assert QuantRecipe.from_record(older).onnx_kernel == "matmulnbits"
    with pytest.raises(AtomError, match="not to fp32"):
        QuantRecipe("fp32", None, "matmulnbits")
    with pytest.raises(AtomError, match="valid"):
        QuantRecipe("8da4w", 32, "fast")
    with pytest.raises(AtomError, match="power of two"):  # ONNX Runtime's kernel takes no other blocks
        QuantRecipe("8da4w", 96, "matmulnbits")


@pytest.fixture(scope="module")
def tiny_8da4w(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_8da4w")
    atom_deploy("export", "--model", "tiny", "--backend", "all", "--quant", "8da4w", "--out", str(out), "--force", check=True)
    return out


@pytest.mark.parametrize("backend", ["executorch", "onnx"])
@pytest.mark.slow
def test_export_records_the_recipe_and_group_size(tiny_8da4w, backend):
    manifest = load_manifest(tiny_8da4w / backend)
    for name in Module.ALL:
        record = manifest.module(name)[Key.QUANTIZATION]
        assert record["mode"] == "8da4w" and record["group_size"] == GROUP
        assert record["linear"]["weights"].startswith("int4") and "per 32 input features" in record["linear"]["weights"]
        assert "per token" in record["linear"]["activations"]
        assert ("qb4w" if backend == "executorch" else "onnx_int4") in record["linear"]["implementation"]
        assert "per row" in record["embedding"]["weights"]
        assert QuantRecipe.from_record(record) == RECIPE


@pytest.mark.slow
def test_decoder_files_are_smaller_than_int8s(tiny_8da4w, tiny_exports):
    for backend in ("executorch", "onnx"):
        sizes = {}
        for mode, root in (("8da4w", tiny_8da4w), ("int8", tiny_exports["int8"])):
            files = load_manifest(root / backend).module(Module.DECODER)[Key.FILES]
            sizes[mode] = sum(f[Key.BYTES] for f in files)
        assert sizes["8da4w"] < sizes["int8"], (backend, sizes)


@pytest.mark.slow
def test_onnx_8da4w_graph_holds_no_float_or_byte_per_weight_matrices(tiny_8da4w):
    import onnx

    graph = onnx.load(str(tiny_8da4w / "onnx" / "decoder.text_decoder.onnx")).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("MatMulInteger") == ops.count("Scan") == 2 * 4 + 1  # q/k/v and gate/up fused: 4 a layer + lm_head
    big = [i for i in graph.initializer if len(i.dims) >= 2 and np.prod(i.dims) > 4096]
    assert big and all(i.name.endswith("w_u4x2") for i in big)  # two int4 per byte


@pytest.mark.slow
def test_matmulnbits_export_records_its_kernel_and_runs(tiny_8da4w, tmp_path):
    import onnx

    out = tmp_path / "nbits"
    atom_deploy("export", "--model", "tiny", "--backend", "onnx", "--quant", "8da4w", "--onnx-kernel", "matmulnbits",
                "--out", str(out), "--force", check=True)
    manifest = load_manifest(out / "onnx")
    record = manifest.module(Module.DECODER)[Key.QUANTIZATION]
    assert record["linear"]["onnx_kernel"] == "matmulnbits" and "MatMulNBits" in record["linear"]["implementation"]
    assert QuantRecipe.from_record(record).onnx_kernel == "matmulnbits"
    ops = [n.op_type for n in onnx.load(str(out / "onnx" / "decoder.text_decoder.onnx")).graph.node]
    assert ops.count("MatMulNBits") == 2 * 4 + 1 and "Scan" not in ops
    sizes = {root: sum(f[Key.BYTES] for f in load_manifest(root / "onnx").module(Module.DECODER)[Key.FILES])
             for root in (out, tiny_8da4w)}
    assert sizes[out] <= sizes[tiny_8da4w]  # the same int4 bytes, without the exact path's unpacking graph
    result = atom_deploy("generate", "--artifacts", str(out / "onnx"), "--steps", "5", "a red square")
    assert result.returncode == 0 and result.stdout.strip(), result.stderr


@pytest.mark.slow
def test_parity_passes_on_the_8da4w_export(tiny_8da4w):
    result = atom_deploy("parity", str(tiny_8da4w))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads((tiny_8da4w / "parity.json").read_text())
    runs = {(r["run"], r["reference"]) for r in rows}
    assert {("executorch 8da4w", "eager 8da4w"), ("onnx 8da4w", "eager 8da4w"), ("eager 8da4w", "eager fp32")} <= runs


def test_eval_bounds_for_8da4w_are_its_own():
    from atom_deploy.eval.bounds import check_rows

    metrics = {
        "eager fp32": {"cider": 190.0, "r1": 70.0},
        "executorch int8": {"cider": 188.2, "r1": 70.0},  # 1.8 below: over int8's 1.5
        "executorch 8da4w": {"cider": 188.2, "r1": 67.5},  # 1.8 and 2.5 below: within 2.0 and 3
        "onnx 8da4w": {"cider": 187.5, "r1": 66.0},  # 2.5 and 4 below: over both
    }
    checks = {(c.row, c.metric): c for c in check_rows(metrics)}
    assert not checks["executorch int8", "CIDEr drop"].passed
    assert checks["executorch 8da4w", "CIDEr drop"].passed and checks["executorch 8da4w", "R@1 drop"].passed
    assert checks["executorch 8da4w", "CIDEr drop"].bound == 2.0 and checks["executorch 8da4w", "R@1 drop"].bound == 3.0
    assert not checks["onnx 8da4w", "CIDEr drop"].passed and not checks["onnx 8da4w", "R@1 drop"].passed
    gap = checks["executorch 8da4w", "CIDEr gap"]
    assert gap.reference == "onnx 8da4w" and gap.value == pytest.approx(0.7) and not gap.passed


def test_eval_counts_identical_captions_per_recipe():
    from types import SimpleNamespace

    from atom_deploy.eval.report import caption_agreement

    rows = [SimpleNamespace(name=name, captions=captions) for name, captions in (
        ("eager fp32", ("a", "b", "c")),
        ("executorch int8", ("a", "b", "c")), ("onnx int8", ("a", "b", "x")),
        ("executorch 8da4w", ("a", "y", "z")), ("onnx 8da4w", ("a", "y", "c")),
    )]
    agreement = caption_agreement(SimpleNamespace(rows=rows))
    assert agreement == [
        {"row": "executorch int8", "vs": "onnx int8", "identical": 2, "clips": 3},
        {"row": "executorch 8da4w", "vs": "onnx 8da4w", "identical": 2, "clips": 3},
    ]


@pytest.mark.slow
def test_int8_matmulnbits_export_records_its_kernel_and_runs(tmp_path):
    import onnx

    out = tmp_path / "nbits8"
    atom_deploy("export", "--model", "tiny", "--backend", "onnx", "--quant", "int8", "--onnx-kernel", "matmulnbits",
                "--out", str(out), "--force", check=True)
    record = load_manifest(out / "onnx").module(Module.DECODER)[Key.QUANTIZATION]
    assert record["mode"] == "int8" and record["linear"]["onnx_kernel"] == "matmulnbits"
    assert QuantRecipe.from_record(record) == QuantRecipe("int8")  # the same eager reference as the exact kernel
    nodes = onnx.load(str(out / "onnx" / "decoder.text_decoder.onnx")).graph.node
    bits = [next(a.i for a in n.attribute if a.name == "bits") for n in nodes if n.op_type == "MatMulNBits"]
    assert bits == [8] * (2 * 4 + 1) and not [n for n in nodes if n.op_type == "MatMulInteger"]
    result = atom_deploy("generate", "--artifacts", str(out / "onnx"), "--steps", "5", "a red square")
    assert result.returncode == 0 and result.stdout.strip(), result.stderr
