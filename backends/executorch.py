"""ExecuTorch: one multi-method .pte per module, XNNPACK-delegated, KV cache in buffers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.export import export

from atom_deploy.backends import register_backend
from atom_deploy.backends.base import Backend, WrittenEntry
from atom_deploy.export.contract import EntryPoint, ExportableModule
from atom_deploy.export.quantize import QuantRecipe, linear_record, quantize_embeddings, quantize_linears_torchao
from atom_runner.schema import KVStyle


@register_backend("executorch")
class ExecuTorchBackend(Backend):
    suffix = ".pte"
    kv_style = KVStyle.IN_PLACE

    def quantize(self, model: nn.Module, mode: str | QuantRecipe) -> None:
        recipe = QuantRecipe.of(mode)
        if recipe.quantized:
            quantize_embeddings(model)
            quantize_linears_torchao(model, recipe)

    def export(self, module: ExportableModule, out_dir: Path, mode: str) -> list[WrittenEntry]:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import EdgeCompileConfig, ExecutorchBackendConfig, to_edge_transform_and_lower

        programs = {entry.name: _export_entry(entry) for entry in module.entry_points}
        edge = to_edge_transform_and_lower(
            programs,
            partitioner=[XnnpackPartitioner()],
            # Metadata travels inside the .pte too, as constant methods (get_<key>).
            constant_methods={f"get_{k}": v for k, v in module.metadata.items() if isinstance(v, int)},
            compile_config=EdgeCompileConfig(_check_ir_validity=False),
        )
        # The re-inplace pass turns the KV cache's index_put into index_put_ on its buffer:
        # without it every step copies the whole cache.
        program = edge.to_executorch(ExecutorchBackendConfig(run_reinplace_pass=True))
        path = out_dir / f"{module.name}{self.suffix}"
        path.write_bytes(program.buffer)
        return [WrittenEntry(entry.name, path, (path,)) for entry in module.entry_points]

    def quantization_record(self, mode: str | QuantRecipe) -> dict[str, Any]:
        recipe = QuantRecipe.of(mode)
        int8 = "torchao Int8DynamicActivationIntxWeightConfig(int8, PerAxis(0)) -> XNNPACK qd8-f32-qc8w"
        if recipe.mode != "8da4w":
            return linear_record(recipe, int8)
        return linear_record(recipe, f"torchao Int8DynamicActivationIntxWeightConfig(int4, PerGroup({recipe.group_size}), "
                                     "weight_scale_dtype=bfloat16) -> XNNPACK qd8-f32-qb4w (bf16 block scales); "
                                     f"fallback: {int8}")


def _export_entry(entry: EntryPoint) -> torch.export.ExportedProgram:
    with torch.no_grad():
        return export(entry.module, entry.example_inputs, dynamic_shapes=entry.dynamic_shapes(), strict=False)
