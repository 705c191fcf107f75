"""Teacher-forced fidelity of quantized exports against an fp32 export of the same checkpoint.

    python scripts/lm_fidelity.py FP32_FOLDER QUANT_FOLDER... [--tokens N] [--window W] [--out FILE.json]

Each folder is a backend folder (OUT/<backend>). Prints top-1 agreement, mean and p99
KL(fp32 || quant) and both perplexities on the shipped text (atom_deploy/parity/lm_fidelity.py),
and whether each crosses its recipe's bound. `atom-deploy parity` gates the same metrics
against eager fp32; this script compares exports with each other (ExecuTorch int8 against
ONNX fp32, say) and scores more text, which on a real checkpoint takes minutes: the numbers in
docs/quantization.md come from it. Exit 1 when a bound is crossed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", type=Path, help="fp32 backend folder")
    parser.add_argument("quantized", type=Path, nargs="+",
                        help="quantized backend folders of the same checkpoint (an fp32 one is reported, not gated)")
    parser.add_argument("--tokens", type=int, default=4096, help="tokens to score (whole windows; default 4096)")
    parser.add_argument("--window", type=int, default=None, help="window length (default: 512, or the exports' context)")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args()

    from atom_deploy.parity import lm_fidelity
    from atom_deploy.table import print_table
    from atom_runner.schema import Key, Module
    from atom_runner.session import Session

    records, failed = [], []
    with Session(args.reference, overlap="off") as ref:
        ids = ref.tokenizer.encode(lm_fidelity.corpus_text())
        bos = ref.bos_id if ref.conventions.add_bos else None
        for folder in args.quantized:
            with Session(folder, overlap="off") as quant:
                mode = quant.manifest.module(Module.DECODER)[Key.QUANTIZATION]["mode"]
                if quant.tokenizer.encode(lm_fidelity.corpus_text()) != ids:
                    print(f"{folder}: another tokenizer than {args.reference}'s", file=sys.stderr)
                    return 1
                start = time.perf_counter()
                result = lm_fidelity.measure(ref.new_stepper(), quant.new_stepper(), ids, bos, args.tokens,
                                             args.window or lm_fidelity.WINDOW)
                seconds = time.perf_counter() - start
            crossed = result.crossed(lm_fidelity.LM_BOUNDS.get(mode))  # no bounds for fp32: reported only
            failed += [f"{folder} {metric}" for metric in crossed]
            records.append({"reference": str(args.reference), "quantized": str(folder), "backend": quant.backend,
                            "mode": mode, **asdict(result), "ppl_ratio": result.ppl_ratio, "seconds": round(seconds, 1),
                            "crossed": crossed})
    print_table(("quantized", "mode", "tokens", "window", "top-1", "mean KL", "p99 KL", "ppl fp32", "ppl", "crossed"),
                [(r["quantized"], r["mode"], r["tokens"], r["window"], f"{r['top1']:.4f}", f"{r['mean_kl']:.4f}",
                  f"{r['p99_kl']:.4f}", f"{r['ppl_reference']:.3f}", f"{r['ppl']:.3f}", ", ".join(r["crossed"]) or "-")
                 for r in records])
    if args.out:
        args.out.write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
