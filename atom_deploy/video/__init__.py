"""Video input and output: probe and stream-decode a file, cut it into clip windows, make
model tensors; and the one mp4 writer (mp4.py) that demo videos and reels go through.

numpy and PyAV only (no torch), so the same code feeds every backend and runs on devices.
"""
