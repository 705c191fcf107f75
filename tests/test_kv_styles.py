"""The three KV-cache homes step to the same logits and tokens (eager, no export needed).

IN_PLACE (ExecuTorch) and RUNNER_HELD (ONNX) each reorder beams their own way: inside the
program, or in the stepper's arrays. Both are held to EXPLICIT_IO, the eager reference
that carries the whole cache through each call, on greedy decoding, beam search, and
several prompts searched together.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from atom_deploy.export.eager import EagerModule
from atom_deploy.export.modules import build_exportable
from atom_deploy.model_source import resolve_model
from atom_runner.decoding import DecoderStepper, greedy, prefill
from atom_runner.decoding.beam import beam_search_groups
from atom_runner.schema import Entry, KVStyle, Module

STEPS = 12


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return resolve_model("tiny", decode_steps=STEPS, max_batch=8).build()


def stepper(model, style: str) -> DecoderStepper:
    return DecoderStepper(EagerModule(build_exportable(Module.DECODER, model, style)), style, model.decoder.cache_shape(8))


def prefixes(model, rows: int) -> np.ndarray:
    c = model.config
    return np.random.default_rng(7).standard_normal((rows, c.encoder.num_visual_tokens, c.decoder.dim)).astype(np.float32)


def run(step: DecoderStepper, prefix: np.ndarray, width: int, prompt=(5, 6, 7)) -> tuple[list[list[int]], np.ndarray]:
    logits, pos = prefill(step, 1, list(prompt), prefix)
    first = logits.copy()
    if width == 1:
        return [greedy(step, logits, pos, STEPS)], first
    return [r.tokens for r in beam_search_groups(step, logits, pos, STEPS, eos_id=2, width=width)], first


@pytest.mark.parametrize("style", [KVStyle.RUNNER_HELD, KVStyle.IN_PLACE])
@pytest.mark.parametrize("groups,width", [(1, 1), (1, 4), (2, 4)])
def test_style_equals_explicit_reference(model, style, groups, width):
    prefix = prefixes(model, groups)
    if width == 1:
        prefix = prefix[:1]
    want, want_logits = run(stepper(model, KVStyle.EXPLICIT_IO), prefix, width)
    got, got_logits = run(stepper(model, style), prefix, width)
    np.testing.assert_allclose(got_logits, want_logits, rtol=1e-5, atol=1e-5)
    assert all(len(set(t)) > 3 for t in want), "a degenerate sequence would make this test vacuous"
    assert got == want


@pytest.mark.parametrize("width", [1, 4])
def test_held_stepper_reuses_its_arrays_across_requests(model, width):
    # After a longer request, a shorter one on the same stepper has the longer one's keys
    # in its arrays past its own positions: they must stay masked.
    step = stepper(model, KVStyle.RUNNER_HELD)
    prefix = prefixes(model, 2)
    run(step, prefix[:1], width, prompt=range(5, 25))
    again, _ = run(step, prefix[1:], width)
    fresh, _ = run(stepper(model, KVStyle.RUNNER_HELD), prefix[1:], width)
    assert again == fresh


def test_held_arrays_follow_the_context_not_the_cache(model):
    # what the graph is given each step: the positions written so far, in whole blocks
    from atom_runner.decoding.stepper import ATTEND_BLOCK, attended_length

    module = EagerModule(build_exportable(Module.DECODER, model, KVStyle.RUNNER_HELD))
    seen = []  # (the step's last position, the cache positions passed in)
    run_module = module.run

    def recording_run(entry, inputs):
        if entry == Entry.TEXT_DECODER:
            seen.append((int(inputs[1][-1]), inputs[2].shape[2]))
        return run_module(entry, inputs)

    module.run = recording_run
    step = DecoderStepper(module, KVStyle.RUNNER_HELD, model.decoder.cache_shape(8))
    run(step, prefixes(model, 1), 1)
    max_context = model.config.decoder.max_context
    assert [passed for _, passed in seen] == [attended_length(last, max_context) for last, _ in seen]
    assert all(last < passed <= last + ATTEND_BLOCK for last, passed in seen)
    assert seen[-1][1] < max_context  # a tiny decode never reads the whole cache
