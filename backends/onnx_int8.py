"""int8 Linear layers for ONNX on ONNX Runtime's integer MatMul, rounding as ExecuTorch does.

Each `MatMul(X, W)` with a constant weight becomes the arithmetic the ExecuTorch export runs
(torchao 8da8w, lowered to XNNPACK's dynamically quantized GEMM), integer for integer:

- weights: torchao's int8 mapping, symmetric per output channel, `sw = amax / 127.5` over
  [-128, 127] and `Wq = round(W * (1 / sw))`. The multiply by the reciprocal is torchao's; dividing
  instead moved 42 of 131,072 weights of a 256x512 layer by one step.
- activations: XNNPACK's qd8 parameters, per token, chosen at run time. Over the range widened
  to include 0, `m = 255 / (max - min)`, the int8 zero point is `rint(-128 - min * m)` (or the
  same from the max end, whichever float rounds closer), and
  `Xq = clip(rint(X * (1 / (1 / m))) + zp, -128, 127)`.
- output: `fma(float(sum((Xq - zp) * Wq)) * (1 / m), sw, bias)`, the int32 sum exact and the
  bias (an `Add` right after the MatMul, folded in) added in one rounding, as XNNPACK adds it.

Matching XNNPACK's rounding, not just its scheme, is what keeps the two int8 backends on the
same captions: with torchao's `range / 255` activation scale and divided weights, 8% of a
Linear's outputs moved by a quantization step, and the two backends' beam searches parted on
2% of the demo's captions. `tests/test_onnx_int8.py` checks equality with the ExecuTorch runtime.

Kernel choices measured on this 2-core AVX2 (no VNNI) machine:
- onnxruntime's `quantize_dynamic` scales activations per *tensor*: cosine 0.997 to the int8
  reference and a different first greedy token on the tiny export.
- uint8 activations x int8 weights sums pairs in saturating 16-bit lanes on AVX2: MiniLM
  cosine fell to 0.975 and the decoder diverged at step 1.
- int8 x int8 is exact but ~20x slower (24.7 ms vs 0.5 ms for a 1x2048x8192 MatMul).
- uint8 x uint8 (both offset by 128, weight zero point 128) widens to 16 bits before summing:
  exact and the fastest of the four. The activation zero point is per token, which ORT's
  MatMulInteger cannot take, so it is folded out, in int32, through the weights' column sums.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OP_TYPE = "MatMul"
PREFIX = "atomq"

# (rewrite name, activation input, float32 weight [K, N], float32 bias [N] or None, output)
#   -> (new initializers, new nodes)
Rewrite = Callable[[str, str, np.ndarray, "np.ndarray | None", str], tuple[list[onnx.TensorProto], list[onnx.NodeProto]]]


def quantize_matmuls_per_token(model: onnx.ModelProto) -> int:
    """Rewrite every MatMul with a 2-D constant weight in place (int8); returns how many."""
    return rewrite_matmuls(model, int8_matmul)


def rewrite_matmuls(model: onnx.ModelProto, rewrite: Rewrite) -> int:
    """Replace every MatMul with a 2-D float constant weight (and its bias Add) by `rewrite`'s nodes."""
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    consumers = consumers_by_input(graph)
    uses = {name: len(nodes) for name, nodes in consumers.items()}
    new_nodes: list[onnx.NodeProto] = []
    folded: set[int] = set()  # id() of bias Adds taken into a rewrite
    rewritten = 0
    for node in graph.node:
        if id(node) in folded:
            continue
        weight = initializers.get(node.input[1]) if node.op_type == OP_TYPE else None
        if weight is None or len(weight.dims) != 2 or weight.data_type != TensorProto.FLOAT:
            new_nodes.append(node)
            continue
        name, out, bias = f"{PREFIX}{rewritten}", node.output[0], None
        bias_add = find_bias_add(node.output[0], weight.dims[1], consumers, initializers)
        if bias_add is not None:
            bias, out = numpy_helper.to_array(initializers[bias_add.input[1]]), bias_add.output[0]
            folded.add(id(bias_add))
            uses[bias_add.input[1]] -= 1
        inits, nodes = rewrite(name, node.input[0], numpy_helper.to_array(weight), bias, out)
        graph.initializer.extend(inits)
        new_nodes += nodes
        rewritten += 1
        uses[weight.name] -= 1
    del graph.node[:]
    graph.node.extend(_constants() + new_nodes if rewritten else new_nodes)
    unused = [i for i in graph.initializer if uses.get(i.name, 1) == 0]
    for init in unused:
        graph.initializer.remove(init)
    return rewritten


