"""The `cli` and `export` markers, read off each test's code so they cannot go stale.

A test is `cli` when it starts a process (the CLI, a server, a worker: each pays Python's
and the runtimes' imports, seconds apiece) and `export` when it lowers a model itself (a
Linear through ExecuTorch or torch.onnx, a backend's `export`, or `atom-deploy export`: tens of seconds to
minutes, which ATOM_TEST_EXPORTS does not keep). Either counts when the test's own body
does it, or a function or fixture of its module that it calls or requests, or a helper it
imports from another test module (conftest's `atom_deploy` among them). Session fixtures
in conftest are left out: every run pays for those once, and ATOM_TEST_EXPORTS keeps them.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from functools import cache
from pathlib import Path
from types import ModuleType

TESTS = Path(__file__).resolve().parent
STARTS = {
    # also the kit's own process starters: the encoder worker (overlap "process") and the
    # caption metrics (pycocoevalcap runs Java)
    "cli": re.compile(r"\bsubprocess\.(run|Popen|call|check_call|check_output)\(|\bPopen\(|\bServer\(|"
                      r"[\"']process[\"']|\bscore_captions\("),
    "export": re.compile(r"\btorch\.export\.export\(|\btorch\.onnx\.export\(|\bto_edge_transform_and_lower\(|"
                         r"[\[(]\s*\"export\",|\bbackend\.export\("),
}
# conftest's session fixtures that export a model of their own, beside the tiny exports
EXPORTING_SESSION_FIXTURES = {"smollm2"}


def markers_of(module: ModuleType, test_name: str, fixtures: set[str]) -> set[str]:
    marks = {mark for mark, names in _doers(module).items() if test_name in names or fixtures & names}
    if fixtures & EXPORTING_SESSION_FIXTURES:
        marks.add("export")
    return marks


@cache
def _doers(module: ModuleType) -> dict[str, frozenset[str]]:
    """{marker: names in this module whose code does it, directly or through another such name}."""
    functions = _functions(module)
    out = {}
    for mark, pattern in STARTS.items():
        doers = {name for name, (source, _) in functions.items() if pattern.search(source)}
        grew = True
        while grew:
            more = {name for name, (_, uses) in functions.items() if name not in doers and uses & doers}
            doers |= more
            grew = bool(more)
        out[mark] = frozenset(doers)
    return out


def _functions(module: ModuleType) -> dict[str, tuple[str, set[str]]]:
    """{name: (source, names it calls or requests as parameters)} for the module file's
    top-level functions (tests, helpers, fixtures) and the plain functions it imports from
    other files under tests/."""
    text = Path(module.__file__).read_text(encoding="utf-8")
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    nodes = {node.name: (text, node) for node in ast.parse(text).body if isinstance(node, functions)}
    for name, obj in vars(module).items():
        if name in nodes or not inspect.isfunction(obj):
            continue
        home = getattr(inspect.getmodule(obj), "__file__", None)
        if not home or Path(home).resolve().parent != TESTS:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(obj))
            node = ast.parse(source).body[0]
        except (OSError, SyntaxError, IndexError):  # no source to read (made at run time)
            continue
        if isinstance(node, functions):  # a lambda bound to a name is a statement, not a def
            nodes[name] = (source, node)
    out = {}
    for name, (text, node) in nodes.items():
        calls = {call.func.id for call in ast.walk(node) if isinstance(call, ast.Call) and isinstance(call.func, ast.Name)}
        params = {arg.arg for arg in node.args.args}
        decorators = [ast.get_source_segment(text, d) or "" for d in node.decorator_list]  # parametrize's values
        out[name] = ("\n".join([*decorators, ast.get_source_segment(text, node) or ""]), calls | params)
    return out
