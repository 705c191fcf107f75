"""BLEU@4, METEOR, ROUGE-L and CIDEr with the standard COCO caption evaluation (pycocoevalcap).

The same scorer code the captioning papers use, so our numbers are comparable in kind:
PTB tokenisation (Stanford CoreNLP jar) then the four scorers. PTBTokenizer and METEOR
run Java; METEOR's paraphrase table ships inside the wheel. SPICE is left out on purpose:
its first run downloads Stanford CoreNLP models, and nothing here may download.
Scores are reported x100, as in the paper's tables.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import unicodedata
from dataclasses import dataclass

from atom_runner.errors import AtomError


@dataclass(frozen=True)
class CaptionScores:
    bleu4: float
    meteor: float | None  # None when METEOR was skipped
    rouge_l: float
    cider: float
    # Each clip's CIDEr (x100), in the hypotheses' order; their mean is `cider`. CIDEr's
    # IDF comes from the references alone, so rows scored on one eval set share it and
    # per-clip differences between rows are exact (bounds.py bootstraps them).
    cider_per_clip: tuple[float, ...] = ()


def score_captions(
    hypotheses: dict[str, str], references: dict[str, list[str]], meteor: bool = True
) -> CaptionScores:
    """Corpus-level scores of one hypothesis per id against that id's references."""
    if not hypotheses:
        raise AtomError("score_captions: no hypotheses")
    if set(hypotheses) != set(references):
        raise AtomError("score_captions: hypotheses and references must have the same ids")
    if any(not refs for refs in references.values()):
        raise AtomError("score_captions: every id needs at least one reference")
    _require_java()
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tokenizer = PTBTokenizer()
    with _quiet_java():
        res = tokenizer.tokenize({k: [{"caption": clean(v)}] for k, v in hypotheses.items()})
        gts = tokenizer.tokenize({k: [{"caption": clean(r)} for r in refs] for k, refs in references.items()})
    # An empty hypothesis (a decoder that emits EOS first) tokenises to "" and trips
    # BLEU's assertion; one placeholder token scores ~0 instead, which is the truth.
    res = {k: [v[0] if v[0].strip() else "<empty>"] for k, v in res.items()}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, per_clip = Cider().compute_score(gts, res)
    cider_by_id = dict(zip(gts.keys(), per_clip))  # Cider scores in gts' key order
    meteor_score = _meteor(gts, res) if meteor else None
    return CaptionScores(
        bleu4=100.0 * float(bleu[3]),
        meteor=None if meteor_score is None else 100.0 * meteor_score,
        rouge_l=100.0 * float(rouge),
        cider=100.0 * float(cider),
        cider_per_clip=tuple(100.0 * float(cider_by_id[k]) for k in hypotheses),
    )


def clean(text: str) -> str:
    """One line of printable text. PTBTokenizer writes one caption per line and reads the
    tokens back by line number, so a newline or control byte inside a generated caption
    (an untrained decoder emits them) would shift every later caption onto the wrong id."""
    chars = (" " if unicodedata.category(c).startswith(("C", "Z")) else c for c in text)
    return " ".join("".join(chars).split())


def _meteor(gts: dict, res: dict) -> float:
    from pycocoevalcap.meteor.meteor import Meteor

    scorer = Meteor()
    try:
        score, _ = scorer.compute_score(gts, res)
    finally:
        # The METEOR jar is a resident subprocess; close it so no JVM outlives the run.
        _close_meteor(scorer)
    return float(score)


def _close_meteor(scorer) -> None:
    proc = getattr(scorer, "meteor_p", None)
    if proc is None or proc.poll() is not None:
        return
    with scorer.lock:
        proc.stdin.close()
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def _quiet_java():
    """CoreNLP's PTBLexer prints a progress line per call and a warning per odd byte on
    the inherited stderr; a failed tokenisation still surfaces, as misaligned output
    fails the scorers' own id checks."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _require_java() -> None:
    if shutil.which("java") is None:
        raise AtomError(
            "caption metrics need Java (the COCO PTB tokenizer and METEOR are Java): "
            "run scripts/setup.sh, or apt-get install default-jre-headless"
        )
