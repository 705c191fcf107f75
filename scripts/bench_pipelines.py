"""Measure the video pipelines: index the shared videos, search at 1k and 100k clips, assemble.

    .venv/bin/python scripts/bench_pipelines.py ARTIFACTS_DIR [--backends onnx executorch] [--work DIR]

Indexing and assembly run the real CLI in a fresh process each (wall time, and peak RSS
of the whole process tree, sampled every 20 ms: the ExecuTorch encoder runs in a worker
process). Search is timed in-process on a warm Session, per stage, over indexes padded
with random unit vectors to 1k and 100k clips (the ranking cost does not depend on the
values). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO.parent / "shared" / "data" / "videos"


def tree_rss_kib(pid: int) -> int:
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, StopIteration, ValueError):
            continue
    return total


def run_cli(args: list[str]) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "atom_deploy", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_kib(proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    sampler.join()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"atom-deploy {' '.join(args)} failed:\n{err}")
    return {"wall_s": round(time.perf_counter() - start, 2), "peak_rss_mib": round(peak[0] / 1024, 1), "stdout": out}


def bench_index(artifacts: Path, backend: str, work: Path) -> dict:
    index = work / f"index-{backend}.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    common = ["--artifacts", str(artifacts), "--backend", backend, "--index", str(index)]
    first = run_cli(["index", *common, "--no-progress", "--json", str(VIDEOS)])
    report = json.loads(first.pop("stdout"))
    again = run_cli(["index", *common, "--no-progress", "--json", str(VIDEOS)])
    again.pop("stdout")
    return {
        "clips": report["clips_added"], "indexing_s": report["seconds"],
        "clips_per_s": round(report["clips_added"] / report["seconds"], 2),
        "process": first, "reindex_unchanged_process": again, "index": str(index),
    }


def padded_index(session, source: Path, target: Path, clips: int):
    from atom_deploy.pipelines.index_db import ClipIndex
    from atom_deploy.pipelines.model_facts import artifacts_label, manifest_sha256

    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copy(source, target)  # the 43 real clips (the copy is checkpointed: the source index is closed)
    index = ClipIndex(target, manifest_sha256(session), artifacts_label(session))
    rng = np.random.default_rng(0)
    video = index.start_video("/bench/padding.mp4", "0" * 64, 10.0, 5.0)
    for first in range(0, clips - index.count(), 10_000):
        n = min(10_000, clips - index.count())
        vectors = rng.standard_normal((n, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        index.add_clips(video, [(5.0 * (first + i), 5.0 * (first + i) + 10, f"padding clip {first + i}", v) for i, v in enumerate(vectors)])
    return index


def bench_search(artifacts: Path, backend: str, source_index: Path, work: Path) -> dict:
    from atom_deploy.pipelines.search import search, top_k
    from atom_runner.session import Session

    session = Session(artifacts, backend=backend, overlap="off")
    results = {}
    for clips in (1_000, 100_000):
        index = padded_index(session, source_index, work / f"search-{clips}.sqlite", clips)
        stages = {"embed_query": [], "load_matrix": [], "rank": [], "search_total": []}
        for _ in range(15):
            t0 = time.perf_counter()
            query = session.embed(["people walking into a room"])[0]
            t1 = time.perf_counter()
            ids, matrix = index.embedding_matrix()
            t2 = time.perf_counter()
            top_k(matrix, query, 10)
            t3 = time.perf_counter()
            search(session, index, "people walking into a room", 10)
            t4 = time.perf_counter()
            for name, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                stages[name].append(seconds)
        results[clips] = {name: round(statistics.median(v) * 1000, 2) for name, v in stages.items()} | {"rows": index.count()}
        index.close()
        cli = run_cli(["search", "--artifacts", str(artifacts), "--backend", backend, "--index", str(work / f"search-{clips}.sqlite"), "-k", "10", "a person"])
        cli.pop("stdout")
        results[clips]["cli_process"] = cli
    session.close()
    return {f"{k}_clips_ms": v for k, v in results.items()}


def bench_assemble(artifacts: Path, backend: str, index: Path, work: Path) -> dict:
    common = ["--artifacts", str(artifacts), "--backend", backend, "--no-progress", "-k", "5"]
    warm = run_cli(["assemble", *common, "--index", str(index), "-o", str(work / "reel-indexed.mp4"), "people walking", str(VIDEOS)])
    cold = run_cli(["assemble", *common, "-o", str(work / "reel-fresh.mp4"), "people walking", str(VIDEOS)])
    reel = json.loads((work / "reel-indexed.json").read_text())
    for run in (warm, cold):
        run.pop("stdout")
    return {"with_existing_index": warm, "indexing_first": cold, "reel_duration_s": reel["duration_s"], "reel_clips": len(reel["clips"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", type=Path)
    parser.add_argument("--backends", nargs="+", default=["onnx", "executorch"])
    parser.add_argument("--work", type=Path, default=Path("/tmp/atom-bench-pipelines"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    out = {}
    for backend in args.backends:
        indexed = bench_index(args.artifacts, backend, args.work)
        out[backend] = {
            "index": indexed,
            "search": bench_search(args.artifacts, backend, Path(indexed["index"]), args.work),
            "assemble": bench_assemble(args.artifacts, backend, Path(indexed["index"]), args.work),
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
