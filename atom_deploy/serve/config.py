"""The server's settings: typed, frozen, checked once at construction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from atom_runner.errors import AtomError


@dataclass(frozen=True)
class ServeConfig:
    artifacts: Path
    backend: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    index: Path | None = None
    # A demo-model clip is 3.6 MB of float32, 4.8 MB in base64: 16 MiB holds three per request.
    max_body_bytes: int = 16 * 1024 * 1024
    # Decoder requests (captions, generations) admitted and not yet answered; beyond it: 503.
    decode_queue_limit: int = 64
    # Other blocking requests (embed, search, summarize, ask, video reads) waiting or running.
    work_queue_limit: int = 64
    work_threads: int = 4
    job_queue_limit: int = 8
    # Seconds a client is told to wait after a 503 (the Retry-After header).
    retry_after_s: int = 1
    threads: int | None = None  # runtime threads per module (None: the runtime's default)
    # Concurrent decoder requests share decode steps; False: one request per decoder call
    # (the comparison that batching is measured against).
    decode_batching: bool = True
    # Decoder groups decoded at once (None: the Session's default, 2 where the runner holds
    # the KV cache, 1 for an in-place cache); the Session checks it, before the server listens.
    decoder_lanes: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise AtomError(f"port must be 0..65535, got {self.port}")
        for name in ("max_body_bytes", "decode_queue_limit", "work_queue_limit", "work_threads", "job_queue_limit", "retry_after_s"):
            if getattr(self, name) < 1:
                raise AtomError(f"{name} must be at least 1, got {getattr(self, name)}")
