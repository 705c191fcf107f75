"""The decode queue alone, on a stand-in Session that records its calls: captions waiting
together with the same beam and steps go to one Session.caption call of at most
floor(max_batch / beam) clips; a bad clip fails only its own request."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from atom_deploy.serve.admission import Gate, QueueFull
from atom_deploy.serve.decode_queue import DecodeQueue
from atom_runner.errors import AtomError


class RecordingSession:
    max_batch, decode_steps, max_context = 16, 23, 64

    def clips_per_batch(self, beam):
        return self.max_batch // beam

    def __init__(self):
        self.calls: list[tuple] = []
        self.started, self.release = threading.Event(), threading.Event()

    def caption(self, clips, beam=4, steps=None):
        self.started.set()
        self.release.wait(10)  # hold the first call so the others pile up behind it
        items = clips if isinstance(clips, list) else [clips]
        self.calls.append(("caption", beam, steps, [float(c.flat[0]) for c in items]))
        if any(np.isnan(c).any() for c in items):
            raise AtomError("clip contains NaN or infinite values")
        captions = [f"clip {float(c.flat[0]):g}" for c in items]
        return captions if isinstance(clips, list) else captions[0]

    def generate(self, prompt, steps=None, beam=1):
        self.calls.append(("generate", beam, steps, prompt))
        return prompt.upper()


def clip(value: float) -> np.ndarray:
    return np.full((1, 3, 2, 4, 4), value, np.float32)


def test_waiting_captions_share_one_call_per_batch_and_key():
    session = RecordingSession()
    queue = DecodeQueue(session, Gate("decode", 100, 1))
    try:
        first = queue.caption(clip(0), 4, None)  # taken at once, blocks in the session
        session.started.wait(10)  # the worker holds it
        beam4 = [queue.caption(clip(i), 4, None) for i in range(1, 7)]  # 6 waiting: 4 fit one pass (16 rows / beam 4)
        greedy = queue.caption(clip(10), 1, 5)
        text = queue.generate("summary:", None, 1)
        session.release.set()
        assert [f.result(10) for f in [first, *beam4]] == [f"clip {i}" for i in range(7)]
        assert greedy.result(10) == "clip 10" and text.result(10) == "SUMMARY:"
    finally:
        queue.close()
    assert session.calls == [
        ("caption", 4, 23, [0.0]),
        ("caption", 4, 23, [1.0, 2.0, 3.0, 4.0]),  # one call, floor(16 / 4) clips
        ("caption", 4, 23, [5.0, 6.0]),  # the rest, first in line
        ("caption", 1, 5, [10.0]),  # another beam and steps: its own call
        ("generate", 1, 23, "summary:"),
    ]


def test_a_bad_clip_fails_only_its_own_request():
    session = RecordingSession()
    queue = DecodeQueue(session, Gate("decode", 100, 1))
    try:
        blocker = queue.caption(clip(0), 4, None)
        session.started.wait(10)
        good, bad, other = queue.caption(clip(1), 4, None), queue.caption(clip(np.nan), 4, None), queue.caption(clip(3), 4, None)
        session.release.set()
        assert blocker.result(10) == "clip 0" and good.result(10) == "clip 1" and other.result(10) == "clip 3"
        with pytest.raises(AtomError, match="NaN"):
            bad.result(10)
    finally:
        queue.close()


def test_admission_and_checks_happen_before_queuing():
    session = RecordingSession()
    queue = DecodeQueue(session, Gate("decode", 1, 2))
    try:
        with pytest.raises(AtomError, match="beam"):
            queue.caption(clip(0), 17, None)
        with pytest.raises(AtomError, match="steps"):
            queue.generate("x", 64, 1)
        held = queue.caption(clip(0), 4, None)
        with pytest.raises(QueueFull) as full:
            queue.generate("x", None, 1)
        assert full.value.retry_after_s == 2
        assert queue.generate("x", None, 1, admit=False)  # a running job's own work is never refused
        session.release.set()
        held.result(10)
    finally:
        queue.close()
