"""One latency measurement in this (fresh) process; prints a JSON object on stdout.

    python -m atom_deploy.bench.latency_worker FOLDER BACKEND REPEAT        # exported artifacts
    python -m atom_deploy.bench.latency_worker FOLDER eager REPEAT          # eager PyTorch fp32

Stages: load per module, encoder per clip, prefill (BOS + visual prefix), one decode
step for greedy (batch 1) and for beam 4 (batch 4), MiniLM on a batch of 32 texts.
Peak RSS is the process high-water mark (VmHWM), so each configuration needs its own process.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from atom_runner.decoding import DecoderStepper, prefill
from atom_runner.manifest import load_manifest
from atom_runner.schema import Entry, Key, KVStyle, Module

TEXTS = [f"a small red square number {i} slides to the left across a striped background" for i in range(32)]


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load_modules(folder: Path, backend: str):
    manifest = load_manifest(folder)
    loads, modules = {}, {}
    if backend == "eager":
        from atom_deploy.export.modules import build_exportable
        from atom_deploy.model_source import resolve_model
        from atom_deploy.parity.eager import EagerModule

        info = manifest.data[Key.MODEL]
        start = time.perf_counter()
        import torch  # noqa: F401  (the eager "runtime")

        loads["runtime import"] = time.perf_counter() - start
        start = time.perf_counter()
        model = resolve_model(info[Key.MODEL_SPEC], manifest.decode[Key.DECODE_STEPS], info[Key.SEED]).build()
        loads["all (build + weights)"] = time.perf_counter() - start
        for name in Module.ALL:
            modules[name] = EagerModule(build_exportable(name, model, KVStyle.EXPLICIT_IO))
        return manifest, modules, loads, KVStyle.EXPLICIT_IO
    from atom_runner.runtimes import import_runtime, load_module

    loads["runtime import"] = import_runtime(backend)
    for name in Module.ALL:
        spec = manifest.module(name)
        files = {e: manifest.resolve(s[Key.FILE]) for e, s in spec[Key.ENTRY_POINTS].items()}
        start = time.perf_counter()
        modules[name] = load_module(backend, files)
        loads[name] = time.perf_counter() - start
    return manifest, modules, loads, manifest.module(Module.DECODER)[Key.KV_CACHE][Key.KV_STYLE]


def median_seconds(fn, repeat: int) -> float:
    fn()  # warm-up: first calls pay one-off allocation and weight packing
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(folder: Path, backend: str, repeat: int) -> dict:
    manifest, modules, loads, kv_style = load_modules(folder, backend)
    rss_after_load = peak_rss_mb()
    clip = np.random.default_rng(0).standard_normal(manifest.data[Key.CLIP][Key.SHAPE]).astype(np.float32)
    encoder = modules[Module.VIDEO_ENCODER]
    prefix = encoder.run(Entry.FORWARD, [clip])[0]
    decode = manifest.decode
    cache_shape = manifest.module(Module.DECODER)[Key.KV_CACHE][Key.SHAPE]
    stepper = DecoderStepper(modules[Module.DECODER], kv_style, cache_shape)

    def run_prefill():
        stepper.reset()
        return prefill(stepper, decode[Key.BOS_ID], [], prefix)

    _, pos = run_prefill()

    def step(batch: int):
        def run():
            embeds = stepper.embed(np.full((batch, 1), 5, dtype=np.int64))
            stepper.step(embeds, np.array([pos], dtype=np.int64), np.zeros(batch, dtype=np.int64))
        return run

    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(manifest.root / "minilm_tokenizer.json"))
    tok.enable_padding()
    batch = tok.encode_batch(TEXTS)
    ids = np.array([e.ids for e in batch], dtype=np.int64)
    mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
    result = {
        "backend": backend,
        "quant": manifest.module(Module.DECODER)[Key.QUANTIZATION]["mode"] if backend != "eager" else "fp32",
        "model": manifest.data[Key.MODEL][Key.MODEL_NAME],
        "load_s": loads,
        "encoder_s": median_seconds(lambda: encoder.run(Entry.FORWARD, [clip]), repeat),
        "prefill_s": median_seconds(run_prefill, repeat),
        "prefill_tokens": int(pos),
        "greedy_step_s": median_seconds(step(1), repeat),
    }
    run_prefill()
    stepper.step(stepper.embed(np.full((4, 1), 5, dtype=np.int64)), np.array([pos]), np.zeros(4, dtype=np.int64))
    result["beam4_step_s"] = median_seconds(step(4), repeat)
    result["minilm_batch32_s"] = median_seconds(lambda: modules[Module.MINILM].run(Entry.FORWARD, [ids, mask]), repeat)
    result["rss_after_load_mb"] = rss_after_load
    result["peak_rss_mb"] = peak_rss_mb()
    return result


if __name__ == "__main__":
    folder, backend, repeat = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    print(json.dumps(measure(folder, backend, repeat)))
