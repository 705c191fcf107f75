"""Linears that read one input (q, k and v; gate and up), run as one matrix multiply.

`FusedLinear` stacks their weights (and biases) by output row and splits the result back.
Every output column is computed from the same input, weights and bias as before, and the
kit's quantization recipes work column by column: int8 weights are scaled per output row,
int4 weights per group of one row's inputs, and activations per token of the shared input.
So a fused layer quantizes to the same integers and computes the same numbers, while the
runtime runs one GEMM and one activation quantization where it ran three.

Models keep their separate Linears (checkpoints name them so); the export fuses them
(`fuse_projections`), after the weights are loaded and before quantization.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn


class FusedLinear(nn.Module):
    def __init__(self, linears: Sequence[nn.Linear]):
        super().__init__()
        if len({linear.in_features for linear in linears}) != 1 or len({linear.bias is None for linear in linears}) != 1:
            raise ValueError("fused Linears must share their input width and all have a bias or none")
        first = linears[0]
        self.sizes = tuple(linear.out_features for linear in linears)
        self.linear = nn.Linear(first.in_features, sum(self.sizes), bias=first.bias is not None,
                                dtype=first.weight.dtype, device=first.weight.device)
        with torch.no_grad():
            self.linear.weight.copy_(torch.cat([linear.weight for linear in linears]))
            if first.bias is not None:
                self.linear.bias.copy_(torch.cat([linear.bias for linear in linears]))

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.linear(x).split(self.sizes, dim=-1))


def fuse_siblings(owner: nn.Module, names: Sequence[str]) -> FusedLinear:
    """Replace `owner`'s Linears `names` by one FusedLinear (returned; the caller stores it)."""
    fused = FusedLinear([getattr(owner, name) for name in names])
    for name in names:
        delattr(owner, name)
    return fused


def fuse_projections(model: nn.Module) -> int:
    """Fuse the sibling Linears of every block under `model` that offers it; returns how many blocks."""
    blocks = [m for m in model.modules() if hasattr(m, "fuse_projections")]
    for block in blocks:
        block.fuse_projections()
    return len(blocks)
