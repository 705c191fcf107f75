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
from atom_runner.decoding import DecoderStepper, beam_search, greedy, prefill, prompt_room, trim_after_eos
from atom_runner.manifest import load_manifest
from atom_runner.prompts import fit_prompt
from atom_runner.runtimes import import_runtime, load_module
from atom_runner.schema import TOKENIZER_FILES, Entry, Key, Module, TokenizerName
from atom_runner.session import Session
from atom_runner.task_formats import assembly_input
from atom_runner.text import DecoderTokenizer, MiniLMTokenizer

TOP_K = 3


class Meter:
    """Stage timings and per-phase memory peaks (this process plus its encoder worker)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.peak_mb: dict[str, float] = {}
        self.loads: dict[str, int] = {}
        self.children: list[int] = []

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

    def loaded(self, name: str) -> None:
        self.loads[name] = self.loads.get(name, 0) + 1


def _child_peak(pid: int) -> float:
    try:
        return peak_rss_mb(pid)
    except OSError:  # the encoder worker has exited
        return 0.0


def _files(manifest, name):
    """Verified files of one module: every stage checks what it loads, as the Session does."""
    spec = manifest.module(name)
    for record in spec[Key.FILES]:
        manifest.verified(record)
    return {e: manifest.resolve(s[Key.FILE]) for e, s in spec[Key.ENTRY_POINTS].items()}


def _decode(stepper, decode, prompt_ids, prefix, beam) -> list[int]:
    # Same truncation as Session.generate(truncate=True) (it keeps the prompt's end), so both
    # variants decode the same prompt.
    prefix_len = 0 if prefix is None else prefix.shape[1]
    room = prompt_room(decode[Key.MAX_CONTEXT], prefix_len, decode[Key.DECODE_STEPS])
    prompt_ids = fit_prompt(prompt_ids, room, True, decode[Key.MAX_CONTEXT])
    stepper.reset()
    logits, pos = prefill(stepper, decode[Key.BOS_ID], prompt_ids, prefix)
    if beam == 1:
        tokens = greedy(stepper, logits, pos, decode[Key.DECODE_STEPS])
    else:
        tokens = beam_search(stepper, logits, pos, decode[Key.DECODE_STEPS], decode[Key.EOS_ID], beam).tokens
    return trim_after_eos(tokens, decode[Key.EOS_ID])


def rank(query: np.ndarray, index: np.ndarray, k: int) -> list[int]:
    return [int(i) for i in np.argsort(-(index @ query), kind="stable")[:k]]


def no_reuse(folder: Path, backend: str, clips: np.ndarray, prompt: str, beam: int, meter: Meter) -> dict:
    manifest = load_manifest(folder)
    decode = manifest.decode
    kv = manifest.module(Module.DECODER)[Key.KV_CACHE]
    tokenizer = DecoderTokenizer(folder / TOKENIZER_FILES[TokenizerName.DECODER], {decode[Key.BOS_ID], decode[Key.EOS_ID]})
    # Stage 1: the video model (encoder + decoder), captions one clip after another.
    with meter.phase("load", memory="load"):
        encoder = load_module(backend, _files(manifest, Module.VIDEO_ENCODER))
        decoder = load_module(backend, _files(manifest, Module.DECODER))
    meter.loaded(Module.VIDEO_ENCODER)
    meter.loaded(Module.DECODER)
    captions = []
    with meter.phase("captioning", memory="run"):
        stepper = DecoderStepper(decoder, kv[Key.KV_STYLE], kv[Key.SHAPE])
        for clip in clips:
            with meter.phase("encode"):
                prefix = encoder.run(Entry.FORWARD, [clip])[0]
            with meter.phase("caption"):
                captions.append(tokenizer.decode(_decode(stepper, decode, [], prefix, beam)))
    del encoder, decoder, stepper
    gc.collect()
    # Stage 2: MiniLM indexes the captions and matches the prompt.
    with meter.phase("load", memory="load"):
        minilm = load_module(backend, _files(manifest, Module.MINILM))
    meter.loaded(Module.MINILM)
    minilm_tok = MiniLMTokenizer(folder / TOKENIZER_FILES[TokenizerName.MINILM], manifest.data[Key.TOKENIZERS][TokenizerName.MINILM][Key.MAX_SEQ_LENGTH])
    with meter.phase("index", memory="run"):
        ids, mask = minilm_tok.batch(captions + [prompt])
        vectors = minilm.run(Entry.FORWARD, [ids, mask])[0]
        top = rank(vectors[-1], vectors[:-1], TOP_K)
    meter.seconds["retrieval_done"] = sum(meter.seconds[k] for k in ("load", "captioning", "index"))
    del minilm
    gc.collect()
    # Stage 3: a separate script model: the decoder artifact, loaded again as its own model.
    with meter.phase("load", memory="load"):
        script_decoder = load_module(backend, _files(manifest, Module.DECODER))
    meter.loaded(Module.DECODER)
    with meter.phase("script", memory="run"):
        stepper = DecoderStepper(script_decoder, kv[Key.KV_STYLE], kv[Key.SHAPE])
        text = assembly_input([captions[i] for i in top], prompt)
        script = tokenizer.decode(_decode(stepper, decode, tokenizer.encode(text), None, 1))
    del script_decoder, stepper
    gc.collect()
    return {"captions": captions, "top": top, "script": script}


def atom(
    folder: Path, backend: str, clips: np.ndarray, prompt: str, beam: int, meter: Meter, overlap: str = "auto",
    batched: bool = False,
) -> dict:
    """Reuse and overlap; with `batched`, clips also share decode steps (Session.caption_stream's default)."""
    with meter.phase("load", memory="load"):
        session = Session(folder, backend=backend, overlap=overlap)
        if hasattr(session.encoder, "_process"):
            meter.children.append(session.encoder._process.pid)
    for name, count in session.stats.loads.items():
        meter.loads[name] = count
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
        "loads": meter.loads, "outputs": outputs,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
