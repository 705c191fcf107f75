"""The clip tensor's JSON encoding, used by the server, the client and the load test.

    {"dtype": "float32", "shape": [1, 3, 6, 224, 224], "data": "<base64>"}

`data` is the tensor's bytes in C order, float32 little-endian, base64 (RFC 4648, with
padding). Compact enough for JSON (4/3 of the raw bytes) and readable in any language
with a base64 decoder: numpy's `np.frombuffer(base64.b64decode(data), "<f4").reshape(shape)`.
"""

from __future__ import annotations

import base64
import binascii
import math

import numpy as np

from atom_runner.errors import AtomError

DTYPE = "float32"
_WIRE = np.dtype("<f4")


def encode_tensor(array: np.ndarray) -> dict:
    if array.dtype != np.float32:
        raise AtomError(f"clip has dtype {array.dtype}, expected float32")
    raw = np.ascontiguousarray(array, dtype=_WIRE).tobytes()
    return {"dtype": DTYPE, "shape": list(array.shape), "data": base64.b64encode(raw).decode("ascii")}


def decode_tensor(dtype: str, shape: list[int], data: str, expected_shape: tuple[int, ...], name: str = "clip") -> np.ndarray:
    """The tensor, or AtomError naming what is wrong (dtype, shape, base64, length, NaN)."""
    if dtype != DTYPE:
        raise AtomError(f"{name}.dtype is {dtype!r}; send {DTYPE} (little-endian)")
    if tuple(shape) != tuple(expected_shape):
        raise AtomError(f"{name}.shape is {list(shape)}; this model takes {list(expected_shape)}")
    want = math.prod(expected_shape) * _WIRE.itemsize
    # base64's length follows from the byte count: refuse a wrong one before decoding it.
    if len(data) != 4 * math.ceil(want / 3):
        raise AtomError(f"{name}.data holds {len(data)} base64 characters; {list(expected_shape)} float32 needs {4 * math.ceil(want / 3)}")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise AtomError(f"{name}.data is not valid base64") from None
    array = np.frombuffer(raw, dtype=_WIRE).reshape(expected_shape).astype(np.float32)
    if not np.isfinite(array).all():
        raise AtomError(f"{name} contains NaN or infinite values")
    return array


def main(argv: list[str] | None = None) -> int:
    """`python -m atom_deploy.serve.tensor_codec CLIP.npy [...]`: a caption request body on stdout (for curl -d @-)."""
    import json
    import sys

    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m atom_deploy.serve.tensor_codec CLIP.npy [...]  (prints a /v1/caption body)", file=sys.stderr)
        return 2
    try:
        body = {"clips": [encode_tensor(np.load(p, allow_pickle=False)) for p in paths]}
    except (OSError, ValueError, AtomError) as exc:
        print(f"tensor_codec: error: {exc}", file=sys.stderr)
        return 1
    json.dump(body, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
