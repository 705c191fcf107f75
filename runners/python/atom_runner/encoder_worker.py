"""The resident encoder process behind ProcessEncoder: load once, then encode on request.

Protocol, one line each way: the parent sends a ticket number (or `quit`); the worker
reads the clip from shared-memory slot ticket % slots, writes the prefix to the same
slot of the output block and answers `done <ticket>` (or `error <ticket> <message>`),
in the order the tickets came. The first line it writes is `ready <load seconds>` (or
`error <message>` when the module did not load).
"""

from __future__ import annotations

import json
import sys
import time
from multiprocessing import resource_tracker
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path

from atom_runner.encoders import slot
from atom_runner.runtimes import load_module, set_executorch_threads
from atom_runner.schema import Entry


def main() -> int:
    spec = json.loads(sys.argv[1])
    out = sys.stdout
    try:
        if spec["backend"] == "executorch":
            set_executorch_threads(spec["threads"])
        start = time.perf_counter()
        module = load_module(spec["backend"], {Entry.FORWARD: Path(spec["path"])}, spec["threads"])
        clips, prefixes = _attach(spec["clips"]), _attach(spec["prefixes"])
        print(f"ready {time.perf_counter() - start}", file=out, flush=True)
    except Exception as exc:
        print(f"error {_first_line(exc)}", file=out, flush=True)
        return 1
    clip_shape, prefix_shape, slots = tuple(spec["clip_shape"]), tuple(spec["prefix_shape"]), spec["slots"]
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        try:
            ticket = int(command)
            clip = slot(clips, clip_shape, ticket, slots)
            slot(prefixes, prefix_shape, ticket, slots)[...] = module.run(Entry.FORWARD, [clip])[0]
            print(f"done {ticket}", file=out, flush=True)
        except Exception as exc:  # the answer names the ticket it belongs to (the command as sent)
            print(f"error {command} {_first_line(exc)}", file=out, flush=True)
    return 0


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _attach(name: str) -> SharedMemory:
    shm = SharedMemory(name=name)
    # The parent owns these blocks; without this the worker's tracker would unlink them.
    resource_tracker.unregister(shm._name, "shared_memory")
    return shm


if __name__ == "__main__":
    sys.exit(main())
