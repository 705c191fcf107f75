"""int8 Linear layers for ONNX, on ONNX Runtime's integer MatMul, matching torchao's scheme.

Each `MatMul(X, W)` with a constant weight becomes the arithmetic ExecuTorch runs (torchao
8da8w): weights int8 symmetric per output channel (torchao's amax / 127.5 mapping over
[-128, 127], so both backends hold the same integers), activations quantized per token,
asymmetric, on the fly:

    s, zx = per-token range of X (widened to include 0) / 255, -round(min / s)
    Xq    = Cast<uint8>(Clip(Round(X / s) + zx, 0, 255))
    Y     = (Cast<float>(MatMulInteger(Xq, Wq + 128, b_zero_point=128)) - zx * colsum(Wq)) * s * sw

Choices measured on this 2-core AVX2 (no VNNI) machine:
- onnxruntime's `quantize_dynamic` scales activations per *tensor*: cosine 0.997 to the int8
  reference and a different first greedy token on the tiny export.
- uint8 activations x int8 weights sums pairs in saturating 16-bit lanes on AVX2: MiniLM
  cosine fell to 0.975 and the decoder diverged at step 1.
- int8 x int8 is exact but ~20x slower (24.7 ms vs 0.5 ms for a 1x2048x8192 MatMul).
- uint8 x uint8 (weights offset by 128, zero point 128) widens to 16 bits before summing:
  exact and the fastest of the four. The activation zero point is per token, which ORT's
  MatMulInteger cannot take, so it is folded out through the weights' column sums.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OP_TYPE = "MatMul"


def quantize_matmuls_per_token(model: onnx.ModelProto) -> int:
    """Rewrite every MatMul with a 2-D constant weight in place; returns how many."""
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    consumers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    shared = _constants(graph, prefix="atomq")
    new_nodes: list[onnx.NodeProto] = []
    rewritten = 0
    for node in graph.node:
        weight = initializers.get(node.input[1]) if node.op_type == OP_TYPE else None
        if weight is None or len(weight.dims) != 2 or weight.data_type != TensorProto.FLOAT:
            new_nodes.append(node)
            continue
        name = f"atomq{rewritten}"
        w = numpy_helper.to_array(weight)  # [K, N]
        # torchao's symmetric int8 mapping (amax / 127.5 over [-128, 127]), so ONNX and
        # ExecuTorch quantize every weight to the same integers.
        w_scale = np.maximum(np.abs(w).max(axis=0), 1e-12) / 127.5  # [N]
        w_q = np.clip(np.round(w / w_scale), -128, 127).astype(np.int8)
        graph.initializer.extend([
            # stored as uint8 = int8 + 128 with zero point 128: see the module docstring
            numpy_helper.from_array((w_q.astype(np.int16) + 128).astype(np.uint8), f"{weight.name}_u8"),
            numpy_helper.from_array(w_scale.astype(np.float32), f"{weight.name}_scale"),
            # sum over K of Wq per output column: folds the activation zero point out.
            numpy_helper.from_array(w_q.astype(np.float32).sum(axis=0), f"{weight.name}_colsum"),
        ])
        new_nodes += _per_token_matmul(name, node.input[0], weight.name, node.output[0])
        rewritten += 1
        consumers[weight.name] -= 1
    del graph.node[:]
    graph.node.extend(shared + new_nodes if rewritten else new_nodes)
    unused = [i for i in graph.initializer if consumers.get(i.name, 1) == 0]
    for init in unused:
        graph.initializer.remove(init)
    return rewritten


def _constants(graph: onnx.GraphProto, prefix: str) -> list[onnx.NodeProto]:
    values = {
        "axes": np.array([-1], dtype=np.int64),
        "levels": np.array(255.0, dtype=np.float32),
        "zero": np.array(0.0, dtype=np.float32),
        "eps": np.array(1e-12, dtype=np.float32),
        "wzp": np.array(128, dtype=np.uint8),
    }
    return [
        helper.make_node("Constant", [], [f"{prefix}_{k}"], value=numpy_helper.from_array(v, f"{prefix}_{k}"))
        for k, v in values.items()
    ]


def _per_token_matmul(name: str, x: str, weight: str, out: str) -> list[onnx.NodeProto]:
    c = lambda k: f"atomq_{k}"  # noqa: E731  shared constants
    t = lambda k: f"{name}_{k}"  # noqa: E731  this rewrite's intermediates
    return [
        # per-token range, widened to include 0 so that 0 is exactly representable
        helper.make_node("ReduceMin", [x, c("axes")], [t("min0")], keepdims=1),
        helper.make_node("ReduceMax", [x, c("axes")], [t("max0")], keepdims=1),
        helper.make_node("Min", [t("min0"), c("zero")], [t("min")]),
        helper.make_node("Max", [t("max0"), c("zero")], [t("max")]),
        helper.make_node("Sub", [t("max"), t("min")], [t("range")]),
        helper.make_node("Div", [t("range"), c("levels")], [t("s0")]),
        helper.make_node("Max", [t("s0"), c("eps")], [t("s")]),
        helper.make_node("Div", [t("min"), t("s")], [t("min_s")]),
        helper.make_node("Round", [t("min_s")], [t("min_r")]),
        helper.make_node("Neg", [t("min_r")], [t("zp")]),  # in [0, 255]
        helper.make_node("Div", [x, t("s")], [t("xs")]),
        helper.make_node("Round", [t("xs")], [t("xr")]),
        helper.make_node("Add", [t("xr"), t("zp")], [t("xz")]),
        helper.make_node("Clip", [t("xz"), c("zero"), c("levels")], [t("xc")]),
        helper.make_node("Cast", [t("xc")], [t("xq")], to=TensorProto.UINT8),
        # Xq @ (Wu8 - 128) = Xq @ Wq, exact in int32
        helper.make_node("MatMulInteger", [t("xq"), f"{weight}_u8", "", c("wzp")], [t("y32")]),
        helper.make_node("Cast", [t("y32")], [t("yf")], to=TensorProto.FLOAT),
        # (Xq - zp) @ Wq = Xq @ Wq - zp * colsum(Wq)
        helper.make_node("Mul", [t("zp"), f"{weight}_colsum"], [t("zcorr")]),
        helper.make_node("Sub", [t("yf"), t("zcorr")], [t("yc")]),
        helper.make_node("Mul", [t("yc"), t("s")], [t("ys")]),
        helper.make_node("Mul", [t("ys"), f"{weight}_scale"], [out]),
    ]
