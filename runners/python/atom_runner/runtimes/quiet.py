"""Runtime start-up chatter kept off the user's terminal, unless the user asks for it.

The one switch is the ATOM_VERBOSE environment variable (`atom-deploy --verbose` sets it):
an environment variable, so the encoder worker process and any other child follow it.
"""

from __future__ import annotations

import contextlib
import os
import sys

VERBOSE_ENV = "ATOM_VERBOSE"


def verbose() -> bool:
    """Whether runtime and toolchain logs should reach the terminal."""
    return bool(os.environ.get(VERBOSE_ENV))


def set_verbose() -> None:
    os.environ[VERBOSE_ENV] = "1"


@contextlib.contextmanager
def native_stderr_quieted():
    """Silence what runtimes write straight to file descriptor 2 while they start up.

    ExecuTorch's cpuinfo and threadpool log lines and torchao's missing-CUDA-extension
    warnings are not the user's to act on, and they would bury the one-line errors the
    kit promises. A failure still raises and is reported after the descriptor is back.
    ATOM_VERBOSE=1 keeps them.
    """
    if verbose():
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
