"""The small interface every backend implements: quantize a model, lower its entry points."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from atom_deploy.export.contract import ExportableModule


@dataclass(frozen=True)
class WrittenEntry:
    """One entry point as written: the file that holds it and every file it needs."""

    entry: str
    file: Path
    files: tuple[Path, ...]


class Backend(ABC):
    name: str = ""
    suffix: str = ""
    kv_style: str = ""

    @abstractmethod
    def quantize(self, model: nn.Module, mode: str) -> None:
        """Source transforms applied to the eager modules before export (may be none)."""

    @abstractmethod
    def export(self, module: ExportableModule, out_dir: Path, mode: str) -> list[WrittenEntry]:
        """Lower every entry point of `module` into `out_dir`."""

    @abstractmethod
    def quantization_record(self, mode: str) -> dict[str, Any]:
        """What this backend actually did to Linear layers, for the manifest."""
