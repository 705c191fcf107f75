"""atom-deploy eval: caption quality, retrieval, STS-B and language-model fidelity per backend, in the shape of the paper's tables."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from atom_runner.errors import AtomError
from atom_runner.schema import Key

DEFAULT_CLIPS = 100


def add_parser(sub: argparse._SubParsersAction) -> None:
    from atom_deploy.eval.rows import ROW_NAMES
    from atom_deploy.eval.stsb import DEFAULT_STSB

    p = sub.add_parser("eval", help=__doc__.split(": ", 1)[1])
    p.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="int8 export folder (holds executorch/ and onnx/)")
    p.add_argument("--fp32-artifacts", type=Path, default=None, help="fp32 export of the same model, for the fp32 rows")
    p.add_argument("--8da4w-artifacts", dest="da4w_artifacts", type=Path, default=None,
                   help="8da4w export of the same model (export --quant 8da4w), for the 8da4w rows")
    p.add_argument("--clips", type=int, default=DEFAULT_CLIPS, help=f"test clips from the demo world (default {DEFAULT_CLIPS})")
    p.add_argument("--seed", type=int, default=0, help="seed of the demo test split")
    p.add_argument("--beam", type=int, default=4, help="beam width for the table rows (paper: 4)")
    p.add_argument("--out", type=Path, default=Path("results/eval"), help="where eval.json, *.csv and eval.png go")
    p.add_argument("--rows", nargs="+", default=list(ROW_NAMES), metavar="ROW",
                   help=f"rows to run, each quoted: {', '.join(repr(r) for r in ROW_NAMES)}")
    p.add_argument("--stsb", type=Path, default=DEFAULT_STSB, help="STS-B dev TSV (score, sentence1, sentence2)")
    p.add_argument("--stsb-pairs", type=int, default=0, help="use only the first N STS-B pairs (0: all)")
    p.add_argument("--no-stsb", action="store_true", help="skip STS-B")
    p.add_argument("--fail-on-bound", action="store_true",
                   help="exit 1 when a bound (CIDEr, R@1, backend gap, STS-B, LM top-1/KL/perplexity) fails, after writing the report")
    p.add_argument("--no-meteor", action="store_true", help="skip METEOR (its JVM needs ~2 GB)")
    p.add_argument("--lm-tokens", type=int, default=None,
                   help="tokens of the shipped text each quantized decoder is scored on against fp32 "
                        "(top-1, KL, perplexity: eval/lm.py; default 2048, 0: skip)")
    p.add_argument("--ablations", action="store_true",
                   help="beam 1/4, steps 12/23, clip 112/224, frames 2/6 (builds variant exports unless given)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=DIR",
                   help="an existing ablation export (clip112=DIR, frames2=DIR); else built under OUT/variants")
    p.add_argument("--no-build-variants", action="store_true",
                   help="ablations: use only --variant and already-built variants, export nothing")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atom_deploy.eval.ablations import run_ablations
    from atom_deploy.eval.data import load_for_shape
    from atom_deploy.eval.lm import lm_checks, lm_rows
    from atom_deploy.eval.report import console, write_outputs
    from atom_deploy.eval.rows import first_export, plan_rows
    from atom_deploy.eval.run import EvalReport, evaluate_rows, sample_captions
    from atom_deploy.eval.stsb import read_stsb
    from atom_deploy.eval.variants import build_variants, parse_variant_args
    from atom_deploy.parity.lm_fidelity import DEFAULT_TOKENS

    if args.clips < 1:
        raise AtomError(f"--clips must be >= 1, got {args.clips}")
    lm_tokens = DEFAULT_TOKENS if args.lm_tokens is None else args.lm_tokens
    if lm_tokens < 0:
        raise AtomError(f"--lm-tokens must be 0 or more, got {lm_tokens}")
    if args.fp32_artifacts is not None and not args.fp32_artifacts.is_dir():
        raise AtomError(f"--fp32-artifacts {args.fp32_artifacts} is not a folder")
    rows, skipped = plan_rows(args.rows, args.artifacts, args.fp32_artifacts, args.da4w_artifacts)
    for message in skipped:
        _log(message)
    manifest = first_export(args.artifacts, args.fp32_artifacts)
    clip_shape = tuple(manifest.data[Key.CLIP][Key.SHAPE])
    model = manifest.data[Key.MODEL]
    eval_set = load_for_shape(args.clips, args.seed, clip_shape)
    stsb_pairs = None
    if not args.no_stsb:
        stsb_pairs = read_stsb(args.stsb)
        if args.stsb_pairs:
            stsb_pairs = stsb_pairs[: args.stsb_pairs]
    results, checks = evaluate_rows(rows, eval_set, args.artifacts, args.fp32_artifacts, beam=args.beam,
                                    stsb_pairs=stsb_pairs, meteor=not args.no_meteor, log=_log)
    lm = lm_rows(rows, args.artifacts, args.fp32_artifacts, lm_tokens, log=_log) if lm_tokens else []
    checks += lm_checks(lm)
    ablations = []
    if args.ablations:
        variants = {"default": args.artifacts, **parse_variant_args(args.variant)}
        built, messages = build_variants(variants, model[Key.MODEL_SPEC], model[Key.SEED], clip_shape, args.out / "variants",
                                         export=not args.no_build_variants, log=_log)
        ablations, ablation_skips = run_ablations(built, eval_set, log=_log)
        skipped += messages + ablation_skips
        for message in messages + ablation_skips:
            _log(message)
    config = {
        "artifacts": str(args.artifacts), "fp32_artifacts": str(args.fp32_artifacts or ""),
        "8da4w_artifacts": str(args.da4w_artifacts or ""), "model": model["name"],
        "model_source": model.get("source", ""), "clips": args.clips, "seed": args.seed, "beam": args.beam,
        "clip_shape": list(clip_shape), "decode_steps": manifest.decode[Key.DECODE_STEPS],
        "stsb": str(args.stsb) if stsb_pairs else "", "stsb_pairs": len(stsb_pairs or []),
        "references_per_clip": len(eval_set.samples[0].references), "lm_tokens": lm_tokens,
    }
    report = EvalReport(config, tuple(results), tuple(checks), tuple(sample_captions(eval_set, results)),
                        tuple(skipped), tuple(ablations), tuple(lm))
    print(console(report))
    for path in write_outputs(report, args.out):
        print(f"wrote {path}")
    return bounds_exit_code(checks, args.fail_on_bound)


def bounds_exit_code(checks, fail_on_bound: bool) -> int:
    """1 when asked to gate and any bound failed (named on stderr); else 0."""
    failed = [c for c in checks if not c.passed]
    if not (fail_on_bound and failed):
        return 0
    names = "; ".join(f"{c.row} {c.metric} {c.value:.3f} > {c.bound}" for c in failed)
    print(f"atom-deploy eval: error: {len(failed)} bound(s) failed: {names}", file=sys.stderr)
    return 1


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


