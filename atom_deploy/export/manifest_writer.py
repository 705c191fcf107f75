"""Write manifest.json: everything a runner needs, with key names from atom_runner.schema."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from atom_deploy import __version__
from atom_deploy.backends.base import Backend, WrittenEntry
from atom_deploy.export.contract import ExportableModule
from atom_deploy.export.kv_budget import kv_cache_bytes
from atom_deploy.export.quantize import EMBEDDING_SCHEME, UNQUANTIZED, QuantRecipe
from atom_deploy.model_source import ModelSource
from atom_deploy.weights.hf_conventions import CheckpointConventions
from atom_runner.manifest import sha256_file
from atom_runner.schema import FORMAT, FORMAT_VERSION, MANIFEST_FILE, Key, TokenizerName

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
BEAM_WIDTH = 4  # the paper's default, where the KV-cache rows hold it (export --max-batch 1: greedy)
VERSIONED_PACKAGES = ("torch", "executorch", "torchao", "onnx", "onnxruntime", "onnxscript", "transformers")


@dataclass(frozen=True)
class ModuleRecord:
    exportable: ExportableModule
    written: list[WrittenEntry]
    quantization: dict[str, Any]
    seconds: float

    @property
    def files(self) -> list[Path]:
        return sorted({f for w in self.written for f in w.files})

    @property
    def total_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)


def file_record(path: Path) -> dict[str, Any]:
    return {Key.FILE: path.name, Key.SHA256: sha256_file(path), Key.BYTES: path.stat().st_size}


def module_manifest(record: ModuleRecord, mode: str | QuantRecipe) -> dict[str, Any]:
    quantization = dict(record.quantization)
    if QuantRecipe.of(mode).quantized:
        quantization["embedding"] = EMBEDDING_SCHEME
        quantization["unquantized"] = UNQUANTIZED
    entry_files = {w.entry: w.file.name for w in record.written}
    entries = {}
    for entry in record.exportable.entry_points:
        entries[entry.name] = {Key.FILE: entry_files[entry.name], **entry.to_manifest()}
    return {
        Key.FILES: [file_record(f) for f in record.files],
        Key.ENTRY_POINTS: entries,
        Key.QUANTIZATION: quantization,
        Key.EXPORT_SECONDS: round(record.seconds, 2),
        **record.exportable.metadata,
    }


def write_manifest(
    folder: Path, backend: Backend, source: ModelSource, mode: str | QuantRecipe,
    records: list[ModuleRecord], tokenizers: dict[str, Path],
) -> Path:
    config = source.config
    conventions = source.conventions or CheckpointConventions.kit(config.decoder.eos_id)
    manifest = {
        Key.FORMAT: FORMAT,
        Key.FORMAT_VERSION: FORMAT_VERSION,
        Key.KIT_VERSION: __version__,
        Key.BACKEND: backend.name,
        Key.CREATED: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        Key.MODEL: {
            Key.MODEL_NAME: config.name,
            Key.MODEL_SOURCE: source.description,
            Key.MODEL_SPEC: source.spec,
            Key.SEED: source.seed,
            Key.DECODER_ROLE: source.decoder_role,
            Key.MODEL_CONFIG: config.to_dict(),
        },
        Key.DECODE: {
            Key.DECODE_STEPS: config.decode_steps,
            Key.MAX_CONTEXT: config.decoder.max_context,
            Key.MAX_BATCH: config.decoder.max_batch,
            Key.BEAM_WIDTH: min(BEAM_WIDTH, config.decoder.max_batch),
            Key.BOS_ID: config.decoder.bos_id,
            Key.EOS_ID: config.decoder.eos_id,
            Key.PAD_ID: config.decoder.pad_id,
            Key.ADD_BOS: conventions.add_bos,
            Key.EOS_IDS: list(conventions.eos_ids),
            Key.KV_CACHE_BYTES: kv_cache_bytes(config.decoder),
            Key.NUM_VISUAL_TOKENS: config.encoder.num_visual_tokens,
            Key.VOCAB_SIZE: config.decoder.vocab_size,
            Key.DIM: config.decoder.dim,
        },
        Key.CLIP: {Key.SHAPE: list(config.encoder.clip_shape), Key.MEAN: list(CLIP_MEAN), Key.STD: list(CLIP_STD)},
        Key.TOKENIZERS: {name: file_record(path) for name, path in tokenizers.items()},
        Key.MODULES: {r.exportable.name: module_manifest(r, mode) for r in records},
        Key.VERSIONS: _versions(),
    }
    manifest[Key.TOKENIZERS][TokenizerName.MINILM][Key.MAX_SEQ_LENGTH] = config.minilm.max_seq_length
    if conventions.chat is not None:
        manifest[Key.CHAT] = conventions.chat
    path = folder / MANIFEST_FILE
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


def _versions() -> dict[str, str]:
    versions = {}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions
