"""8da4w Linear layers for ONNX, computing what ExecuTorch's XNNPACK int4 GEMM computes, float for float.

ExecuTorch runs torchao's 8da4w Linear on XNNPACK's qd8-f32-qb4w GEMM (the AVX2 `8c8`
kernels on this machine). Each `MatMul(X, W)` with a constant weight becomes that arithmetic:

- weights: torchao's int4 mapping per group of G input features, symmetric over [-8, 7],
  `s = bf16(amax / 7.5)`, `Wq = round(W * bf16(1 / s))`. XNNPACK keeps block scales as
  bfloat16, so the recipe rounds them there (export/quantize.py), and so do we.
- activations: XNNPACK's qd8 per-token quantizer, shared with the int8 rewrite
  (onnx_int8.per_token_activation): int8 `Xq`, zero point `zp`, `1 / m`.
- the sum: the kernel keeps 4 float partial sums per output: partial l takes the inputs k
  with `k mod 8` in {2l, 2l+1}. Per group b it adds the exact int32 `sum(Xq * Wq)` over its
  inputs with `fma(float(acc), s_b, partial)`, group after group. Partial 0 starts at
  `zp * init`, where `init = -sum(ksum_c * s)` over 16-wide chunks of the weights, summed in
  float in that order when XNNPACK packs them. Then `(p0 + p1) + (p2 + p3)`, times `1 / m`,
  plus the bias: the AVX2 kernels do the last two as one `fma(that, 1 / m, bias)`, the
  AVX-512 VNNI ones round the product to float32 first. Which one this machine's XNNPACK
  runs is measured, not assumed (xnnpack_probe.py), and named by `bias_rounding`.

The graph does the same: int4 nibbles packed two per byte and bfloat16 scales in the file
(unpacked once, by ONNX Runtime's constant folding at load), one MatMulInteger over (group, partial) batches,
a Scan over the groups for the fused multiply-adds, each done in float64 and rounded once
to float32 (the product is exact in float64; the sum rounds twice, which can differ from
one rounding only on an exact tie), then the two adds and the final fma the same way.
`tests/test_quant_8da4w.py` checks equality with the ExecuTorch runtime.

This is the default ONNX 8da4w graph because it gives XNNPACK's numbers. onnxruntime's own
`MatMulNBits` (onnx_nbits.py, `--onnx-kernel matmulnbits`) is much faster but quantizes
activations per block of K (symmetric), not per token, so its outputs are close, not equal
(docs/quantization.md has the measured difference).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from atom_deploy.backends.onnx_int8 import PREFIX, int8_matmul, per_token_activation, rewrite_matmuls

LANES = 4  # float partial sums per output in XNNPACK's 8c8 kernels (madd over input pairs)
CHUNK = 16  # inputs per weight-sum chunk when XNNPACK packs the weights (2 * kr, kr = 8)
INT4_MIN, INT4_MAX = -8, 7
# How the kernel adds a bias to `sum * (1 / m)`: one fused multiply-add, or the product rounded first.
BIAS_ROUNDINGS = ("fma", "separate")


def quantize_matmuls_8da4w(model: onnx.ModelProto, group_size: int, bias_rounding: str = "fma") -> int:
    """Rewrite every MatMul with a 2-D constant weight: int4 groups, or int8 where K % group_size."""
    if bias_rounding not in BIAS_ROUNDINGS:
        raise ValueError(f"bias_rounding must be one of {BIAS_ROUNDINGS}, got {bias_rounding!r}")

    def rewrite(name: str, x: str, w: np.ndarray, bias: np.ndarray | None, out: str):
        if w.shape[0] % group_size:  # the recipe's int8 fallback (QuantRecipe.linear_group)
            return int8_matmul(name, x, w, bias, out)
        return int4_matmul(name, x, w, bias, out, group_size, bias_rounding)

    return rewrite_matmuls(model, rewrite)


def to_bfloat16(a: np.ndarray) -> np.ndarray:
    """Round float32 to the nearest bfloat16 (ties to even), held as float32, as torch's .to(bfloat16)."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32)


