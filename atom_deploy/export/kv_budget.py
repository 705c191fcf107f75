"""The decoder's static KV cache in bytes, and the longest context a memory budget allows.

The cache is allocated whole at load (gpt-fast style static buffers, docs/export.md):
K and V, float32, [layers, max_batch, kv_heads, max_context, head_dim]. On ONNX it also
crosses the graph boundary every step, so its size is a step cost there, not only memory.
"""

from __future__ import annotations

from atom_deploy.config import DecoderConfig

FLOAT32_BYTES = 4
# The default budget for an imported checkpoint's cache: a phone-sized share of memory.
DEFAULT_KV_BUDGET_MB = 256
CONTEXT_ALIGN = 64  # a budget-capped context is rounded down to this


def kv_bytes_per_position(decoder: DecoderConfig) -> int:
    return 2 * decoder.layers * decoder.max_batch * decoder.kv_heads * decoder.head_dim * FLOAT32_BYTES


def kv_cache_bytes(decoder: DecoderConfig) -> int:
    return kv_bytes_per_position(decoder) * decoder.max_context


def budget_context(decoder: DecoderConfig, max_positions: int, budget_mb: int = DEFAULT_KV_BUDGET_MB) -> int:
    """The checkpoint's own context (max_position_embeddings), cut to what `budget_mb` holds."""
    fits = budget_mb * 2**20 // kv_bytes_per_position(decoder)
    if fits >= max_positions:
        return max_positions
    return max(CONTEXT_ALIGN, fits // CONTEXT_ALIGN * CONTEXT_ALIGN)