def int8_matmul(name: str, x: str, w: np.ndarray, bias: np.ndarray | None, out: str):
    """One MatMul (+ bias) as XNNPACK's qd8-f32-qc8w GEMM computes it (see the module docstring)."""
    w_q, w_scale = quantize_weight(w)
    inits = [
        # stored as uint8 = int8 + 128 with zero point 128: see the module docstring
        numpy_helper.from_array((w_q.astype(np.int16) + 128).astype(np.uint8), f"{name}_w_u8"),
        numpy_helper.from_array(w_scale, f"{name}_w_scale"),
        # sum over K of Wq per output column: folds the activation zero point out
        numpy_helper.from_array(w_q.astype(np.int32).sum(axis=0, dtype=np.int32), f"{name}_w_colsum"),
    ]
    if bias is not None:
        inits += [
            numpy_helper.from_array(w_scale.astype(np.float64), f"{name}_w_scale64"),
            numpy_helper.from_array(bias.astype(np.float64), f"{name}_bias64"),
        ]
    return inits, _per_token_matmul(name, x, f"{name}_w", out, bias is not None)


def consumers_by_input(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    """Each value name -> the nodes that read it."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return consumers


def find_bias_add(matmul_out: str, columns: int, consumers: dict, initializers: dict) -> onnx.NodeProto | None:
    """The `Add(matmul_out, bias)` that is the MatMul's only consumer, if there is one.

    XNNPACK adds a Linear's bias in a fused multiply-add with the output scale; folding the
    Add into the rewrite lets it do the same (see _per_token_matmul).
    """
    users = consumers.get(matmul_out, [])
    if len(users) != 1 or users[0].op_type != "Add" or users[0].input[0] != matmul_out:
        return None
    bias = initializers.get(users[0].input[1])
    ok = bias is not None and bias.data_type == TensorProto.FLOAT and list(bias.dims) == [columns]
    return users[0] if ok else None


def quantize_weight(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[K, N] float32 -> int8 [K, N] and one float32 scale per output column, as torchao maps them."""
    amax = np.abs(w).max(axis=0).astype(np.float32)
    scale = np.maximum(amax / np.float32(127.5), np.finfo(np.float32).smallest_normal).astype(np.float32)
    inverse = (np.float32(1.0) / scale).astype(np.float32)
    return np.clip(np.round(w * inverse), -128, 127).astype(np.int8), scale


def _constants() -> list[onnx.NodeProto]:
    values = {
        "axes": np.array([-1], dtype=np.int64),
        "zero": np.array(0.0, dtype=np.float32),
        "one": np.array(1.0, dtype=np.float32),
        "levels": np.array(255.0, dtype=np.float32),
        "qmin": np.array(-128.0, dtype=np.float32),
        "qmax": np.array(127.0, dtype=np.float32),
        "offset": np.array(128.0, dtype=np.float32),
        "wzp": np.array(128, dtype=np.uint8),
    }
    return [
        helper.make_node("Constant", [], [f"{PREFIX}_{k}"], value=numpy_helper.from_array(v, f"{PREFIX}_{k}"))
        for k, v in values.items()
    ]


def per_token_activation(name: str, x: str) -> list[onnx.NodeProto]:
    """XNNPACK's qd8 quantizer: `{name}_xc` (int8 values, as float), `{name}_zp`, `{name}_inv` (1/m)."""
    c = lambda k: f"{PREFIX}_{k}"  # noqa: E731  shared constants
    t = lambda k: f"{name}_{k}"  # noqa: E731  this rewrite's intermediates
    node = helper.make_node
    return [
        # per-token range, widened to include 0 so that 0 is exactly representable
        node("ReduceMin", [x, c("axes")], [t("min0")], keepdims=1),
        node("ReduceMax", [x, c("axes")], [t("max0")], keepdims=1),
        node("Min", [t("min0"), c("zero")], [t("min")]),
        node("Max", [t("max0"), c("zero")], [t("max")]),
        node("Sub", [t("max"), t("min")], [t("range")]),
        # m = 255 / range, or 1 for an all-zero token (Where drops the inf)
        node("Div", [c("levels"), t("range")], [t("m0")]),
        node("Equal", [t("range"), c("zero")], [t("flat")]),
        node("Where", [t("flat"), c("one"), t("m0")], [t("m")]),
        # zero point from whichever end of the range float rounds closer, as XNNPACK picks it
        node("Mul", [t("min"), t("m")], [t("min_m")]),
        node("Mul", [t("max"), t("m")], [t("max_m")]),
        node("Add", [c("qmin"), t("min_m")], [t("err_lo")]),
        node("Add", [c("qmax"), t("max_m")], [t("err_hi")]),
        node("Add", [t("err_lo"), t("err_hi")], [t("err")]),
        node("Greater", [t("err"), c("zero")], [t("from_min")]),
        node("Sub", [c("qmin"), t("min_m")], [t("zp_lo")]),
        node("Sub", [c("qmax"), t("max_m")], [t("zp_hi")]),
        node("Where", [t("from_min"), t("zp_lo"), t("zp_hi")], [t("zp0")]),
        node("Clip", [t("zp0"), c("qmin"), c("qmax")], [t("zp1")]),
        node("Round", [t("zp1")], [t("zp")]),  # int8 zero point, held as float
        # XNNPACK dequantizes by 1/m and quantizes by the reciprocal of that
        node("Div", [c("one"), t("m")], [t("inv")]),
        node("Div", [c("one"), t("inv")], [t("cvt")]),
        node("Mul", [x, t("cvt")], [t("xs")]),
        node("Round", [t("xs")], [t("xr")]),
        node("Add", [t("xr"), t("zp")], [t("xz")]),
        node("Clip", [t("xz"), c("qmin"), c("qmax")], [t("xc")]),
    ]


def _per_token_matmul(name: str, x: str, weight: str, out: str, has_bias: bool) -> list[onnx.NodeProto]:
    c = lambda k: f"{PREFIX}_{k}"  # noqa: E731  shared constants
    t = lambda k: f"{name}_{k}"  # noqa: E731  this rewrite's intermediates
    node = helper.make_node
    return per_token_activation(name, x) + [
        # int8 -> uint8 by +128 on both sides: Xq_u8 @ (Wu8 - 128) = (Xq + 128) @ Wq, exact in int32
        node("Add", [t("xc"), c("offset")], [t("xu")]),
        node("Cast", [t("xu")], [t("xq")], to=TensorProto.UINT8),
        node("MatMulInteger", [t("xq"), f"{weight}_u8", "", c("wzp")], [t("acc")]),
        # (Xq + 128 - (zp + 128)) @ Wq = acc - (zp + 128) * colsum(Wq)
        node("Add", [t("zp"), c("offset")], [t("zpu")]),
        node("Cast", [t("zpu")], [t("zpi")], to=TensorProto.INT32),
        node("Mul", [t("zpi"), f"{weight}_colsum"], [t("corr")]),
        node("Sub", [t("acc"), t("corr")], [t("acc0")]),
        node("Cast", [t("acc0")], [t("accf")], to=TensorProto.FLOAT),
        node("Mul", [t("accf"), t("inv")], [t("ys")]),
    ] + ([
        # y * sw + bias rounded once, as XNNPACK's fused multiply-add does: the float32
        # product is exact in float64, so only the sum rounds (twice, which differs from one
        # rounding only on an exact float64 tie)
        node("Cast", [t("ys")], [t("ys64")], to=TensorProto.DOUBLE),
        node("Mul", [t("ys64"), f"{weight}_scale64"], [t("yw64")]),
        node("Add", [t("yw64"), t("bias64")], [t("out64")]),
        node("Cast", [t("out64")], [out], to=TensorProto.FLOAT),
    ] if has_bias else [
        node("Mul", [t("ys"), f"{weight}_scale"], [out]),
    ])
