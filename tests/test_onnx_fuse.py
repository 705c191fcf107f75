"""Linears that read one input fused into one MatMul before the quantized rewrite
(backends/onnx_fuse.py): the same numbers as ExecuTorch's int8 and as the unfused rewrite,
with fewer nodes."""

from __future__ import annotations

import collections
import copy

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from atom_deploy.backends.onnx_fuse import fuse_sibling_matmuls
from atom_deploy.backends.onnx_int4 import quantize_matmuls_8da4w
from atom_deploy.backends.onnx_int8 import quantize_matmuls_per_token
from atom_deploy.backends.onnx_nbits import quantize_matmuls_nbits
from atom_deploy.export.quantize import INT8, QuantRecipe
from test_onnx_int8 import activations, run_executorch

IN_FEATURES = 96


class Siblings(nn.Module):
    """q, k, v from one input, and an unrelated Linear on another: as in attention."""

    def __init__(self, bias: bool):
        super().__init__()
        torch.manual_seed(3)
        self.q, self.k, self.v = nn.Linear(IN_FEATURES, 96, bias=bias), nn.Linear(IN_FEATURES, 32, bias=bias), nn.Linear(IN_FEATURES, 64, bias=bias)
        self.out = nn.Linear(96 + 32 + 64, 48, bias=bias)

    def forward(self, x):
        return self.out(torch.cat([self.q(x), self.k(x), self.v(x)], dim=-1))


def onnx_graph(module: nn.Module, x: torch.Tensor) -> onnx.ModelProto:
    with torch.no_grad():
        program = torch.onnx.export(module, (x,), input_names=["x"], output_names=["y"], dynamo=True, verbose=False)
    program.optimize()
    return program.model_proto


def run(model: onnx.ModelProto, x: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort

    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.numpy()})[0]


def ops(model: onnx.ModelProto) -> collections.Counter:
    return collections.Counter(n.op_type for n in model.graph.node)


REWRITES = {
    "int8 exact": quantize_matmuls_per_token,
    "8da4w exact": lambda model: quantize_matmuls_8da4w(model, 32),
    "int8 matmulnbits": lambda model: quantize_matmuls_nbits(model, INT8),
    "8da4w matmulnbits": lambda model: quantize_matmuls_nbits(model, QuantRecipe("8da4w", 32, "matmulnbits")),
}


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("rewrite", list(REWRITES))
def test_fused_graph_computes_the_unfused_numbers(bias, rewrite):
    x = activations(0)
    plain = onnx_graph(Siblings(bias), x)
    fused = copy.deepcopy(plain)
    assert fuse_sibling_matmuls(fused) == 1  # q, k, v; `out` reads another input
    assert ops(fused)["MatMul"] == ops(plain)["MatMul"] - 2 and ops(fused)["Split"] == ops(plain)["Split"] + 1
    np.testing.assert_array_equal(run(fused, x), run(plain, x))  # fp32: one GEMM for three
    rewritten = {name: copy.deepcopy(m) for name, m in (("plain", plain), ("fused", fused))}
    for model in rewritten.values():
        REWRITES[rewrite](model)
    np.testing.assert_array_equal(run(rewritten["fused"], x), run(rewritten["plain"], x))
    assert len(rewritten["fused"].graph.node) < len(rewritten["plain"].graph.node)


@pytest.mark.parametrize("bias", [False, True])
def test_fused_int8_graph_equals_executorch_int8(tmp_path, bias):
    x = activations(1)
    module = Siblings(bias).eval()
    model = onnx_graph(module, x)
    assert fuse_sibling_matmuls(model) == 1
    quantize_matmuls_per_token(model)
    np.testing.assert_array_equal(run(model, x), run_executorch(module, x, tmp_path))


def test_misplaced_columns_fail_the_comparison():
    # The checks above have teeth: the fused weight with its columns out of order gives other numbers.
    x = activations(0)
    plain = onnx_graph(Siblings(False), x)
    fused = copy.deepcopy(plain)
    fuse_sibling_matmuls(fused)
    weight = next(i for i in fused.graph.initializer if i.name.endswith("_w"))
    weight.CopyFrom(onnx.numpy_helper.from_array(np.ascontiguousarray(onnx.numpy_helper.to_array(weight)[:, ::-1]), weight.name))
    assert not np.array_equal(run(fused, x), run(plain, x))
