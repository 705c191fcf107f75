"""The decoder's queue: one worker thread owns every decoder call the server makes.

Captions waiting at the moment the worker frees up, with the same beam and steps, go to
ONE `Session.caption([...])` call, up to `Session.clips_per_batch(beam)` of them: the
clips that share each step of one batched decode. Text generation has no batched call
(prompts of different lengths cannot share a step), so each runs alone, in arrival order
with the caption groups.

A group whose call fails (one bad clip) is retried clip by clip, so only the request
that caused the error gets it. Futures cancelled before their turn are skipped.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from atom_deploy.serve.admission import Gate
from atom_runner.errors import AtomError
from atom_runner.session import Session

CAPTION, GENERATE = "caption", "generate"


@dataclass(eq=False)
class _Item:
    kind: str
    key: tuple  # items with equal keys may share one call
    payload: object
    future: Future = field(default_factory=Future)


class DecodeQueue:
    def __init__(self, session: Session, gate: Gate, on_group: Callable[[int], None] = lambda n: None):
        self.session, self.gate, self._on_group = session, gate, on_group
        self._items: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._running = 0
        self._worker = threading.Thread(target=self._work, name="atom-decoder", daemon=True)
        self._worker.start()

    # --- submitting ------------------------------------------------------------------

    def caption(self, clip: np.ndarray, beam: int, steps: int | None, admit: bool = True) -> Future:
        """admit=False: work a running job or pipeline asked for, already admitted as a whole."""
        steps = self.check(beam, steps)
        return self._put(_Item(CAPTION, (CAPTION, beam, steps), clip), admit)

    def generate(self, prompt: str, steps: int | None, beam: int, truncate: bool = False, admit: bool = True) -> Future:
        """truncate: keep the end of a prompt longer than the context (else it is an error)."""
        steps = self.check(beam, steps)
        return self._put(_Item(GENERATE, (GENERATE, beam, steps), (prompt, truncate)), admit)

    def check(self, beam: int, steps: int | None) -> int:
        """The steps to run (None: the manifest's); AtomError for a beam or steps the decoder cannot take."""
        # Checked here, before queuing, so a bad value is the caller's 400, not a failed group.
        if not 1 <= beam <= self.session.max_batch:
            raise AtomError(f"beam must be between 1 and {self.session.max_batch} (the exported KV-cache batch), got {beam}")
        steps = self.session.decode_steps if steps is None else steps
        if not 1 <= steps < self.session.max_context:
            raise AtomError(f"steps must be between 1 and {self.session.max_context - 1} (the decoder's context), got {steps}")
        return steps

    def group_limit(self, beam: int) -> int:
        """The clips one batched decode pass holds at this beam width."""
        return self.session.clips_per_batch(beam)

    @property
    def depth(self) -> int:
        """Items waiting plus the ones being decoded."""
        return len(self._items) + self._running

    def close(self) -> None:
        """Finish what is queued, then stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._worker.join()

    # --- the worker -------------------------------------------------------------------

    def _put(self, item: _Item, admit: bool) -> Future:
        if admit:
            self.gate.enter()  # QueueFull propagates: the caller answers 503
            item.future.add_done_callback(self.gate.leave)
        with self._cond:
            if self._closed:
                item.future.set_exception(AtomError("the server is shutting down"))
                return item.future
            self._items.append(item)
            self._cond.notify()
        return item.future

    def _next_group(self) -> list[_Item] | None:
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            if not self._items:
                return None
            first = self._items.popleft()
            group = [first]
            if first.kind == CAPTION:
                limit = self.group_limit(first.key[1])
                for item in list(self._items):
                    if len(group) == limit:
                        break
                    if item.key == first.key:
                        self._items.remove(item)
                        group.append(item)
            group = [item for item in group if item.future.set_running_or_notify_cancel()]
            self._running = len(group)
            return group

    def _work(self) -> None:
        while (group := self._next_group()) is not None:
            try:
                if group:
                    self._run(group)
            finally:
                with self._cond:
                    self._running = 0

    def _run(self, group: list[_Item]) -> None:
        _, beam, steps = group[0].key
        if group[0].kind == GENERATE:
            prompt, truncate = group[0].payload
            # Passed only when asked for: the keyword is new in Session.generate.
            extra = {"truncate": True} if truncate else {}
            _settle(group[0].future, lambda: self.session.generate(prompt, steps=steps, beam=beam, **extra))
            return
        self._on_group(len(group))
        try:
            captions = self.session.caption([item.payload for item in group], beam=beam, steps=steps)
        except Exception as exc:
            if len(group) == 1:
                group[0].future.set_exception(exc)
                return
            for item in group:  # one bad clip must not fail its neighbours: each again, alone
                _settle(item.future, lambda item=item: self.session.caption(item.payload, beam=beam, steps=steps))
            return
        for item, caption in zip(group, captions, strict=True):
            item.future.set_result(caption)


def _settle(future: Future, call: Callable[[], object]) -> None:
    try:
        future.set_result(call())
    except Exception as exc:  # handed to the waiting request, which maps it to a status
        future.set_exception(exc)
