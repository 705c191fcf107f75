"""Check a parsed manifest's shape and numbers before any runner reads it.

Every key a runner reads is checked for presence, type and range here, so a hostile or
broken manifest gets one line naming the key (`decode.dim must be an integer in
[1, 2147483647], got 0`) instead of a KeyError, a RecursionError or a 233 TiB allocation.
The C++ runner applies the same rules with the same limits (runners/android/src/manifest.cpp).
Keys no runner reads (model, versions, created, export_seconds) are left alone.
"""

from __future__ import annotations

import math
from typing import Any, NoReturn

from atom_runner.chat import ROLES
from atom_runner.errors import AtomError
from atom_runner.schema import BACKENDS, ENTRY_POINTS_OF, Entry, Key, KVStyle, Limit, Module, TokenizerName

FLOAT32_BYTES = 4
DECODE_INTS = (Key.DECODE_STEPS, Key.MAX_CONTEXT, Key.MAX_BATCH, Key.BEAM_WIDTH, Key.NUM_VISUAL_TOKENS, Key.VOCAB_SIZE, Key.DIM)
TOKEN_IDS = (Key.BOS_ID, Key.EOS_ID, Key.PAD_ID)


class _Checker:
    def __init__(self, where: str):
        self.where = where

    def fail(self, key: str, problem: str) -> NoReturn:
        raise AtomError(f"{self.where}: {key} {problem}")

    def get(self, obj: dict, parent: str, name: str) -> tuple[Any, str]:
        key = f"{parent}.{name}" if parent else name
        if name not in obj:
            self.fail(key, "is missing")
        return obj[name], key

    def record(self, obj: dict, parent: str, name: str) -> tuple[dict, str]:
        value, key = self.get(obj, parent, name)
        if not isinstance(value, dict):
            self.fail(key, f"must be an object, got {_kind(value)}")
        return value, key

    def items(self, obj: dict, parent: str, name: str, min_len: int = 1) -> tuple[list, str]:
        value, key = self.get(obj, parent, name)
        if not isinstance(value, list):
            self.fail(key, f"must be a list, got {_kind(value)}")
        if len(value) < min_len:
            self.fail(key, f"must have at least {min_len} item(s)")
        return value, key

    def integer(self, obj: dict, parent: str, name: str, lo: int = 1, hi: int = Limit.DIM) -> int:
        value, key = self.get(obj, parent, name)
        return self.integer_value(value, key, lo, hi)

    def integer_value(self, value: Any, key: str, lo: int = 1, hi: int = Limit.DIM) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(key, f"must be an integer, got {_kind(value)}")
        if not lo <= value <= hi:
            self.fail(key, f"must be an integer in [{lo}, {hi}], got {_short(value)}")
        return value

    def text(self, obj: dict, parent: str, name: str, choices: tuple[str, ...] | None = None,
             max_bytes: int | None = None) -> str:
        value, key = self.get(obj, parent, name)
        if not isinstance(value, str):
            self.fail(key, f"must be a string, got {_kind(value)}")
        if choices is not None and value not in choices:
            self.fail(key, f"is {_short(value)}; valid: {list(choices)}")
        if max_bytes is not None and len(value.encode("utf-8", "surrogatepass")) > max_bytes:
            self.fail(key, f"has more than {max_bytes} bytes of UTF-8 (the limit)")
        return value

    def file_name(self, obj: dict, parent: str) -> str:
        """A file name relative to the artifact folder: no NUL, no absolute path, no `..`."""
        name = self.text(obj, parent, Key.FILE)
        key = f"{parent}.{Key.FILE}"
        if not name or len(name) > Limit.NAME_CHARS:
            self.fail(key, f"must be 1 to {Limit.NAME_CHARS} characters, got {len(name)}")
        if "\\" in name or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
            self.fail(key, f"contains a NUL, control character or backslash: {_short(name)}")
        if name.startswith("/") or ".." in name.split("/"):
            self.fail(key, f"names a file outside the artifact folder: {_short(name)}")
        return name

    def shape(self, value: Any, key: str, symbolic: bool) -> list:
        if not isinstance(value, list) or not 1 <= len(value) <= Limit.RANK:
            self.fail(key, f"must be a list of 1 to {Limit.RANK} sizes, got {_kind(value)}")
        for i, size in enumerate(value):
            if not (symbolic and isinstance(size, str)):
                self.integer_value(size, f"{key}[{i}]")
        return value

    def tensor_bytes(self, shape: list[int], key: str) -> None:
        nbytes = math.prod(shape) * FLOAT32_BYTES  # Python ints: the product cannot overflow
        if nbytes > Limit.TENSOR_BYTES:
            self.fail(key, f"{shape} would take {nbytes / 2**30:.3g} GiB as float32; the limit is {Limit.TENSOR_BYTES >> 30} GiB")


