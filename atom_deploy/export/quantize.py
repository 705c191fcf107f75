"""The paper's quantization policy: int8 on Linear and Embedding only, the rest stays fp32.

- Embedding: int8 weight-only, one scale per row. Written here as an int8 table plus a
  per-row scale table, gathered then rescaled: only gather/cast/mul, which ExecuTorch
  and ONNX both run. (torchao's IntxWeightOnlyConfig on nn.Embedding leaves an
  unlowerable dequantize_affine in ExecuTorch 1.5.1.)
- Linear: int8 weights per output channel with dynamic int8 activations. Each backend
  realizes this with its own tool (torchao for ExecuTorch, onnxruntime for ONNX); the
  manifest records exactly what each one did.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

QUANT_MODES = ("int8", "fp32")


class Int8Embedding(nn.Module):
    """nn.Embedding with an int8 table and one fp32 scale per row (symmetric)."""

    def __init__(self, weight: Tensor):
        super().__init__()
        scale = weight.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0  # [V, 1]
        self.register_buffer("weight_int8", torch.round(weight / scale).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale.to(torch.float32))

    def forward(self, ids: Tensor) -> Tensor:
        # ids: [...] -> [..., D]
        return F.embedding(ids, self.weight_int8).to(torch.float32) * F.embedding(ids, self.scale)


def quantize_embeddings(model: nn.Module) -> int:
    """Swap every nn.Embedding under `model` for an Int8Embedding; returns how many."""
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Embedding):
                setattr(parent, name, Int8Embedding(child.weight.detach()))
                swapped += 1
    return swapped


def quantize_linears_torchao(model: nn.Module) -> None:
    """int8 per-channel weights + dynamic per-token int8 activations (torchao '8da8w')."""
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, quantize_
    from torchao.quantization.granularity import PerAxis

    quantize_(model, Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int8, weight_granularity=PerAxis(0)))


def quantize_eager(model: nn.Module, mode: str) -> nn.Module:
    """The eager int8 reference: the same source transforms the ExecuTorch backend applies."""
    if mode == "int8":
        quantize_embeddings(model)
        quantize_linears_torchao(model)
    return model


EMBEDDING_SCHEME = {
    "layers": "Embedding",
    "weights": "int8 symmetric, one scale per row",
    "implementation": "atom_deploy Int8Embedding (gather int8 rows, cast, multiply by gathered scale)",
}


def linear_record(mode: str, implementation: str) -> dict:
    """What a backend did to Linear layers, for the manifest (same scheme, its own tool)."""
    if mode != "int8":
        return {"mode": "fp32"}
    return {
        "mode": "int8",
        "linear": {
            "weights": "int8 symmetric, per output channel",
            "activations": "int8 asymmetric, dynamic per token",
            "implementation": implementation,
        },
    }
