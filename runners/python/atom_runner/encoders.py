"""Where the video encoder runs, so clip i+1 can be encoded while clip i is decoded.

- InlineEncoder: in the caller's thread (no overlap).
- ThreadEncoder: a worker thread. Real overlap on ONNX Runtime, whose `run` releases
  the GIL; none on ExecuTorch, whose Python bindings hold it for the whole call.
- ProcessEncoder: a resident worker process that loads the encoder once and exchanges
  clips and prefixes through shared memory: real overlap on every backend.

All three: submit(clip) -> ticket, then result(ticket) -> prefix, in submission order.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path

import numpy as np

from atom_runner.errors import AtomError
from atom_runner.runtimes import LoadedModule
from atom_runner.schema import Entry

SLOTS = 2  # clips in flight: the one being encoded and the one waiting for the decoder


class InlineEncoder:
    def __init__(self, module: LoadedModule):
        self.module = module

    def submit(self, clip: np.ndarray) -> np.ndarray:
        return self.module.run(Entry.FORWARD, [clip])[0]

    def result(self, ticket: np.ndarray) -> np.ndarray:
        return ticket

    def close(self) -> None:
        pass


class ThreadEncoder(InlineEncoder):
    def __init__(self, module: LoadedModule):
        super().__init__(module)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="atom-encoder")

    def submit(self, clip: np.ndarray) -> Future:
        return self._pool.submit(self.module.run, Entry.FORWARD, [clip])

    def result(self, ticket: Future) -> np.ndarray:
        return ticket.result()[0]

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class ProcessEncoder:
    """A resident `python -m atom_runner.encoder_worker` process.

    A plain subprocess rather than multiprocessing: spawn would re-import the caller's
    __main__ module, which breaks scripts without a main guard. Clips and prefixes
    travel through shared memory; the pipes carry only one-line messages.
    """

    def __init__(self, backend: str, path: Path, clip_shape: list[int], prefix_shape: list[int], threads: int = 1):
        self._clip_shape, self._prefix_shape = tuple(clip_shape), tuple(prefix_shape)
        self._clips = SharedMemory(create=True, size=4 * math.prod(clip_shape) * SLOTS)
        self._prefixes = SharedMemory(create=True, size=4 * math.prod(prefix_shape) * SLOTS)
        spec = {
            "backend": backend, "path": str(path), "threads": threads,
            "clips": self._clips.name, "prefixes": self._prefixes.name,
            "clip_shape": list(clip_shape), "prefix_shape": list(prefix_shape),
        }
        self._process = subprocess.Popen(
            [sys.executable, "-m", "atom_runner.encoder_worker", json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1,
        )
        self._next = 0
        self._lock = threading.Lock()
        started = time.perf_counter()
        status, payload = self._reply()
        if status != "ready":
            self.close()
            raise AtomError(f"encoder worker failed to start: {payload}")
        self.load_seconds = float(payload)
        # The rest of the start-up is the worker's interpreter and runtime import.
        self.start_seconds = time.perf_counter() - started - self.load_seconds

    def submit(self, clip: np.ndarray) -> int:
        with self._lock:
            ticket, self._next = self._next, self._next + 1
            slot(self._clips, self._clip_shape, ticket)[...] = clip
            self._send(str(ticket))
        return ticket

    def result(self, ticket: int) -> np.ndarray:
        status, payload = self._reply()
        if status != "done" or payload != str(ticket):
            raise AtomError(f"encoder worker failed on clip {ticket}: {payload}")
        return slot(self._prefixes, self._prefix_shape, ticket).copy()

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                self._send("quit")
                self._process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
        for pipe in (self._process.stdin, self._process.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        for shm in (self._clips, self._prefixes):
            shm.close()
            shm.unlink()

    def _send(self, line: str) -> None:
        try:
            self._process.stdin.write(line + "\n")
            self._process.stdin.flush()
        except OSError:
            raise AtomError(f"encoder worker is gone (exit code {self._process.poll()})") from None

    def _reply(self) -> tuple[str, str]:
        line = self._process.stdout.readline()
        if not line:
            return "error", f"worker exited with code {self._process.wait()}"
        status, _, payload = line.rstrip("\n").partition(" ")
        return status, payload


def slot(shm: SharedMemory, shape: tuple, ticket: int) -> np.ndarray:
    """The float32 array for `ticket` inside a shared-memory block of SLOTS arrays."""
    size = math.prod(shape)
    return np.ndarray(shape, np.float32, shm.buf, offset=4 * size * (ticket % SLOTS))
