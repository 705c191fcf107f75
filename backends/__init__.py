"""How to lower: one file per backend, registered by name (installed as atom_deploy.backends)."""

from __future__ import annotations

from atom_deploy.backends.base import Backend, WrittenEntry
from atom_runner.errors import AtomError

_REGISTRY: dict[str, type[Backend]] = {}


def register_backend(name: str):
    def wrap(cls: type[Backend]) -> type[Backend]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def backend_names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def get_backend(name: str) -> Backend:
    _load_all()
    if name not in _REGISTRY:
        raise AtomError(f"unknown backend {name!r}; valid backends: {sorted(_REGISTRY)}")
    return _REGISTRY[name]()


def _load_all() -> None:
    # Imported lazily: each backend pulls in its own heavy toolchain.
    from atom_deploy.backends import executorch, onnx  # noqa: F401


__all__ = ["Backend", "WrittenEntry", "backend_names", "get_backend", "register_backend"]
