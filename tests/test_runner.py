"""The Python runner: one Session per backend, same tokens everywhere, thread-safe."""

from __future__ import annotations

import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
import torch

from atom_deploy.export.eager import EagerModule
from atom_deploy.export.modules import build_exportable
from atom_deploy.export.quantize import quantize_eager
from atom_deploy.model_source import resolve_model
from atom_runner.decoding import DecoderStepper, beam_search, greedy, prefill, trim_after_eos
from atom_runner.decoding.beam import log_softmax
from atom_runner.errors import AtomError
from atom_runner.manifest import load_manifest
from atom_runner.schema import Key, KVStyle, Module
from atom_runner.session import PromptTruncatedWarning, Session

PROMPT = "a small red square moves left"


def clips(n: int, shape=(1, 3, 6, 32, 32)) -> list[np.ndarray]:
    return [np.random.default_rng(100 + i).standard_normal(shape).astype(np.float32) for i in range(n)]


@pytest.fixture(scope="module")
def sessions(tiny_exports):
    opened = {
        (mode, backend): Session(tiny_exports[mode], backend=backend, overlap="off")
        for mode in ("fp32", "int8")
        for backend in ("executorch", "onnx")
    }
    yield opened
    for s in opened.values():
        s.close()


def eager_stepper(tiny_exports, mode: str) -> tuple[DecoderStepper, object]:
    manifest = load_manifest(tiny_exports[mode] / "executorch")
    model_info = manifest.data[Key.MODEL]
    model = resolve_model(model_info[Key.MODEL_SPEC], manifest.decode[Key.DECODE_STEPS], model_info[Key.SEED]).build()
    if mode == "int8":
        quantize_eager(model.decoder, "int8")
    module = EagerModule(build_exportable(Module.DECODER, model, KVStyle.EXPLICIT_IO))
    shape = manifest.module(Module.DECODER)[Key.KV_CACHE][Key.SHAPE]
    return DecoderStepper(module, KVStyle.EXPLICIT_IO, shape), model


def session_tokens(session: Session, prefix, beam: int) -> list[int]:
    return session.decode_ids(session.tokenizer.encode(PROMPT), prefix, beam)


@pytest.mark.parametrize("beam", [1, 4])
def test_fp32_tokens_identical_across_backends_and_eager(sessions, tiny_exports, beam):
    et, ox = sessions[("fp32", "executorch")], sessions[("fp32", "onnx")]
    prefix = et.encode(clips(1)[0])
    np.testing.assert_allclose(ox.encode(clips(1)[0]), prefix, rtol=1e-4, atol=1e-5)
    stepper, _ = eager_stepper(tiny_exports, "fp32")
    tokens = {
        "executorch": session_tokens(et, prefix, beam),
        "onnx": session_tokens(ox, prefix, beam),
    }
    logits, pos = prefill(stepper, et.bos_id, et.tokenizer.encode(PROMPT), prefix)
    if beam == 1:
        tokens["eager"] = greedy(stepper, logits, pos, et.decode_steps)
    else:
        tokens["eager"] = beam_search(stepper, logits, pos, et.decode_steps, et.eos_id, beam).tokens
    assert len(set(tokens["eager"])) > 5, "a degenerate sequence would make this test vacuous"
    assert tokens["executorch"] == tokens["eager"] == tokens["onnx"]
    assert et.caption(clips(1)[0], beam=beam) == ox.caption(clips(1)[0], beam=beam)


def test_int8_executorch_runner_matches_eager_int8_tokens(sessions, tiny_exports):
    et = sessions[("int8", "executorch")]
    prefix = et.encode(clips(1)[0])
    stepper, _ = eager_stepper(tiny_exports, "int8")
    logits, pos = prefill(stepper, et.bos_id, et.tokenizer.encode(PROMPT), prefix)
    assert session_tokens(et, prefix, 1) == greedy(stepper, logits, pos, et.decode_steps)


