"""Batched captioning: several clips share each decode step, and a caption does not depend
on which clips shared its batch.

Each test compares token ids of the batched path with decoding each clip alone, on real
exports of both backends (fp32 and int8), in the Python runner and in the C++ runner.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from atom_runner.errors import AtomError
from atom_runner.schema import Entry
from atom_runner.session import Session

BACKENDS = ("executorch", "onnx")


def clips_for(session: Session, count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(session.clip_shape).astype(np.float32) for _ in range(count)]


def count_decoder_calls(session: Session) -> list[int]:
    calls: list[int] = []
    run = session.decoder.run
    session.decoder.run = lambda entry, inputs: (calls.append(1) if entry == Entry.TEXT_DECODER else None) or run(entry, inputs)
    return calls


@pytest.mark.parametrize("mode", ["fp32", "int8"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("beam", [1, 4])
def test_batched_tokens_equal_one_at_a_time(tiny_exports, backend, mode, beam):
    with Session(tiny_exports[mode] / backend, overlap="off") as session:
        per_batch = session.clips_per_batch(beam)
        clips = clips_for(session, per_batch + 1)  # a full batch and a partial one
        prefixes = np.concatenate([session.encode(clip) for clip in clips])
        alone = [session.decode_ids([], prefix[None], beam=beam) for prefix in prefixes]
        batched = session.decode_batch([], prefixes[:per_batch], beam=beam) + session.decode_batch(
            [], prefixes[per_batch:], beam=beam)
        assert batched == alone
        # The same clips in another order and other company give each clip the same tokens.
        order = list(reversed(range(per_batch)))
        shuffled = session.decode_batch([], prefixes[order], beam=beam)
        assert shuffled == [alone[i] for i in order]
        assert len({tuple(t) for t in alone}) > 1  # the clips really decode differently


@pytest.mark.parametrize("backend", BACKENDS)
def test_caption_list_shares_decode_steps(tiny_exports, backend):
    with Session(tiny_exports["fp32"] / backend, overlap="off") as session:
        clips = clips_for(session, session.clips_per_batch(1))
        one = session.caption(clips[0], beam=1)  # the first decode also sizes ExecuTorch's workspace: not counted
        calls = count_decoder_calls(session)
        assert session.caption(clips[0], beam=1) == one
        single_calls = len(calls)
        calls.clear()
        captions = session.caption(clips, beam=1)
        assert len(calls) == single_calls  # one prefill and 22 steps for the whole batch
        assert captions[0] == one
        assert captions == [session.caption(clip, beam=1) for clip in clips]


def prompts_of_one_length(session: Session, count: int) -> list[str]:
    """`count` different prompts that tokenize to the same length (the decoder shares one position vector)."""
    by_length: dict[int, list[str]] = {}
    for subject in ("red square", "blue circle", "green star", "small dog", "big cat", "a car", "the sun", "one tree",
                    "white ball", "black box", "tall man", "old bus", "new kite", "slow boat", "fast train", "wet road"):
        for template in ("summary: {}", "clips: {} moves\nsummary:", "question: where is the {}?"):
            text = template.format(subject)
            by_length.setdefault(len(session.prompt_ids(text)), []).append(text)
    group = max(by_length.values(), key=len)
    assert len(group) >= count, {k: len(v) for k, v in by_length.items()}
    return group[:count]


@pytest.mark.parametrize("mode", ["fp32", "int8"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_generate_batch_of_one_prompt_length_equals_one_at_a_time(tiny_exports, backend, mode):
    with Session(tiny_exports[mode] / backend, overlap="off") as session:
        for beam in (1, 4):
            prompts = prompts_of_one_length(session, min(4, session.clips_per_batch(beam)))
            calls = count_decoder_calls(session)
            alone = [session.generate(p, beam=beam) for p in prompts]
            single_calls = len(calls) // len(prompts)
            calls.clear()
            assert session.generate_batch(prompts, beam=beam) == alone
            assert len(calls) == single_calls  # one prefill and the steps, shared by every prompt
            assert len(set(alone)) > 1  # the prompts really decode differently
            order = list(reversed(range(len(prompts))))
            assert session.generate_batch([prompts[i] for i in order], beam=beam) == [alone[i] for i in order]
        longer = session.prompt_ids(prompts[0] + " and more words")
        assert len(longer) != len(session.prompt_ids(prompts[0]))
        with pytest.raises(AtomError, match="one token length"):
            session.generate_batch([prompts[0], prompts[0] + " and more words"])


def test_caption_stream_batches_through_the_encoder_process(tiny_exports):
    # The resident encoder process keeps two batches of clips in flight.
    folder = tiny_exports["int8"] / "executorch"
    with Session(folder, overlap="off") as plain:
        clips = clips_for(plain, 2 * plain.clips_per_batch(4) + 1, seed=1)
        expected = [plain.caption(clip, beam=4) for clip in clips]
    with Session(folder, overlap="process") as session:
        assert list(session.caption_stream(iter(clips), beam=4)) == expected
        stream = session.caption_stream(iter(clips), beam=4)
        assert next(stream) == expected[0]
        stream.close()  # the clips still at the encoder are discarded
        assert session.caption(clips[-1], beam=4) == expected[-1]


def test_batch_larger_than_the_cache_is_refused(tiny_exports):
    with Session(tiny_exports["fp32"] / "onnx", overlap="off") as session:
        prefixes = np.concatenate([session.encode(c) for c in clips_for(session, session.clips_per_batch(4) + 1)])
        with pytest.raises(AtomError, match=r"need \d+ KV-cache rows; the export has"):
            session.decode_batch([], prefixes, beam=4)


@pytest.mark.parametrize("beam", [1, 4])
def test_cpp_runner_batches_as_python_does(tiny_exports, host_runner, tmp_path, beam):
    folder = tiny_exports["int8"] / "executorch"
    with Session(folder, overlap="off") as session:
        clips = clips_for(session, session.clips_per_batch(beam) + 1, seed=2)
        expected = [session.decode_ids([], session.encode(clip), beam=beam) for clip in clips]
        eos = session.eos_id
    paths = []
    for i, clip in enumerate(clips):
        path = tmp_path / f"clip{i}.bin"
        clip.tofile(path)
        paths.append(str(path))
    trimmed = [t[: t.index(eos)] if eos in t else t for t in expected]
    for batch in ([], ["--batch", "1"]):  # the most clips together, and one at a time
        result = subprocess.run(
            [str(host_runner), "caption", "--artifacts", str(folder), "--beam", str(beam), *batch, *paths],
            capture_output=True, text=True, timeout=600,
        )
        assert result.returncode == 0, result.stderr
        captions = json.loads(result.stdout)["captions"]
        assert [c["tokens"] for c in captions] == trimmed, batch


def test_cpp_runner_refuses_a_batch_the_cache_cannot_hold(tiny_exports, host_runner, tmp_path):
    folder = tiny_exports["int8"] / "executorch"
    clip = tmp_path / "clip.bin"
    with Session(folder, overlap="off") as session:
        clips_for(session, 1)[0].tofile(clip)
        most = session.clips_per_batch(4)
    for batch, message in ((most + 1, f"--batch must be between 1 and {most} clips at beam 4"), (0, "--batch must be at least 1")):
        result = subprocess.run(
            [str(host_runner), "caption", "--artifacts", str(folder), "--beam", "4", "--batch", str(batch), str(clip)],
            capture_output=True, text=True, timeout=600,
        )
        assert result.returncode != 0 and result.stdout == ""
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
