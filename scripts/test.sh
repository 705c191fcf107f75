#!/usr/bin/env bash
# Set up (if needed), lint, and run the whole test suite (the fast loop: docs/testing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check .  # seconds, before the suite's minutes
.venv/bin/python -m pytest -q "$@"
