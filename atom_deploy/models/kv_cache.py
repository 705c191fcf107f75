"""Where a decoder layer's keys and values live between steps.

Every attention layer calls `cache.attend(q, k, v, bias)` with the step's queries
[B, H, S, Dh] and new positions' keys/values [B, Hkv, S, Dh]; the cache decides where
the keys it attends over live, and models/attention.py does the arithmetic. Four homes:

- `NoCache`: attend over the new positions only (teacher-forced training).
- `ExplicitCache`: the cache is a tensor that goes in and out (the eager reference).
- `InPlaceCache`: the cache is a mutable buffer written in place (ExecuTorch). The write
  is an `index_put_` on the buffer, which ExecuTorch's re-inplace pass keeps in place, so
  a step writes S positions instead of copying the cache; the attention gathers the
  positions written so far of the first B rows, so its cost follows the context, not
  S_max. Standard ops only: the .pte needs no custom kernel library on the device.
- `HeldCache`: the runner holds the cache and passes each layer's keys/values in; the
  graph reads them, attends over them and the new positions apart, and hands back only
  the new positions for the runner to write (ONNX, which has no mutable state).
"""

from __future__ import annotations

import torch
from torch import Tensor

from atom_deploy.models.attention import grouped_attention, split_attention


class NoCache:
    def attend(self, input_pos: Tensor, q: Tensor, k: Tensor, v: Tensor, bias: Tensor) -> Tensor:
        return grouped_attention(q, k, v, bias)


class ExplicitCache:
    """Functional: `update` returns the written cache, and `k`/`v` hold it afterwards."""

    def __init__(self, k: Tensor, v: Tensor):
        self.k, self.v = k, v  # [B, Hkv, S_max, Dh]

    def attend(self, input_pos: Tensor, q: Tensor, k: Tensor, v: Tensor, bias: Tensor) -> Tensor:
        self.k = self.k.index_copy(2, input_pos, k)
        self.v = self.v.index_copy(2, input_pos, v)
        return grouped_attention(q, self.k, self.v, bias)


class InPlaceCache:
    """Rows 0..B-1 of two buffers written in place.

    Each buffer is [max_batch * Hkv * S_max, Dh], laid out as [max_batch, Hkv, S_max, Dh]:
    row r's head h at position p is slot (r * Hkv + h) * S_max + p. ExecuTorch's in-place
    index_put takes exactly one 1-D index, and with slots flattened one index can name any
    rows at any positions. `write` are the step's write slots and `read` the slots of the
    T positions it attends over (`slot_index` of attend_pos), both computed once for every
    layer; `bias` [rep * S, T] masks the read positions a query may not see. Reading T
    positions instead of all S_max makes the attention's gather and matmuls follow the
    context: a slice of the first B rows copied S_max positions a layer and side.
    """

    def __init__(self, k_buffer: Tensor, v_buffer: Tensor, write: Tensor, read: Tensor, bias: Tensor):
        self.k_buffer, self.v_buffer, self.write, self.read, self.bias = k_buffer, v_buffer, write, read, bias

    def attend(self, input_pos: Tensor, q: Tensor, k: Tensor, v: Tensor, bias: Tensor) -> Tensor:
        write_slots(self.k_buffer, self.write, k)
        write_slots(self.v_buffer, self.write, v)
        B, kv_heads, _, head_dim = k.shape
        keys = self.k_buffer.index_select(0, self.read).view(B, kv_heads, -1, head_dim)
        values = self.v_buffer.index_select(0, self.read).view(B, kv_heads, -1, head_dim)
        return grouped_attention(q, keys, values, self.bias)


class HeldCache:
    """One layer's keys/values [B, Hkv, T, Dh] as the runner passes them in (T: the context so far), read only.

    Positions from the step's first one on are not yet written (or hold an older
    request's): `past_bias` [1, T] blocks them, and the step's own positions are
    attended from `k`/`v` under a causal `new_bias` [rep * S, S]. `new_k`/`new_v` keep
    them for the graph to return; the runner writes them at input_pos.
    """

    def __init__(self, k: Tensor, v: Tensor, past_bias: Tensor, new_bias: Tensor):
        self.k, self.v, self.past_bias, self.new_bias = k, v, past_bias, new_bias
        self.new_k: Tensor | None = None
        self.new_v: Tensor | None = None

    def attend(self, input_pos: Tensor, q: Tensor, k: Tensor, v: Tensor, bias: Tensor) -> Tensor:
        self.new_k, self.new_v = k, v
        return split_attention(q, self.k, self.v, self.past_bias, k, v, self.new_bias)


def buffer_shape(max_batch: int, kv_heads: int, max_context: int, head_dim: int) -> tuple[int, int]:
    return (max_batch * kv_heads * max_context, head_dim)


def slot_index(rows: Tensor, positions: Tensor, kv_heads: int, max_context: int) -> Tensor:
    # [B] rows x Hkv heads x [S] positions -> [B * Hkv * S] flat slots, row-major
    heads = torch.arange(kv_heads)
    row_heads = rows[:, None] * kv_heads + heads[None, :]  # [B, Hkv]
    return (row_heads[:, :, None] * max_context + positions[None, None, :]).reshape(-1)


def write_slots(buffer: Tensor, slots: Tensor, values: Tensor) -> None:
    # values [B, Hkv, S, Dh] into the slots of rows x heads x positions (as slot_index orders them)
    buffer.index_put_((slots,), values.reshape(-1, values.shape[-1]))


def copy_rows(buffer: Tensor, from_slots: Tensor, to_slots: Tensor) -> None:
    """The slots `to_slots` take the keys at `from_slots`: a beam reorder (row rows[b] takes
    row parents[b]'s positions, `slot_index` of each) that moves only the positions where
    the rows can differ."""
    buffer.index_put_((to_slots,), buffer.index_select(0, from_slots))
