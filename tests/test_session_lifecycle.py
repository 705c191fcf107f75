"""Session lifecycle: streams closed early or paused, setup that fails half-way, close twice, steps=0.

Every overlap mode is checked, the process encoder above all: its replies travel through
a pipe, and one left unread there used to break every later caption.
"""

from __future__ import annotations

import threading
from multiprocessing.shared_memory import SharedMemory

import numpy as np
import pytest

import atom_runner.session as session_module
from atom_runner.errors import AtomError
from atom_runner.schema import Module
from atom_runner.session import Session

SHAPE = (1, 3, 6, 32, 32)
MODES = ["off", "thread", "process"]


def clips(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(n)]


@pytest.fixture(scope="module", params=MODES)
def session(request, tiny_exports):
    with Session(tiny_exports["int8"], backend="onnx", overlap=request.param) as s:
        yield s


@pytest.fixture(scope="module")
def reference(session):
    return [session.caption(c, beam=1, steps=6) for c in clips(3)]


def finishes(job, seconds: float = 60) -> bool:
    """Run `job` in a daemon thread; False if it is still running after `seconds` (a deadlock)."""
    thread = threading.Thread(target=job, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


def test_a_stream_closed_early_leaves_later_captions_right(session, reference):
    stream = session.caption_stream(clips(3), beam=1, steps=6)
    assert next(stream) == reference[0]  # clip 1 is already submitted to the encoder
    stream.close()
    assert [session.caption(c, beam=1, steps=6) for c in clips(3)] == reference
    assert list(session.caption_stream(clips(3), beam=1, steps=6)) == reference


def test_a_stream_that_fails_part_way_leaves_later_captions_right(session, reference):
    bad = np.zeros((1, 3, 6, 8, 8), np.float32)
    with pytest.raises(AtomError, match="clip has shape"):
        list(session.caption_stream([clips(3)[0], bad], beam=1, steps=6))
    assert list(session.caption_stream(clips(3), beam=1, steps=6)) == reference


def test_encode_inside_a_stream_loop(session, reference):
    seen = []

    def job():
        for caption in session.caption_stream(clips(3), beam=1, steps=6):
            seen.append((caption, session.encode(clips(3)[1]).shape))

    assert finishes(job), "deadlock: encode() inside a caption_stream loop"
    assert [c for c, _ in seen] == reference and len({s for _, s in seen}) == 1


def test_a_paused_stream_does_not_block_other_threads(session, reference):
    stream = session.caption_stream(clips(3), beam=1, steps=6)
    assert next(stream) == reference[0]
    other = []
    assert finishes(lambda: other.append(session.caption(clips(3)[2], beam=1, steps=6))), \
        "a paused caption_stream blocked another thread's caption"
    assert other == [reference[2]]
    assert list(stream) == reference[1:]  # the paused stream resumes with its own clips


def test_steps_zero_is_refused_like_any_other_bad_count(session):
    clip = clips(1)[0]
    for steps in (0, -1):
        with pytest.raises(AtomError, match=f"steps must be at least 1, got {steps}"):
            session.caption(clip, steps=steps)
        with pytest.raises(AtomError, match=f"steps must be at least 1, got {steps}"):
            session.generate("summary:", steps=steps)
        with pytest.raises(AtomError, match=f"steps must be at least 1, got {steps}"):
            next(session.caption_stream([clip], steps=steps))


def test_setup_that_fails_after_the_worker_started_leaves_nothing_behind(tiny_exports, monkeypatch):
    workers = []
    real_encoder, real_load = session_module.ProcessEncoder, session_module.load_module

    def recorded(*args, **kwargs):
        workers.append(real_encoder(*args, **kwargs))
        return workers[-1]

    def load(backend, files, threads=0):
        if any("decoder" in p.name for p in files.values()):
            raise AtomError("simulated decoder load failure")
        return real_load(backend, files, threads)

    monkeypatch.setattr(session_module, "ProcessEncoder", recorded)
    monkeypatch.setattr(session_module, "load_module", load)
    with pytest.raises(AtomError, match="simulated decoder load failure"):
        Session(tiny_exports["int8"], backend="onnx", overlap="process")
    assert len(workers) == 1
    worker = workers[0]
    assert worker._process.poll() is not None, "the encoder worker process was left running"
    for name in (worker._clips.name, worker._prefixes.name):
        with pytest.raises(FileNotFoundError):
            SharedMemory(name=name)  # unlinked


def test_close_twice(tiny_exports):
    s = Session(tiny_exports["int8"], backend="onnx", overlap="process")
    assert s.stats.loads[Module.VIDEO_ENCODER] == 1
    s.close()
    s.close()
