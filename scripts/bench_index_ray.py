"""Indexing throughput: `index --engine ray` on a local cluster against `--engine local`.

    .venv/bin/python scripts/bench_index_ray.py ARTIFACTS_DIR [--backend onnx] [--workers 2] [--rounds 2] [--work DIR]

Starts one local Ray cluster (--workers CPUs, no dashboard) in this process, as a
standing cluster would be, then runs the real CLI in fresh processes, alternating local
and Ray (A B A B, so load drift falls on both alike), each into a new index of the shared
videos. A Ray run joins the cluster with --address, so its time holds connecting, the
actors loading their Sessions and the work, not the cluster's start (reported apart).
Prints one JSON object: per run the CLI's own seconds and clips/s and the process wall.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ray

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO.parent / "shared" / "data" / "videos"


def index_once(artifacts: str, backend: str, work: Path, engine: list[str]) -> dict:
    index = Path(tempfile.mkdtemp(dir=work)) / "idx.sqlite"
    command = [sys.executable, "-m", "atom_deploy", "index", "--artifacts", artifacts, "--backend", backend,
               "--index", str(index), "--no-progress", "--json", *engine, str(VIDEOS)]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    out = json.loads(result.stdout)
    return {"clips": out["clips_added"], "seconds": out["seconds"], "clips_per_s": out["clips_added"] / out["seconds"],
            "process_wall_s": round(wall, 2), "workers": out.get("workers")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts")
    parser.add_argument("--backend", default="onnx")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench_index_ray")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    cluster_start_s = time.perf_counter() - started
    address = ray.get_runtime_context().gcs_address
    runs: dict[str, list[dict]] = {"local": [], "ray": []}
    try:
        for _ in range(args.rounds):
            runs["local"].append(index_once(args.artifacts, args.backend, args.work, []))
            runs["ray"].append(index_once(args.artifacts, args.backend, args.work,
                                          ["--engine", "ray", "--address", address, "--workers", str(args.workers)]))
    finally:
        ray.shutdown()
    median = {engine: statistics.median(r["clips_per_s"] for r in rs) for engine, rs in runs.items()}
    print(json.dumps({
        "artifacts": args.artifacts, "backend": args.backend, "workers": args.workers, "cores": os.cpu_count(),
        "load_avg_1m_at_end": os.getloadavg()[0], "ray_cluster_start_s": round(cluster_start_s, 2),
        "runs": runs, "median_clips_per_s": median, "ray_over_local": median["ray"] / median["local"],
    }, indent=1))


if __name__ == "__main__":
    main()
