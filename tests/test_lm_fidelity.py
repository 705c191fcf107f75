"""Teacher-forced language-model fidelity (atom_deploy/parity/lm_fidelity.py) on the tiny exports:
the metrics against a brute-force recomputation, and parity failing on a doctored int8 export.

The sound int8 export passing the same gates is asserted by tests/test_export.py's parity test.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from artifact_helpers import linked_copy, read_manifest, replace_file, vouch_for, write_manifest
from atom_deploy.parity import lm_fidelity
from atom_runner.errors import AtomError
from atom_runner.session import Session
from conftest import atom_deploy

TEXT_DECODER = "decoder.text_decoder.onnx"


@pytest.fixture(scope="module")
def pair(tiny_exports):
    """(fp32, int8) ONNX Sessions of the tiny model."""
    with Session(tiny_exports["fp32"] / "onnx", overlap="off") as fp32, Session(tiny_exports["int8"] / "onnx", overlap="off") as int8:
        yield fp32, int8


def test_metrics_equal_a_brute_force_recomputation(pair):
    """Every scored token recomputed on its own: a fresh prefill of BOS + the window up to it
    (no KV cache carried between tokens), then torch's own KL and cross-entropy."""
    fp32, int8 = pair
    ids = fp32.tokenizer.encode(lm_fidelity.corpus_text())
    got = lm_fidelity.measure(fp32.new_stepper(), int8.new_stepper(), ids, fp32.bos_id, tokens=80)

    window = fp32.max_context  # the tiny export's context (64) is below WINDOW
    text_len = window - 1  # BOS first
    context = text_len // 2
    ref_logits, logits, targets = [], [], []
    for start in range(0, 3 * (text_len - context), text_len - context):  # 80 tokens: 3 whole windows of 32
        for i in range(context, text_len):
            prompt = ids[start : start + i]
            ref_logits.append(_prefill(fp32, prompt))
            logits.append(_prefill(int8, prompt))
            targets.append(ids[start + i])
    p = torch.log_softmax(torch.tensor(np.array(ref_logits), dtype=torch.float64), dim=-1)
    q = torch.log_softmax(torch.tensor(np.array(logits), dtype=torch.float64), dim=-1)
    kl = torch.nn.functional.kl_div(q, p, log_target=True, reduction="none").sum(-1)  # KL(p || q)
    target = torch.tensor(targets)
    assert got.tokens == len(targets) == 96 and got.window == window
    assert got.top1 == float((p.argmax(-1) == q.argmax(-1)).double().mean())
    # A cached step and a fresh prefill sum the attention in another order (on ONNX the
    # cache's positions and the new ones apart), so the logits differ in the last bits;
    # a metric computed wrongly is off by far more than 1e-4.
    assert got.mean_kl == pytest.approx(float(kl.mean()), rel=1e-4)
    assert got.p99_kl == pytest.approx(float(torch.quantile(kl, 0.99)), rel=1e-4)
    ppl_ref = float(torch.exp(torch.nn.functional.cross_entropy(p, target)))
    assert got.ppl_reference == pytest.approx(ppl_ref, rel=1e-4)
    assert got.ppl == pytest.approx(float(torch.exp(torch.nn.functional.cross_entropy(q, target))), rel=1e-4)
    assert 0 < got.mean_kl < got.p99_kl  # int8 is not fp32, and the tail is heavier than the mean


def test_a_text_shorter_than_one_window_is_an_error(pair):
    fp32, int8 = pair
    with pytest.raises(AtomError, match="too short for a window"):
        lm_fidelity.measure(fp32.new_stepper(), int8.new_stepper(), list(range(10, 40)), fp32.bos_id)


@pytest.mark.slow
def test_parity_fails_on_a_doctored_int8_export(tiny_exports, tmp_path):
    """Coarser weight integers (every int8 weight rounded to an even level: 7 bits) in the ONNX
    int8 decoder, with the manifest vouching for the new file: the LM gates must catch it and
    the command must say which metric crossed which bound."""
    import onnx
    from onnx import numpy_helper

    folder = linked_copy(tiny_exports["int8"] / "onnx", tmp_path / "onnx")
    model = onnx.load(str(folder / TEXT_DECODER))
    weights = {i.name: i for i in model.graph.initializer}
    doctored = 0
    for node in model.graph.node:
        if node.op_type == "MatMulInteger":  # weights held as uint8 = int8 + 128 (backends/onnx_int8.py)
            init = weights[node.input[1]]
            q = numpy_helper.to_array(init).astype(np.int32) - 128
            q = np.clip(np.round(q / 2) * 2, -127, 127) + 128
            init.CopyFrom(numpy_helper.from_array(q.astype(np.uint8), init.name))
            doctored += 1
    assert doctored > 0
    replace_file(folder / TEXT_DECODER, model.SerializeToString())
    data = read_manifest(folder)
    vouch_for(folder, data, TEXT_DECODER)
    write_manifest(folder, data)

    result = atom_deploy("parity", str(folder), "--json", str(tmp_path / "parity.json"), timeout=900)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = json.loads((tmp_path / "parity.json").read_text())
    lm_failed = {r["metric"] for r in rows if r["run"] == "onnx int8" and r["metric"].startswith("LM") and not r["passed"]}
    assert {"LM top-1 agreement", "LM mean KL"} <= lm_failed
    error = [line for line in result.stderr.splitlines() if line.startswith("atom-deploy parity: error:")]
    bounds = lm_fidelity.LM_BOUNDS["int8"]
    assert len(error) == 1 and "onnx int8 LM mean KL" in error[0] and f"> {bounds.max_mean_kl:g}" in error[0]


def test_parity_rejects_a_negative_token_count(tiny_exports):
    result = atom_deploy("parity", str(tiny_exports["int8"] / "onnx"), "--lm-tokens", "-1")
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1].endswith("--lm-tokens must be 0 or more, got -1")


def _prefill(session: Session, prompt: list[int]) -> np.ndarray:
    stepper = session.new_stepper()
    embeds = stepper.embed(np.array([[session.bos_id, *prompt]], dtype=np.int64))
    length = embeds.shape[1]
    return stepper.step(embeds, np.arange(length, dtype=np.int64), np.zeros(1, dtype=np.int64))[0]


def test_the_eager_reference_of_eval_steps_as_the_fp32_export_does(tiny_exports):
    """eval's eager fp32 row swaps eager modules into a Session over an ExecuTorch folder,
    whose manifest names the in-place cache: its new steppers must drive the eager decoder's
    explicit cache, and read the text as the fp32 export does."""
    from atom_deploy.eval.rows import eager_session

    with eager_session(tiny_exports["int8"] / "executorch") as eager, Session(tiny_exports["fp32"] / "executorch", overlap="off") as fp32:
        ids = fp32.tokenizer.encode(lm_fidelity.corpus_text())
        got = lm_fidelity.measure(fp32.new_stepper(), eager.new_stepper(), ids, fp32.bos_id, tokens=64)
    assert got.top1 == 1.0 and got.mean_kl < 1e-6 and got.ppl == pytest.approx(got.ppl_reference, rel=1e-5)
