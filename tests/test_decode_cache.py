"""The in-place KV cache and the beam reorder that moves only what changed."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from atom_runner.decoding.beam import top_k_stable
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
