"""`atom-deploy bench --search`: the index at library scale, per size and per engine.

Per size, one real index file is built the way `atom-deploy index` stores clips (SQLite rows
in batches, then the vector file, vector_index.refresh), from perturbed real MiniLM vectors
(search_vectors.py). Each engine then answers the held-out caption queries in fresh processes
(search_worker.py): cold = open the index + the first query, warm = the rest, p50 / p99.
'ann' is what `atom-deploy search` does, 'exact' is `search --exact`. Recall@10 is against
the exact top 10 computed here with numpy. The index files stay on disk in between, so a
cold query finds them in the OS page cache as a recent use would (evicting it would need root
and would slow every other job on a shared machine).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from atom_deploy.bench.memory import peak_rss_mb, reset_peak
from atom_deploy.bench.search_vectors import NOISE_STD, VectorSource
from atom_deploy.bench.search_worker import LABEL, MANIFEST
from atom_runner.errors import AtomError

ENGINES = ("ann", "exact")
CLIPS_PER_VIDEO = 10_000
# `search --exact` holds every row's blob and the float32 matrix made of it: 3.2 GB peak at 1M.
EXACT_BYTES_PER_CLIP = 3300
K = 10


@dataclass(frozen=True)
class SearchBenchRequest:
    sizes: tuple[int, ...]
    out: Path
    engines: tuple[str, ...] = ENGINES
    queries: int = 100  # warm queries per ann run ('exact' at 1M reads every row per query: fewer)
    cold_runs: int = 5
    scenes: int = 3000  # demo-world scenes whose distinct captions are the vectors' bases

    def __post_init__(self):
        bad = [e for e in self.engines if e not in ENGINES]
        if bad:
            raise AtomError(f"unknown search engine {bad[0]!r}; choose from {', '.join(ENGINES)}")
        if not self.sizes or min(self.sizes) < 100:
            raise AtomError(f"--sizes must be at least 100 clips each, got {list(self.sizes)}")
        if self.queries < 1 or self.cold_runs < 1:
            raise AtomError("queries and cold runs must be at least 1")
        too_big = [n for n in self.sizes if "exact" in self.engines and n * EXACT_BYTES_PER_CLIP > _available_bytes()]
        if too_big:
            raise AtomError(f"--engine exact reads all {too_big[0]:,} rows at once (about {too_big[0] * EXACT_BYTES_PER_CLIP / 2**30:.0f} GB, "
                            f"{_available_bytes() / 2**30:.0f} GB available); use --engine ann at that size")


def _available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def run_search_bench(request: SearchBenchRequest) -> dict:
    request.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    source = VectorSource(scenes=request.scenes, queries=request.queries)
    queries_path = request.out / "queries.npy"
    np.save(queries_path, source.queries)
    results = []
    for size in request.sizes:
        built = _build(request.out / f"index-{size}", source, size)
        truth = exact_top_k(source.queries, source.chunks(size))
        for engine in request.engines:
            results.append({"size": size, "engine": engine, **built, **_query(engine, built["index"], queries_path, truth, request)})
            print(_line(results[-1]), file=sys.stderr, flush=True)
    summary = {
        "machine": _machine(), "commit": _commit(), "seconds": round(time.perf_counter() - started, 1),
        "config": {**asdict(request), "out": str(request.out), "k": K, "bases": len(source.base), "noise_std": NOISE_STD},
        "results": results,
    }
    (request.out / "search_bench.json").write_text(json.dumps(summary, indent=2))
    search_chart(summary, request.out / "search_bench.png")
    return summary


def _build(folder: Path, source: VectorSource, size: int) -> dict:
    """A fresh index of `size` clips: rows in 10k-clip videos, then the vector file."""
    from atom_deploy.pipelines.index_db import ClipIndex
    from atom_deploy.pipelines.vector_index import refresh, vector_dir

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    path = folder / "clips.sqlite"
    reset_peak()
    t0 = time.perf_counter()
    with ClipIndex(path, MANIFEST, LABEL) as index:
        done = 0
        for chunk in source.chunks(size):
            for start in range(0, len(chunk), CLIPS_PER_VIDEO):
                part = chunk[start:start + CLIPS_PER_VIDEO]
                number = (done + start) // CLIPS_PER_VIDEO
                video = index.start_video(f"/bench/video-{number:05d}.mp4", f"{number:064d}", 10.0, 5.0)
                index.add_clips(video, [(5.0 * i, 5.0 * i + 10, f"clip {number}/{i}", v) for i, v in enumerate(part)])
            done += len(chunk)
        t1 = time.perf_counter()
        vectors = refresh(index)
        if index.count() != size:
            raise AtomError(f"{path}: built {index.count()} rows, wanted {size}")
    t2 = time.perf_counter()
    files = [path, Path(f"{path}-wal")]
    return {
        "index": str(path), "build_rows_s": round(t1 - t0, 2), "build_vectors_s": round(t2 - t1, 2),
        "vector_action": vectors.action, "build_peak_rss_mb": round(peak_rss_mb(), 1),
        "disk_rows_mb": round(sum(f.stat().st_size for f in files if f.exists()) / 2**20, 1),
        "disk_vectors_mb": round(sum(f.stat().st_size for f in vector_dir(path).iterdir()) / 2**20, 1),
    }


def exact_top_k(queries: np.ndarray, chunks: Iterable[np.ndarray], k: int = K) -> np.ndarray:
    """[queries, k] ids of the true top k by inner product, in one pass over the library's
    chunks (ids 1.. in chunk order, as the index numbers rows): only queries x (k + chunk)
    scores are held at a time, so 10M vectors never sit in memory together."""
    best_scores = np.full((len(queries), 0), -np.inf, np.float32)
    best_ids = np.zeros((len(queries), 0), np.int64)
    offset = 0
    for chunk in chunks:
        scores = np.concatenate([best_scores, queries @ chunk.T], 1)
        ids = np.concatenate([best_ids, np.broadcast_to(np.arange(offset + 1, offset + 1 + len(chunk)), (len(queries), len(chunk)))], 1)
        keep = np.argpartition(-scores, k - 1, axis=1)[:, :k] if scores.shape[1] > k else np.argsort(-scores, axis=1)
        best_scores, best_ids = np.take_along_axis(scores, keep, 1), np.take_along_axis(ids, keep, 1)
        offset += len(chunk)
    order = np.argsort(-best_scores, axis=1, kind="stable")
    return np.take_along_axis(best_ids, order, 1)


def _query(engine: str, index: str, queries_path: Path, truth: np.ndarray, request: SearchBenchRequest) -> dict:
    size = int(Path(index).parent.name.split("-")[1])
    # 'exact' reads every row per query (seconds at 1M): fewer queries and runs keep the bench bounded.
    count = request.queries if engine == "ann" else max(3, min(request.queries, 1_000_000 // size))
    runs = request.cold_runs if engine == "ann" else min(request.cold_runs, 3)
    subset = queries_path.with_name(f"queries-{count}.npy")
    np.save(subset, np.load(queries_path)[:count])
    cold, warm, rss, imports, recall = [], [], [], [], []
    for run in range(runs):
        proc = subprocess.run([sys.executable, "-m", "atom_deploy.bench.search_worker", index, engine, str(subset),
                               str(run % count)], capture_output=True, text=True)
        if proc.returncode:
            raise AtomError(f"search bench worker ({engine}, {size} clips) failed: {proc.stderr.strip().splitlines()[-1:]}")
        report = json.loads(proc.stdout)
        cold.append(report["cold_ms"])
        warm.extend(report["warm_ms"])
        rss.append(report["peak_rss_mb"])
        imports.append(report["import_ms"])
        if run == 0:
            recall = [len(set(f) & set(t.tolist())) / K for f, t in zip(report["found"], truth)]
    return {
        "queries": count, "cold_runs": runs,
        "warm_p50_ms": _pct(warm, 50), "warm_p99_ms": _pct(warm, 99),
        "cold_p50_ms": _pct(cold, 50), "cold_p99_ms": _pct(cold, 99),
        "faiss_import_ms": round(statistics.median(imports), 1),
        "recall_at_10": round(float(np.mean(recall)), 4), "query_peak_rss_mb": round(statistics.median(rss), 1),
    }


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2)


def _line(r: dict) -> str:
    return (f"{r['size']:>10,} {r['engine']:>5}: warm p50 {r['warm_p50_ms']} p99 {r['warm_p99_ms']} ms, cold p50 "
            f"{r['cold_p50_ms']} ms, recall@10 {r['recall_at_10']}, build {r['build_rows_s']} + {r['build_vectors_s']} s, "
            f"disk {r['disk_rows_mb']} + {r['disk_vectors_mb']} MB, RSS {r['query_peak_rss_mb']} MB")


def _machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()}


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def search_chart(summary: dict, path: Path) -> None:
    """Warm and cold latency, recall and build time against library size, one line per engine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for engine in sorted({r["engine"] for r in summary["results"]}):
        rows = sorted((r for r in summary["results"] if r["engine"] == engine), key=lambda r: r["size"])
        sizes = [r["size"] for r in rows]
        axes[0].plot(sizes, [r["warm_p50_ms"] for r in rows], "o-", label=f"{engine} warm p50")
        axes[0].plot(sizes, [r["warm_p99_ms"] for r in rows], "o:", label=f"{engine} warm p99")
        axes[1].plot(sizes, [r["cold_p50_ms"] for r in rows], "o-", label=f"{engine} cold p50")
        axes[2].plot(sizes, [r["recall_at_10"] for r in rows], "o-", label=f"{engine} recall@10")
    build = sorted({(r["size"], r["build_rows_s"] + r["build_vectors_s"]) for r in summary["results"]})
    twin = axes[2].twinx()
    twin.plot([s for s, _ in build], [b for _, b in build], "s--", color="grey", label="build (s)")
    twin.set_ylabel("build seconds (rows + vector file)")
    for ax, title in zip(axes, ("warm query (ms)", "cold query: open + first (ms)", "recall@10 vs exact")):
        ax.set_xscale("log")
        ax.set_xlabel("clips")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    fig.suptitle(f"search at scale, {summary['machine']['cpu']} ({summary['machine']['cores']} cores), commit {summary['commit']}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
