"""A real checkpoint against transformers (issue 23): plain and chat prompts, greedy tokens.

    python scripts/check_checkpoint.py HF_LANGUAGE_FOLDER EXPORT_FOLDER... [--cpp-runner BIN] [--out FILE.json]

For each export folder (a backend folder of `atom-deploy export --model ...`), the Python
runner's greedy tokens for each prompt, with the checkpoint's own BOS rule and chat
template, are compared with transformers' `generate` (greedy, fp32) on the same folder;
with --cpp-runner, the C++ runner's too (ExecuTorch folders). Minutes per export: the
heavy counterpart of tests/test_checkpoint_conventions.py, which runs a tiny checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROMPTS = ["The capital of France is", "Gravity is", "def fibonacci(n):", "My favourite food is",
           "The largest planet in the solar system is"]
CHATS = [[{"role": "user", "content": "What is the capital of France?"}],
         [{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": "What colour is the sky?"}]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("language", type=Path)
    parser.add_argument("exports", type=Path, nargs="+")
    parser.add_argument("--cpp-runner", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    from atom_runner.session import Session

    tok = AutoTokenizer.from_pretrained(args.language)
    model = LlamaForCausalLM.from_pretrained(args.language, dtype=torch.float32).eval()
    cases = [("plain", p, tok(p).input_ids) for p in PROMPTS]
    cases += [("chat", m, list(tok.apply_chat_template(m, add_generation_prompt=True, tokenize=True, return_dict=False)))
              for m in CHATS]
    rows = []
    for folder in args.exports:
        with Session(folder, overlap="off") as s:
            steps = s.decode_steps
            for kind, prompt, ids in cases:
                out = model.generate(torch.tensor([ids]), max_new_tokens=steps, do_sample=False,
                                     eos_token_id=list(s.conventions.eos_ids), pad_token_id=s.conventions.pad_id)
                hf_tokens = s.conventions.trim(out[0, len(ids):].tolist())
                kit_ids = s.chat_ids(prompt) if kind == "chat" else s.tokenizer.encode(prompt)
                bos = kind == "plain" and s.conventions.add_bos
                kit_tokens = s.conventions.trim(s.decode_ids(kit_ids, bos=bos))
                kit_text = s.chat(prompt) if kind == "chat" else s.generate(prompt)
                row = {"export": str(folder), "kind": kind, "prompt": prompt, "ids_equal": kit_ids == (ids[1:] if bos else ids),
                       "tokens_equal": kit_tokens == hf_tokens, "kit": kit_text,
                       "transformers": tok.decode(hf_tokens, skip_special_tokens=True).strip()}
                if args.cpp_runner and s.backend == "executorch":
                    row["cpp_tokens_equal"] = _cpp_tokens(args.cpp_runner, folder, kind, prompt, steps) == kit_tokens
                rows.append(row)
                print(json.dumps(row, ensure_ascii=False), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    failed = [r for r in rows if not (r["ids_equal"] and r["tokens_equal"] and r.get("cpp_tokens_equal", True))]
    print(f"{len(rows) - len(failed)}/{len(rows)} cases equal transformers" + (" (and the C++ runner)" if args.cpp_runner else ""))
    return 1 if failed else 0


def _cpp_tokens(binary: Path, folder: Path, kind: str, prompt, steps: int) -> list[int]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(prompt if kind == "chat" else [], f)
    extra = ["--messages", f.name] if kind == "chat" else [prompt]
    out = subprocess.run([str(binary), "generate", "--artifacts", str(folder), "--steps", str(steps), *extra],
                         capture_output=True, text=True, timeout=600)
    os.unlink(f.name)
    if out.returncode != 0:
        sys.exit(f"C++ runner failed: {out.stderr.strip()}")
    return json.loads(out.stdout)["tokens"]


if __name__ == "__main__":
    sys.exit(main())
