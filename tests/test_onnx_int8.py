"""The ONNX int8 rewrite computes what the ExecuTorch int8 export computes, integer for integer.

Both backends hold torchao's int8 weights and quantize activations per token at run time;
these tests run one Linear through the real ExecuTorch runtime (XNNPACK) and through ONNX
Runtime, and ask for the same floats, so the two int8 backends make the same captions.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from atom_deploy.backends.onnx_int8 import quantize_matmuls_per_token, quantize_weight
from atom_deploy.export.quantize import INT8, QuantRecipe, quantize_linears_torchao

TOKENS, IN_FEATURES, OUT_FEATURES = 16, 96, 80


def activations(seed: int) -> torch.Tensor:
    """[1, TOKENS, IN] with the rows that stress a per-token quantizer."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, TOKENS, IN_FEATURES, generator=g) * torch.rand(1, TOKENS, 1, generator=g) * 4
    x[0, 0] = 0.0  # all zeros: the range is empty
    x[0, 1] = x[0, 1].abs() + 0.5  # all positive: the range is widened to 0
    x[0, 2] = -x[0, 2].abs() - 0.5  # all negative
    x[0, 3, 7] = 300.0  # one outlier flattens the rest of the row
    x[0, 4] = torch.arange(IN_FEATURES) / 2 - 20  # exact halves: rounding ties
    return x


def linear(seed: int, bias: bool) -> nn.Linear:
    torch.manual_seed(seed)
    layer = nn.Linear(IN_FEATURES, OUT_FEATURES, bias=bias)
    with torch.no_grad():
        layer.weight[3] = 0.0  # an all-zero output channel
        layer.weight[5, :8] = torch.arange(8) / 4 - 1  # weights on exact quarter steps
    return layer.eval()


def run_executorch(layer: nn.Module, x: torch.Tensor, tmp_path, recipe: QuantRecipe = INT8, outside: tuple[str, ...] = ()) -> np.ndarray:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower
    from executorch.runtime import Runtime

    model = nn.Sequential(copy.deepcopy(layer))  # quantize_ swaps weights in place
    quantize_linears_torchao(model, recipe)
    with torch.no_grad():
        program = torch.export.export(model, (x,), strict=False)
    edge = to_edge_transform_and_lower(
        program, partitioner=[XnnpackPartitioner()], compile_config=EdgeCompileConfig(_check_ir_validity=False)
    )
    # Everything went to XNNPACK (but the ops named in `outside`): no dequantize or matmul left for the portable kernels.
    calls = [str(n.target) for n in edge.exported_program().graph.nodes if n.op == "call_function"]
    assert calls and all(any(op in c for op in ("executorch_call_delegate", "getitem", *outside)) for c in calls), calls
    path = tmp_path / "linear.pte"
    path.write_bytes(edge.to_executorch().buffer)
    return Runtime.get().load_program(str(path)).load_method("forward").execute([x])[0].numpy()


def run_onnx(layer: nn.Linear, x: torch.Tensor, rewrite=quantize_matmuls_per_token) -> np.ndarray:
    import onnxruntime as ort

    with torch.no_grad():
        program = torch.onnx.export(layer, (x,), input_names=["x"], output_names=["y"], dynamo=True, verbose=False)
    model = program.model_proto
    assert rewrite(model) == 1
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.numpy()})[0]


def test_weights_map_to_torchaos_integers():
    layer = linear(1, False)
    w_q, scale = quantize_weight(layer.weight.detach().numpy().T)
    model = nn.Sequential(layer)
    quantize_linears_torchao(model)
    torchao_weight = model[0].weight
    np.testing.assert_array_equal(w_q.T, torchao_weight.qdata.numpy())
    np.testing.assert_array_equal(scale, torchao_weight.scale.numpy().reshape(-1))


@pytest.mark.parametrize("bias", [False, True])
def test_onnx_int8_linear_equals_executorch_int8(tmp_path, bias):
    for seed in range(3):
        layer, x = linear(seed, bias), activations(seed)
        expected = run_executorch(layer, x, tmp_path)
        got = run_onnx(layer, x)
        np.testing.assert_array_equal(got, expected)
        # and the check has teeth: the int8 result is not the float one
        with torch.no_grad():
            assert np.abs(expected - layer(x).numpy()).max() > 1e-3


# --- --onnx-kernel matmulnbits: ONNX Runtime's own 8-bit kernel (backends/onnx_nbits.py) ---------


def _nbits8(model) -> int:
    from atom_deploy.backends.onnx_nbits import quantize_matmuls_nbits

    return quantize_matmuls_nbits(model, INT8)


def test_matmulnbits_int8_holds_torchaos_integers_per_channel():
    from onnx import numpy_helper

    from atom_deploy.backends.onnx_nbits import INT8_BLOCK

    layer, x = linear(0, True), activations(0)
    w = layer.weight.detach().numpy().T  # [K, N]
    w_q, scale = quantize_weight(w)
    with torch.no_grad():
        model = torch.onnx.export(layer, (x,), input_names=["x"], output_names=["y"], dynamo=True, verbose=False).model_proto
    assert _nbits8(model) == 1
    node = next(n for n in model.graph.node if n.op_type == "MatMulNBits")
    attrs = {a.name: a.i for a in node.attribute}
    assert attrs["bits"] == 8 and attrs["block_size"] == INT8_BLOCK and (attrs["K"], attrs["N"]) == w.shape
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    codes, scales = inits[node.input[1]], inits[node.input[2]]
    # The operator's layout, read independently: output n, block b, byte j is input b*B + j, as int8 + 128.
    np.testing.assert_array_equal(codes.reshape(w.shape[1], w.shape[0]).astype(np.int16) - 128, w_q.T)
    np.testing.assert_array_equal(scales, np.repeat(scale[:, None], w.shape[0] // INT8_BLOCK, axis=1))


@pytest.mark.parametrize("tokens", [TOKENS, 1])
def test_matmulnbits_int8_linear_is_close_to_executorch_int8(tmp_path, tokens):
    # Not equal: MatMulNBits quantizes activations per block of 32 inputs, symmetric; XNNPACK
    # per token, asymmetric. The bound is the one the 4-bit kernel meets (test_quant_8da4w.py).
    for seed in range(2):
        layer, x = linear(seed, True), activations(seed)[:, -tokens:]
        expected = run_executorch(layer, x, tmp_path)
        got = run_onnx(layer, x, _nbits8)
        assert np.abs(got - expected).max() <= 0.01 * np.abs(expected).max()
    # the bound has teeth: the same codes read with their blocks in reverse order are well outside it
    wrong = run_onnx(layer, x, lambda model: _reverse_blocks(model, _nbits8(model)))
    assert np.abs(wrong - expected).max() > 0.01 * np.abs(expected).max()


def _reverse_blocks(model, rewritten: int) -> int:
    from onnx import numpy_helper

    for init in model.graph.initializer:
        if init.name.endswith("w_u8"):
            init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(numpy_helper.to_array(init)[:, ::-1]), init.name))
    return rewritten
