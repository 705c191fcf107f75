"""Video input: probe and stream-decode a file, cut it into clip windows, make model tensors.

numpy and PyAV only (no torch), so the same code feeds every backend and runs on devices.
"""
