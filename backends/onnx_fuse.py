"""One MatMul for the Linears that read the same input (q, k and v; gate and up).

Before a quantized rewrite, `fuse_sibling_matmuls` concatenates the weights of MatMuls that
share their activation input along the output axis, runs them as one MatMul (and one bias
Add, where each had one) and splits the result back into the original outputs.

Each output column is computed from the same inputs, weights and bias as before: per-channel
and per-group weight quantization work column by column, and the per-token activation
rounding was already shared. So the quantized graph computes the same numbers (the ONNX int8
and ExecuTorch tests still compare for equality), while ONNX Runtime runs one kernel and one
output-side rounding chain where it ran three, and dispatches a third of the nodes.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from atom_deploy.backends.onnx_int8 import consumers_by_input, find_bias_add

PREFIX = "atomfuse"


def fuse_sibling_matmuls(model: onnx.ModelProto) -> int:
    """Fuse each group of 2+ MatMuls with one input and 2-D float constant weights; returns the groups fused."""
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    consumers = consumers_by_input(graph)
    groups: dict[tuple[str, int], list[onnx.NodeProto]] = {}
    for node in graph.node:
        weight = initializers.get(node.input[1]) if node.op_type == "MatMul" else None
        if weight is not None and len(weight.dims) == 2 and weight.data_type == TensorProto.FLOAT \
                and len(consumers.get(weight.name, [])) == 1:
            groups.setdefault((node.input[0], weight.dims[0]), []).append(node)
    fused = 0
    for (x, _), nodes in groups.items():
        if len(nodes) < 2:
            continue
        adds = [_bias_add(n, initializers, consumers) for n in nodes]
        if any(a is None for a in adds) and not all(a is None for a in adds):
            continue  # some with a bias, some without: left as they are
        _fuse(graph, f"{PREFIX}{fused}", x, nodes, adds, initializers)
        fused += 1
    return fused


def _bias_add(node: onnx.NodeProto, initializers: dict, consumers: dict) -> onnx.NodeProto | None:
    """The MatMul's bias Add (onnx_int8.find_bias_add), if its bias is this Add's alone to concatenate."""
    add = find_bias_add(node.output[0], initializers[node.input[1]].dims[1], consumers, initializers)
    return add if add is not None and len(consumers.get(add.input[1], [])) == 1 else None


def _fuse(graph: onnx.GraphProto, name: str, x: str, nodes: list, adds: list, initializers: dict) -> None:
    weights = [initializers[n.input[1]] for n in nodes]
    columns = [w.dims[1] for w in weights]
    new_inits = [numpy_helper.from_array(np.concatenate([numpy_helper.to_array(w) for w in weights], axis=1), f"{name}_w"),
                 numpy_helper.from_array(np.array(columns, dtype=np.int64), f"{name}_split")]
    new_nodes = [helper.make_node("MatMul", [x, f"{name}_w"], [f"{name}_y"], name=f"{name}_matmul")]
    split_input, outputs = f"{name}_y", [n.output[0] for n in nodes]
    gone = list(nodes) + [a for a in adds if a is not None]
    old_inits = list(weights)
    if adds[0] is not None:
        biases = [initializers[a.input[1]] for a in adds]
        new_inits.append(numpy_helper.from_array(np.concatenate([numpy_helper.to_array(b) for b in biases]), f"{name}_b"))
        new_nodes.append(helper.make_node("Add", [f"{name}_y", f"{name}_b"], [f"{name}_yb"], name=f"{name}_add"))
        split_input, outputs = f"{name}_yb", [a.output[0] for a in adds]
        old_inits += biases
    new_nodes.append(helper.make_node("Split", [split_input, f"{name}_split"], outputs, name=f"{name}_split", axis=-1))
    # At the first sibling's place: the input exists there, and every output's reader comes later.
    firsts = {n.output[0] for n in nodes}
    at = min(i for i, n in enumerate(graph.node) if n.output[0] in firsts)
    for node in gone:
        graph.node.remove(node)
    for offset, node in enumerate(new_nodes):
        graph.node.insert(at + offset, node)
    for init in old_inits:
        graph.initializer.remove(init)
    graph.initializer.extend(new_inits)
