"""Optional per-call timings and the per-module load record."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Stats:
    enabled: bool = False
    worker_start_seconds: float = 0.0  # the encoder worker process's interpreter + runtime import
    load_seconds: dict[str, float] = field(default_factory=dict)
    loads: dict[str, int] = field(default_factory=dict)  # module -> times loaded
    calls: list[tuple[str, float]] = field(default_factory=list)  # (stage, seconds)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record_load(self, module: str, seconds: float) -> None:
        with self._lock:
            self.load_seconds[module] = seconds
            self.loads[module] = self.loads.get(module, 0) + 1

    @contextmanager
    def timed(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.enabled:
                with self._lock:
                    self.calls.append((stage, time.perf_counter() - start))

