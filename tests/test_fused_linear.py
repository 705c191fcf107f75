"""Sibling Linears fused into one (models/fused_linear.py): the same numbers on every runtime
and recipe, fewer kernels. The export fuses them; the eager reference does not."""

from __future__ import annotations

import collections
import copy

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from atom_deploy.backends.onnx_int4 import quantize_matmuls_8da4w
from atom_deploy.backends.onnx_int8 import quantize_matmuls_per_token
from atom_deploy.backends.onnx_nbits import quantize_matmuls_nbits
from atom_deploy.config import preset
from atom_deploy.export.quantize import INT8, QuantRecipe
from atom_deploy.model import build_model
from atom_deploy.models.fused_linear import FusedLinear, fuse_projections, fuse_siblings
from test_onnx_int8 import IN_FEATURES, activations, run_executorch

# XNNPACK takes no split: the fused output is split by the portable kernels.
SPLIT = ("split_with_sizes_copy",)


class Siblings(nn.Module):
    """q, k, v from one input, then a Linear over their outputs: as in attention."""

    def __init__(self, bias: bool):
        super().__init__()
        torch.manual_seed(3)
        self.q, self.k, self.v = (nn.Linear(IN_FEATURES, n, bias=bias) for n in (96, 32, 64))
        self.out = nn.Linear(96 + 32 + 64, 48, bias=bias)
        self.qkv: FusedLinear | None = None
        self.eval()

    def fuse_projections(self) -> None:
        self.qkv = fuse_siblings(self, ("q", "k", "v"))

    def forward(self, x):
        q, k, v = self.qkv(x) if self.qkv is not None else (self.q(x), self.k(x), self.v(x))
        return self.out(torch.cat([q, k, v], dim=-1))


def fused(module: nn.Module) -> nn.Module:
    module = copy.deepcopy(module)
    assert fuse_projections(module) == 1
    return module


def onnx_graph(module: nn.Module, x: torch.Tensor) -> onnx.ModelProto:
    with torch.no_grad():
        program = torch.onnx.export(module, (x,), input_names=["x"], output_names=["y"], dynamo=True, verbose=False)
    program.optimize()
    return program.model_proto


def run_onnx(model: onnx.ModelProto, x: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort

    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.numpy()})[0]


def matmuls(model: onnx.ModelProto) -> int:
    return collections.Counter(n.op_type for n in model.graph.node)["MatMul"]


REWRITES = {
    "int8 exact": quantize_matmuls_per_token,
    "8da4w exact": lambda model: quantize_matmuls_8da4w(model, 32),
    "int8 matmulnbits": lambda model: quantize_matmuls_nbits(model, INT8),
    "8da4w matmulnbits": lambda model: quantize_matmuls_nbits(model, QuantRecipe("8da4w", 32, "matmulnbits")),
}


def test_fusing_keeps_the_float_numbers_and_removes_the_parts():
    plain = Siblings(True)
    one = fused(plain)
    assert not hasattr(one, "q") and isinstance(one.qkv, FusedLinear) and one.qkv.sizes == (96, 32, 64)
    x = activations(0)
    with torch.no_grad():
        torch.testing.assert_close(one(x), plain(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("recipe", [INT8, QuantRecipe("8da4w", 32)], ids=str)
@pytest.mark.parametrize("bias", [False, True])
def test_executorch_fused_equals_unfused(tmp_path, recipe, bias):
    plain, x = Siblings(bias), activations(1)
    np.testing.assert_array_equal(run_executorch(fused(plain), x, tmp_path, recipe, SPLIT),
                                  run_executorch(plain, x, tmp_path, recipe))


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("rewrite", list(REWRITES))
def test_onnx_fused_equals_unfused_under_every_rewrite(bias, rewrite):
    plain, x = Siblings(bias), activations(0)
    graphs = {"plain": onnx_graph(plain, x), "fused": onnx_graph(fused(plain), x)}
    assert matmuls(graphs["fused"]) == matmuls(graphs["plain"]) - 2
    for graph in graphs.values():
        REWRITES[rewrite](graph)
    np.testing.assert_array_equal(run_onnx(graphs["fused"], x), run_onnx(graphs["plain"], x))
    assert len(graphs["fused"].graph.node) < len(graphs["plain"].graph.node)


def test_fused_onnx_int8_equals_unfused_executorch_int8(tmp_path):
    # Across runtimes as well: the fused ONNX rewrite against ExecuTorch running the three Linears.
    plain, x = Siblings(True), activations(2)
    graph = onnx_graph(fused(plain), x)
    quantize_matmuls_per_token(graph)
    np.testing.assert_array_equal(run_onnx(graph, x), run_executorch(plain, x, tmp_path))


def test_misplaced_rows_fail_the_comparison(tmp_path):
    # The checks above have teeth: a fused weight with k's and v's rows swapped computes other numbers.
    plain, x = Siblings(False), activations(1)
    wrong = fused(plain)
    with torch.no_grad():
        wrong.qkv.linear.weight[96:] = torch.cat([plain.v.weight, plain.k.weight])
    wrong.qkv.sizes = (96, 64, 32)
    assert not np.array_equal(run_executorch(wrong, x, tmp_path, outside=SPLIT), run_executorch(plain, x, tmp_path))


def test_every_module_of_the_model_fuses_its_projections():
    model = build_model(preset("tiny"), seed=0)
    modules = model.modules()
    layers = {name: len(getattr(m, "layers", getattr(m, "blocks", []))) for name, m in modules.items()}
    expected = {"video_encoder": layers["video_encoder"], "decoder": 2 * layers["decoder"], "minilm": layers["minilm"]}
    with torch.no_grad():
        clip = torch.randn(model.config.encoder.clip_shape)
        before = modules["video_encoder"](clip)
        for name, module in modules.items():
            assert fuse_projections(module) == expected[name], name
            assert not any(n.endswith(("q_proj", "gate_proj", "query")) for n, _ in module.named_modules()), name
        torch.testing.assert_close(modules["video_encoder"](clip), before, rtol=0, atol=1e-4)
