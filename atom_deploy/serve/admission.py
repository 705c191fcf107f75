"""Bounded admission: a request is counted in when accepted and out when answered.

Refusing at the door (503 + Retry-After) keeps latency bounded under overload instead of
letting a queue grow until clients time out; the client knows when to try again.
"""

from __future__ import annotations

import threading


class QueueFull(Exception):
    def __init__(self, queue: str, limit: int, retry_after_s: int):
        super().__init__(f"the {queue} queue is full ({limit} requests waiting or running); retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class Gate:
    def __init__(self, name: str, limit: int, retry_after_s: int):
        self.name, self.limit, self.retry_after_s = name, limit, retry_after_s
        self._count = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            if self._count >= self.limit:
                raise QueueFull(self.name, self.limit, self.retry_after_s)
            self._count += 1

    def leave(self, *_ignored) -> None:  # also a Future done-callback
        with self._lock:
            self._count -= 1

    @property
    def count(self) -> int:
        return self._count
