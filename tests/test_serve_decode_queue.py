"""The decode queue alone, on a stand-in Session that records its calls: requests waiting
together with the same key go to one decoder call of at most floor(max_batch / beam) of
them (captions: beam and steps; generations: also the prompt's length in tokens); a bad
input fails only its own request; with batching off every call holds one request.
The real server's batching is tested in test_serve.py."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from atom_deploy.serve.admission import Gate, QueueFull
from atom_deploy.serve.decode_queue import DecodeQueue
from atom_runner.errors import AtomError


class RecordingSession:
    max_batch, decode_steps, max_context = 16, 23, 64
    decoder_lanes = 1  # one worker: the calls' order is the queue's

    def clips_per_batch(self, beam):
        return self.max_batch // beam

    def __init__(self):
        self.calls: list[tuple] = []
        self.started, self.release = threading.Event(), threading.Event()
        self.in_flight = self.most_in_flight = 0  # decoder calls running at once, now and at most
        self._count = threading.Lock()

    def encode(self, clip):
        if np.isnan(clip).any():
            raise AtomError("clip contains NaN or infinite values")
        return clip.reshape(1, -1)[:, :1].copy()  # the clip's value stands for its prefix

    def caption_prefixes(self, prefixes, beam=4, steps=None):
        self._hold()
        values = [float(v) for v in prefixes[:, 0]]
        self.calls.append(("caption", beam, steps, values))
        return [f"clip {v:g}" for v in values]

    def prompt_ids(self, prompt, steps=None, truncate=False):
        return prompt.split()

    def generate_batch(self, prompts, steps=None, beam=1, truncate=False):
        self._hold()
        self.calls.append(("generate", beam, steps, list(prompts)))
        if any("fail" in p for p in prompts):
            raise AtomError("a prompt this stand-in refuses")
        return [p.upper() for p in prompts]

    def _hold(self):
        with self._count:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.started.set()
        self.release.wait(10)  # hold the first call so the others pile up behind it
        with self._count:
            self.in_flight -= 1


def settled(queue: DecodeQueue) -> None:
    """Every clip submitted so far has left the encoder (and joined the queue)."""
    deadline = time.monotonic() + 10
    while queue.encoding and time.monotonic() < deadline:
        time.sleep(0.005)
    assert queue.encoding == 0


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
        settled(queue)
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
        ("generate", 1, 23, ["summary:"]),
    ]


def test_waiting_generations_of_one_prompt_length_share_one_call():
    session = RecordingSession()
    queue = DecodeQueue(session, Gate("decode", 100, 1))
    try:
        first = queue.generate("a", None, 4)
        session.started.wait(10)
        prompts = ["b c", "d", "e f", "g h", "i j", "k j", "l"]  # lengths 2 1 2 2 2 2 1
        waiting = [queue.generate(p, None, 4) for p in prompts]
        other_steps = queue.generate("m n", 5, 4)
        session.release.set()
        assert [f.result(10) for f in waiting] == [p.upper() for p in prompts] and other_steps.result(10) == "M N"
        assert first.result(10) == "A"
    finally:
        queue.close()
    assert session.calls == [
        ("generate", 4, 23, ["a"]),
        ("generate", 4, 23, ["b c", "e f", "g h", "i j"]),  # length 2, floor(16 / 4) of them
        ("generate", 4, 23, ["d", "l"]),  # length 1, first in line after them
        ("generate", 4, 23, ["k j"]),
        ("generate", 4, 5, ["m n"]),  # other steps: its own call
    ]


def test_two_lanes_decode_two_groups_at_once():
    """With two decoder lanes, a group starts while another still decodes; with one it waits."""
    for lanes, in_flight in ((2, 2), (1, 1)):
        session = RecordingSession()
        session.decoder_lanes = lanes
        queue = DecodeQueue(session, Gate("decode", 100, 1))
        try:
            futures = [queue.generate("a", None, 4), queue.generate("b", 5, 4)]  # two keys: two groups
            deadline = time.monotonic() + 10
            while session.in_flight < in_flight and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(0.1)  # a second worker, if any, has had time to take the other group
            assert session.in_flight == in_flight
            session.release.set()
            assert [f.result(10) for f in futures] == ["A", "B"]
        finally:
            queue.close()
        assert session.most_in_flight == in_flight


def test_batching_off_gives_every_request_its_own_call():
    session = RecordingSession()
    queue = DecodeQueue(session, Gate("decode", 100, 1), batching=False)
    try:
        first = queue.caption(clip(0), 4, None)
        session.started.wait(10)
        rest = [queue.caption(clip(i), 4, None) for i in range(1, 4)] + [queue.generate(p, None, 1) for p in ("x", "y")]
        session.release.set()
        for f in [first, *rest]:
            f.result(10)
    finally:
        queue.close()
    assert sorted(len(call[3]) for call in session.calls) == [1] * 6


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
        fine, refused = queue.generate("x y", None, 1), queue.generate("fail y", None, 1)  # one group, one bad prompt
        assert fine.result(10) == "X Y"
        with pytest.raises(AtomError, match="refuses"):
            refused.result(10)
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
