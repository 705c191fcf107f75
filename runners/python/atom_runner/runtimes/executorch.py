"""ExecuTorch runtime: one Program per .pte, every method loaded once up front."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atom_runner.errors import AtomError
from atom_runner.runtimes.quiet import native_stderr_quieted

# A .pte is a flatbuffer whose file identifier sits at bytes 4..8: "ET12" in the
# program.fbs of executorch 1.5.1 (`file_identifier "ET12"`). The bindings log a bad
# identifier verbatim, and non-UTF-8 bytes there abort the process inside pybind11's
# log callback (SIGABRT), so anything else is refused before they see it.
PTE_IDENTIFIER = b"ET12"
PTE_IDENTIFIER_OFFSET = 4


def check_program_header(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(PTE_IDENTIFIER_OFFSET + len(PTE_IDENTIFIER))
    if head[PTE_IDENTIFIER_OFFSET:] != PTE_IDENTIFIER:
        raise AtomError(f"{path.name} is not an ExecuTorch program (no {PTE_IDENTIFIER.decode()} header)")


class ExecuTorchModule:
    def __init__(self, entry_files: dict[str, Path]):
        import torch  # the ExecuTorch Python bindings take and return torch tensors
        from executorch.runtime import Runtime

        self._torch = torch
        runtime = Runtime.get()
        programs = {}
        self._methods = {}
        self._program_of = {}
        for entry, path in entry_files.items():
            check_program_header(path)
            try:
                with native_stderr_quieted():  # XNNPACK's first load logs cpuinfo probing
                    if path not in programs:
                        programs[path] = runtime.load_program(str(path))
                    self._methods[entry] = programs[path].load_method(entry)
                self._program_of[entry] = programs[path]
            except Exception as exc:  # the bindings raise bare RuntimeErrors with a code
                raise AtomError(f"ExecuTorch could not load {path.name} method {entry!r}: {_first_line(exc)}") from None
        self._programs = programs  # methods borrow from their program: keep it alive

    def shapes(self, entry: str) -> tuple[list[tuple], list[tuple]]:
        """The method's (input, output) tensor sizes; a dynamic axis shows its upper bound."""
        meta = self._program_of[entry].metadata(entry)
        return (
            [tuple(meta.input_tensor_meta(i).sizes()) for i in range(meta.num_inputs())],
            [tuple(meta.output_tensor_meta(i).sizes()) for i in range(meta.num_outputs())],
        )

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