def test_beam_width_one_is_greedy(sessions):
    for key in (("fp32", "executorch"), ("int8", "onnx")):
        s = sessions[key]
        prefix = s.encode(clips(1)[0])
        greedy_tokens = session_tokens(s, prefix, 1)
        stepper = s.new_stepper()
        logits, pos = prefill(stepper, s.bos_id, s.tokenizer.encode(PROMPT), prefix)
        beam_tokens = beam_search(stepper, logits, pos, s.decode_steps, s.eos_id, width=1).tokens
        # Greedy keeps generating past EOS (trimmed by the caller); a finished beam pads with EOS.
        assert trim_after_eos(beam_tokens, s.eos_id) == trim_after_eos(greedy_tokens, s.eos_id)
        assert len(beam_tokens) == len(greedy_tokens) == s.decode_steps


def reference_beam_search(model, bos: int, prompt: list[int], prefix: torch.Tensor, steps: int, eos: int, width: int):
    """Plain beam search: every hypothesis recomputed from scratch, no KV-cache reuse."""

    def next_logprobs(tokens: list[int]) -> np.ndarray:
        ids = torch.tensor([[bos] + prompt])
        parts = [model.decoder.embed(ids[:, :1]), prefix]
        if prompt:
            parts.append(model.decoder.embed(ids[:, 1:]))
        if tokens:
            parts.append(model.decoder.embed(torch.tensor([tokens])))
        x = torch.cat(parts, dim=1)
        cache = torch.zeros(model.decoder.cache_shape(1))
        with torch.no_grad():
            logits, _, _ = model.decoder.forward_explicit(x, torch.arange(x.shape[1]), cache, cache.clone())
        return log_softmax(logits.numpy())[0]

    hyps = [([], 0.0, 0, False)]  # tokens, sum, length, finished
    for _ in range(steps):
        candidates = []
        for row, (tokens, total, length, finished) in enumerate(hyps):
            if finished:
                candidates.append((-(total / length), row, eos, (tokens + [eos], total, length, True)))
                continue
            lp = next_logprobs(tokens)
            for token in range(lp.shape[0]):
                new_total = total + float(lp[token])
                candidates.append((-(new_total / (length + 1)), row, token, (tokens + [token], new_total, length + 1, token == eos)))
        candidates.sort(key=lambda c: (c[0], c[1], c[2]))
        hyps = [c[3] for c in candidates[:width]]
    best = max(range(len(hyps)), key=lambda i: (hyps[i][1] / hyps[i][2], -i))
    return hyps[best][0], hyps[best][1] / hyps[best][2]


def test_beam4_matches_a_plain_reference_beam_search(sessions, tiny_exports):
    s = sessions[("fp32", "executorch")]
    prefix = s.encode(clips(1)[0])
    steps = 6  # the reference recomputes every hypothesis from scratch: keep it short
    _, model = eager_stepper(tiny_exports, "fp32")
    prompt = s.tokenizer.encode(PROMPT)
    want_tokens, want_score = reference_beam_search(model, s.bos_id, prompt, torch.from_numpy(prefix), steps, s.eos_id, 4)
    stepper = s.new_stepper()
    logits, pos = prefill(stepper, s.bos_id, prompt, prefix)
    got = beam_search(stepper, logits, pos, steps, s.eos_id, 4)
    assert got.tokens == want_tokens
    assert got.score == pytest.approx(want_score, rel=1e-5)


def test_decoder_lanes_follow_where_the_cache_lives(sessions, tiny_exports):
    # ONNX's runner-held cache: two decodes at once by default (the eight-thread test below
    # runs them); ExecuTorch's in-place cache: one, and asking for more is an error.
    assert sessions[("fp32", "onnx")].decoder_lanes == 2
    assert sessions[("fp32", "executorch")].decoder_lanes == 1
    with pytest.raises(AtomError, match="decoder_lanes 2 needs a decoder whose KV cache the runner holds"):
        Session(tiny_exports["fp32"], backend="executorch", overlap="off", decoder_lanes=2)
    with pytest.raises(AtomError, match="decoder_lanes must be at least 1, got 0"):
        Session(tiny_exports["fp32"], backend="onnx", overlap="off", decoder_lanes=0)
    with Session(tiny_exports["fp32"], backend="onnx", overlap="off", decoder_lanes=3) as three:
        assert three.decoder_lanes == 3


