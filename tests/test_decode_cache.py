"""The in-place KV cache and the beam reorder that moves only what changed."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from atom_runner.decoding.beam import select, top_k_stable
from atom_runner.decoding.stepper import reorder_positions
from atom_runner.manifest import load_manifest
from atom_runner.schema import Entry, Key, Module


@pytest.mark.parametrize("seed", range(5))
def test_top_k_stable_is_a_stable_full_sort_cut_to_k(seed):
    rng = np.random.default_rng(seed)
    for _ in range(400):
        n, k = int(rng.integers(1, 200)), int(rng.integers(1, 6))
        scores = rng.integers(-3, 3, n).astype(np.float64)  # many ties
        scores[rng.random(n) < 0.2] = -np.inf  # frozen beams offer -inf everywhere but EOS
        assert np.array_equal(top_k_stable(scores, k), np.argsort(-scores, kind="stable")[:k])


def _select_by_the_rule(logits, sums, lengths, frozen, eos_id, width):
    # the beam rule written out: float64 log-softmax, every B x V candidate scored,
    # frozen rows offering only EOS, one stable sort (ties to the lower row, then token)
    x = logits.astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    logprobs = x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
    scores = (sums[:, None] + logprobs) / (lengths[:, None] + 1)
    scores[frozen] = -np.inf
    scores[frozen, eos_id] = sums[frozen] / lengths[frozen]
    flat = np.argsort(-scores.reshape(-1), kind="stable")[:width]
    rows, tokens = flat // logits.shape[1], flat % logits.shape[1]
    return rows, tokens, logprobs[rows, tokens]


@pytest.mark.parametrize("seed", range(4))
def test_beam_select_scores_only_candidates_and_equals_the_full_ranking(seed):
    rng = np.random.default_rng(seed)
    for case in range(300):
        rows, vocab, width = int(rng.choice([1, 4])), int(rng.integers(4, 300)), 4
        if case % 3 == 0:  # coarse logits: many exact ties inside and across rows
            logits = rng.integers(-4, 4, (rows, vocab)).astype(np.float32)
        else:
            logits = (rng.standard_normal((rows, vocab)) * rng.choice([0.01, 3, 300])).astype(np.float32)
        sums = -rng.random(rows) * rng.choice([0.5, 20])
        lengths = rng.integers(1, 23, rows)
        frozen = rng.random(rows) < (0.4 if rows > 1 else 0)
        if case % 5 == 0 and rows > 1:  # equal histories: only the new token separates rows
            sums[:], lengths[:] = sums[0], lengths[0]
        got = select(logits, sums, lengths, frozen, 2, width)
        want = _select_by_the_rule(logits, sums, lengths, frozen, 2, width)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        live = ~frozen[want[0]]
        assert np.array_equal(got[2][live], want[2][live])


def test_reorder_moves_only_positions_decoded_since_the_rows_split():
    # greedy: the row continues from itself, nothing moves (its own position, overwritten anyway)
    assert reorder_positions(np.array([0]), np.array([50]), 0).tolist() == [50]
    # first beam step: rows 1..3 are empty and take the whole prompt from row 0
    assert reorder_positions(np.array([0, 0, 0, 0]), np.array([50]), 0).tolist() == list(range(50))
    # later steps: only the decoded positions since the prompt
    assert reorder_positions(np.array([0, 0, 2, 1]), np.array([53]), 50).tolist() == [50, 51, 52]
    assert reorder_positions(np.array([0, 1, 2, 3]), np.array([53]), 50).tolist() == [53]


def _instruction_ops(pte: bytes, method: str) -> Counter:
    from executorch.exir._serialize._program import deserialize_pte_binary

    program = deserialize_pte_binary(pte)
    program = getattr(program, "program", program)
    plan = next(p for p in program.execution_plan if p.name == method)
    names = [o.name + (f".{o.overload}" if o.overload else "") for o in plan.operators]
    return Counter(
        names[i.instr_args.op_index] for chain in plan.chains for i in chain.instructions if hasattr(i.instr_args, "op_index")
    )


def test_executorch_decoder_writes_its_cache_in_place(tiny_exports):
    manifest = load_manifest(tiny_exports["int8"] / "executorch")
    decoder = manifest.module(Module.DECODER)
    ops = _instruction_ops(manifest.verified(decoder[Key.FILES][0]).read_bytes(), Entry.TEXT_DECODER)
    layers = decoder[Key.KV_CACHE][Key.SHAPE][0]
    # per layer and per cache (k, v): one write of the new positions, one beam reorder
    assert ops["aten::index_put_"] == 2 * 2 * layers
    # an out-of-place index_put or a copy would rewrite the whole cache every step
    assert not [name for name in ops if name.startswith(("aten::index_put.", "aten::copy_", "aten::index_copy"))]
    # the attention reads the cache rows as they lie: broadcasting them to the query heads
    # (matmul's expand) copied the whole cache every step, per layer
    assert not [name for name in ops if name.startswith("aten::expand_copy")]
    # per layer and cache: one gather of the attended positions, one of the reorder's source
    # (a slice of the cache rows copied all S_max positions a layer and side)
    assert ops["aten::index_select.out"] == 2 * 2 * layers, ops
    # the step's cache slots (write, read, reorder source, reorder target) and its attention
    # mask are built once for all layers: per layer they were a third of the portable-kernel
    # calls, and a masked_fill per layer split each layer's XNNPACK call in two
    assert ops["aten::arange.start_out"] <= 5, ops
    assert ops["aten::where.self_out"] <= 1 and ops["aten::bitwise_not.out"] <= 1, ops


def test_the_in_place_step_attends_over_exactly_attend_pos(tiny_exports):
    """attend_pos is what the attention reads: the context so far gives the step the
    whole cache would (positions past the step are masked either way), and leaving out
    a written position changes the logits."""
    from atom_runner.decoding.stepper import in_place_inputs
    from atom_runner.runtimes import load_module

    manifest = load_manifest(tiny_exports["fp32"] / "executorch")
    decoder = manifest.module(Module.DECODER)
    max_context = decoder[Key.KV_CACHE][Key.SHAPE][3]
    module = load_module("executorch", {Entry.TEXT_DECODER: manifest.verified(decoder[Key.FILES][0])})
    rng = np.random.default_rng(0)
    dim = decoder[Key.DIM]
    prompt = rng.standard_normal((1, 6, dim)).astype(np.float32)
    module.run(Entry.TEXT_DECODER, in_place_inputs(prompt, np.arange(6), np.array([0]), 0, max_context))
    step = rng.standard_normal((1, 1, dim)).astype(np.float32)
    step_inputs = in_place_inputs(step, np.array([6]), np.array([0]), 0, max_context)
    # the runners read a whole block of positions (past the step's: masked)
    assert np.array_equal(step_inputs[4], np.arange(min(16, max_context)))

    def logits(attend_pos: np.ndarray) -> np.ndarray:
        return module.run(Entry.TEXT_DECODER, step_inputs[:4] + [attend_pos.astype(np.int64)])[0]

    context = logits(np.arange(7))
    np.testing.assert_allclose(logits(step_inputs[4]), context, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logits(np.arange(max_context)), context, rtol=1e-5, atol=1e-5)
    assert not np.allclose(logits(np.arange(1, 7)), context, rtol=1e-3, atol=1e-3)
