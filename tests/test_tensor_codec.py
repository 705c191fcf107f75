"""The clip tensor's wire forms (atom_deploy/serve/tensor_codec.py) without a server: what the
server reads is what the client wrote, and what it refuses it names. The server tests send
the same bodies over HTTP."""

from __future__ import annotations

import io

import numpy as np
import pytest

from atom_deploy.serve.tensor_codec import decode_npy, decode_tensor, encode_npy, encode_tensor
from atom_runner.errors import AtomError

SHAPE = (1, 3, 2, 8, 8)


def some_clips(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(n)
    return [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(n)]


@pytest.mark.parametrize("n", [1, 3])
def test_npy_round_trip_gives_each_clip_back(n):
    sent = some_clips(n)
    got = decode_npy(encode_npy(sent), SHAPE, max_clips=8)
    assert len(got) == n and all(np.array_equal(a, b) and a.dtype == np.float32 for a, b in zip(got, sent))
    assert all(c.flags.writeable for c in got)  # copies, not views of the read-only body


def test_json_round_trip_gives_the_clip_back():
    clip = some_clips(1)[0]
    wire = encode_tensor(clip)
    assert np.array_equal(decode_tensor(wire["dtype"], wire["shape"], wire["data"], SHAPE), clip)


def test_npy_refuses_to_stack_clips_of_different_shapes():
    with pytest.raises(AtomError, match="different shapes"):
        encode_npy([some_clips(1)[0], np.zeros((1, 3, 2, 4, 4), np.float32)])


def test_npy_stack_over_the_cap_is_refused():
    with pytest.raises(AtomError, match=r"1 to 2 clips"):
        decode_npy(encode_npy(some_clips(3)), SHAPE, max_clips=2)


def npy_with_header(header: str, data: bytes) -> bytes:
    """A version 1.0 .npy file with this header text (padded as the format asks)."""
    text = header.encode("latin1")
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + data


def test_npy_header_is_parsed_without_evaluating_code(tmp_path):
    data = some_clips(1)[0].tobytes()
    plain = npy_with_header(f"{{'descr': '<f4', 'fortran_order': False, 'shape': {SHAPE}, }}", data)
    assert np.array_equal(decode_npy(plain, SHAPE, max_clips=8)[0], some_clips(1)[0])  # the hand-made header is right
    marker = tmp_path / "ran"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    hostile = npy_with_header(f"{{'descr': {code}, 'fortran_order': False, 'shape': {SHAPE}, }}", data)
    with pytest.raises(AtomError, match="not a .npy file"):
        decode_npy(hostile, SHAPE, max_clips=8)
    assert not marker.exists()


def test_npy_refuses_pickled_objects_unread():
    objects = np.empty(1, dtype=object)
    objects[0] = {"x": 1}
    buffer = io.BytesIO()
    np.save(buffer, objects, allow_pickle=True)
    with pytest.raises(AtomError, match="dtype is \\|O"):
        decode_npy(buffer.getvalue(), SHAPE, max_clips=8)
