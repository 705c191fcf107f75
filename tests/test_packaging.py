"""Every package folder is installed (the package list is explicit because backends/ and
runners/python/ are mapped into atom_deploy.backends and atom_runner)."""

from __future__ import annotations

import tomllib

from conftest import REPO


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed, mapping = set(config["packages"]), config["package-dir"]
    found = set()
    for name, folder in mapping.items():
        root = REPO / folder
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root)
            dotted = ".".join((name, *rel.parts)) if rel.parts else name
            if not any(dotted.startswith(f"{other}.") or dotted == other for other in mapping if other != name and other.startswith(f"{name}.")):
                found.add(dotted)
    assert found == listed
