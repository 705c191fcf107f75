"""Quantized Linear layers on ONNX Runtime's own kernel, `com.microsoft.MatMulNBits`
(`--onnx-kernel matmulnbits`), for either recipe.

The weights are the recipe's, the same integers the ExecuTorch export holds:
- 8da4w: torchao's int4 integers per group of G input features and their bfloat16-valued
  scales (`onnx_int4.quantize_weight_int4`). MatMulNBits stores them transposed,
  `[N, K / G, G / 2]` bytes of two 4-bit codes each (the lower K index in the low nibble), as
  `int4 + 8` with the operator's default zero point of 8, and one float32 scale per
  (output, group).
- int8: torchao's int8 integers per output channel (`onnx_int8.quantize_weight`), as 8-bit
  codes `int8 + 128` (the default zero point for 8 bits), `[N, K / B, B]`. The operator has a
  scale per block of B inputs, so each channel's one scale is repeated over its blocks: the
  weights are exact, and B only sets how finely the activations are quantized (below).

`accuracy_level=4` lets MLAS quantize the activations to int8 and sum in integers, as
XNNPACK does, but per block of K and symmetric, not per token and asymmetric: outputs
are close to the ExecuTorch export's, not equal (docs/quantization.md has the measured
difference). This is the fast path: one operator a Linear, the weights packed in memory.
`onnx_int8.py` and `onnx_int4.py` are the bit-exact alternatives (`--onnx-kernel exact`),
which spell XNNPACK's per-token rounding out in many small operators and are slower.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from atom_deploy.backends.onnx_int4 import quantize_weight_int4
from atom_deploy.backends.onnx_int8 import PREFIX, int8_matmul, quantize_weight, rewrite_matmuls
from atom_deploy.export.quantize import QuantRecipe

DOMAIN = "com.microsoft"
INT8_COMPUTE = 4  # MatMulNBits accuracy_level: int8 activations, integer dot products
ZERO_POINT = 8  # the operator's default for 4-bit codes: code = int4 + 8
ZERO_POINT_8BIT = 128  # and for 8-bit codes: code = int8 + 128
# Inputs per activation scale for 8-bit weights: 32, the finest block ONNX Runtime's int8
# kernels take, divides every Linear width of the kit's models and of Llama-style checkpoints.
INT8_BLOCK = 32


def quantize_matmuls_nbits(model: onnx.ModelProto, recipe: QuantRecipe) -> int:
    """Rewrite every MatMul with a 2-D constant weight onto MatMulNBits: 4-bit where the recipe
    groups the Linear, 8-bit otherwise; the exact int8 rewrite where K is no multiple of INT8_BLOCK."""

    def rewrite(name: str, x: str, w: np.ndarray, bias: np.ndarray | None, out: str):
        group = recipe.linear_group(w.shape[0])
        if group is not None:
            return nbits_matmul(name, x, w, bias, out, group)
        if w.shape[0] % INT8_BLOCK == 0:
            return nbits8_matmul(name, x, w, bias, out)
        return int8_matmul(name, x, w, bias, out)

    rewritten = rewrite_matmuls(model, rewrite)
    if rewritten and not any(o.domain == DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(DOMAIN, 1))
    _drop_unused_shared_constants(model.graph)
    return rewritten


def _drop_unused_shared_constants(graph: onnx.GraphProto) -> None:
    # The int8 rewrite's shared constants serve only its fallback Linears; without any,
    # ONNX Runtime would warn about each one at every load.
    used = {name for node in graph.node for name in node.input}
    unused = [n for n in graph.node if n.op_type == "Constant" and n.output[0].startswith(f"{PREFIX}_")
              and n.output[0] not in used]
    for node in unused:
        graph.node.remove(node)


def pack_codes(w_q: np.ndarray, group: int) -> np.ndarray:
    """int4 [K, N] in [-8, 7] -> uint8 [N, K / group, group / 2]: codes int4 + 8, low nibble first along K."""
    k, n = w_q.shape
    codes = (w_q.astype(np.int16) + ZERO_POINT).astype(np.uint8).T.reshape(n, k // group, group // 2, 2)
    return (codes[..., 0] | (codes[..., 1] << 4)).astype(np.uint8)


def unpack_codes(packed: np.ndarray, k: int) -> np.ndarray:
    """The inverse of pack_codes: uint8 [N, K / group, group / 2] -> int4 values [K, N]."""
    n = packed.shape[0]
    pairs = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(n, k)
    return (pairs.astype(np.int16) - ZERO_POINT).astype(np.int8).T


def nbits_matmul(name: str, x: str, w: np.ndarray, bias: np.ndarray | None, out: str, group: int):
    """A 4-bit MatMulNBits: torchao's int4 integers per group."""
    w_q, scale = quantize_weight_int4(w, group)  # scale: [K / group, N]
    return _matmul_nbits(name, x, pack_codes(w_q, group), scale.T, bias, out, w.shape, 4, group)


def nbits8_matmul(name: str, x: str, w: np.ndarray, bias: np.ndarray | None, out: str):
    """An 8-bit MatMulNBits: torchao's int8 integers per output channel, the scale repeated per block."""
    k, n = w.shape
    w_q, scale = quantize_weight(w)  # scale: [N]
    codes = (w_q.astype(np.int16) + ZERO_POINT_8BIT).astype(np.uint8).T.reshape(n, k // INT8_BLOCK, INT8_BLOCK)
    return _matmul_nbits(name, x, codes, np.repeat(scale[:, None], k // INT8_BLOCK, axis=1), bias, out, w.shape, 8, INT8_BLOCK)


def _matmul_nbits(name: str, x: str, codes: np.ndarray, scale: np.ndarray, bias: np.ndarray | None, out: str,
                  shape: tuple[int, int], bits: int, block: int):
    k, n = shape
    packed = f"{name}_w_u4x2" if bits == 4 else f"{name}_w_u8"
    inits = [
        numpy_helper.from_array(codes, packed),
        numpy_helper.from_array(np.ascontiguousarray(scale, dtype=np.float32), f"{name}_w_scale"),  # [N, K / block]
    ]
    inputs = [x, packed, f"{name}_w_scale"]
    if bias is not None:  # MatMulNBits' own bias input (after zero_points and g_idx, both absent)
        inits.append(numpy_helper.from_array(bias.astype(np.float32), f"{name}_bias"))
        inputs += ["", "", f"{name}_bias"]
    node = helper.make_node("MatMulNBits", inputs, [out], name=f"{name}_nbits", domain=DOMAIN,
                            K=k, N=n, bits=bits, block_size=block, accuracy_level=INT8_COMPUTE)
    return inits, [node]
