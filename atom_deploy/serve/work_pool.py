"""Blocking work that is not decoding (embed, search, video reads, summarize, ask) on a
bounded thread pool, so the event loop keeps answering /healthz and /metrics under load."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from atom_deploy.serve.admission import Gate

T = TypeVar("T")


class WorkPool:
    def __init__(self, threads: int, gate: Gate):
        self.gate = gate
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="atom-work")

    async def run(self, call: Callable[..., T], *args) -> T:
        """call(*args) on a pool thread; QueueFull when the pool's queue is full."""
        self.gate.enter()
        try:
            future = self._pool.submit(call, *args)
        except BaseException:
            self.gate.leave()
            raise
        future.add_done_callback(self.gate.leave)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
