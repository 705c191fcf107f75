"""One resident `atom_runner serve` for a sequence of tasks: the modules load once, then every
task is one JSON line in and one JSON line out (the protocol: runners/android/src/serve.h).

    with ResidentRunner.on_device(Adb()) as runner:      # over `adb shell`, clips pushed first
        runner.ask("caption", clips=runner.place(["a.bin"]), beam=4)
        runner.ask("embed", texts=["a red car"])
        runner.stats()["loads"]                          # {"decoder": 1, "minilm": 1, "video_encoder": 1}

`ResidentRunner.on_host(binary, artifacts)` runs a host build the same way (tests, benchmarks).
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TextIO

from atom_deploy.device.adb import DISCONNECT_MARKS, Adb, DeviceError
from atom_deploy.device.remote import EXIT_MARK, push_files, runner_shell

WHAT = "atom_runner serve"


class ResidentRunner:
    def __init__(self, argv: Sequence[str], place: Callable[[Sequence[Path | str]], list[str]] | None = None,
                 timeout_s: float = 900, where: str = "host"):
        """argv starts `atom_runner serve` (or a shell that does); `place` makes local files
        readable by the runner and returns the paths to send (identity on the host)."""
        self._place = place or (lambda paths: [str(p) for p in paths])
        self._timeout_s = timeout_s
        self._where = where
        self._proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace")
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=20)
        # Threads drain both pipes, so neither fills while the other is read, and a reply can time out.
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        self._stderr_pump = threading.Thread(target=lambda: self._stderr.extend(self._proc.stderr), daemon=True)
        self._stderr_pump.start()
        self._closed = False

    @classmethod
    def on_host(cls, binary: Path, artifacts: Path, timeout_s: float = 900) -> ResidentRunner:
        return cls([str(binary), "serve", "--artifacts", str(artifacts)], timeout_s=timeout_s)

    @classmethod
    def on_device(cls, adb: Adb, timeout_s: float = 900) -> ResidentRunner:
        """The pushed bundle's runner (push_bundle first), kept open over one `adb shell`."""
        return cls(adb.shell_argv(runner_shell(["serve", "--artifacts", "artifacts"])),
                   place=lambda paths: push_files(adb, [Path(p) for p in paths], "clips"),
                   timeout_s=timeout_s, where=f"device {adb.serial}")

    # --- requests ------------------------------------------------------------------

    def place(self, paths: Sequence[Path | str]) -> list[str]:
        """Local files -> the paths the runner reads them at (pushed to the device when there is one)."""
        return self._place(paths)

    def send_line(self, line: str) -> dict:
        """One request line as given (it may be malformed: the runner answers with an error) -> the reply."""
        if self._closed:
            raise DeviceError(f"{WHAT} on {self._where} is closed")
        if "\n" in line:
            raise DeviceError("a request must be one line")
        try:
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._ended() from None
        return self._reply()

    def request(self, payload: dict) -> dict:
        """The runner's reply to one request, an {"error": ...} reply included."""
        return self.send_line(json.dumps(payload, ensure_ascii=False))

    def ask(self, op: str, **fields) -> dict:
        """The task's output; a reply naming an error raises DeviceError with its line."""
        reply = self.request({"op": op, **fields})
        if "error" in reply:
            raise DeviceError(f"{WHAT} {op} on {self._where}: {reply['error']}")
        return reply

    def stats(self) -> dict:
        """{"loads": {module: times loaded}, "requests", "errors", "load_s", "peak_rss_kb"}."""
        return self.ask("stats")

    # --- lifetime ------------------------------------------------------------------

    def close(self) -> int:
        """End of input: the runner exits; raises unless it exited 0."""
        if self._closed:
            return 0
        self._closed = True
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout=self._timeout_s)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            raise DeviceError(f"{WHAT} on {self._where} did not exit within {self._timeout_s:.0f} s of end of input") from None
        rest = []
        while (line := self._lines.get()) is not None:
            rest.append(line.strip())
        rc = self._proc.returncode
        marks = [line for line in rest if line.startswith(EXIT_MARK)]
        if marks:  # the device shell's report of the runner's own status
            rc = int(marks[-1][len(EXIT_MARK):])
        if rc != 0:
            raise DeviceError(f"{WHAT} on {self._where} exited {rc}: {self._last_stderr()}")
        return rc

    def __enter__(self) -> ResidentRunner:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # already failing: end the runner without masking the first error
            self._closed = True
            self._proc.kill()
            self._proc.wait()

    # --- internals -----------------------------------------------------------------

    def _pump_stdout(self) -> None:
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(None)  # end of output

    def _reply(self) -> dict:
        try:
            line = self._lines.get(timeout=self._timeout_s)
        except queue.Empty:
            self._proc.kill()
            raise DeviceError(f"{WHAT} on {self._where} gave no reply within {self._timeout_s:.0f} s") from None
        if line is None or line.startswith(EXIT_MARK):
            raise self._ended()
        try:
            reply = json.loads(line)
        except json.JSONDecodeError:
            raise DeviceError(f"{WHAT} on {self._where} answered a line that is not JSON: {line[:200]!r}") from None
        if not isinstance(reply, dict):
            raise DeviceError(f"{WHAT} on {self._where} answered {type(reply).__name__}, not an object")
        return reply

    def _ended(self) -> DeviceError:
        self._closed = True
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        err = self._last_stderr()
        if any(m in err.lower() for m in DISCONNECT_MARKS):
            return DeviceError(f"{self._where} disconnected during {WHAT}")
        return DeviceError(f"{WHAT} on {self._where} ended without a reply: {err}")

    def _last_stderr(self) -> str:
        self._stderr_pump.join(timeout=5)  # the runner has exited: its last words are on the way
        lines = [line.strip() for line in list(self._stderr) if line.strip() and not line.startswith("I ")]
        return lines[-1] if lines else "no stderr"


def relay(runner: ResidentRunner, lines: Iterable[str], out: TextIO) -> None:
    """Each request line to the runner and its reply to `out`, in order. Local files a request
    names ("clips", "embeddings") are placed first (pushed to the device); a path that is not a local file is sent
    as it is, and the runner answers that it cannot open it. Malformed lines go as they are:
    the runner's error line names the problem."""
    for line in lines:
        line = line.rstrip("\r\n")
        try:
            request = json.loads(line)
        except json.JSONDecodeError:
            request = None
        if isinstance(request, dict):
            line = json.dumps(_placed(runner, request), ensure_ascii=False)
        out.write(json.dumps(runner.send_line(line), ensure_ascii=False) + "\n")
        out.flush()


def _placed(runner: ResidentRunner, request: dict) -> dict:
    clips = request.get("clips")
    named = [*(clips if isinstance(clips, list) else []), request.get("embeddings")]
    local = [p for p in named if isinstance(p, str) and Path(p).is_file()]
    if not local:
        return request
    where = dict(zip(local, runner.place(local)))
    request = dict(request)
    if isinstance(clips, list):
        request["clips"] = [where.get(p, p) if isinstance(p, str) else p for p in clips]
    if isinstance(request.get("embeddings"), str):
        request["embeddings"] = where.get(request["embeddings"], request["embeddings"])
    return request
