"""atom-deploy eval: the metrics on cases with known answers, then the CLI end to end."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from atom_deploy.demo import make_split
from atom_deploy.eval.caption_metrics import clean, score_captions
from atom_deploy.eval.report import ROW_FIELDS
from atom_deploy.eval.retrieval import ranks_of_targets, recall_at_k
from atom_deploy.eval.stsb import DEFAULT_STSB, StsPair, evaluate_stsb, pearson, read_stsb, spearman
from atom_runner.errors import AtomError
from tests.conftest import atom_deploy

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="caption metrics need Java (scripts/setup.sh)")


# --- caption metrics -------------------------------------------------------------------


@needs_java
def test_cider_high_for_true_references_low_for_shuffled():
    samples = list(make_split("test", 20, 3))
    refs = {s.id: list(s.captions[:-1]) for s in samples}
    own = score_captions({s.id: s.captions[-1] for s in samples}, refs, meteor=False)
    # Each hypothesis scored against another clip's references.
    shuffled = score_captions({s.id: samples[(i + 7) % 20].captions[-1] for i, s in enumerate(samples)}, refs, meteor=False)
    assert own.cider > 100 and shuffled.cider < 40
    # Per-clip CIDEr is in the hypotheses' order and averages to the corpus score.
    assert np.mean(own.cider_per_clip) == pytest.approx(own.cider)
    swapped = {s.id: (samples[1].captions[-1] if i == 0 else s.captions[-1]) for i, s in enumerate(samples)}
    one_wrong = score_captions(swapped, refs, meteor=False).cider_per_clip
    assert one_wrong[0] < own.cider_per_clip[0] / 2 and one_wrong[1:] == pytest.approx(own.cider_per_clip[1:])
    assert own.cider > 4 * shuffled.cider
    assert own.bleu4 > 3 * shuffled.bleu4 and own.rouge_l > shuffled.rouge_l + 20


@needs_java
def test_bleu_and_rouge_on_a_hand_checked_pair():
    # 7 tokens each, one substitution at the end: n-gram precisions 6/7, 5/6, 4/5, 3/4,
    # equal lengths (no brevity penalty): BLEU@4 = (3/7)^(1/4). LCS 6 of 7: ROUGE-L = 6/7.
    hyp = {"a": "a red ring moves to the left"}
    ref = {"a": ["a red ring moves to the right"]}
    scores = score_captions(hyp, ref, meteor=False)
    assert scores.bleu4 == pytest.approx(100 * (3 / 7) ** 0.25, abs=1e-4)
    assert scores.rouge_l == pytest.approx(100 * 6 / 7, abs=1e-4)
    assert scores.meteor is None
    identical = score_captions({"a": ref["a"][0]}, ref, meteor=True)
    assert identical.bleu4 == pytest.approx(100, abs=1e-4) and identical.rouge_l == pytest.approx(100)
    assert identical.meteor == pytest.approx(100, abs=1e-3)


@needs_java
def test_control_bytes_in_a_caption_do_not_shift_other_ids():
    # PTBTokenizer is line-based: an unsanitised newline would move "b"'s tokens onto "c".
    refs = {k: ["a red ring moves to the left"] for k in "abc"}
    hyps = {"a": "garbage\nmore\x0egarbage", "b": "a red ring moves to the left", "c": "zzz"}
    assert clean(hyps["a"]) == "garbage more garbage"
    single = score_captions({"b": hyps["b"]}, {"b": refs["b"]}, meteor=False)
    mixed = score_captions(hyps, refs, meteor=False)
    assert single.bleu4 == pytest.approx(100, abs=1e-4)
    assert mixed.bleu4 < 100  # corpus BLEU over three; but "b" still matched:
    assert mixed.rouge_l == pytest.approx(100 / 3, abs=1e-3)


def test_score_captions_rejects_mismatched_ids():
    with pytest.raises(AtomError):
        score_captions({"a": "x"}, {"b": ["x"]})


# --- retrieval -------------------------------------------------------------------------


def _queries_with_ranks(ranks: list[int]) -> np.ndarray:
    """Queries against a one-hot gallery: query i scores its own clip 1 and r_i - 1 others 2."""
    n = len(ranks)
    queries = np.zeros((n, n))
    for i, rank in enumerate(ranks):
        queries[i, i] = 1.0
        others = [j for j in range(n) if j != i][: rank - 1]
        queries[i, others] = 2.0
    return queries


def test_recall_at_k_on_constructed_ranks():
    ranks = [1, 1, 1, 2, 3, 5, 6, 10, 11, 12, 1, 4]
    queries, gallery = _queries_with_ranks(ranks), np.eye(12) * 3.0  # scale must not matter
    assert ranks_of_targets(queries, gallery).tolist() == ranks
    scores = recall_at_k(queries, gallery)
    assert scores.r1 == pytest.approx(100 * 4 / 12)
    assert scores.r5 == pytest.approx(100 * 8 / 12)
    assert scores.r10 == pytest.approx(100 * 10 / 12)
    assert scores.median_rank == 3.5 and scores.gallery == 12
    assert scores.hits_at_1 == tuple(r == 1 for r in ranks)


def test_recall_counts_ties_against_the_target():
    # Two clips with the same caption: neither query may claim rank 1 by index order.
    gallery = np.array([[1.0, 0.0], [1.0, 0.0]])
    queries = np.array([[1.0, 0.1], [1.0, 0.2]])
    assert ranks_of_targets(queries, gallery).tolist() == [2, 2]
    assert recall_at_k(queries, gallery).r1 == 0.0


# --- STS-B -----------------------------------------------------------------------------


def test_stsb_reader_keeps_bare_quotes(tmp_path):
    path = tmp_path / "stsb.tsv"
    path.write_text(
        'score\tsentence1\tsentence2\n'
        '4.5\t"Quoted start, no end\tA man said "hi" twice.\n'
        '0.0\tplain\t"\n'
        '2.25\tlast one\tsecond "half\n',
        encoding="utf-8",
    )
    pairs = read_stsb(path)
    assert pairs == [
        StsPair(4.5, '"Quoted start, no end', 'A man said "hi" twice.'),
        StsPair(0.0, "plain", '"'),
        StsPair(2.25, "last one", 'second "half'),
    ]


def test_stsb_reader_rejects_bad_rows(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("score\tsentence1\tsentence2\n1.0\tonly two\n", encoding="utf-8")
    with pytest.raises(AtomError, match=":2:"):
        read_stsb(bad)
    with pytest.raises(AtomError, match="not found"):
        read_stsb(tmp_path / "missing.tsv")


@pytest.mark.skipif(not DEFAULT_STSB.is_file(), reason="shared STS-B dev file not present")
def test_stsb_reader_reads_the_shared_dev_file():
    pairs = read_stsb(DEFAULT_STSB)
    assert len(pairs) == 1500
    assert all(0.0 <= p.score <= 5.0 and p.sentence1 and p.sentence2 for p in pairs)


def test_stsb_pearson_of_a_known_embedding():
    # 2-D unit vectors at angle theta: cosine = cos(theta), gold = 5 cos(theta) -> r = 1.
    angles = np.linspace(0.0, np.pi / 2, 9)
    pairs = [StsPair(5 * float(np.cos(a)), f"base {i}", f"turned {i}") for i, a in enumerate(angles)]
    vectors = {}
    for i, a in enumerate(angles):
        vectors[f"base {i}"] = np.array([1.0, 0.0])
        vectors[f"turned {i}"] = np.array([np.cos(a), np.sin(a)])
    result = evaluate_stsb(lambda texts: np.stack([vectors[t] for t in texts]), pairs, batch=4)
    assert result.pearson == pytest.approx(1.0) and result.spearman == pytest.approx(1.0) and result.pairs == 9
    x = np.array([1.0, 2.0, 2.0, 4.0, 7.0])
    y = np.array([2.0, 1.0, 3.0, 3.0, 9.0])
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert spearman(x, x ** 3) == pytest.approx(1.0)


# --- the runner's decode-steps knob ----------------------------------------------------


def test_caption_steps_sets_the_decode_length(tiny_exports):
    from atom_runner.schema import Entry
    from atom_runner.session import Session

    with Session(tiny_exports["int8"] / "onnx", overlap="off") as session:
        clip = np.random.default_rng(0).standard_normal(session.clip_shape).astype(np.float32)
        calls = []
        run = session.decoder.run  # the public module: count its text_decoder calls
        session.decoder.run = lambda entry, inputs: (calls.append(1) if entry == Entry.TEXT_DECODER else None) or run(entry, inputs)

        def decoder_calls(run) -> int:
            calls.clear()
            run()
            return len(calls)

        full = decoder_calls(lambda: session.caption(clip, beam=1))
        short = decoder_calls(lambda: session.caption(clip, beam=1, steps=5))
        assert full - short == session.decode_steps - 5  # fixed-length loop: one call per step
        streamed = decoder_calls(lambda: list(session.caption_stream([clip, clip], beam=1, steps=5)))
        assert streamed == short  # the two clips share every decode step
        assert decoder_calls(lambda: session.caption([clip], beam=4, steps=5)) < decoder_calls(
            lambda: session.caption([clip], beam=4))


# --- the command -----------------------------------------------------------------------


@needs_java
@pytest.mark.slow
def test_eval_cli_end_to_end(tiny_exports, tmp_path):
    out = tmp_path / "eval"
    stsb = tmp_path / "stsb.tsv"
    rows = ["score\tsentence1\tsentence2"] + [
        f"{s}\t{a}\t{b}" for s, a, b in (
            (5.0, "A man is playing a guitar.", "A man plays the guitar."),
            (0.2, "A cat sleeps on the sofa.", "The stock market fell today."),
            (3.0, "A woman is slicing an onion.", "A woman is cutting vegetables."),
            (1.0, 'He said "no".', "A dog runs in a park."),
            (4.2, "Two kids play football.", "Two children are playing soccer."),
            (0.5, "A plane takes off.", "Someone is frying an egg."),
        )
    ]
    stsb.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = atom_deploy(
        "eval", "--artifacts", str(tiny_exports["int8"]), "--fp32-artifacts", str(tiny_exports["fp32"]),
        "--clips", "8", "--seed", "1", "--out", str(out), "--stsb", str(stsb), "--ablations", "--no-build-variants",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("eval.json", "rows.csv", "samples.csv", "ablations.csv", "eval.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "eval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    report = json.loads((out / "eval.json").read_text())
    names = [r["name"] for r in report["rows"]]
    assert names == ["eager fp32", "executorch int8", "onnx int8", "executorch fp32", "onnx fp32"]
    for row in report["rows"]:
        per_clip = row["scores"].pop("cider_per_clip")
        assert len(per_clip) == 8 and sum(per_clip) / 8 == pytest.approx(row["scores"]["cider"])
        assert set(row["scores"]) == {"bleu4", "meteor", "rouge_l", "cider"}
        assert all(isinstance(v, float) and v >= 0 for v in row["scores"].values())
        hits = row["retrieval"].pop("hits_at_1")
        assert len(hits) == 8 and 100 * sum(hits) / 8 == pytest.approx(row["retrieval"]["r1"])
        assert set(row["retrieval"]) == {"r1", "r5", "r10", "median_rank", "gallery"}
        assert row["retrieval"]["gallery"] == 8 and row["retrieval"]["r10"] == 100.0  # k >= gallery
        assert len(row["captions"]) == 8 and row["seconds_per_clip"] > 0
        assert (row["stsb"] is not None) == (row["name"] in ("eager fp32", "executorch int8", "onnx int8"))
    by_name = {r["name"]: r for r in report["rows"]}
    # The eager row runs the runner's decode loop: fp32 exports reproduce its captions.
    agree = sum(a == b for a, b in zip(by_name["eager fp32"]["captions"], by_name["onnx fp32"]["captions"]))
    assert agree >= 6
    # Real MiniLM on pairs a human would rank: strongly correlated, int8 close to fp32.
    assert by_name["eager fp32"]["stsb"]["pearson"] > 0.8
    checks = {(c["row"], c["metric"]): c for c in report["checks"]}
    assert {("executorch int8", "CIDEr drop"), ("executorch int8", "R@1 drop"), ("onnx int8", "CIDEr drop"),
            ("onnx int8", "R@1 drop"), ("executorch int8", "CIDEr gap"), ("executorch int8", "STS-B Pearson drop"),
            ("onnx int8", "STS-B Pearson drop")} <= set(checks)
    for check in checks.values():  # every CIDEr and R@1 delta has its bootstrap interval around it
        if check["metric"] in ("CIDEr drop", "R@1 drop", "CIDEr gap"):
            low, high = check["interval"]
            assert low <= check["value"] + 1e-9 and check["value"] - 1e-9 <= high
    assert checks[("onnx int8", "CIDEr drop")]["reference"] == "onnx fp32"
    assert checks[("executorch int8", "CIDEr drop")]["value"] == pytest.approx(
        by_name["executorch fp32"]["scores"]["cider"] - by_name["executorch int8"]["scores"]["cider"])
    # Each int8 decoder read against the same backend's fp32 on the shipped text (eval/lm.py)
    lm = {r["row"]: r for r in report["lm_fidelity"]}
    assert {row: r["reference"] for row, r in lm.items()} == {"executorch int8": "executorch fp32", "onnx int8": "onnx fp32"}
    assert all(r["tokens"] >= 2048 and 0 < r["top1"] < 1 and 0 < r["mean_kl"] < r["p99_kl"] for r in lm.values())
    assert checks[("onnx int8", "LM mean KL")]["value"] == lm["onnx int8"]["mean_kl"]
    assert checks[("onnx int8", "LM top-1 disagreement")]["value"] == pytest.approx(1 - lm["onnx int8"]["top1"])
    assert len(report["samples"]) == 8
    sample = report["samples"][0]
    assert len(sample["references"]) == 4 and sample["query"] not in sample["references"]
    assert set(sample["captions"]) == set(names)
    assert [(a["group"], a["label"]) for a in report["ablations"]] == [
        ("beam", "beam 1"), ("beam", "beam 4"), ("steps", "12 steps"), ("steps", "23 steps")]
    assert any("clip size" in s for s in report["skipped"]) and any("frames" in s for s in report["skipped"])
    assert report["config"]["clips"] == 8 and report["config"]["stsb_pairs"] == 6

    with (out / "rows.csv").open(newline="") as handle:
        records = list(csv.DictReader(handle))
    assert tuple(records[0]) == ROW_FIELDS and [r["row"] for r in records] == names
    assert all(r["cider"] != "" and r["r1"] != "" for r in records)
    assert records[1]["cider_drop_ok"] in ("True", "False") and records[1]["bounds_reference"] == "executorch fp32"
    assert float(records[1]["lm_mean_kl"]) == pytest.approx(lm["executorch int8"]["mean_kl"], abs=1e-4)
    for column in ("cider_drop", "r1_drop", "backend_cider_gap"):
        low, value, high = (float(records[1][column + part]) for part in ("_low", "", "_high"))
        assert low - 0.01 <= value <= high + 0.01  # rounded to 3 and 2 decimals
    with (out / "samples.csv").open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 8
    assert "CIDEr drop" in result.stdout and "R@1" in result.stdout


def test_eval_cli_rejects_unknown_rows(tiny_exports, tmp_path):
    result = atom_deploy("eval", "--artifacts", str(tiny_exports["int8"]), "--rows", "tflite int8",
                         "--out", str(tmp_path), "--no-stsb")
    assert result.returncode == 1 and "unknown rows" in result.stderr


def test_ablation_variants_follow_the_default_export(tmp_path):
    from atom_deploy.eval.variants import build_variants, parse_variant_args, variant_values

    assert variant_values((1, 3, 6, 224, 224)) == {"clip112": 112, "frames2": 2}  # the paper's
    assert variant_values((1, 3, 6, 32, 32)) == {"clip112": 16, "frames2": 2}  # tiny: half its own size
    built, messages = build_variants({"default": tmp_path}, "tiny", 0, (1, 3, 6, 32, 32), tmp_path / "v", export=False)
    assert built == {"default": tmp_path} and len(messages) == 2
    with pytest.raises(AtomError, match="NAME=DIR"):
        parse_variant_args(["clip64=/nowhere"])
    with pytest.raises(AtomError, match="no executorch"):
        parse_variant_args([f"clip112={tmp_path}"])


def test_fact_check_reads_captions_against_their_scenes():
    from atom_deploy.eval.facts import score_facts

    samples = list(make_split("test", 12, 0))
    scenes = [s.scene for s in samples]
    # Every reference wording is true of its scene: the reader must agree, object for object.
    for k in range(5):
        truth = score_facts([s.captions[k] for s in samples], scenes)
        assert truth.objects == truth.counts == 100.0, k
    exact = score_facts([s.canonical for s in samples], scenes)
    assert exact.colours == exact.objects == exact.motions == exact.counts == 100.0
    # A caption from another clip is mostly wrong; an empty one names nothing.
    shifted = score_facts([samples[(i + 1) % 12].canonical for i in range(12)], scenes)
    assert shifted.objects < 30 and shifted.motions < 30
    empty = score_facts([""] * 12, scenes)
    assert empty.colours == empty.objects == empty.motions == empty.backgrounds == 0.0
    with pytest.raises(ValueError, match="one caption per scene"):
        score_facts(["a red square"], scenes)


def test_fail_on_bound_gates_the_exit_code(capsys):
    from atom_deploy.cli.eval_cmd import bounds_exit_code
    from atom_deploy.eval.bounds import check_rows

    metrics = {"eager fp32": {"cider": 40.0, "r1": 30.0}, "onnx int8": {"cider": 37.0, "r1": 29.0}}
    checks = check_rows(metrics)  # a 3.0 CIDEr drop: over the paper's 1.5
    assert [c.passed for c in checks] == [False, True]
    assert bounds_exit_code(checks, fail_on_bound=False) == 0  # report-only by default
    assert bounds_exit_code(checks, fail_on_bound=True) == 1
    assert "onnx int8 CIDEr drop 3.000 > 1.5" in capsys.readouterr().err
    metrics["onnx int8"]["cider"] = 39.0
    assert bounds_exit_code(check_rows(metrics), fail_on_bound=True) == 0


def test_paired_bootstrap_interval_brackets_the_delta():
    from atom_deploy.eval.bounds import paired_interval

    fp32 = np.linspace(150, 200, 100)
    assert paired_interval(fp32, fp32) == (0.0, 0.0)
    assert paired_interval(fp32, fp32 + 1.25) == pytest.approx((-1.25, -1.25))  # int8 better by 1.25 everywhere
    # One query of 100 loses its rank-1 hit: a 1-point R@1 drop whose interval reaches 0.
    hits = np.full(100, 100.0)
    flipped = hits.copy()
    flipped[37] = 0.0
    low, high = paired_interval(hits, flipped)
    assert low == 0.0 and 1.0 <= high <= 5.0
    low, high = paired_interval(flipped, hits, absolute=True)  # |gap| is never negative
    assert 0.0 <= low <= 1.0 <= high
    with pytest.raises(ValueError, match="equal-length"):
        paired_interval([1.0, 2.0], [1.0])


def test_bound_checks_carry_intervals_when_per_clip_series_are_given():
    from atom_deploy.eval.bounds import check_rows

    rng = np.random.default_rng(1)
    fp32 = rng.uniform(100, 250, 200)
    int8 = fp32 - rng.normal(1.0, 3.0, 200)  # drops ~1 CIDEr on average, clip by clip noisy
    hits_fp32 = (rng.uniform(size=200) < 0.8) * 100.0
    metrics = {
        "onnx fp32": {"cider": fp32.mean(), "r1": hits_fp32.mean(), "cider_per_clip": fp32, "r1_hits": hits_fp32},
        "onnx int8": {"cider": int8.mean(), "r1": hits_fp32.mean(), "cider_per_clip": int8, "r1_hits": hits_fp32},
    }
    cider_drop, r1_drop = check_rows(metrics)
    low, high = cider_drop.interval
    assert low < cider_drop.value < high and high - low < 2.0  # ~1.96 * 2 * 3 / sqrt(200) wide
    assert r1_drop.value == 0.0 and r1_drop.interval == (0.0, 0.0)
    bare = {name: {"cider": m["cider"], "r1": m["r1"]} for name, m in metrics.items()}
    assert all(c.interval is None for c in check_rows(bare))  # no series, no interval, same verdicts
