"""Where the video encoder runs, so clip i+1 can be encoded while clip i is decoded.

- InlineEncoder: in the caller's thread (no overlap).
- ThreadEncoder: a worker thread. Real overlap on ONNX Runtime, whose `run` releases
  the GIL; none on ExecuTorch, whose Python bindings hold it for the whole call.
- ProcessEncoder: a resident worker process that loads the encoder once and exchanges
  clips and prefixes through shared memory: real overlap on every backend.

All three: submit(clip) -> ticket, then result(ticket) -> prefix, or discard(ticket)
when nobody will ask for it. Any thread may call them, tickets in any order: each
encoder matches results to tickets itself, so a caller holds no lock while it waits
(a paused caption_stream must not block another thread's caption). close() may be
called more than once.
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


class InlineEncoder:
    def __init__(self, module: LoadedModule):
        self.module = module
        self._lock = threading.Lock()  # a module runs one call at a time (ExecuTorch methods own their memory)

    def submit(self, clip: np.ndarray) -> np.ndarray:
        with self._lock:
            return self.module.run(Entry.FORWARD, [clip])[0]

    def result(self, ticket: np.ndarray) -> np.ndarray:
        return ticket

    def discard(self, ticket: np.ndarray) -> None:
        pass

    def close(self) -> None:
        pass


class ThreadEncoder(InlineEncoder):
    def __init__(self, module: LoadedModule):
        super().__init__(module)
        # One worker thread: the module's calls are serialized by the pool itself.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="atom-encoder")

    def submit(self, clip: np.ndarray) -> Future:
        return self._pool.submit(self.module.run, Entry.FORWARD, [clip])

    def result(self, ticket: Future) -> np.ndarray:
        return ticket.result()[0]

    def discard(self, ticket: Future) -> None:
        ticket.cancel()  # a clip already being encoded finishes; its prefix is dropped

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class ProcessEncoder:
    """A resident `python -m atom_runner.encoder_worker` process.

    A plain subprocess rather than multiprocessing: spawn would re-import the caller's
    __main__ module, which breaks scripts without a main guard. Clips and prefixes
    travel through shared memory; the pipes carry only one-line messages.

    The worker answers tickets in the order they were sent, each naming its ticket.
    Whichever thread needs an answer reads the pipe, and keeps every answer it reads on
    the way (the prefix copied out of its slot) for the ticket's owner. A discarded
    ticket's answer is read and dropped, so nothing is ever left in the pipe.
    """

    def __init__(
        self, backend: str, path: Path, clip_shape: list[int], prefix_shape: list[int], threads: int = 1, slots: int = 2
    ):
        """slots: clips in flight, at least 2 (the one being encoded and one waiting for the decoder)."""
        self._clip_shape, self._prefix_shape = tuple(clip_shape), tuple(prefix_shape)
        self._slots = max(2, slots)
        self._next = 0  # the next ticket
        self._answered = 0  # tickets below this have had their answer read from the pipe
        self._answers: dict[int, np.ndarray | str] = {}  # read, not yet collected: prefix or error
        self._discarded: set[int] = set()  # sent, not yet answered, nobody waiting
        self._lock = threading.Lock()  # the pipe and the tables above
        self._closed = False
        self._clips = self._prefixes = self._process = None
        try:  # a failure here must not leave shared memory or a process behind
            self._clips = SharedMemory(create=True, size=4 * math.prod(clip_shape) * self._slots)
            self._prefixes = SharedMemory(create=True, size=4 * math.prod(prefix_shape) * self._slots)
            spec = {
                "backend": backend, "path": str(path), "threads": threads,
                "clips": self._clips.name, "prefixes": self._prefixes.name,
                "clip_shape": list(clip_shape), "prefix_shape": list(prefix_shape), "slots": self._slots,
            }
            self._process = subprocess.Popen(
                [sys.executable, "-m", "atom_runner.encoder_worker", json.dumps(spec)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1,
            )
            started = time.perf_counter()
            status, payload = self._line()
            if status != "ready":
                raise AtomError(f"encoder worker failed to start: {payload}")
        except BaseException:
            self.close()
            raise
        self.load_seconds = float(payload)
        # The rest of the start-up is the worker's interpreter and runtime import.
        self.start_seconds = time.perf_counter() - started - self.load_seconds

    @property
    def worker_pid(self) -> int:
        """The worker process's id, for meters that count its memory beside the caller's."""
        return self._process.pid

    def submit(self, clip: np.ndarray) -> int:
        with self._lock:
            ticket = self._next
            # The clip goes into the slot of ticket - slots: that one must be answered first.
            while self._answered <= ticket - self._slots:
                self._read_answer()
            slot(self._clips, self._clip_shape, ticket, self._slots)[...] = clip
            self._send(str(ticket))
            self._next += 1
        return ticket

    def result(self, ticket: int) -> np.ndarray:
        with self._lock:
            if ticket in self._discarded or not (ticket in self._answers or self._answered <= ticket < self._next):
                raise AtomError(f"encoder ticket {ticket} was never submitted, or was already collected")
            while ticket not in self._answers:
                self._read_answer()
            answer = self._answers.pop(ticket)
        if isinstance(answer, str):
            raise AtomError(f"encoder worker failed on clip {ticket}: {answer}")
        return answer

    def discard(self, ticket: int) -> None:
        with self._lock:
            if self._answers.pop(ticket, None) is None and self._answered <= ticket < self._next:
                self._discarded.add(ticket)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        process = self._process
        if process is not None:
            if process.poll() is None:
                try:
                    self._send("quit")
                    process.wait(timeout=10)
                except (AtomError, OSError, subprocess.TimeoutExpired):
                    process.kill()
                    process.wait()
            for pipe in (process.stdin, process.stdout):
                try:
                    pipe.close()
                except OSError:
                    pass
        for shm in (self._clips, self._prefixes):
            if shm is not None:
                shm.close()
                shm.unlink()

    def _read_answer(self) -> None:
        """Read the next answer (the oldest unanswered ticket's) and keep it for its owner."""
        ticket = self._answered
        status, payload = self._line()
        number, _, message = payload.partition(" ")
        if number != str(ticket) or status not in ("done", "error"):
            raise AtomError(f"encoder worker answered {status} {payload!r} while clip {ticket} was due")
        self._answered += 1
        if ticket in self._discarded:
            self._discarded.discard(ticket)
        elif status == "done":
            self._answers[ticket] = slot(self._prefixes, self._prefix_shape, ticket, self._slots).copy()
        else:
            self._answers[ticket] = message

    def _send(self, line: str) -> None:
        try:
            self._process.stdin.write(line + "\n")
            self._process.stdin.flush()
        except OSError:
            raise AtomError(f"encoder worker is gone (exit code {self._process.poll()})") from None

    def _line(self) -> tuple[str, str]:
        line = self._process.stdout.readline()
        if not line:
            raise AtomError(f"encoder worker exited with code {self._process.wait()}")
        status, _, payload = line.rstrip("\n").partition(" ")
        return status, payload


def slot(shm: SharedMemory, shape: tuple, ticket: int, slots: int) -> np.ndarray:
    """The float32 array for `ticket` inside a shared-memory block of `slots` arrays."""
    size = math.prod(shape)
    return np.ndarray(shape, np.float32, shm.buf, offset=4 * size * (ticket % slots))
