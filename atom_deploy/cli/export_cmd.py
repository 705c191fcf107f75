"""atom-deploy export: the three modules as separate quantized ExecuTorch .pte files and ONNX graphs."""

from __future__ import annotations

import argparse
from pathlib import Path

from atom_deploy.export.kv_budget import DEFAULT_KV_BUDGET_MB
from atom_deploy.table import print_table

DEFAULT_MODEL = "demo"  # the trained demo model shipped in the package


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help=__doc__.split(": ", 1)[1])
    p.add_argument("--model", default=DEFAULT_MODEL, help="demo (the shipped trained model), a random-weight preset (tiny, mplug2plus) or a model folder")
    p.add_argument("--backend", default="all", help="executorch, onnx or all")
    # Modes and the default group size live in export/quantize.py, which imports torch: checked there, not here.
    p.add_argument("--quant", default="int8",
                   help="int8 (the paper's: Linear + Embedding), 8da4w (int4 grouped Linear weights, int8 embeddings) or fp32")
    p.add_argument("--group-size", type=int, default=None,
                   help="8da4w only: input features per int4 weight scale, a multiple of 32 (default: the recipe's; "
                        "written to the manifest)")
    p.add_argument("--onnx-kernel", "--int4-kernel", dest="onnx_kernel", default=None,
                   help="int8 and 8da4w on ONNX Runtime: exact (default; XNNPACK's numbers, the same tokens as "
                        "ExecuTorch) or matmulnbits (ONNX Runtime's own 8- and 4-bit kernel: outputs close to, not "
                        "equal to ExecuTorch's; faster for 8da4w and small int8 models, see docs/quantization.md)")
    p.add_argument("--decode-steps", type=int, default=None, help="fixed decode loop length (default: 23)")
    p.add_argument("--max-batch", type=int, default=None,
                   help="decoder KV-cache rows (default 16): captioning decodes max-batch // beam clips together")
    p.add_argument("--max-context", type=int, default=None,
                   help="decoder KV-cache positions: BOS + visual prefix + prompt + decode steps (default: the "
                        "preset's; for an imported checkpoint its max_position_embeddings, cut so that the float32 "
                        f"KV cache stays within {DEFAULT_KV_BUDGET_MB} MiB; the manifest and inspect show the bytes)")
    p.add_argument("--clip-size", type=int, default=None, help="export for smaller frames, e.g. 112 (ablation)")
    p.add_argument("--clip-frames", type=int, default=None, help="export for fewer frames, e.g. 2 (ablation)")
    p.add_argument("--out", type=Path, default=Path("artifacts"), help="writes OUT/<backend>/")
    p.add_argument("--force", action="store_true", help="replace existing OUT/<backend> folders")
    p.add_argument("--seed", type=int, default=0, help="seed for random-initialized weights")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atom_deploy.backends import backend_names
    from atom_deploy.export.pipeline import ExportRequest, run_export
    from atom_deploy.export.quantize import QuantRecipe
    from atom_deploy.weights.clip_variant import variant_spec

    backends = tuple(backend_names()) if args.backend == "all" else (args.backend,)
    request = ExportRequest(
        model=variant_spec(args.model, args.clip_size, args.clip_frames), backends=backends,
        quant=QuantRecipe(args.quant, args.group_size, args.onnx_kernel), decode_steps=args.decode_steps,
        max_batch=args.max_batch, max_context=args.max_context,
        out=args.out, force=args.force, seed=args.seed,
    )
    reports = run_export(request)
    rows = [(r.module, r.backend, f"{r.bytes:,}", f"{r.seconds:.1f}") for r in reports]
    print_table(("module", "backend", "bytes", "seconds"), rows)
    for name in backends:
        print(f"wrote {args.out / name}")
    return 0
