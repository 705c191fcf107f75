"""The decoder's queue: one worker thread per decoder lane makes every decoder call the server makes.

A caption's clip is encoded first, on an encoder thread of its own, and joins the queue
as a visual prefix. So the encoder works on the next clips while the decoder decodes
(ONNX Runtime releases the GIL in both), and the workers spend their time on decode steps.
A decoder whose KV cache the runner holds (ONNX) has two lanes by default
(`Session.decoder_lanes`): two groups decode at once, each on its own cache; an in-place
cache (ExecuTorch) has one.

When a worker frees up it takes the oldest waiting item and every other one waiting
with the same key, up to the rows one decode holds (`Session.clips_per_batch(beam)`):
- captions with the same beam and steps go to one `Session.caption_prefixes` call;
- generations with the same beam, steps, truncate and prompt length (in tokens, once fitted) go to
  one `Session.generate_batch` call: the decoder takes one position vector for all rows,
  so only prompts of one length can share a step.

A group whose call fails (one bad input) is retried item by item, so only the request
that caused the error gets it. Futures cancelled before their turn are skipped.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from atom_deploy.serve.admission import Gate
from atom_runner.errors import AtomError
from atom_runner.session import Session

CAPTION, GENERATE = "caption", "generate"


@dataclass(eq=False)
class _Item:
    kind: str
    key: tuple  # (kind, beam, steps, ...): items with equal keys may share one call
    payload: object  # a caption's visual prefix [1, N, D] once encoded; a generation's (prompt, truncate)
    future: Future = field(default_factory=Future)


class DecodeQueue:
    def __init__(self, session: Session, gate: Gate, on_group: Callable[[str, int, float], None] = lambda kind, n, s: None,
                 on_encode: Callable[[float], None] = lambda s: None, batching: bool = True):
        """on_group(kind, size, seconds) after each decoder call, on_encode(seconds) after each
        clip's encoding. batching=False: one item a call (what batching is measured against)."""
        self.session, self.gate, self.batching = session, gate, batching
        self._on_group, self._on_encode = on_group, on_encode
        self._items: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._closed = self._drained = False
        self._running = self._encoding = 0
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="atom-encoder")
        self._workers = [threading.Thread(target=self._work, name=f"atom-decoder-{i}", daemon=True)
                         for i in range(session.decoder_lanes)]
        for worker in self._workers:
            worker.start()

    # --- submitting ------------------------------------------------------------------

    def caption(self, clip: np.ndarray, beam: int, steps: int | None, admit: bool = True) -> Future:
        """admit=False: work a running job or pipeline asked for, already admitted as a whole."""
        steps = self.check(beam, steps)
        item = _Item(CAPTION, (CAPTION, beam, steps), None)
        if self._admit(item, admit):
            with self._cond:
                self._encoding += 1
            self._encoder.submit(self._encode, item, clip)
        return item.future

    def generate(self, prompt: str, steps: int | None, beam: int, truncate: bool = False, admit: bool = True) -> Future:
        """truncate: keep the end of a prompt longer than the context (else it is an error)."""
        steps = self.check(beam, steps)
        length = len(self.session.prompt_ids(prompt, steps, truncate))  # a prompt that does not fit: the caller's 400
        item = _Item(GENERATE, (GENERATE, beam, steps, length, truncate), (prompt, truncate))
        if self._admit(item, admit):
            self._enqueue(item)
        return item.future

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
        """The items one batched decode holds at this beam width."""
        return self.session.clips_per_batch(beam) if self.batching else 1

    @property
    def encoding(self) -> int:
        """Clips admitted and not yet encoded."""
        return self._encoding

    @property
    def depth(self) -> int:
        """Items being encoded, waiting, or being decoded."""
        return self._encoding + len(self._items) + self._running

    def close(self) -> None:
        """Finish what is admitted (clips at the encoder included), then stop the threads."""
        with self._cond:
            self._closed = True  # refuse new items
        self._encoder.shutdown(wait=True)  # encoded clips still join the queue
        with self._cond:
            self._drained = True
            self._cond.notify_all()
        for worker in self._workers:
            worker.join()

    # --- the encoder stage ---------------------------------------------------------------

    def _admit(self, item: _Item, admit: bool) -> bool:
        """False (the future already failed) when the server is shutting down."""
        if admit:
            self.gate.enter()  # QueueFull propagates: the caller answers 503
            item.future.add_done_callback(self.gate.leave)
        with self._cond:
            if self._closed:
                item.future.set_exception(AtomError("the server is shutting down"))
                return False
        return True

    def _encode(self, item: _Item, clip: np.ndarray) -> None:
        try:
            if item.future.cancelled():  # withdrawn while waiting for the encoder
                return
            began = time.perf_counter()
            try:
                item.payload = self.session.encode(clip)
            except Exception as exc:  # a bad clip: only its own request fails
                _fail(item.future, exc)
                return
            self._on_encode(time.perf_counter() - began)
            self._enqueue(item)
        finally:
            with self._cond:
                self._encoding -= 1

    def _enqueue(self, item: _Item) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify()

    # --- the worker -------------------------------------------------------------------

    def _next_group(self) -> list[_Item] | None:
        with self._cond:
            while not self._items and not self._drained:
                self._cond.wait()
            if not self._items:
                return None
            first = self._items.popleft()
            group = [first]
            limit = self.group_limit(first.key[1])
            for item in list(self._items):
                if len(group) == limit:
                    break
                if item.key == first.key:
                    self._items.remove(item)
                    group.append(item)
            group = [item for item in group if item.future.set_running_or_notify_cancel()]
            self._running += len(group)
            return group

    def _work(self) -> None:
        while (group := self._next_group()) is not None:
            try:
                if group:
                    self._run(group)
            finally:
                with self._cond:
                    self._running -= len(group)

    def _run(self, group: list[_Item]) -> None:
        beam, steps = group[0].key[1:3]
        if group[0].kind == CAPTION:
            def call(items):
                return self.session.caption_prefixes(np.concatenate([i.payload for i in items]), beam=beam, steps=steps)
        else:
            truncate = group[0].payload[1]

            def call(items):
                return self.session.generate_batch([i.payload[0] for i in items], steps=steps, beam=beam, truncate=truncate)
        began = time.perf_counter()
        try:
            answers = call(group)
        except Exception as exc:
            self._on_group(group[0].kind, len(group), time.perf_counter() - began)
            if len(group) == 1:
                group[0].future.set_exception(exc)
                return
            for item in group:  # one bad input must not fail its neighbours: each again, alone
                _settle(item.future, lambda item=item: call([item])[0])
            return
        self._on_group(group[0].kind, len(group), time.perf_counter() - began)  # counted before anyone is answered
        for item, answer in zip(group, answers, strict=True):
            item.future.set_result(answer)


def _settle(future: Future, call: Callable[[], object]) -> None:
    try:
        future.set_result(call())
    except Exception as exc:  # handed to the waiting request, which maps it to a status
        future.set_exception(exc)


def _fail(future: Future, exc: BaseException) -> None:
    try:
        future.set_exception(exc)
    except InvalidStateError:  # cancelled meanwhile: nobody waits for it
        pass
