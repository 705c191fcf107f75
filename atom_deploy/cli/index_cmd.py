"""atom-deploy index: caption video files clip by clip and store them in a searchable SQLite index."""

from __future__ import annotations

import argparse

from atom_deploy.cli.pipeline_args import add_clip_args, add_index_arg, open_index, report_skipped
from atom_deploy.cli.runner_args import add_session_args, emit, open_session, show_warnings_as_notes


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help=__doc__.split(": ", 1)[1])
    add_session_args(p)
    add_index_arg(p, required=True)
    add_clip_args(p)
    p.add_argument("--prune", action="store_true", help="drop indexed videos whose files no longer exist")
    p.add_argument("--commit-every", type=int, default=8, help="clips per committed batch (default 8; local engine)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process (default); ray: Ray Data workers, this process the only writer (docs/index_ray.md)")
    p.add_argument("--address", default=None,
                   help="Ray cluster to join: ray://HOST:10001, HOST:6379 or auto (default: start one on this machine)")
    p.add_argument("--workers", type=int, default=None, help="Ray actors, each loading the modules once (default: cluster CPUs / --worker-cpus)")
    p.add_argument("--worker-cpus", type=int, default=1, help="CPUs (and runtime threads) per Ray actor (default 1)")
    p.add_argument("--range-batches", type=int, default=None,
                   help="decode batches per Ray task (default 4): smaller tasks commit sooner and lose less to a killed worker")
    p.add_argument("inputs", nargs="+", metavar="VIDEO_OR_DIR", help="video files, or folders searched for videos")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atom_deploy.pipelines.vector_index import refresh

    show_warnings_as_notes()
    if args.engine == "ray":
        report, vectors, total = _run_ray(args)
    else:
        from atom_deploy.pipelines.indexing import index_videos

        with open_session(args, overlap="auto") as session, open_index(args.index, session) as index:
            report = index_videos(
                session, index, args.inputs, args.window, args.stride, args.beam,
                prune=args.prune, progress=args.progress, commit_every=args.commit_every,
            )
            vectors = refresh(index)  # after every run, killed ones included: the next run catches up
            total = index.count()
    rate = report.clips_added / report.seconds if report.seconds else 0.0
    text = (
        f"indexed {len(report.indexed)} file(s), {report.clips_added} clips in {report.seconds:.1f} s ({rate:.2f} clips/s); "
        f"{len(report.unchanged)} unchanged; {len(report.pruned)} pruned; {args.index} holds {total} clips; "
        f"vector index {vectors.action} ({vectors.vectors} vectors, {vectors.seconds:.1f} s)"
    )
    emit(args, {**report.as_dict(), "index": str(args.index), "total_clips": total,
                "vector_index": {"action": vectors.action, "vectors": vectors.vectors, "seconds": round(vectors.seconds, 3)}}, text)
    report_skipped("index", report.skipped)
    return 1 if report.skipped else 0


def _run_ray(args: argparse.Namespace):
    """The driver: no Session here (the workers load the modules); the index's identity comes from the manifest."""
    from atom_deploy.pipelines.index_db import ClipIndex
    from atom_deploy.pipelines.model_facts import artifacts_label, manifest_sha256
    from atom_deploy.pipelines.ray_indexing import RayOptions, import_ray, index_videos_ray
    from atom_deploy.pipelines.vector_index import refresh
    from atom_runner.manifest import open_artifacts

    import_ray()  # before any work: a missing extra is one line, not a half-done run
    manifest = open_artifacts(args.artifacts, args.backend)
    range_batches = {} if args.range_batches is None else {"batches_per_range": args.range_batches}
    options = RayOptions(address=args.address, workers=args.workers, worker_cpus=args.worker_cpus, **range_batches)
    with ClipIndex(args.index, manifest_sha256(manifest), artifacts_label(manifest)) as index:
        report = index_videos_ray(manifest, index, args.inputs, args.window, args.stride, args.beam,
                                  prune=args.prune, options=options, progress=args.progress)
        return report, refresh(index), index.count()
