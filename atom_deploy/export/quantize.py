"""The quantization recipes: which layers become integers, and how. The rest stays fp32.

- `int8` (the paper's, the default): Linear weights int8 per output channel, activations
  int8 per token at run time ("8da8w").
- `8da4w`: Linear weights int4 in groups of `group_size` input features, one scale per
  group, activations int8 per token ("8da4w", as ExecuTorch's and optimum-executorch's LLM
  recipes). A Linear whose input width is not a multiple of the group size keeps the int8
  recipe, as optimum-executorch's "8da4w,8da8w" fallback does.
- Both: embeddings int8 weight-only, one scale per row. Written here as an int8 table plus
  a per-row scale table, gathered then rescaled: only gather/cast/mul, which ExecuTorch and
  ONNX both run. (torchao's IntxWeightOnlyConfig on nn.Embedding leaves an unlowerable
  dequantize_affine in ExecuTorch 1.5.1.)

Each backend realizes a recipe with its own tool: torchao for ExecuTorch, and for ONNX the
kit's own graph rewrite (backends/onnx_int8.py, onnx_int4.py; not onnxruntime's quantizer,
whose per-tensor activation scales onnx_int8.py explains). The manifest records what each
did; docs/quantization.md has the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atom_runner.errors import AtomError

QUANT_MODES = ("int8", "8da4w", "fp32")
# Every Linear of the demo model and of the tiny preset has an input width that is a multiple of
# 32 (96, 192, 256, 384, 704, 768, 1536), and 32 is optimum-executorch's 8da4w default.
# ExecuTorch's export_llama defaults to 128, which 192, 384 and 704 are not multiples of.
DEFAULT_GROUP_SIZE = 32
# XNNPACK's blockwise int4 GEMM (qd8-f32-qb4w) takes blocks of a multiple of 32 only.
GROUP_SIZE_MULTIPLE = 32
# How ONNX Runtime runs quantized Linears: "exact" computes XNNPACK's numbers, so both backends
# give the same tokens (backends/onnx_int8.py, onnx_int4.py; slower), "matmulnbits" is ONNX
# Runtime's own 8- or 4-bit kernel (backends/onnx_nbits.py; fast, close, not equal).
ONNX_KERNELS = ("exact", "matmulnbits")


@dataclass(frozen=True)
class QuantRecipe:
    mode: str = "int8"  # one of QUANT_MODES
    group_size: int | None = None  # 8da4w only; None there means DEFAULT_GROUP_SIZE
    # ONNX Runtime only (ONNX_KERNELS; None means "exact"). Not part of equality: both kernels
    # hold the same integers, so they share one eager reference.
    onnx_kernel: str | None = field(default=None, compare=False)

    def __post_init__(self):
        if self.mode not in QUANT_MODES:
            raise AtomError(f"unknown quantization {self.mode!r}; valid: {list(QUANT_MODES)}")
        if not self.quantized:
            if self.onnx_kernel is not None:
                raise AtomError("--onnx-kernel applies to int8 and 8da4w, not to fp32")
        elif self.onnx_kernel is None:
            object.__setattr__(self, "onnx_kernel", ONNX_KERNELS[0])
        elif self.onnx_kernel not in ONNX_KERNELS:
            raise AtomError(f"unknown --onnx-kernel {self.onnx_kernel!r}; valid: {list(ONNX_KERNELS)}")
        if self.mode != "8da4w":
            if self.group_size is not None:
                raise AtomError(f"--group-size applies to 8da4w only, not to {self.mode}")
            return
        if self.group_size is None:
            object.__setattr__(self, "group_size", DEFAULT_GROUP_SIZE)
        if self.onnx_kernel == "matmulnbits" and self.group_size & (self.group_size - 1):
            raise AtomError(f"--onnx-kernel matmulnbits needs a group size that is a power of two "
                            f"(ONNX Runtime's MatMulNBits blocks), got {self.group_size}")
        if self.group_size <= 0 or self.group_size % GROUP_SIZE_MULTIPLE:
            raise AtomError(f"--group-size must be a positive multiple of {GROUP_SIZE_MULTIPLE} "
                            f"(XNNPACK's int4 block size), got {self.group_size}")

    @classmethod
    def of(cls, value: "str | QuantRecipe") -> "QuantRecipe":
        """A recipe from a mode name (default group size) or a recipe; errors list the valid modes."""
        return value if isinstance(value, QuantRecipe) else cls(value)

    @classmethod
    def from_record(cls, record: dict) -> "QuantRecipe":
        """The recipe a manifest's quantization record (linear_record) describes."""
        linear = record.get("linear", {})
        kernel = linear.get("onnx_kernel", linear.get("int4_kernel"))  # int4_kernel: the 8da4w-only name of older manifests
        return cls(record["mode"], record.get("group_size"), kernel)

    @property
    def quantized(self) -> bool:
        return self.mode != "fp32"

    def linear_group(self, in_features: int) -> int | None:
        """The int4 group size for a Linear with this input width, or None: int8 per channel."""
        if self.mode == "8da4w" and in_features % self.group_size == 0:
            return self.group_size
        return None

    def __str__(self) -> str:
        return f"8da4w, group {self.group_size}" if self.mode == "8da4w" else self.mode


