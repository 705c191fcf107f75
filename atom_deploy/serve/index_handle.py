"""The server's one index file, with one SQLite connection per thread.

Python's sqlite3 connections belong to the thread that opened them, and WAL mode lets
readers (search) go on while one writer (an index job) commits: so each thread opens its
own connection to the same file, bound to the same artifacts.
"""

from __future__ import annotations

import threading
from pathlib import Path

from atom_deploy.pipelines.index_db import ClipIndex
from atom_deploy.pipelines.model_facts import artifacts_label, manifest_sha256
from atom_runner.errors import AtomError
from atom_runner.session import Session


class IndexHandle:
    def __init__(self, path: Path | None, session: Session):
        self.path = path
        self._sha, self._label = manifest_sha256(session), artifacts_label(session)
        self._local = threading.local()
        self._opened: list[ClipIndex] = []
        self._lock = threading.Lock()
        if path is not None:
            self.get().count()  # open it now: a foreign or broken index fails the start, not the first request

    def get(self) -> ClipIndex:
        if self.path is None:
            raise AtomError("the server was started without --index: search, index and assemble need one")
        index = getattr(self._local, "index", None)
        if index is None:
            index = ClipIndex(self.path, self._sha, self._label)
            self._local.index = index
            with self._lock:
                self._opened.append(index)
        return index

    def close(self) -> None:
        with self._lock:
            for index in self._opened:
                try:
                    index.close()
                except Exception:  # a connection of another thread: sqlite3 refuses, the process exit closes it
                    pass
            self._opened.clear()
