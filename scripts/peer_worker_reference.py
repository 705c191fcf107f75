"""transformers fp32 on the same checkpoint: the prompts' token ids and their greedy continuations.

    .venv-peer/bin/python scripts/peer_worker_reference.py JOB.json

Every prompt is chat text that starts with "<|im_start|>", SmolLM2's BOS, so the kit (whose
prefill always puts BOS first), the pybindings (ids) and TextLLMRunner (text) all see the
same ids. The timing prompt is padded to exactly `prefill_tokens` ids. Greedy runs a fixed
number of tokens, without stopping at EOS.
"""

from __future__ import annotations

import torch

from peer_worker_common import emit, read_job

STORY = ("Write a long story about a lighthouse keeper who finds a strange map inside an old bottle "
         "on the beach one stormy autumn night, and about the journey across the northern sea that follows, "
         "with many ships, islands, friends and dangers along the way")


def chat(user: str) -> str:
    return f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


def padded_prompt(tok, length: int) -> tuple[str, list[int]]:
    """The longest prefix of STORY's words whose chat prompt has at most `length` ids, padded with '!'."""
    words = STORY.split()
    for n in range(len(words), 0, -1):
        base = " ".join(words[:n]).rstrip(",") + "."
        for pad in range(0, 8):
            text = chat(base + "!" * pad)
            ids = tok(text, add_special_tokens=False).input_ids
            if len(ids) == length:
                return text, ids
            if len(ids) > length:
                break
    raise SystemExit(f"no prompt of exactly {length} tokens")


def main() -> None:
    job = read_job()
    from transformers import AutoTokenizer, LlamaForCausalLM

    torch.set_num_threads(job["threads"])
    folder = job["model"]
    tok = AutoTokenizer.from_pretrained(folder)
    model = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    prefill_text, prefill_ids = padded_prompt(tok, job["prefill_tokens"])
    texts = [chat(q) for q in job["questions"]]
    prompts = [tok(t, add_special_tokens=False).input_ids for t in texts + [prefill_text]]
    reference = []
    with torch.no_grad():
        for ids in prompts:
            seq = list(ids)
            for _ in range(job["steps"] + 1):  # full forward each token: slow but cache-free
                logits = model(torch.tensor([seq])).logits[0, -1]
                seq.append(int(torch.argmax(logits)))
            reference.append(seq[len(ids):])
    emit({"prefill_text": prefill_text, "prefill_ids": prefill_ids, "prompt_texts": texts + [prefill_text],
          "prompts": prompts, "reference": reference, "eos_id": tok.eos_token_id,
          "pieces": [[tok.decode([t]) for t in ref] for ref in reference]})


if __name__ == "__main__":
    main()