INT8 = QuantRecipe("int8")


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


def quantize_linears_torchao(model: nn.Module, recipe: QuantRecipe = INT8) -> None:
    """torchao's dynamic-activation configs: 8da8w per output channel, or 8da4w per group.

    8da4w group scales are bfloat16: XNNPACK stores blockwise scales as bf16 (ExecuTorch casts
    them when it serializes), so rounding them here makes the integers and scales eager
    PyTorch runs the ones XNNPACK runs. With fp32 scales, torchao picks the integers for a
    scale the device never sees: one Linear's outputs then moved by up to 0.8 between eager
    and ExecuTorch, against 5e-5 with bf16 scales (docs/quantization.md).
    """
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, quantize_
    from torchao.quantization.granularity import PerAxis, PerGroup

    def grouped(module: nn.Module, fqn: str) -> bool:
        return isinstance(module, nn.Linear) and recipe.linear_group(module.in_features) is not None

    def per_channel(module: nn.Module, fqn: str) -> bool:
        return isinstance(module, nn.Linear) and recipe.linear_group(module.in_features) is None

    if recipe.mode == "8da4w":
        quantize_(model, Int8DynamicActivationIntxWeightConfig(
            weight_dtype=torch.int4, weight_granularity=PerGroup(recipe.group_size), weight_scale_dtype=torch.bfloat16,
        ), filter_fn=grouped)
    quantize_(model, Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int8, weight_granularity=PerAxis(0)),
              filter_fn=per_channel)


def quantize_eager(model: nn.Module, mode: "str | QuantRecipe") -> nn.Module:
    """The eager reference: the same source transforms the ExecuTorch backend applies."""
    recipe = QuantRecipe.of(mode)
    if recipe.quantized:
        quantize_embeddings(model)
        quantize_linears_torchao(model, recipe)
    return model


EMBEDDING_SCHEME = {
    "layers": "Embedding",
    "weights": "int8 symmetric, one scale per row",
    "implementation": "atom_deploy Int8Embedding (gather int8 rows, cast, multiply by gathered scale)",
}
UNQUANTIZED = "LayerNorm, RMSNorm, softmax, attention matmuls, RoPE, pooling"


def linear_record(mode: "str | QuantRecipe", implementation: str) -> dict:
    """What a backend did to Linear layers, for the manifest (same scheme, its own tool)."""
    recipe = QuantRecipe.of(mode)
    if not recipe.quantized:
        return {"mode": "fp32"}
    int8 = {
        "weights": "int8 symmetric, per output channel",
        "activations": "int8 asymmetric, dynamic per token",
        "implementation": implementation,
    }
    if recipe.mode == "int8":
        return {"mode": "int8", "linear": int8}
    return {
        "mode": "8da4w",
        "group_size": recipe.group_size,
        "linear": {
            "weights": f"int4 symmetric ([-8, 7]), one bfloat16 scale per {recipe.group_size} input features",
            "activations": "int8 asymmetric, dynamic per token",
            "implementation": implementation,
            "fallback": f"Linears whose input width is not a multiple of {recipe.group_size} keep int8 per output channel",
        },
    }
