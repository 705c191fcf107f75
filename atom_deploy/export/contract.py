"""The one contract between models and backends.

A model side hands a backend an `ExportableModule`: named entry points, each an
`nn.Module` with example inputs, tensor names and dynamic dims, plus metadata. A backend
never reaches into the model: it lowers what it is given and reports the files it wrote.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from atom_runner.schema import Key


@dataclass(frozen=True)
class DynamicDim:
    name: str
    min: int
    max: int

    def to_manifest(self) -> dict[str, Any]:
        return {Key.NAME: self.name, Key.MIN: self.min, Key.MAX: self.max}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    example: torch.Tensor
    dynamic: dict[int, DynamicDim] = field(default_factory=dict)

    def to_manifest(self) -> dict[str, Any]:
        return _tensor_manifest(self.name, self.example, self.dynamic)


@dataclass(frozen=True)
class OutputSpec:
    name: str
    dynamic: dict[int, DynamicDim] = field(default_factory=dict)


@dataclass(frozen=True)
class EntryPoint:
    name: str
    module: nn.Module
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[OutputSpec, ...]

    @property
    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        return tuple(spec.example for spec in self.inputs)

    def dynamic_shapes(self) -> tuple:
        """torch.export's dynamic_shapes: one Dim per name, so inputs sharing "batch" or
        "seq" are tied to the same size. Inputs that a `*args` parameter of the module's
        forward takes are grouped into one tuple, as torch.export matches them."""
        from torch.export import Dim

        dims: dict[str, Dim] = {}
        shapes = []
        for spec in self.inputs:
            axes = {}
            for axis, d in spec.dynamic.items():
                dims.setdefault(d.name, Dim(d.name, min=d.min, max=d.max))
                axes[axis] = dims[d.name]
            shapes.append(axes)
        params = list(inspect.signature(self.module.forward).parameters.values())
        star = next((i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_POSITIONAL), None)
        if star is None:
            return tuple(axes or None for axes in shapes)
        # torch.onnx takes a static input inside the group as {}, not None
        return (*(axes or None for axes in shapes[:star]), tuple(shapes[star:]))

    def output_manifest(self) -> list[dict[str, Any]]:
        with torch.no_grad():
            results = self.module(*self.example_inputs)
        results = results if isinstance(results, tuple) else (results,)
        return [_tensor_manifest(o.name, r, o.dynamic) for o, r in zip(self.outputs, results)]

    def to_manifest(self) -> dict[str, Any]:
        return {
            Key.INPUTS: [spec.to_manifest() for spec in self.inputs],
            Key.OUTPUTS: self.output_manifest(),
        }


@dataclass(frozen=True)
class ExportableModule:
    """One artifact: e.g. the decoder with its token_embedding and text_decoder methods."""

    name: str
    entry_points: tuple[EntryPoint, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    def entry(self, name: str) -> EntryPoint:
        for entry in self.entry_points:
            if entry.name == name:
                return entry
        raise KeyError(f"{self.name} has no entry point {name!r}")


def _tensor_manifest(name: str, tensor: torch.Tensor, dynamic: dict[int, DynamicDim]) -> dict[str, Any]:
    shape: list[Any] = list(tensor.shape)
    for axis, dim in dynamic.items():
        shape[axis] = dim.name
    return {
        Key.NAME: name,
        Key.DTYPE: str(tensor.dtype).removeprefix("torch."),
        Key.SHAPE: shape,
        Key.DYNAMIC: {str(axis): dim.to_manifest() for axis, dim in dynamic.items()},
    }
