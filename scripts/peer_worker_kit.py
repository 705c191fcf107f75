"""Step this kit's exported decoder through its own Python runner, in this fresh process.

    .venv/bin/python scripts/peer_worker_kit.py JOB.json      (job["artifacts"]: DIR/executorch or DIR/onnx)

Public atom_runner API only, as atom_deploy/bench/latency_worker.py: the manifest, one
module loaded, `DecoderStepper` and `prefill`. A step is the kit's two calls,
`token_embedding` then `text_decoder`, at batch 1.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from peer_worker_common import read_job, run


def main() -> None:
    job = read_job()
    from atom_runner.decoding import DecoderStepper, prefill
    from atom_runner.manifest import load_manifest
    from atom_runner.runtimes import import_runtime, load_module, set_executorch_threads
    from atom_runner.schema import Key, Module

    manifest = load_manifest(Path(job["artifacts"]))
    backend = manifest.backend
    import_s = import_runtime(backend)
    if backend == "executorch":
        set_executorch_threads(job["threads"])
    decoder = manifest.module(Module.DECODER)
    files = {entry: manifest.resolve(spec[Key.FILE]) for entry, spec in decoder[Key.ENTRY_POINTS].items()}
    start = time.perf_counter()
    module = load_module(backend, files, job["threads"])
    load_s = time.perf_counter() - start
    kv = decoder[Key.KV_CACHE]
    stepper = DecoderStepper(module, kv[Key.KV_STYLE], kv[Key.SHAPE])
    bos = manifest.decode[Key.BOS_ID]
    row = np.zeros(1, dtype=np.int64)

    def run_prefill(ids: list[int]) -> np.ndarray:
        if ids[0] != bos:
            raise SystemExit(f"prompt must start with the manifest's BOS {bos}, got {ids[0]}")
        stepper.reset()
        logits, _ = prefill(stepper, bos, ids[1:])  # the kit's prefill adds BOS itself
        return logits[0]

    def step(token: int, pos: int) -> np.ndarray:
        embeds = stepper.embed(np.array([[token]], dtype=np.int64))
        return stepper.step(embeds, np.array([pos], dtype=np.int64), row)[0]

    quant = decoder[Key.QUANTIZATION]["mode"]
    run(job, run_prefill, step, {"import_s": import_s, "load_s": load_s, "backend": backend, "quant": quant})


if __name__ == "__main__":
    main()
