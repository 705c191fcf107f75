"""Eager PyTorch behind the runner's `run(entry, inputs)` contract.

The eager reference then goes through the very same decode loop as the exported
artifacts, so a token difference can only come from the module, not from the loop.
"""

from __future__ import annotations

import numpy as np
import torch

from atom_deploy.export.contract import ExportableModule


class EagerModule:
    def __init__(self, exportable: ExportableModule):
        self._entries = {e.name: e.module for e in exportable.entry_points}

    def run(self, entry: str, inputs: list[np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            outputs = self._entries[entry](*(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs))
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        return [o.numpy() for o in outputs]
