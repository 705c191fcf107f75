"""The clip tensor's two wire forms, used by the server, the client and the load test.

JSON (`POST /v1/caption`):

    {"dtype": "float32", "shape": [1, 3, 6, 224, 224], "data": "<base64>"}

`data` is the tensor's bytes in C order, float32 little-endian, base64 (RFC 4648, with
padding). Readable in any language with a base64 decoder: numpy's
`np.frombuffer(base64.b64decode(data), "<f4").reshape(shape)`.

Binary (`POST /v1/caption/npy`, Content-Type application/x-npy): a `.npy` file as
`np.save` writes it, of one clip (the model's clip shape) or a stack of clips
(`[N, *clip shape]`). No base64 or JSON to parse: a quarter fewer bytes, and the server
reads the tensor straight out of the body.
"""

from __future__ import annotations

import base64
import binascii
import io
import math

import numpy as np

from atom_runner.errors import AtomError

DTYPE = "float32"
NPY_MEDIA_TYPE = "application/x-npy"
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
    return _finite(np.frombuffer(raw, dtype=_WIRE).reshape(expected_shape).astype(np.float32), name)


def encode_npy(clips: list[np.ndarray]) -> bytes:
    """One `.npy` body: a single clip as is, several stacked on a new first axis."""
    for clip in clips:
        if clip.dtype != np.float32:
            raise AtomError(f"clip has dtype {clip.dtype}, expected float32")
    if len({clip.shape for clip in clips}) > 1:
        raise AtomError(f"clips of different shapes cannot share one body: {sorted({clip.shape for clip in clips})}")
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(clips[0] if len(clips) == 1 else np.stack(clips), dtype=_WIRE))
    return buffer.getvalue()


def decode_npy(raw: bytes, clip_shape: tuple[int, ...], max_clips: int) -> list[np.ndarray]:
    """The clips of a `.npy` body, or AtomError naming what is wrong (format, dtype, shape, length, NaN).

    Read with numpy's header parser (which caps the header's size) and nothing that unpickles.
    """
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise AtomError(f"body is .npy format {version[0]}.{version[1]}; send 1.0 or 2.0 (as np.save writes)")
        shape, fortran_order, dtype = read_header(stream)
    except AtomError:
        raise
    except (ValueError, TypeError, SyntaxError, OverflowError, UnicodeDecodeError) as exc:
        raise AtomError(f"body is not a .npy file: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if dtype != _WIRE:
        raise AtomError(f"body's dtype is {dtype.str}; send float32 little-endian (<f4)")
    if fortran_order:
        raise AtomError("body is in Fortran order; send C order (np.save of np.ascontiguousarray)")
    shape = tuple(shape)
    if shape == tuple(clip_shape):
        count = 1
    elif len(shape) == len(clip_shape) + 1 and shape[1:] == tuple(clip_shape) and 1 <= shape[0] <= max_clips:
        count = shape[0]
    else:
        raise AtomError(f"body's shape is {list(shape)}; this model takes {list(clip_shape)} or a stack "
                        f"[N, {', '.join(map(str, clip_shape))}] of 1 to {max_clips} clips")
    want = count * math.prod(clip_shape) * _WIRE.itemsize
    have = len(raw) - stream.tell()
    if have != want:
        raise AtomError(f"body holds {have} bytes of data; {list(shape)} float32 needs {want}")
    array = np.frombuffer(raw, dtype=_WIRE, offset=stream.tell()).reshape((count, *clip_shape))
    return [_finite(array[i].astype(np.float32), f"clips[{i}]") for i in range(count)]  # a copy: the body is read-only


def _finite(array: np.ndarray, name: str) -> np.ndarray:
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
