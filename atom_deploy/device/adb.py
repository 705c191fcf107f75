"""A thin adb client: pick one device, push files, run shell commands, with one-line errors."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass

from atom_runner.errors import AtomError


class DeviceError(AtomError):
    """Anything that went wrong talking to the phone, as one line."""


DISCONNECT_MARKS = ("device offline", "no devices/emulators found", "device not found", "error: closed",
                    "protocol fault", "connection reset")
FULL_MARKS = ("no space left on device", "not enough space")


@dataclass(frozen=True)
class Device:
    serial: str
    state: str  # device | unauthorized | offline | ...


class Adb:
    def __init__(self, serial: str | None = None, adb: str = "adb", timeout: float = 900):
        self.adb = shutil.which(adb) or adb
        if not shutil.which(self.adb):
            raise DeviceError(f"{adb} not found on PATH (Debian/Ubuntu: apt-get install adb)")
        self.timeout = timeout
        self.serial = self._pick(serial)

    # --- devices ------------------------------------------------------------------

    def _raw(self, *args: str, serial: str | None = None) -> subprocess.CompletedProcess:
        cmd = [self.adb, *(["-s", serial] if serial else []), *args]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"adb {' '.join(args[:2])} timed out after {self.timeout:.0f} s") from None

    def devices(self) -> list[Device]:
        out = self._raw("devices")
        if out.returncode != 0:
            raise DeviceError(f"adb devices failed: {_last_line(out.stderr)}")
        found = []
        for line in out.stdout.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 2:
                found.append(Device(parts[0], parts[1]))
        return found

    def _pick(self, serial: str | None) -> str:
        devices = self.devices()
        if serial:
            match = [d for d in devices if d.serial == serial]
            if not match:
                raise DeviceError(f"device {serial} is not connected (connected: {_names(devices) or 'none'})")
            device = match[0]
        else:
            if not devices:
                raise DeviceError("no device connected: plug in the phone and enable USB debugging (adb devices lists none)")
            if len(devices) > 1:
                raise DeviceError(f"{len(devices)} devices connected ({_names(devices)}): choose one with --serial")
            device = devices[0]
        if device.state == "unauthorized":
            raise DeviceError(f"device {device.serial} is unauthorized: accept the USB debugging prompt on the phone")
        if device.state != "device":
            raise DeviceError(f"device {device.serial} is {device.state}, not ready")
        return device.serial

    # --- file transfer and commands -----------------------------------------------

    def _checked(self, out: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
        """A lost device or a full disk, judged only from a failed adb: its exit status and stderr.
        stdout is what ran on the phone (a caption may well say "device offline")."""
        if out.returncode == 0:
            return out
        text = out.stderr.lower()
        if any(m in text for m in DISCONNECT_MARKS):
            raise DeviceError(f"device {self.serial} disconnected during {what}")
        if any(m in text for m in FULL_MARKS):
            raise DeviceError(f"device {self.serial} storage is full during {what}: free space under /data/local/tmp")
        return out

    def push(self, local: str, remote: str) -> None:
        out = self._checked(self._raw("push", local, remote, serial=self.serial), f"push of {local}")
        if out.returncode != 0:
            raise DeviceError(f"adb push {local} failed: {_last_line(out.stderr or out.stdout)}")

    def shell(self, command: str, what: str = "shell command") -> subprocess.CompletedProcess:
        return self._checked(self._raw("shell", command, serial=self.serial), what)

    def shell_argv(self, command: str) -> list[str]:
        """The argv of `adb shell COMMAND` on this device, for a process kept open (its stdin and
        stdout are the command's: a resident runner)."""
        return [self.adb, "-s", self.serial, "shell", command]

    def sha256s(self, folder: str) -> dict[str, str]:
        """{relative path: sha256} of every file under `folder` on the device ({} if absent)."""
        out = self.shell(f"cd {shlex.quote(folder)} 2>/dev/null && find . -type f -exec sha256sum {{}} +", "checksum")
        sums = {}
        for line in out.stdout.splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2 and len(parts[0]) == 64:
                sums[parts[1].strip().removeprefix("./")] = parts[0]
        return sums


def _names(devices: list[Device]) -> str:
    return ", ".join(f"{d.serial} ({d.state})" for d in devices)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
