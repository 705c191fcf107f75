"""Backend runtimes behind one call: run(entry, inputs) -> outputs, numpy in and out."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from atom_runner.errors import AtomError


class LoadedModule(Protocol):
    def run(self, entry: str, inputs: list[np.ndarray]) -> list[np.ndarray]: ...


def load_module(backend: str, entry_files: dict[str, Path]) -> LoadedModule:
    """Load one module's files once; `entry_files` maps entry-point name to its file."""
    if backend == "executorch":
        from atom_runner.runtimes.executorch import ExecuTorchModule

        return ExecuTorchModule(entry_files)
    if backend == "onnx":
        from atom_runner.runtimes.onnxruntime import OnnxModule

        return OnnxModule(entry_files)
    raise AtomError(f"unknown backend {backend!r}; valid backends: ['executorch', 'onnx']")
