"""One Session per table row, every row behind the same runner and the same decode loop.

The "eager fp32" row is a real Session whose three modules are swapped for eager PyTorch
(`export.eager.EagerModule`) rebuilt from the manifest's model spec: tokenizers, decode
settings, prefill, greedy and beam search are the runner's own, so a difference between
rows can only come from the modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from atom_runner.errors import AtomError
from atom_runner.schema import MANIFEST_FILE, Key, KVStyle, Module

ROW_NAMES = ("eager fp32", "executorch int8", "onnx int8", "executorch fp32", "onnx fp32", "executorch 8da4w", "onnx 8da4w")
# Which export folder each recipe's rows read, by the eval flag that names it.
RECIPE_FLAGS = {"int8": "--artifacts", "fp32": "--fp32-artifacts", "8da4w": "--8da4w-artifacts"}


@dataclass(frozen=True)
class RowSpec:
    name: str
    backend: str  # executorch | onnx | eager
    quant: str  # int8 | 8da4w | fp32
    folder: Path | None  # None for eager (built from the manifest of a sibling row)


def plan_rows(names: list[str], artifacts: Path, fp32_artifacts: Path | None,
              da4w_artifacts: Path | None = None) -> tuple[list[RowSpec], list[str]]:
    """(rows that can run, one message per row skipped and why)."""
    roots = {"int8": artifacts, "fp32": fp32_artifacts, "8da4w": da4w_artifacts}
    unknown = [n for n in names if n not in ROW_NAMES]
    if unknown:
        raise AtomError(f"unknown rows {unknown}; valid: {list(ROW_NAMES)}")
    rows, skipped = [], []
    for name in names:
        backend, quant = name.split()
        if backend == "eager":
            rows.append(RowSpec(name, "eager", quant, None))
            continue
        root = roots[quant]
        if root is None:
            skipped.append(f"{name}: skipped, no {RECIPE_FLAGS[quant]} DIR given")
            continue
        folder = root / backend
        if not (folder / MANIFEST_FILE).is_file():
            skipped.append(f"{name}: skipped, no {folder / MANIFEST_FILE}")
            continue
        mode = _quant_mode(folder)
        if mode != quant:
            skipped.append(f"{name}: skipped, {folder} holds a {mode} export")
            continue
        rows.append(RowSpec(name, backend, quant, folder))
    return rows, skipped


def open_row(row: RowSpec, artifacts: Path, fp32_artifacts: Path | None = None):
    from atom_runner.session import Session

    if row.backend != "eager":
        # Inline encoder: rows are timed on the same footing, no process worker start-up.
        return Session(row.folder, overlap="off")
    # any export of the same model will do: only its spec, tokenizers and decode settings are used
    return eager_session(first_export(artifacts, fp32_artifacts).root)


def first_export(*roots: Path | None):
    """The manifest of the first of `roots` that holds an export (atom_runner's one rule)."""
    from atom_runner.manifest import artifact_folders, load_manifest

    for root in roots:
        if root is None:
            continue
        try:
            return load_manifest(artifact_folders(root)[0])
        except AtomError:
            continue
    raise AtomError(f"no export in {' or '.join(str(r) for r in roots if r is not None)}")


def eager_session(folder: Path):
    """A Session over `folder`'s tokenizers and decode settings, running eager fp32 modules."""
    from atom_deploy.export.eager import EagerModule
    from atom_deploy.export.modules import build_exportable
    from atom_deploy.model_source import resolve_model
    from atom_runner.session import Session

    session = Session(folder, overlap="off")
    model_info = session.manifest.data[Key.MODEL]
    source = resolve_model(model_info[Key.MODEL_SPEC], session.decode_steps, model_info[Key.SEED], session.max_batch,
                           session.max_context)  # the export's cache shape, which the eager decoder steps on
    model = source.build()
    eager = {name: EagerModule(build_exportable(name, model, KVStyle.EXPLICIT_IO)) for name in Module.ALL}
    session.replace_modules(
        eager[Module.VIDEO_ENCODER], eager[Module.DECODER], eager[Module.MINILM], KVStyle.EXPLICIT_IO, backend="eager"
    )
    return session


def _quant_mode(folder: Path) -> str:
    from atom_runner.manifest import load_manifest

    return load_manifest(folder).module(Module.DECODER)[Key.QUANTIZATION]["mode"]
