"""8da4w Linear layers on ONNX Runtime's own int4 kernel, `com.microsoft.MatMulNBits`.

The weights are the recipe's: torchao's int4 integers per group of G input features and
their bfloat16-valued scales (`onnx_int4.quantize_weight_int4`, the same integers the
ExecuTorch export holds). MatMulNBits stores them transposed, `[N, K / G, G / 2]` bytes of
two 4-bit codes each (the lower K index in the low nibble), as `int4 + 8` with the
operator's default zero point of 8, and one float32 scale per (output, group).

`accuracy_level=4` lets MLAS quantize the activations to int8 and sum in integers, as
XNNPACK does, but per block of K and symmetric, not per token and asymmetric: outputs
are close to the ExecuTorch export's, not equal (docs/quantization.md has the measured
difference). This is the fast path: the weights stay packed in memory and each step
reads half a byte per weight. `onnx_int4.py` is the bit-exact alternative
(`--int4-kernel exact`), which unpacks in the graph and is many times slower.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from atom_deploy.backends.onnx_int4 import quantize_weight_int4
from atom_deploy.backends.onnx_int8 import PREFIX, int8_matmul, rewrite_matmuls

DOMAIN = "com.microsoft"
INT8_COMPUTE = 4  # MatMulNBits accuracy_level: int8 activations, integer dot products
ZERO_POINT = 8  # the operator's default for 4-bit codes: code = int4 + 8


def quantize_matmuls_nbits(model: onnx.ModelProto, group_size: int) -> int:
    """Rewrite every MatMul with a 2-D constant weight: MatMulNBits, or int8 where K % group_size."""

    def rewrite(name: str, x: str, w: np.ndarray, bias: np.ndarray | None, out: str):
        if w.shape[0] % group_size:  # the recipe's int8 fallback (QuantRecipe.linear_group)
            return int8_matmul(name, x, w, bias, out)
        return nbits_matmul(name, x, w, bias, out, group_size)

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
    k, n = w.shape
    w_q, scale = quantize_weight_int4(w, group)  # scale: [K / group, N]
    inits = [
        numpy_helper.from_array(pack_codes(w_q, group), f"{name}_w_u4x2"),
        numpy_helper.from_array(np.ascontiguousarray(scale.T, dtype=np.float32), f"{name}_w_scale"),
    ]
    inputs = [x, f"{name}_w_u4x2", f"{name}_w_scale"]
    if bias is not None:  # MatMulNBits' own bias input (after zero_points and g_idx, both absent)
        inits.append(numpy_helper.from_array(bias.astype(np.float32), f"{name}_bias"))
        inputs += ["", "", f"{name}_bias"]
    node = helper.make_node("MatMulNBits", inputs, [out], name=f"{name}_nbits", domain=DOMAIN,
                            K=k, N=n, bits=4, block_size=group, accuracy_level=INT8_COMPUTE)
    return inits, [node]
