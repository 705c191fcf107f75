"""ExecuTorch runtime: one Program per .pte, every method loaded once up front."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atom_runner.errors import AtomError
from atom_runner.runtimes.quiet import native_stderr_quieted


class ExecuTorchModule:
    def __init__(self, entry_files: dict[str, Path]):
        import torch  # the ExecuTorch Python bindings take and return torch tensors
        from executorch.runtime import Runtime

        self._torch = torch
        runtime = Runtime.get()
        programs = {}
        self._methods = {}
        for entry, path in entry_files.items():
            try:
                with native_stderr_quieted():  # XNNPACK's first load logs cpuinfo probing
                    if path not in programs:
                        programs[path] = runtime.load_program(str(path))
                    self._methods[entry] = programs[path].load_method(entry)
            except Exception as exc:  # the bindings raise bare RuntimeErrors with a code
                raise AtomError(f"ExecuTorch could not load {path.name} method {entry!r}: {_first_line(exc)}") from None
        self._programs = programs  # methods borrow from their program: keep it alive

    def run(self, entry: str, inputs: list[np.ndarray]) -> list[np.ndarray]:
        tensors = [self._torch.from_numpy(np.ascontiguousarray(x)) for x in inputs]
        try:
            outputs = self._methods[entry].execute(tensors)
        except Exception as exc:
            raise AtomError(f"ExecuTorch method {entry!r} failed: {_first_line(exc)}") from None
        return [o.numpy() for o in outputs]


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
