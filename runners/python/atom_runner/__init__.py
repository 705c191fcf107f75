"""Thin runner for atom-deploy artifacts: reads the manifest, never the exporter."""

import os

# torch's OpenMP threads spin after each torch operation (the ExecuTorch bindings copy a
# method's outputs with one) and took CPU from XNNPACK's own pool in the next call: a
# SmolLM2-135M ExecuTorch step ran 4.8-5.4 ms with spinning threads and 4.4-4.6 ms without.
# libgomp reads this when torch first loads it, so it is set before anything imports torch;
# a caller's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
