"""One latency measurement in this (fresh) process; prints a JSON object on stdout.

    python -m atom_deploy.bench.latency_worker FOLDER BACKEND REPEAT        # exported artifacts
    python -m atom_deploy.bench.latency_worker FOLDER eager REPEAT          # eager PyTorch fp32

Stages: load per module, encoder per clip, prefill (BOS + visual prefix), a decode step
of a whole greedy decode and of a whole beam-4 decode (selection and cache reorder
included, per decoder call), MiniLM on a batch of 32 texts. Then the decode step against
the batch rows (1, 2, 4, ... up to the export's KV-cache rows, greedy), and the decoder's
caption throughput with clips batched as Session.caption batches them, against one at a time.
Peak RSS is the process high-water mark (VmHWM), so each configuration needs its own process.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from atom_deploy.bench.bandwidth import weight_bytes_per_step
from atom_deploy.bench.memory import peak_rss_mb
from atom_runner.decoding import DecoderStepper, beam_search, beam_search_groups, greedy, greedy_rows, prefill
from atom_runner.manifest import load_manifest
from atom_runner.schema import Entry, Key, KVStyle, Module

TEXTS = [f"a small red square number {i} slides to the left across a striped background" for i in range(32)]


def load_modules(folder: Path, backend: str):
    manifest = load_manifest(folder)
    loads, modules = {}, {}
    if backend == "eager":
        from atom_deploy.export.eager import EagerModule
        from atom_deploy.export.modules import build_exportable
        from atom_deploy.model_source import resolve_model

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


def median_of(fn, repeat: int) -> float:
    """Median of what `fn` returns, after one warm-up call (first calls pay one-off
    allocation and weight packing)."""
    fn()
    return statistics.median(fn() for _ in range(repeat))


def median_seconds(fn, repeat: int) -> float:
    def timed() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return median_of(timed, repeat)


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
    steps = decode[Key.DECODE_STEPS]

    def decode_loop(width: int):
        # A whole decode, as a caption runs it (selection included), per decoder call:
        # `steps` selections feed back steps - 1 tokens.
        def run():
            stepper.reset()
            first, start = prefill(stepper, decode[Key.BOS_ID], [], prefix)
            began = time.perf_counter()
            if width == 1:
                greedy(stepper, first, start, steps)
            else:
                beam_search(stepper, first, start, steps, decode[Key.EOS_ID], width)
            return (time.perf_counter() - began) / max(steps - 1, 1)
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
        "greedy_step_s": median_of(decode_loop(1), repeat),
        "beam4_step_s": median_of(decode_loop(4), repeat),
    }
    if backend != "eager":
        decoder = manifest.module(Module.DECODER)
        file_bytes = sum(record[Key.BYTES] for record in decoder[Key.FILES])
        result["weight_bytes_per_step"] = weight_bytes_per_step(file_bytes, decoder, result["quant"])
    # 32 texts in the module's largest batch, as Session.embed splits them
    minilm_batch = manifest.module(Module.MINILM)[Key.ENTRY_POINTS][Entry.FORWARD][Key.INPUTS][0][Key.DYNAMIC]["0"][Key.MAX]

    def embed_all():
        for start in range(0, len(ids), minilm_batch):
            modules[Module.MINILM].run(Entry.FORWARD, [ids[start : start + minilm_batch], mask[start : start + minilm_batch]])

    result["minilm_batch32_s"] = median_seconds(embed_all, repeat)
    max_rows = decode[Key.MAX_BATCH]
    result["step_s_by_rows"] = {
        str(rows): median_of(batched_step(stepper, decode, prefix, rows), repeat) for rows in batch_rows(max_rows)
    }
    result["decode_captions_per_s"] = {
        f"beam {width}": decode_throughput(stepper, decode, prefix, width, max_rows // width, repeat) for width in (1, 4)
    }
    result["rss_after_load_mb"] = rss_after_load
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def batch_rows(max_rows: int) -> list[int]:
    rows = [1]
    while rows[-1] * 2 <= max_rows:
        rows.append(rows[-1] * 2)
    return rows if rows[-1] == max_rows else rows + [max_rows]


def batched_step(stepper: DecoderStepper, decode: dict, prefix: np.ndarray, rows: int):
    """Per decoder call of a whole greedy decode of `rows` clips at once."""
    prefixes = np.repeat(prefix, rows, axis=0)
    steps = decode[Key.DECODE_STEPS]

    def run() -> float:
        first, start = prefill(stepper, decode[Key.BOS_ID], [], prefixes)
        began = time.perf_counter()
        greedy_rows(stepper, first, start, steps)
        return (time.perf_counter() - began) / max(steps - 1, 1)

    return run


def decode_throughput(stepper: DecoderStepper, decode: dict, prefix: np.ndarray, width: int, clips: int, repeat: int) -> dict:
    """Captions per second of the decoder (prefill included, encoder not): `clips` clips in
    one batch against the same clips one at a time."""
    steps, bos, eos = decode[Key.DECODE_STEPS], decode[Key.BOS_ID], decode[Key.EOS_ID]
    clips = max(clips, 1)

    def one_batch(count: int):
        prefixes = np.repeat(prefix, count, axis=0)

        def run():
            first, start = prefill(stepper, bos, [], prefixes)
            if width == 1:
                greedy_rows(stepper, first, start, steps)
            else:
                beam_search_groups(stepper, first, start, steps, eos, width)
        return run

    # Interleaved A B A B, so drift in the machine's load falls on both alike.
    runs = {"alone": one_batch(1), "together": one_batch(clips)}
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(repeat + 1):
        for name, run in runs.items():
            began = time.perf_counter()
            run()
            if i:  # the first round is the warm-up
                seconds[name].append(time.perf_counter() - began)
    alone, together = statistics.median(seconds["alone"]), statistics.median(seconds["together"])
    return {"clips": clips, "one_at_a_time": 1 / alone, "batched": clips / together, "ratio": alone * clips / together}


if __name__ == "__main__":
    folder, backend, repeat = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    print(json.dumps(measure(folder, backend, repeat)))
