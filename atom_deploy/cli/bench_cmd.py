"""atom-deploy bench: ATOM (reuse + overlap, then + batching) vs a sequential pipeline that loads a model per stage."""

from __future__ import annotations

import argparse
from pathlib import Path

from atom_deploy.table import print_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help=__doc__.split(": ", 1)[1])
    p.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="export folder (OUT or OUT/<backend>)")
    p.add_argument("--backend", default="executorch", help="executorch or onnx")
    p.add_argument("--clips", type=int, default=5, help="clips per run (the paper uses 5)")
    p.add_argument("--repeat", type=int, default=3, help="runs per variant, interleaved A B A B")
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--out", type=Path, default=Path("results"), help="bench.json, bench.csv, bench.png go here")
    p.add_argument("--overlap", default="auto", help="ATOM's encode/decode overlap: auto, off, thread or process")
    d = p.add_argument_group("device", "run both variants with the C++ runner on a phone over adb instead")
    d.add_argument("--device", action="store_true", help="bench on the device (needs atom-deploy device bundle)")
    d.add_argument("--serial", help="which device, when several are connected")
    d.add_argument("--bundle", type=Path, default=Path("build") / "device-bundle", help="the device bundle folder")
    s = p.add_argument_group("search", "the index at library scale instead (docs/search_scale.md); writes search_bench.json, .png")
    s.add_argument("--search", dest="run", action="store_const", const=run_search, default=run,
                   help="build synthetic indexes of --sizes clips and time the search engines on them")
    s.add_argument("--sizes", type=_counts, default=(100_000, 1_000_000), help="clips per index (default 100000,1000000)")
    s.add_argument("--engine", type=lambda text: tuple(text.split(",")), default=("ann", "exact"),
                   help="ann (the vector index, what search does), exact (search --exact); default both")
    s.add_argument("--queries", type=int, default=100, help="warm queries per run (default 100)")
    s.add_argument("--scenes", type=int, default=3000, help="demo-world scenes whose captions seed the vectors (default 3000)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atom_deploy.bench.reuse import BenchRequest, run_bench, table_header, table_rows
    from atom_runner.errors import AtomError

    if args.clips < 1 or args.repeat < 1:
        raise AtomError("--clips and --repeat must be at least 1")
    if args.device:
        from atom_deploy.bench.device import DeviceBenchRequest, run_device_bench

        summary = run_device_bench(DeviceBenchRequest(args.bundle, args.serial, args.clips, args.repeat, args.beam, args.out))
    else:
        request = BenchRequest(args.artifacts, args.backend, args.clips, args.repeat, args.beam, args.out, args.overlap)
        summary = run_bench(request)
    print_table(table_header(summary), table_rows(summary))
    print("module loads: " + ", ".join(f"{v} {m['loads']}" for v, m in summary["medians"].items()))
    print(f"wrote {args.out / 'bench.json'}, {args.out / 'bench.csv'}, {args.out / 'bench.png'}")
    return 0


def _counts(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part.replace("_", "")) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of counts: {text!r}") from None


def run_search(args: argparse.Namespace) -> int:
    from atom_deploy.bench.search_scale import SearchBenchRequest, run_search_bench

    summary = run_search_bench(SearchBenchRequest(args.sizes, args.out, args.engine, args.queries, scenes=args.scenes))
    print_table(("clips", "engine", "warm p50 / p99 (ms)", "cold p50 (ms)", "recall@10", "build (s)", "disk (MB)", "RSS (MB)"), [
        (f"{r['size']:,}", r["engine"], f"{r['warm_p50_ms']} / {r['warm_p99_ms']}", r["cold_p50_ms"], r["recall_at_10"],
         f"{r['build_rows_s'] + r['build_vectors_s']:.1f}", f"{r['disk_rows_mb'] + r['disk_vectors_mb']:.0f}", r["query_peak_rss_mb"])
        for r in summary["results"]])
    print(f"wrote {args.out / 'search_bench.json'}, {args.out / 'search_bench.png'}")
    return 0
