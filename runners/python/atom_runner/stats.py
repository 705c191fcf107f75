"""What a Session loaded: how many times each module, and what its encoder worker cost to start."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Stats:
    worker_start_seconds: float = 0.0  # the encoder worker process's interpreter + runtime import
    loads: dict[str, int] = field(default_factory=dict)  # module -> times loaded
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record_load(self, module: str) -> None:
        with self._lock:
            self.loads[module] = self.loads.get(module, 0) + 1
