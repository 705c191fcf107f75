"""Exports with few KV-cache rows: `export --max-batch 1` (a greedy-only phone build) and 2.

The decoder's export examples must fit the rows asked for: with one row there is no batch
dimension to vary, and with two the cache's example cannot be three rows. Each export's
text_decoder is run by ONNX Runtime at its full row count and must give the eager decoder's
logits and the new positions' keys and values.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from atom_deploy.backends import get_backend
from atom_deploy.export.modules import build_exportable
from atom_deploy.model_source import resolve_model
from atom_runner.schema import Entry, Module


@pytest.mark.parametrize("rows", [1, 2])
def test_a_decoder_with_few_cache_rows_exports_and_runs(rows, tmp_path):
    torch.manual_seed(0)
    model = resolve_model("tiny", max_batch=rows).build()
    backend = get_backend("onnx")
    exportable = build_exportable(Module.DECODER, model, backend.kv_style)
    written = {w.entry: w.file for w in backend.export(exportable, tmp_path, "fp32")}
    decoder = model.decoder.eval()
    c = decoder.config
    embeds = torch.randn(rows, 3, c.dim)
    positions = torch.arange(3)
    cache = torch.zeros(decoder.cache_shape(rows))
    with torch.no_grad():
        logits, k, v = decoder.forward_explicit(embeds, positions, cache, cache)
    session = ort.InferenceSession(str(written[Entry.TEXT_DECODER]), providers=["CPUExecutionProvider"])
    layer_caches = [cache[0].numpy()] * (2 * c.layers)  # the runner holds the cache: one input per layer and side
    feeds = dict(zip([i.name for i in session.get_inputs()], [embeds.numpy(), positions.numpy(), *layer_caches]))
    got = session.run(None, feeds)
    assert got[0].shape == (rows, c.vocab_size)
    np.testing.assert_allclose(got[0], logits.numpy(), atol=1e-4)
    # only the new positions come back: the reference's cache at positions 0..2
    np.testing.assert_allclose(got[1], k[:, :, :, :3].numpy(), atol=1e-5)
    np.testing.assert_allclose(got[2], v[:, :, :, :3].numpy(), atol=1e-5)

