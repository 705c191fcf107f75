"""Step an optimum-executorch .pte through ExecuTorch's Python bindings, in this fresh process.

    .venv-peer/bin/python scripts/peer_worker_pybind.py JOB.json

`forward((tokens [1,S], input_pos [S]))`: the prompt in one call (the program has dynamic
shapes), then one token a call, as optimum-executorch's own `ExecuTorchModelForCausalLM` does.
"""

from __future__ import annotations

import time

from peer_worker_common import read_job, run


def main() -> None:
    job = read_job()
    start = time.perf_counter()
    import torch
    from executorch.extension.llm.custom_ops import custom_ops  # noqa: F401  (llama.custom_sdpa, update_cache)
    from executorch.extension.pybindings.portable_lib import _load_for_executorch, _unsafe_reset_threadpool
    from executorch.kernels import quantized  # noqa: F401

    import_s = time.perf_counter() - start
    _unsafe_reset_threadpool(job["threads"])
    start = time.perf_counter()
    module = _load_for_executorch(job["pte"])
    load_s = time.perf_counter() - start

    def forward(ids: list[int], pos: int):
        tokens = torch.tensor([ids], dtype=torch.long)
        input_pos = torch.arange(pos, pos + len(ids), dtype=torch.long)
        logits = module.forward((tokens, input_pos))[0]
        return logits.reshape(-1, logits.shape[-1])[-1].numpy()

    run(job, lambda ids: forward(ids, 0), lambda token, pos: forward([token], pos),
        {"import_s": import_s, "load_s": load_s})


if __name__ == "__main__":
    main()
