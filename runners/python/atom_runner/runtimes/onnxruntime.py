"""ONNX Runtime: one InferenceSession per entry-point graph, created once."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from atom_runner.errors import AtomError
from atom_runner.runtimes.quiet import verbose

# ONNX Runtime's own log lines: its error lines repeat, in red, what the exception says;
# the exception becomes the one-line error. --verbose shows warnings and errors.
LOG_FATAL_ONLY, LOG_WARNINGS = 4, 2

# ONNX Runtime's idle pool threads spin while they wait for work: the lowest latency when one
# call runs at a time. Where several modules run at once on few cores (a server encoding
# one request's clip while it decodes others), the spinning takes the cores the others
# need: on 2 cores a 4-clip beam-4 demo decode beside a busy encoder thread took 2.6x as
# long with it. Process-wide, like ExecuTorch's thread pool; read when a module loads.
_spin_wait = True


def set_onnx_spinning(enabled: bool) -> None:
    """Whether ONNX Runtime modules loaded from now on spin while idle (default True)."""
    global _spin_wait
    _spin_wait = enabled


class OnnxModule:
    def __init__(self, entry_files: dict[str, Path], threads: int = 0):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = LOG_WARNINGS if verbose() else LOG_FATAL_ONLY
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if _spin_wait else "0")
        self._sessions = {}
        self._input_names = {}
        for entry, path in entry_files.items():
            try:
                session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            except Exception as exc:
                raise AtomError(f"ONNX Runtime could not load {path.name}: {str(exc).splitlines()[0]}") from None
            self._sessions[entry] = session
            self._input_names[entry] = [i.name for i in session.get_inputs()]

    def shapes(self, entry: str) -> tuple[list[tuple], list[tuple]]:
        """The graph's (input, output) sizes; None for a symbolic axis."""
        session = self._sessions[entry]
        return _sizes(session.get_inputs()), _sizes(session.get_outputs())

    def run(self, entry: str, inputs: list[np.ndarray]) -> list[np.ndarray]:
        feeds = dict(zip(self._input_names[entry], inputs))
        try:
            return self._sessions[entry].run(None, feeds)
        except Exception as exc:
            raise AtomError(f"ONNX Runtime entry {entry!r} failed: {str(exc).splitlines()[0]}") from None


def _sizes(args) -> list[tuple]:
    return [tuple(d if isinstance(d, int) else None for d in a.shape) for a in args]