def test_eight_threads_of_mixed_calls_match_single_threaded_results(sessions):
    s = sessions[("fp32", "onnx")]  # two decoder lanes: two decodes run at once
    inputs = clips(3)
    texts = [["a red car", "a dog"], ["two people talk"], ["ünïcödé text", "x"]]
    prompts = ["summary:", "answer: what moves?", "script:"]

    def call(kind: str, i: int):
        if kind == "caption":
            return s.caption(inputs[i % 3], beam=1 + (i % 2) * 3)
        if kind == "embed":
            return s.embed(texts[i % 3]).round(6).tolist()
        return s.generate(prompts[i % 3], steps=8)

    plan = [(("caption", "embed", "generate")[(t + i) % 3], t * 25 + i) for t in range(8) for i in range(25)]
    expected = {job: call(*job) for job in set(plan)}
    results, errors = {}, []

    def worker(jobs):
        try:
            for job in jobs:
                results.setdefault(job, []).append(call(*job))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(plan[t * 25 : (t + 1) * 25],)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "deadlock: a worker thread never finished"
    assert not errors, errors
    assert sum(len(v) for v in results.values()) == 200
    for job, values in results.items():
        assert all(v == expected[job] for v in values), job


@pytest.mark.parametrize("overlap", ["thread", "process"])
def test_caption_stream_overlaps_without_changing_captions(tiny_exports, sessions, overlap):
    reference = [sessions[("int8", "executorch")].caption(c, beam=4) for c in clips(4)]
    with Session(tiny_exports["int8"], backend="executorch", overlap=overlap) as s:
        assert list(s.caption_stream(clips(4), beam=4)) == reference
        assert s.stats.loads == {Module.VIDEO_ENCODER: 1, Module.DECODER: 1, Module.MINILM: 1}


def test_each_module_is_loaded_exactly_once_across_tasks(tiny_exports):
    with Session(tiny_exports["int8"], backend="onnx", overlap="thread") as s:
        s.caption(clips(2), beam=1)
        s.embed(["one", "two"])
        s.generate("summary:", steps=5)
        assert s.stats.loads == {Module.VIDEO_ENCODER: 1, Module.DECODER: 1, Module.MINILM: 1}


def test_embeddings_are_unit_length_and_match_across_backends(sessions):
    texts = ["a red car drives", "a dog runs in a park", "東京の夜景"]
    a = sessions[("fp32", "executorch")].embed(texts)
    b = sessions[("fp32", "onnx")].embed(texts)
    assert a.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_onnx_runner_needs_no_torch(tiny_exports):
    code = (
        "import sys, time; t=time.perf_counter(); from atom_runner.session import Session; "
        f"s = Session({str(tiny_exports['int8'])!r}, backend='onnx', overlap='off'); "
        "s.embed(['x']); s.generate('a', steps=3); print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_long_prompt_is_an_error_or_with_truncate_keeps_its_end(sessions):
    s = sessions[("int8", "onnx")]
    with pytest.raises(AtomError, match="but 40 fit the exported context of 64 .*--truncate to keep its last 40"):
        s.generate("word " * 2000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text = s.generate("word " * 2000 + "summary:", truncate=True)
    assert any(issubclass(w.category, PromptTruncatedWarning) for w in caught)
    ids = s.tokenizer.encode("word " * 2000 + "summary:")
    assert text == s.tokenizer.decode(trim_after_eos(s.decode_ids(ids[-40:]), s.eos_id))  # the end, cue included


def test_auto_overlap_picks_a_mode_that_pays_on_this_model_and_machine(tiny_exports):
    from atom_runner.session import PROCESS_OVERLAP_MIN_ENCODER_BYTES, _resolve_overlap

    big, small = PROCESS_OVERLAP_MIN_ENCODER_BYTES, PROCESS_OVERLAP_MIN_ENCODER_BYTES - 1
    assert _resolve_overlap("auto", "executorch", big, cores=8) == "process"
    assert _resolve_overlap("auto", "executorch", small, cores=8) == "off"  # the start would cost more than it hides
    assert _resolve_overlap("auto", "executorch", big, cores=2) == "off"  # XNNPACK already fills both cores
    assert _resolve_overlap("auto", "onnx", small, cores=8) == "thread"
    assert _resolve_overlap("auto", "onnx", small, cores=2) == "off"  # ORT already fills both cores
    assert _resolve_overlap("process", "executorch", small, cores=2) == "process"  # an explicit mode is kept
    with Session(tiny_exports["int8"], backend="executorch") as s:  # tiny's encoder is well under the bar
        assert s.overlap == "off"
