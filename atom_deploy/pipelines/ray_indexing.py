"""index --engine ray: the work of index_videos spread over the workers of a Ray cluster.

The driver (this process) plans the run as the local engine does (indexing.plan_run:
hash, probe, the windows not stored yet), cuts each video's missing windows into ranges
and hands them to Ray Data, whose actors (ray_captioner.py) decode, caption and embed
them. The driver is the only writer of the index, so its guarantees hold unchanged:

- Exactly once. Each block of results is committed per video in one transaction with
  INSERT OR IGNORE on the index's UNIQUE (video, start, end): a range Ray hands again
  after a worker died, or one that came back twice, adds nothing the second time.
- Resumable. A video turns 'complete' only once every one of its windows is stored; a
  driver killed at any point leaves it 'partial', and the next run asks Ray only for the
  windows still missing.
- No gaps. A window that no worker returned leaves its video 'partial' and reported.

Ranges are whole multiples of the decode batch (Session.clips_per_batch), counted from
the video's first missing window, so on a fresh run every clip shares its decode pass
with the same neighbours as in the local engine.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from atom_deploy.pipelines.index_db import ClipIndex, VideoRow, VideoTakenOver
from atom_deploy.pipelines.indexing import IndexReport, VideoJob, plan_run
from atom_deploy.pipelines.model_facts import manifest_sha256
from atom_deploy.pipelines.ray_captioner import (
    CAPTION,
    EMBEDDING,
    END,
    ERROR,
    PATH,
    START,
    WORKER,
    RangeCaptioner,
    range_item,
)
from atom_runner.errors import AtomError
from atom_runner.manifest import Manifest
from atom_runner.runtimes.quiet import verbose
from atom_runner.schema import Key
from atom_runner.session import clips_per_batch

INSTALL_HINT = "pip install 'atom-deploy[ray]'"
BATCHES_PER_RANGE = 4  # a range is this many decode batches: few enough that a killed worker loses little


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # ray://host:port, host:port or auto; None: a local cluster on this machine
    workers: int | None = None  # None: as many as the cluster's CPUs hold at worker_cpus each
    worker_cpus: int = 1  # CPUs each actor reserves; its Session runs that many threads
    batches_per_range: int = BATCHES_PER_RANGE

    def __post_init__(self) -> None:
        if self.worker_cpus < 1 or (self.workers is not None and self.workers < 1) or self.batches_per_range < 1:
            raise AtomError(f"--workers ({self.workers}), --worker-cpus ({self.worker_cpus}) and --range-batches "
                            f"({self.batches_per_range}) must each be at least 1")


@dataclass
class RayIndexReport(IndexReport):
    workers: dict[str, int] = field(default_factory=dict)  # 'host:pid' -> clips it captioned

    def as_dict(self) -> dict:
        return {**super().as_dict(), "workers": self.workers}


@dataclass(frozen=True)
class Stored:
    """One commit: clips of one video from one block of results."""

    video: str
    clips: int  # in the block
    added: int  # of them new to the index
    workers: tuple[str, ...]  # 'host:pid' of the actors that made them


def import_ray():
    """ray and ray.data, or one line saying how to install them."""
    try:
        import ray
        import ray.data  # noqa: F401  (the pipeline runs on Ray Data)
    except ImportError:
        raise AtomError(f"--engine ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def index_videos_ray(
    manifest: Manifest, index: ClipIndex, inputs: Sequence[str | Path], window_s: float = 10.0,
    stride_s: float = 5.0, beam: int = 4, prune: bool = False, options: RayOptions = RayOptions(),
    progress: bool = True, on_stored: Callable[[Stored], None] | None = None,
) -> RayIndexReport:
    """Index `inputs` into `index` with the artifacts of `manifest`, captioned on Ray.
    Connects to options.address (or starts a local cluster) unless Ray is already up in
    this process; a cluster it started is shut down at the end."""
    ray = import_ray()
    started = time.perf_counter()
    per_range = clips_per_batch(manifest.decode[Key.MAX_BATCH], beam) * options.batches_per_range
    plain, jobs = plan_run(index, inputs, window_s, stride_s, prune)
    report = RayIndexReport(**vars(plain))
    if not jobs:
        report.seconds = time.perf_counter() - started
        return report
    owned = _connect(ray, options)
    try:
        _run(ray, manifest, index, jobs, window_s, stride_s, beam, per_range, options, report, progress, on_stored)
    finally:
        if owned:
            ray.shutdown()
    report.seconds = time.perf_counter() - started
    return report


def _connect(ray, options: RayOptions) -> bool:
    """Join the cluster (True when this call started Ray in this process and must stop it)."""
    if ray.is_initialized():
        return False
    if not verbose():  # Ray's C++ core logs warnings about its own internals straight to stderr
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    local = options.address is None
    try:
        ray.init(address=options.address, include_dashboard=False if local else None, log_to_driver=False,
                 logging_level="WARNING")
    except Exception as exc:  # ConnectionError, ValueError on a malformed address, Ray's own errors
        raise AtomError(f"cannot reach the Ray cluster at {options.address or 'a new local cluster'}: {_one_line(exc)}") from None
    return True


@dataclass
class _VideoState:
    row: VideoRow  # as start_video made it: every commit checks the video is still this one
    todo: set[tuple[float, float]]  # windows no block has brought yet
    error: str | None = None  # the first a worker reported; its good clips are still stored
    taken_over: bool = False  # another run re-started the video: nothing more of ours goes in


def _run(ray, manifest: Manifest, index: ClipIndex, jobs: list[VideoJob], window_s: float, stride_s: float, beam: int,
         per_range: int, options: RayOptions, report: RayIndexReport, progress: bool,
         on_stored: Callable[[Stored], None] | None) -> None:
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver's own bar counts committed clips
    workers = options.workers or max(1, int(ray.cluster_resources().get("CPU", 1) // options.worker_cpus))
    videos = {str(job.path): _VideoState(index.start_video(str(job.path), job.sha256, window_s, stride_s), set(job.todo))
              for job in jobs}
    items = [range_item(job.path, job.sha256, list(job.todo[i:i + per_range]))
             for job in jobs for i in range(0, len(job.todo), per_range)]
    dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        RangeCaptioner, batch_size=1, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=options.worker_cpus,
        fn_constructor_kwargs={
            "artifacts": str(manifest.root.resolve()), "backend": manifest.backend,
            "expected_sha256": manifest_sha256(manifest), "window_s": window_s, "stride_s": stride_s,
            "beam": beam, "threads": options.worker_cpus,
        },
    )
    bar = tqdm(total=sum(len(v.todo) for v in videos.values()), unit="clip", file=sys.stderr, disable=not progress,
               dynamic_ncols=True)
    try:
        for block in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for path in dict.fromkeys(block[PATH]):
                stored = _commit(index, videos[path], block, block[PATH] == path, report)
                bar.update(stored.added)
                if on_stored is not None:
                    on_stored(stored)
    except AtomError:
        raise
    except Exception as exc:  # a worker's Python error, actors that cannot start, a lost cluster
        raise AtomError(f"the Ray run stopped: {_one_line(exc)} (clips committed so far are kept; "
                        "run again to resume)") from None
    finally:
        bar.close()
    for state in videos.values():
        _settle(index, state, report)


def _commit(index: ClipIndex, video: _VideoState, block: dict[str, np.ndarray], mine: np.ndarray,
            report: RayIndexReport) -> Stored:
    """Store the block's clips of one video (one transaction); note its worker's error, if any."""
    failed = mine & (block[ERROR] != "")
    if failed.any() and video.error is None:
        video.error = str(block[ERROR][failed][0])
    clips = mine & (block[ERROR] == "")
    rows = [(float(s), float(e), str(c), v) for s, e, c, v in
            zip(block[START][clips], block[END][clips], block[CAPTION][clips], block[EMBEDDING][clips])]
    workers = tuple(str(w) for w in block[WORKER][clips])
    if not rows or video.taken_over:
        return Stored(video.row.path, len(rows), 0, workers)
    try:
        added = index.add_clips(video.row, rows)
    except VideoTakenOver as exc:
        video.taken_over, video.error = True, str(exc)
        return Stored(video.row.path, len(rows), 0, workers)
    video.todo.difference_update((s, e) for s, e, _, _ in rows)
    report.clips_added += added
    for worker in workers:
        report.workers[worker] = report.workers.get(worker, 0) + 1
    return Stored(video.row.path, len(rows), added, workers)


def _settle(index: ClipIndex, video: _VideoState, report: RayIndexReport) -> None:
    """Finish a video whose every window is stored; report any other (it stays 'partial')."""
    error = video.error
    if error is None and video.todo:
        error = f"{video.row.path}: {len(video.todo)} window(s) came back from no worker; run again to caption them"
    if error is None:
        try:
            index.finish_video(video.row)
        except VideoTakenOver as exc:
            error = str(exc)
    if error is None:
        report.indexed.append(video.row.path)
    else:
        report.skipped.append((video.row.path, error))


def _one_line(exc: BaseException) -> str:
    """The innermost message of a (Ray-wrapped) error, on one line."""
    cause = exc
    while getattr(cause, "cause", None) is not None or cause.__cause__ is not None:
        cause = getattr(cause, "cause", None) or cause.__cause__
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return (lines[-1] if lines else type(cause).__name__)[:500]
