"""Backend runtimes behind one call: run(entry, inputs) -> outputs, numpy in and out."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from atom_runner.errors import AtomError
from atom_runner.runtimes.quiet import native_stderr_quieted


class LoadedModule(Protocol):
    def run(self, entry: str, inputs: list[np.ndarray]) -> list[np.ndarray]: ...


def import_runtime(backend: str) -> float:
    """Import (and initialize) a backend's runtime; returns the seconds it took.

    Kept apart from module loading so load times measure the artifacts, not the imports.
    """
    import time

    start = time.perf_counter()
    if backend == "executorch":
        with native_stderr_quieted():
            from executorch.runtime import Runtime

            Runtime.get()
    elif backend == "onnx":
        import onnxruntime  # noqa: F401
    else:
        raise AtomError(f"unknown backend {backend!r}; valid backends: ['executorch', 'onnx']")
    return time.perf_counter() - start


def load_module(backend: str, entry_files: dict[str, Path], threads: int = 0) -> LoadedModule:
    """Load one module's files once; `entry_files` maps entry-point name to its file.

    `threads` caps ONNX Runtime's intra-op pool for this module (0: runtime default).
    ExecuTorch's XNNPACK pool is per process, set with `set_executorch_threads`.
    """
    if backend == "executorch":
        from atom_runner.runtimes.executorch import ExecuTorchModule

        return ExecuTorchModule(entry_files)
    if backend == "onnx":
        from atom_runner.runtimes.onnxruntime import OnnxModule

        return OnnxModule(entry_files, threads)
    raise AtomError(f"unknown backend {backend!r}; valid backends: ['executorch', 'onnx']")


def set_onnx_spinning(enabled: bool) -> None:
    """Whether ONNX Runtime's idle pool threads spin for work in modules loaded from now on
    (default True; False where modules run concurrently on few cores)."""
    from atom_runner.runtimes.onnxruntime import set_onnx_spinning as set_spinning

    set_spinning(enabled)


def set_executorch_threads(threads: int) -> None:
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

    with native_stderr_quieted():
        _unsafe_reset_threadpool(threads)
