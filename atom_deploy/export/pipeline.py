"""`atom-deploy export`: every module, for every backend, into one atomically written folder.

OUT/<backend>/{video_encoder,decoder,minilm}.<ext> + tokenizers + manifest.json. Every
backend is built into one staging folder beside OUT, which replaces OUT in one step at
the end (export/swap.py): a failed or interrupted export leaves OUT as it was, and
`--backend all` never leaves a new ExecuTorch set beside an old ONNX one.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from atom_deploy.backends import get_backend
from atom_deploy.export.manifest_writer import ModuleRecord, write_manifest
from atom_deploy.export.modules import build_exportable
from atom_deploy.export.quantize import QuantRecipe
from atom_deploy.export.swap import carry_over, remove_stale, staging_folder, swap_into_place
from atom_deploy.model_source import ModelSource, resolve_model
from atom_deploy.models.fused_linear import fuse_projections
from atom_deploy.text.tokenizers import copy_tokenizer, train_decoder_tokenizer
from atom_deploy.weights.minilm import minilm_folder
from atom_runner.errors import AtomError
from atom_runner.schema import TOKENIZER_FILES, Module, TokenizerName


@dataclass(frozen=True)
class ExportRequest:
    model: str
    backends: tuple[str, ...]
    quant: str | QuantRecipe = "int8"  # a mode name (default group size) or a recipe
    decode_steps: int | None = None
    max_batch: int | None = None  # KV-cache rows (None: the model config's, 16 by default)
    max_context: int | None = None  # KV-cache positions (None: the model's; HF: its own within the KV budget)
    out: Path = Path("artifacts")
    force: bool = False
    modules: tuple[str, ...] = Module.ALL
    seed: int = 0


@dataclass(frozen=True)
class ExportReport:
    module: str
    backend: str
    bytes: int
    seconds: float


def run_export(request: ExportRequest, progress: Callable[[str], None] = print) -> list[ExportReport]:
    quant = QuantRecipe.of(request.quant)  # validates the mode and group size up front
    backends = [get_backend(name) for name in request.backends]  # validates names up front
    source = resolve_model(request.model, request.decode_steps, request.seed, request.max_batch, request.max_context)
    _check_destination(request.out, [backend.name for backend in backends], request.force)
    remove_stale(request.out)
    staging = staging_folder(request.out)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    reports: list[ExportReport] = []
    try:
        for backend in backends:
            folder = staging / backend.name
            folder.mkdir()
            records = [
                _export_module(name, backend, source, quant, folder, progress, reports)
                for name in request.modules
            ]
            tokenizers = _write_tokenizers(source, folder)
            write_manifest(folder, backend, source, quant, records, tokenizers)
        carry_over(request.out, staging)
        swap_into_place(staging, request.out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return reports


def _export_module(name, backend, source: ModelSource, quant, folder, progress, reports) -> ModuleRecord:
    progress(f"[{backend.name}] {name}: building")
    start = time.perf_counter()
    stage = "build"
    try:
        # Each backend gets freshly built modules: quantization rewrites them in place.
        model = source.build()
        module = model.modules()[name]
        stage = "quantize"
        # Sibling Linears (q/k/v, gate/up) become one: the same numbers, one GEMM for three
        # (models/fused_linear.py). The eager reference keeps them apart, so parity checks it.
        fuse_projections(module)
        backend.quantize(module, quant)
        stage = "trace"
        exportable = build_exportable(name, model, backend.kv_style)
        stage = "lower"
        progress(f"[{backend.name}] {name}: lowering ({quant})")
        written = backend.export(exportable, folder, quant)
    except AtomError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise AtomError(f"export failed: module {name}, backend {backend.name}, stage {stage}: {first}") from exc
    seconds = time.perf_counter() - start
    record = ModuleRecord(exportable, written, backend.quantization_record(quant), seconds)
    reports.append(ExportReport(name, backend.name, record.total_bytes, seconds))
    progress(f"[{backend.name}] {name}: {record.total_bytes / 1e6:.1f} MB in {seconds:.1f} s")
    return record


def _write_tokenizers(source: ModelSource, folder: Path) -> dict[str, Path]:
    decoder_path = folder / TOKENIZER_FILES[TokenizerName.DECODER]
    if source.tokenizer is None:
        train_decoder_tokenizer(source.config.decoder, decoder_path)
    else:
        copy_tokenizer(source.tokenizer, decoder_path)
    minilm_path = copy_tokenizer(minilm_folder() / "tokenizer.json", folder / TOKENIZER_FILES[TokenizerName.MINILM])
    return {TokenizerName.DECODER: decoder_path, TokenizerName.MINILM: minilm_path}


def _check_destination(out: Path, backends: list[str], force: bool) -> None:
    for name in backends:
        if (out / name).exists() and not force:
            raise AtomError(f"output folder {out / name} already exists; pass --force to replace it")
    if out.exists() and not out.is_dir():
        raise AtomError(f"output folder {out} is a file")
    if Path.cwd().resolve().is_relative_to(out.resolve()):
        # OUT is replaced as a whole: the shell would be left in the removed old folder.
        raise AtomError(f"output folder {out} holds the current folder; give the export a folder of its own")
    parent = out.parent  # the staging folder is made beside OUT, on the same filesystem
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AtomError(f"cannot create output folder {parent}: {exc.strerror}") from None
    if not os.access(parent, os.W_OK):
        raise AtomError(f"output folder {parent} is not writable")