def check_limits(data: Any, where: str) -> None:
    """Depth and width limits, walked without recursion (so a deep manifest cannot crash this)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > Limit.DEPTH:
            raise AtomError(f"{where}: manifest is nested deeper than {Limit.DEPTH} levels")
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        if len(children) > Limit.ITEMS:
            raise AtomError(f"{where}: manifest has an object or list of {len(children)} items; the limit is {Limit.ITEMS}")
        stack.extend((child, depth + 1) for child in children)


def check_manifest(data: dict, where: str) -> None:
    """Raise AtomError naming the first key that is missing, mistyped or out of range.
    `check_limits` has passed."""
    c = _Checker(where)
    c.text(data, "", Key.BACKEND, BACKENDS)
    decode, dkey = c.record(data, "", Key.DECODE)
    for name in DECODE_INTS:
        c.integer(decode, dkey, name)
    vocab = decode[Key.VOCAB_SIZE]
    for name in TOKEN_IDS:
        c.integer(decode, dkey, name, 0, vocab - 1)
    _check_conventions(c, decode, dkey, vocab)
    if Key.CHAT in data:
        _check_chat(c, *c.record(data, "", Key.CHAT))
    if decode[Key.BEAM_WIDTH] > decode[Key.MAX_BATCH]:
        c.fail(f"{dkey}.{Key.BEAM_WIDTH}", f"({decode[Key.BEAM_WIDTH]}) exceeds {dkey}.{Key.MAX_BATCH} ({decode[Key.MAX_BATCH]})")
    clip, ckey = c.record(data, "", Key.CLIP)
    shape_value, skey = c.items(clip, ckey, Key.SHAPE)
    c.tensor_bytes(c.shape(shape_value, skey, symbolic=False), skey)
    tokenizers, tkey = c.record(data, "", Key.TOKENIZERS)
    for name in TokenizerName.ALL:
        _file_record(c, *c.record(tokenizers, tkey, name))
    c.integer(tokenizers[TokenizerName.MINILM], f"{tkey}.{TokenizerName.MINILM}", Key.MAX_SEQ_LENGTH)
    modules, mkey = c.record(data, "", Key.MODULES)
    for name in Module.ALL:
        _check_module(c, name, *c.record(modules, mkey, name))


def _check_conventions(c: _Checker, decode: dict, dkey: str, vocab: int) -> None:
    """The checkpoint's conventions (issue 23); optional, for manifests written before them."""
    if Key.ADD_BOS in decode and not isinstance(decode[Key.ADD_BOS], bool):
        c.fail(f"{dkey}.{Key.ADD_BOS}", f"must be a boolean, got {_kind(decode[Key.ADD_BOS])}")
    if Key.EOS_IDS in decode:
        ids, ikey = c.items(decode, dkey, Key.EOS_IDS)
        if len(ids) > Limit.EOS_IDS:
            c.fail(ikey, f"has {len(ids)} ids; the limit is {Limit.EOS_IDS}")
        for i, value in enumerate(ids):
            c.integer_value(value, f"{ikey}[{i}]", 0, vocab - 1)
    if Key.KV_CACHE_BYTES in decode:
        c.integer(decode, dkey, Key.KV_CACHE_BYTES, 1, 1 << 62)


