"""Read and verify an artifact folder's manifest: format, kit version, paths, sha256.

The one rule for files: a runner opens only files that the manifest lists with a sha256
(a module's `files`, the `tokenizers` records), that match it, and that lie inside the
artifact folder once symlinks are followed. Entry points and tokenizers are resolved
through that verified list, never by a name of their own.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atom_runner.errors import AtomError
from atom_runner.manifest_check import check_limits, check_manifest
from atom_runner.schema import BACKENDS, FORMAT, FORMAT_VERSION, MANIFEST_FILE, Key, Limit


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Manifest:
    root: Path
    data: dict[str, Any]

    @property
    def backend(self) -> str:
        return self.data[Key.BACKEND]

    @property
    def decode(self) -> dict[str, Any]:
        return self.data[Key.DECODE]

    def module(self, name: str) -> dict[str, Any]:
        modules = self.data[Key.MODULES]
        if name not in modules:
            raise AtomError(f"{self.root}: manifest has no module {name!r}; it has {sorted(modules)}")
        return modules[name]

    def resolve(self, file_name: str) -> Path:
        """A file named by the manifest, which must stay inside the artifact folder."""
        if "\0" in file_name:
            raise AtomError(f"{self.root}: manifest names a file with a NUL in it: {file_name!r}")
        candidate = (self.root / file_name).resolve()
        if Path(file_name).is_absolute() or ".." in Path(file_name).parts or self.root.resolve() not in candidate.parents:
            raise AtomError(f"{self.root}: manifest names a file outside the artifact folder: {file_name!r}")
        return candidate

    def verified(self, entry: dict[str, Any]) -> Path:
        """Resolve a {file, sha256, bytes} record and check the file against it."""
        path = self.resolve(entry[Key.FILE])
        if not path.is_file():
            raise AtomError(f"missing artifact file: {path}")
        size = path.stat().st_size
        if size != entry[Key.BYTES]:
            raise AtomError(f"artifact {path.name} has {size} bytes, manifest says {entry[Key.BYTES]} (truncated or replaced?)")
        if sha256_file(path) != entry[Key.SHA256]:
            raise AtomError(f"artifact {path.name} does not match its sha256 in the manifest (corrupted or replaced)")
        return path

    def entry_files(self, module_name: str) -> dict[str, Path]:
        """{entry point: path} for a module, every file verified; an entry point must name
        one of the module's listed `files`, so nothing unhashed reaches a runtime."""
        module = self.module(module_name)
        verified = {record[Key.FILE]: self.verified(record) for record in module[Key.FILES]}
        out = {}
        for entry, spec in module[Key.ENTRY_POINTS].items():
            if spec[Key.FILE] not in verified:
                raise AtomError(
                    f"{self.root}: {module_name} entry point {entry!r} names {spec[Key.FILE]!r}, "
                    f"which is not in the module's hashed files {sorted(verified)}"
                )
            out[entry] = verified[spec[Key.FILE]]
        return out

    def tokenizer_file(self, name: str) -> Path:
        """The tokenizer file that its manifest record names, verified."""
        return self.verified(self.data[Key.TOKENIZERS][name])


def load_manifest(folder: Path | str) -> Manifest:
    root = Path(folder)
    path = root / MANIFEST_FILE
    if not path.is_file():
        raise AtomError(f"no {MANIFEST_FILE} in {root}: not an atom-deploy artifact folder")
    if path.stat().st_size > Limit.MANIFEST_BYTES:
        raise AtomError(f"{path} has {path.stat().st_size} bytes; a manifest is at most {Limit.MANIFEST_BYTES}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AtomError(f"{path} is not valid JSON: {exc}") from None
    except RecursionError:  # json's C scanner recurses per nesting level
        raise AtomError(f"{path}: manifest is nested deeper than {Limit.DEPTH} levels") from None
    if not isinstance(data, dict) or data.get(Key.FORMAT) != FORMAT:
        raise AtomError(f"{path} is not an atom-deploy manifest")
    check_limits(data, str(path))
    if data.get(Key.FORMAT_VERSION) != FORMAT_VERSION:
        raise AtomError(
            f"{path} has manifest format {data.get(Key.FORMAT_VERSION)!r} (kit {data.get(Key.KIT_VERSION)!r}); "
            f"this runner reads format {FORMAT_VERSION}: re-export with this kit"
        )
    check_manifest(data, str(path))
    return Manifest(root, data)


def artifact_folders(path: Path | str) -> list[Path]:
    """Every backend folder PATH names, in BACKENDS order (ExecuTorch first: the kit's main path).

    The one rule for where artifacts are: PATH is either a backend folder (it holds
    manifest.json) or an export root (`atom-deploy export --out PATH` writes
    PATH/<backend>/manifest.json for each backend).
    """
    root = Path(path)
    if (root / MANIFEST_FILE).is_file():
        return [root]
    found = [root / backend for backend in BACKENDS if (root / backend / MANIFEST_FILE).is_file()]
    if not found:
        raise AtomError(f"{root}: no {MANIFEST_FILE} here nor in {' or '.join(b + '/' for b in BACKENDS)}")
    return found


def open_artifacts(path: Path | str, backend: str | None = None) -> Manifest:
    """The manifest PATH names (see `artifact_folders`): PATH/<backend> when a backend is
    asked for and exported there, else the first backend folder, checked to be `backend`."""
    root = Path(path)
    if backend is not None and backend not in BACKENDS:
        raise AtomError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    folders = artifact_folders(root)
    if backend is not None:
        folders = [f for f in folders if f.name == backend] or folders[:1]
    manifest = load_manifest(folders[0])
    if backend is not None and manifest.backend != backend:
        raise AtomError(f"{folders[0]} holds {manifest.backend} artifacts, not {backend}")
    return manifest
