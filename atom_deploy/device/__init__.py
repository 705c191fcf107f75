"""Run the C++ runner on an Android phone over adb: bundle, push (sha256-skipping), run, bench."""

from atom_deploy.device.adb import Adb, DeviceError
from atom_deploy.device.bundle import DEVICE_DIR, make_bundle

__all__ = ["Adb", "DeviceError", "DEVICE_DIR", "make_bundle"]
