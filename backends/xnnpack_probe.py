"""Which bias rounding this machine's XNNPACK int4 GEMM uses, measured with the real runtime.

XNNPACK picks its qd8-f32-qb4w kernel by the CPU it runs on, and the kernels differ in one
rounding: the AVX2 ones add the bias in a fused multiply-add, the AVX-512 VNNI ones round
the product first (backends/onnx_int4.py). The ONNX 8da4w rewrite must use the one the
ExecuTorch export will run with, so the export asks the runtime instead of guessing from
CPU flags: one small biased Linear through ExecuTorch and through both ONNX graphs.
"""

from __future__ import annotations

import copy
import functools
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from atom_deploy.backends.onnx_int4 import BIAS_ROUNDINGS, quantize_matmuls_8da4w
from atom_runner.errors import AtomError

PROBE_GROUP = 32


@functools.cache
def xnnpack_bias_rounding() -> str:
    """'fma' or 'separate': the BIAS_ROUNDINGS entry whose ONNX graph equals ExecuTorch here."""
    layer, x = _probe_layer()
    with tempfile.TemporaryDirectory() as folder:
        expected = run_executorch_8da4w(layer, x, Path(folder))
    matches = [r for r in BIAS_ROUNDINGS if np.array_equal(run_onnx_8da4w(layer, x, r), expected)]
    if len(matches) != 1:
        raise AtomError(f"cannot tell how this machine's XNNPACK int4 kernel rounds a bias (matching: {matches}); "
                        "use --onnx-kernel matmulnbits")
    return matches[0]


def _probe_layer() -> tuple[nn.Linear, torch.Tensor]:
    # Outputs whose product and bias are of similar size, over many tokens: the two roundings
    # then differ on a good share of them (about a quarter, measured), never on none.
    generator = torch.Generator().manual_seed(0)
    layer = nn.Linear(2 * PROBE_GROUP, 64)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator))
        layer.bias.copy_(torch.randn(64, generator=generator) * 8)
    return layer.eval(), torch.randn(1, 32, 2 * PROBE_GROUP, generator=generator) * 3


def run_executorch_8da4w(layer: nn.Linear, x: torch.Tensor, folder: Path) -> np.ndarray:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower
    from executorch.runtime import Runtime

    from atom_deploy.export.quantize import QuantRecipe, quantize_linears_torchao

    model = nn.Sequential(copy.deepcopy(layer))  # quantize_ swaps weights in place
    quantize_linears_torchao(model, QuantRecipe("8da4w", PROBE_GROUP))
    with torch.no_grad():
        program = torch.export.export(model, (x,), strict=False)
    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()],
                                       compile_config=EdgeCompileConfig(_check_ir_validity=False))
    path = folder / "probe.pte"
    path.write_bytes(edge.to_executorch().buffer)
    return Runtime.get().load_program(str(path)).load_method("forward").execute([x])[0].numpy()


def run_onnx_8da4w(layer: nn.Linear, x: torch.Tensor, bias_rounding: str) -> np.ndarray:
    import onnxruntime as ort

    with torch.no_grad():
        program = torch.onnx.export(layer, (x,), input_names=["x"], output_names=["y"], dynamo=True, verbose=False)
    model = program.model_proto
    quantize_matmuls_8da4w(model, PROBE_GROUP, bias_rounding)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.numpy()})[0]
