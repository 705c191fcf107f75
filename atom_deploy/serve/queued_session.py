"""The Session as the pipelines see it inside the server: decoder calls go through the queue.

The pipelines (index, search, summarize, ask, assemble) take a Session and call its public
task methods. This object offers the same ones, but `caption`, `caption_stream` and
`generate` become items of the server's DecodeQueue, so a running index job shares the
decoder with caption requests (and their batched passes) instead of holding it for a
whole video. It also counts captions for a job's progress and stops a cancelled job at
the next clip: the pipelines commit per batch, so what was committed stays.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from atom_deploy.serve.decode_queue import DecodeQueue
from atom_runner.session import Session


class JobCancelled(Exception):
    """Raised inside a job's pipeline at the next clip once the job is cancelled.

    Not an AtomError: the pipelines report AtomErrors per file and go on; this must stop them."""


class QueuedSession:
    def __init__(self, session: Session, queue: DecodeQueue, on_caption: Callable[[], None] = lambda: None,
                 cancelled: threading.Event | None = None):
        self._session, self._queue = session, queue
        self._on_caption, self._cancelled = on_caption, cancelled or threading.Event()
        # What the pipelines read off a Session (the manifest, the tokenizer, decode settings).
        self.manifest, self.backend, self.tokenizer = session.manifest, session.backend, session.tokenizer
        self.decode_steps, self.max_context, self.max_batch = session.decode_steps, session.max_context, session.max_batch
        self.clip_shape, self.stats = session.clip_shape, session.stats

    def embed(self, texts: list[str]) -> np.ndarray:
        self._check()
        return self._session.embed(texts)  # MiniLM has its own lock in the Session, apart from the decoder

    def encode(self, clip: np.ndarray) -> np.ndarray:
        return self._session.encode(clip)

    def generate(self, prompt: str, steps: int | None = None, prefix: np.ndarray | None = None, beam: int = 1,
                 truncate: bool = False) -> str:
        self._check()
        if prefix is not None:  # no pipeline passes one; the queue's items are text-only
            extra = {"truncate": True} if truncate else {}
            return self._session.generate(prompt, steps=steps, prefix=prefix, beam=beam, **extra)
        return self._queue.generate(prompt, steps, beam, truncate, admit=False).result()

    def caption(self, clips: np.ndarray | list[np.ndarray], beam: int = 4, steps: int | None = None) -> str | list[str]:
        if isinstance(clips, list):
            return list(self.caption_stream(clips, beam=beam, steps=steps))
        return next(self.caption_stream([clips], beam=beam, steps=steps))

    def caption_stream(self, clips: Iterable[np.ndarray], beam: int = 4, steps: int | None = None) -> Iterator[str]:
        """Captions in order. Up to one batched pass of clips is queued ahead, so a job's own
        clips can share a pass; closing the stream early withdraws the ones not yet decoded."""
        ahead = self._queue.group_limit(beam)
        waiting: deque = deque()
        try:
            for clip in clips:
                self._check()
                waiting.append(self._queue.caption(clip, beam, steps, admit=False))
                if len(waiting) >= ahead:
                    yield self._collect(waiting.popleft())
            while waiting:
                yield self._collect(waiting.popleft())
        finally:
            for future in waiting:
                future.cancel()

    def _collect(self, future) -> str:
        caption = future.result()
        self._on_caption()
        self._check()
        return caption

    def _check(self) -> None:
        if self._cancelled.is_set():
            raise JobCancelled("cancelled")