def quantize_weight_int4(w: np.ndarray, group: int) -> tuple[np.ndarray, np.ndarray]:
    """[K, N] float32 -> int8 [K, N] in [-8, 7] and a bfloat16-valued float32 scale [K / group, N], as torchao maps them."""
    k, n = w.shape
    blocks = w.astype(np.float32).reshape(k // group, group, n)
    amax = np.abs(blocks).max(axis=1)
    scale = to_bfloat16(np.maximum(amax / np.float32(7.5), np.finfo(np.float32).smallest_normal))
    inverse = to_bfloat16(np.float32(1.0) / scale)  # torchao: 1.0 / scale, computed in bfloat16
    q = np.clip(np.round(blocks * inverse[:, None, :]), INT4_MIN, INT4_MAX).astype(np.int8)
    return q.reshape(k, n), scale


def packed_init(w_q: np.ndarray, scale: np.ndarray, group: int) -> np.ndarray:
    """XNNPACK's per-output start value, -sum over 16-input chunks of ksum * s, in float32, in its order."""
    init = np.zeros(w_q.shape[1], dtype=np.float32)
    for start in range(0, w_q.shape[0], CHUNK):
        ksum = w_q[start:start + CHUNK].astype(np.int32).sum(axis=0).astype(np.float32)
        init = (init - ksum * scale[start // group]).astype(np.float32)
    return init


def int4_matmul(name: str, x: str, w: np.ndarray, bias: np.ndarray | None, out: str, group: int, bias_rounding: str):
    k, n = w.shape
    blocks, pairs = k // group, group // (2 * LANES)
    w_q, scale = quantize_weight_int4(w, group)
    # k = b * G + j * 8 + l * 2 + p  ->  [b, l, j, p, n]: one (group, partial) batch per [b, l]
    lanes = w_q.reshape(blocks, pairs, LANES, 2, n).transpose(0, 2, 1, 3, 4).astype(np.int16) + 8  # uint4
    packed = (lanes[:, :, :, 0] | (lanes[:, :, :, 1] << 4)).astype(np.uint8)  # [b, l, j, n]
    t = lambda s: f"{name}_{s}"  # noqa: E731
    arr = numpy_helper.from_array
    inits = [
        arr(packed, t("w_u4x2")),
        _bfloat16_tensor(scale.reshape(blocks, 1, 1, n), t("w_scale_bf16")),
        arr(packed_init(w_q, scale, group), t("w_init")),
        arr(np.eye(LANES, 1, dtype=np.float32).reshape(LANES, 1, 1), t("lane0")),
        arr(np.array([-1, blocks, pairs, LANES, 2], dtype=np.int64), t("x_split")),
        arr(np.array([blocks, LANES, -1, 2 * pairs], dtype=np.int64), t("x_batches")),
        arr(np.array([blocks, LANES, 2 * pairs, n], dtype=np.int64), t("w_batches")),
        arr(np.array([-1, 1], dtype=np.int64), t("column")),
        arr(np.array([n], dtype=np.int64), t("n")),
        arr(np.array(15, dtype=np.uint8), t("low_nibble")),
        arr(np.array(4, dtype=np.uint8), t("four")),
        arr(np.array(8, dtype=np.uint8), t("wzp4")),
        arr(np.array([3], dtype=np.int64), t("pair_axis")),
        arr(np.array([0], dtype=np.int64), t("first")),
    ]
    if bias is not None:
        inits.append(arr(bias.astype(np.float64), t("bias64")))
    node = helper.make_node
    nodes = per_token_activation(name, x) + [
        # activations: int8 -> uint8 (+128, zero point 128 below), then one batch per (group, partial)
        node("Add", [t("xc"), f"{PREFIX}_offset"], [t("xu")]),
        node("Cast", [t("xu")], [t("xq")], to=TensorProto.UINT8),
        node("Reshape", [t("xq"), t("x_split")], [t("x5")]),
        node("Transpose", [t("x5")], [t("xt")], perm=[1, 3, 0, 2, 4]),
        node("Reshape", [t("xt"), t("x_batches")], [t("xb")]),
        # weights: two uint4 (= int4 + 8) per byte -> one per byte; constant, so folded at load
        node("BitwiseAnd", [t("w_u4x2"), t("low_nibble")], [t("w_lo")]),
        node("BitShift", [t("w_u4x2"), t("four")], [t("w_hi")], direction="RIGHT"),
        node("Unsqueeze", [t("w_lo"), t("pair_axis")], [t("w_lo5")]),
        node("Unsqueeze", [t("w_hi"), t("pair_axis")], [t("w_hi5")]),
        node("Concat", [t("w_lo5"), t("w_hi5")], [t("w5")], axis=3),
        node("Reshape", [t("w5"), t("w_batches")], [t("wb")]),
        node("Cast", [t("w_scale_bf16")], [t("w_scale64")], to=TensorProto.DOUBLE),  # exact; folded at load
        # exact int32 sum(Xq * Wq) per group, partial, token and output: [blocks, 4, T, N]
        node("MatMulInteger", [t("xb"), t("wb"), f"{PREFIX}_wzp", t("wzp4")], [t("acc")]),
        node("Cast", [t("acc")], [t("accf")], to=TensorProto.FLOAT),
        # partial 0 starts at zp * init, the others at 0
        node("Reshape", [t("zp"), t("column")], [t("zp_t")]),
        node("Mul", [t("zp_t"), t("w_init")], [t("start")]),
        node("Mul", [t("lane0"), t("start")], [t("v0")]),
        node("Scan", [t("v0"), t("accf"), t("w_scale64")], [t("v")], num_scan_inputs=2, body=_fma_body(name)),
        # (p0 + p1) + (p2 + p3), as the kernel's two horizontal adds
        node("Split", [t("v")], [t(f"p{i}") for i in range(LANES)], axis=0, num_outputs=LANES),
        node("Add", [t("p0"), t("p1")], [t("p01")]),
        node("Add", [t("p2"), t("p3")], [t("p23")]),
        node("Add", [t("p01"), t("p23")], [t("p3d")]),
        node("Squeeze", [t("p3d"), t("first")], [t("tot")]),
        node("Reshape", [t("inv"), t("column")], [t("inv_t")]),
    ]
    if bias is not None and bias_rounding == "fma":
        nodes += [  # fma(tot, 1 / m, bias), as _fma_body does
            node("Cast", [t("tot")], [t("tot64")], to=TensorProto.DOUBLE),
            node("Cast", [t("inv_t")], [t("inv64")], to=TensorProto.DOUBLE),
            node("Mul", [t("tot64"), t("inv64")], [t("y64")]),
            node("Add", [t("y64"), t("bias64")], [t("out64")]),
            node("Cast", [t("out64")], [t("y2d")], to=TensorProto.FLOAT),
        ]
    elif bias is not None:
        nodes += [  # float32(tot / m) + bias, each rounded to float32
            node("Mul", [t("tot"), t("inv_t")], [t("y32")]),
            node("Cast", [t("y32")], [t("y64")], to=TensorProto.DOUBLE),
            node("Add", [t("y64"), t("bias64")], [t("out64")]),
            node("Cast", [t("out64")], [t("y2d")], to=TensorProto.FLOAT),
        ]
    else:
        nodes.append(node("Mul", [t("tot"), t("inv_t")], [t("y2d")]))
    nodes += [  # back to X's leading dims
        node("Shape", [x], [t("lead")], end=-1),
        node("Concat", [t("lead"), t("n")], [t("out_shape")], axis=0),
        node("Reshape", [t("y2d"), t("out_shape")], [out]),
    ]
    return inits, nodes


def _bfloat16_tensor(values: np.ndarray, name: str) -> onnx.TensorProto:
    """A BFLOAT16 initializer from bfloat16-valued float32 (the top 16 bits, exactly)."""
    bits = (np.ascontiguousarray(values, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)
    return helper.make_tensor(name, TensorProto.BFLOAT16, values.shape, bits.tobytes(), raw=True)


def _fma_body(name: str) -> onnx.GraphProto:
    """Scan body over groups: v = float32(float64(acc_b) * s_b + float64(v)), i.e. fma(acc_b, s_b, v)."""
    f, d = TensorProto.FLOAT, TensorProto.DOUBLE
    node = helper.make_node
    return helper.make_graph(
        [
            node("Cast", ["acc_b"], ["acc64"], to=d),
            node("Mul", ["acc64", "s_b"], ["prod"]),
            node("Cast", ["v_in"], ["v64"], to=d),
            node("Add", ["v64", "prod"], ["sum64"]),
            node("Cast", ["sum64"], ["v_out"], to=f),
        ],
        f"{name}_fma",
        [helper.make_tensor_value_info("v_in", f, None), helper.make_tensor_value_info("acc_b", f, None),
         helper.make_tensor_value_info("s_b", d, None)],
        [helper.make_tensor_value_info("v_out", f, None)],
    )
