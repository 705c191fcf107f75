"""One run of one pipeline variant, in this fresh process; prints a JSON object.

    python -m atom_deploy.bench.reuse_worker {no_reuse|atom} FOLDER BACKEND CLIPS.npy PROMPT BEAM OVERLAP

no_reuse (the paper's sequential baseline): every stage loads its own model and releases it:
  video model (encoder + decoder) -> caption each clip, no overlap -> release;
  MiniLM -> index the captions -> release;
  a separate script decoder (the same artifact loaded again) -> script -> release.
atom: one Session, every module loaded once, encoding overlapped with decoding, and the
  captioning decoder reused for the script.

Memory per phase comes from the kernel's high-water mark, reset before each phase through
/proc/self/clear_refs, so "peak during load" and "peak during the run" are really separate.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np

from atom_deploy.bench.memory import peak_rss_mb, reset_peak
from atom_runner.encoders import ProcessEncoder
from atom_runner.runtimes import import_runtime
from atom_runner.schema import Module
from atom_runner.session import Session
from atom_runner.task_formats import assembly_input

TOP_K = 3


class Meter:
    """Stage timings and per-phase memory peaks (this process plus its encoder worker)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.peak_mb: dict[str, float] = {}
        self.loads: dict[str, int] = {}
        self.children: list[int] = []
        self.overlap: str | None = None  # the mode the ATOM Session resolved (auto -> off/thread/process)

    @contextmanager
    def phase(self, stage: str, memory: str | None = None):
        # Only memory phases reset the high-water mark, so nested timing phases can't
        # erase the peak of the phase around them.
        for pid in ["self", *self.children] if memory else []:
            reset_peak(pid)  # where the kernel refuses, the peak is the process's peak so far
        start = time.perf_counter()
        yield
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start
        if memory:
            peak = peak_rss_mb() + sum(_child_peak(pid) for pid in self.children)
            self.peak_mb[memory] = max(self.peak_mb.get(memory, 0.0), peak)


def _child_peak(pid: int) -> float:
    try:
        return peak_rss_mb(pid)
    except OSError:  # the encoder worker has exited
        return 0.0


def rank(query: np.ndarray, index: np.ndarray, k: int) -> list[int]:
    return [int(i) for i in np.argsort(-(index @ query), kind="stable")[:k]]


def no_reuse(folder: Path, backend: str, clips: np.ndarray, prompt: str, beam: int, meter: Meter) -> dict:
    # Each stage opens a Session of only its own model, so every stage decodes as ATOM does.
    # Stage 1: the video model (encoder + decoder), captions one clip after another.
    with meter.phase("load", memory="load"):
        video = Session(folder, backend=backend, overlap="off", modules=(Module.VIDEO_ENCODER, Module.DECODER))
    _count_loads(video, meter)
    captions = []
    with video, meter.phase("captioning", memory="run"):
        for clip in clips:
            with meter.phase("encode"):
                prefix = video.encode(clip)
            with meter.phase("caption"):
                captions += video.caption_prefixes(prefix, beam)
    del video
    gc.collect()
    # Stage 2: MiniLM indexes the captions and matches the prompt.
    with meter.phase("load", memory="load"):
        index = Session(folder, backend=backend, overlap="off", modules=(Module.MINILM,))
    _count_loads(index, meter)
    with index, meter.phase("index", memory="run"):
        vectors = index.embed(captions + [prompt])
        top = rank(vectors[-1], vectors[:-1], TOP_K)
    meter.seconds["retrieval_done"] = sum(meter.seconds[k] for k in ("load", "captioning", "index"))
    del index
    gc.collect()
    # Stage 3: a separate script model: the decoder artifact, loaded again as its own model.
    with meter.phase("load", memory="load"):
        writer = Session(folder, backend=backend, overlap="off", modules=(Module.DECODER,))
    _count_loads(writer, meter)
    with writer, meter.phase("script", memory="run"):
        script = writer.generate(assembly_input([captions[i] for i in top], prompt), truncate=True)
    del writer
    gc.collect()
    return {"captions": captions, "top": top, "script": script}


def _count_loads(session: Session, meter: Meter) -> None:
    for name, count in session.stats.loads.items():
        meter.loads[name] = meter.loads.get(name, 0) + count


def atom(
    folder: Path, backend: str, clips: np.ndarray, prompt: str, beam: int, meter: Meter, overlap: str = "auto",
    batched: bool = False,
) -> dict:
    """Reuse and overlap; with `batched`, clips also share decode steps (Session.caption_stream's default)."""
    with meter.phase("load", memory="load"):
        session = Session(folder, backend=backend, overlap=overlap)
        meter.overlap = session.overlap
        if isinstance(session.encoder, ProcessEncoder):
            meter.children.append(session.encoder.worker_pid)
    _count_loads(session, meter)
    meter.seconds["worker_start"] = session.stats.worker_start_seconds
    with session:
        with meter.phase("captioning", memory="run"):
            captions = list(session.caption_stream(list(clips), beam=beam, batch=None if batched else 1))
        with meter.phase("index", memory="run"):
            vectors = session.embed(captions + [prompt])
            top = rank(vectors[-1], vectors[:-1], TOP_K)
        meter.seconds["retrieval_done"] = sum(meter.seconds[k] for k in ("load", "captioning", "index"))
        with meter.phase("script", memory="run"):
            script = session.generate(assembly_input([captions[i] for i in top], prompt), truncate=True)
    return {"captions": captions, "top": top, "script": script}


VARIANTS = {"no_reuse": no_reuse, "atom": atom, "atom_batched": partial(atom, batched=True)}


def main() -> int:
    variant, folder, backend, clips_path, prompt, beam, overlap = sys.argv[1:8]
    folder = Path(folder)
    clips = np.load(clips_path)
    meter = Meter()
    import_runtime(backend)  # a one-off per process for both variants: kept out of the timings
    start = time.perf_counter()
    extra = {"overlap": overlap} if variant.startswith("atom") else {}
    outputs = VARIANTS[variant](folder, backend, clips, prompt, int(beam), meter, **extra)
    total = time.perf_counter() - start
    print(json.dumps({
        "variant": variant, "backend": backend, "clips": len(clips), "beam": int(beam),
        "seconds": {**meter.seconds, "assembly_done": total}, "peak_mb": meter.peak_mb,
        "loads": meter.loads, "overlap": meter.overlap, "outputs": outputs,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