def _check_chat(c: _Checker, chat: dict, key: str) -> None:
    c.text(chat, key, Key.CHAT_TEMPLATE, max_bytes=Limit.CHAT_BYTES)
    specials, skey = c.record(chat, key, Key.CHAT_SPECIAL_TOKENS)
    for name in specials:
        c.text(specials, skey, name, max_bytes=Limit.CHAT_BYTES)
    if Key.CHAT_PARTS not in chat:  # a template the C++ runner cannot compose: Python renders it
        return
    parts, pkey = c.record(chat, key, Key.CHAT_PARTS)
    for name in (Key.CHAT_DEFAULT_SYSTEM, Key.CHAT_GENERATION_PROMPT):
        c.text(parts, pkey, name, max_bytes=Limit.CHAT_BYTES)
    roles, rkey = c.record(parts, pkey, Key.CHAT_ROLES)
    for role in ROLES:
        record, role_key = c.record(roles, rkey, role)
        for name in (Key.CHAT_PREFIX, Key.CHAT_SUFFIX):
            c.text(record, role_key, name, max_bytes=Limit.CHAT_BYTES)


def _check_module(c: _Checker, name: str, module: dict, key: str) -> None:
    files, fkey = c.items(module, key, Key.FILES)
    for i, record in enumerate(files):
        if not isinstance(record, dict):
            c.fail(f"{fkey}[{i}]", f"must be an object, got {_kind(record)}")
        _file_record(c, record, f"{fkey}[{i}]")
    entries, ekey = c.record(module, key, Key.ENTRY_POINTS)
    for entry in ENTRY_POINTS_OF[name]:
        spec, skey = c.record(entries, ekey, entry)
        c.file_name(spec, skey)
        for side in (Key.INPUTS, Key.OUTPUTS):
            tensors, tkey = c.items(spec, skey, side)
            for i, tensor in enumerate(tensors):
                if not isinstance(tensor, dict):
                    c.fail(f"{tkey}[{i}]", f"must be an object, got {_kind(tensor)}")
                _tensor_spec(c, tensor, f"{tkey}[{i}]")
    if name == Module.DECODER:
        kv, kkey = c.record(module, key, Key.KV_CACHE)
        c.text(kv, kkey, Key.KV_STYLE, KVStyle.ALL)
        value, skey = c.items(kv, kkey, Key.SHAPE)
        c.tensor_bytes(c.shape(value, skey, symbolic=False), skey)
    if name == Module.MINILM:  # Session.embed splits texts by the batch axis's max
        first = entries[Entry.FORWARD][Key.INPUTS][0]
        if "0" not in first[Key.DYNAMIC]:
            c.fail(f"{ekey}.{Entry.FORWARD}.{Key.INPUTS}[0].{Key.DYNAMIC}", "has no batch axis \"0\"")


def _file_record(c: _Checker, record: dict, key: str) -> None:
    c.file_name(record, key)
    digest = c.text(record, key, Key.SHA256)
    if len(digest) != 64 or any(ch not in "0123456789abcdef" for ch in digest):
        c.fail(f"{key}.{Key.SHA256}", f"must be 64 lowercase hex digits, got {_short(digest)}")
    c.integer(record, key, Key.BYTES, 0, 1 << 62)


def _tensor_spec(c: _Checker, tensor: dict, key: str) -> None:
    c.text(tensor, key, Key.NAME)
    c.text(tensor, key, Key.DTYPE)
    value, skey = c.get(tensor, key, Key.SHAPE)
    c.shape(value, skey, symbolic=True)
    dynamic, dkey = c.record(tensor, key, Key.DYNAMIC)
    for axis, bounds in dynamic.items():
        akey = f"{dkey}.{axis}"
        if not axis.isdigit() or int(axis) >= len(value):
            c.fail(akey, f"is not an axis of {skey} (rank {len(value)})")
        if not isinstance(bounds, dict):
            c.fail(akey, f"must be an object, got {_kind(bounds)}")
        low = c.integer(bounds, akey, Key.MIN, 0)
        c.integer(bounds, akey, Key.MAX, max(low, 1))


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), f"{type(value).__name__} {_short(value)}"
    )


def _short(value: Any) -> str:
    """A value for a one-line message: repr escapes newlines and NULs; long ones are cut."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
