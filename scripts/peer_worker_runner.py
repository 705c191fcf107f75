"""Run an optimum-executorch .pte through ExecuTorch's C++ TextLLMRunner, in this fresh process.

    .venv-peer/bin/python scripts/peer_worker_runner.py JOB.json

executorch 1.5.1's wheel exposes the runner as `executorch.extension.llm.runner.TextLLMRunner`
(pybind11 over extension/llm/runner). It takes text, not token ids, and reports each token
as text through a callback. A step is the time between two callbacks: the C++ decode step,
its sampler (temperature 0: argmax), the tokenizer's decode and the callback into Python.
The runner stops at EOS, so accuracy compares text pieces up to there.
"""

from __future__ import annotations

import statistics
import time

from peer_worker_common import emit, read_job


def main() -> None:
    job = read_job()
    start = time.perf_counter()
    from executorch.extension.llm.custom_ops import custom_ops  # noqa: F401
    from executorch.extension.llm.runner import GenerationConfig, TextLLMRunner
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool  # the runner shares this pool
    from executorch.kernels import quantized  # noqa: F401

    import_s = time.perf_counter() - start
    _unsafe_reset_threadpool(job["threads"])
    start = time.perf_counter()
    runner = TextLLMRunner(job["pte"], job["tokenizer"])
    load_s = time.perf_counter() - start

    def generate(text: str, new_tokens: int) -> dict:
        stamps, pieces, stats = [], [], []
        config = GenerationConfig(echo=False, max_new_tokens=new_tokens, temperature=0.0, num_bos=0)
        runner.reset()
        begin = time.perf_counter()
        runner.generate(text, config, lambda piece: (stamps.append(time.perf_counter()), pieces.append(piece)),
                        lambda s: stats.append((s.num_prompt_tokens, s.prompt_eval_end_ms - s.inference_start_ms)))
        return {"begin": begin, "stamps": stamps, "pieces": pieces, "prompt_tokens": stats[-1][0],
                "prefill_ms_stats": stats[-1][1]}

    out = {"import_s": import_s, "load_s": load_s}
    if job["kind"] == "timing":
        generate(job["prefill_text"], job["steps"] + 1)  # warm-up
        g = generate(job["prefill_text"], job["steps"] + 1)
        steps = [b - a for a, b in zip(g["stamps"], g["stamps"][1:])]
        if g["prompt_tokens"] != len(job["prefill_ids"]):
            raise SystemExit(f"runner tokenized the prompt to {g['prompt_tokens']} tokens, not {len(job['prefill_ids'])}")
        out.update(prefill_s=g["stamps"][0] - g["begin"], step_s=steps, step_median_s=statistics.median(steps),
                   pieces=g["pieces"], prompt_tokens=g["prompt_tokens"])
    else:
        out["greedy_pieces"] = [generate(text, len(ref))["pieces"] for text, ref in zip(job["prompt_texts"], job["reference"])]
    emit(out)


if __name__ == "__main__":
    main()
