"""ONNX: one graph per entry point, run by ONNX Runtime; the runner holds the KV cache.

Graphs come from torch.onnx's dynamo exporter. Quantized Linear layers are a graph rewrite
onto ONNX Runtime's MatMulInteger that rounds as the ExecuTorch export does: int8 in
onnx_int8.py (which says why not onnxruntime's own quantize_dynamic), 8da4w in onnx_int4.py
(bit-exact), or, for either recipe, on ONNX Runtime's own MatMulNBits in onnx_nbits.py
(`--onnx-kernel matmulnbits`: fast, not bit-exact). Linears that read the same input arrive
as one MatMul (the export fuses them, models/fused_linear.py). Embeddings are already int8
from the shared source transform.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from atom_deploy.backends import register_backend
from atom_deploy.backends.base import Backend, WrittenEntry
from atom_deploy.backends.onnx_int4 import quantize_matmuls_8da4w
from atom_deploy.backends.onnx_int8 import quantize_matmuls_per_token
from atom_deploy.backends.onnx_nbits import quantize_matmuls_nbits
from atom_deploy.backends.xnnpack_probe import xnnpack_bias_rounding
from atom_deploy.export.contract import EntryPoint, ExportableModule
from atom_deploy.export.quantize import QuantRecipe, linear_record, quantize_embeddings
from atom_runner.schema import Entry, KVStyle

OPSET = 18
# Graphs past protobuf's 2 GB limit keep their weights in a sidecar file.
EXTERNAL_DATA_BYTES = 1 << 30


@register_backend("onnx")
class OnnxBackend(Backend):
    suffix = ".onnx"
    kv_style = KVStyle.RUNNER_HELD

    def quantize(self, model: nn.Module, mode: str | QuantRecipe) -> None:
        if QuantRecipe.of(mode).quantized:
            quantize_embeddings(model)

    def export(self, module: ExportableModule, out_dir: Path, mode: str | QuantRecipe) -> list[WrittenEntry]:
        recipe = QuantRecipe.of(mode)
        written = []
        for entry in module.entry_points:
            stem = module.name if entry.name == Entry.FORWARD else f"{module.name}.{entry.name}"
            path = out_dir / f"{stem}{self.suffix}"
            program = _export_entry(entry)
            if recipe.quantized:
                # A quantized graph is at most a quarter of the fp32 one, so it fits a protobuf.
                model = program.model_proto
                if recipe.onnx_kernel == "matmulnbits":
                    quantize_matmuls_nbits(model, recipe)
                elif recipe.mode == "8da4w":
                    quantize_matmuls_8da4w(model, recipe.group_size, xnnpack_bias_rounding())
                else:
                    quantize_matmuls_per_token(model)
                _save(model, path)
            else:
                big = _parameter_bytes(entry.module) > EXTERNAL_DATA_BYTES
                program.save(str(path), external_data=big)
            files = [path] + sorted(out_dir.glob(f"{path.name}.data"))
            written.append(WrittenEntry(entry.name, path, tuple(files)))
        return written

    def quantization_record(self, mode: str | QuantRecipe) -> dict[str, Any]:
        recipe = QuantRecipe.of(mode)
        int8 = ("atom_deploy MatMul (+ bias Add) -> MatMulInteger rewrite (backends/onnx_int8.py): torchao's weight integers, "
                "XNNPACK's qd8 activation rounding; activations held as uint8 = int8 + 128")
        if recipe.onnx_kernel == "matmulnbits":
            weights = (f"int4 integers and float32 scales per {recipe.group_size} inputs; int8 ones per output channel "
                       f"for the fallback Linears" if recipe.mode == "8da4w" else "int8 integers per output channel")
            record = linear_record(recipe, "atom_deploy MatMul (+ bias Add) -> com.microsoft MatMulNBits (backends/onnx_nbits.py): "
                                           f"torchao's {weights}; accuracy_level 4: activations int8 per block of K, "
                                           "symmetric (not XNNPACK's per-token rounding: close, not equal)")
            record["linear"]["onnx_kernel"] = recipe.onnx_kernel
            return record
        if recipe.mode != "8da4w":
            return linear_record(recipe, int8)
        record = linear_record(recipe, "atom_deploy MatMul (+ bias Add) -> MatMulInteger + Scan rewrite (backends/onnx_int4.py): "
                                       f"torchao's int4 integers and bf16 scales per {recipe.group_size} inputs, packed two per byte; "
                                       "XNNPACK's qd8 activation rounding and qb4w summation order; not MatMulNBits; "
                                       f"fallback: {int8}")
        # the exporting machine's XNNPACK kernel's (xnnpack_probe.py): another CPU may round biases the other way
        record["linear"]["bias_rounding"] = xnnpack_bias_rounding()
        return record


def _export_entry(entry: EntryPoint) -> torch.onnx.ONNXProgram:
    with torch.no_grad():
        program = torch.onnx.export(
            entry.module,
            entry.example_inputs,
            input_names=[s.name for s in entry.inputs],
            output_names=[o.name for o in entry.outputs],
            dynamic_shapes=entry.dynamic_shapes(),
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    program.optimize()
    return program


def _parameter_bytes(module: nn.Module) -> int:
    tensors = {id(t): t for t in (*module.parameters(), *module.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def _save(model: onnx.ModelProto, path: Path) -> None:
    big = model.ByteSize() > EXTERNAL_DATA_BYTES
    onnx.save_model(model, str(path), save_as_external_data=big, location=f"{path.name}.data")
