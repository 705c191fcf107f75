"""Runtime start-up chatter kept off the user's terminal."""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_quieted():
    """Silence what runtimes write straight to file descriptor 2 while they start up.

    ExecuTorch's cpuinfo and threadpool log lines and torchao's missing-CUDA-extension
    warnings are not the user's to act on, and they would bury the one-line errors the
    kit promises. A failure still raises and is reported after the descriptor is back.
    ATOM_VERBOSE=1 keeps them.
    """
    if os.environ.get("ATOM_VERBOSE"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
