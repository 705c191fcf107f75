"""Manifest key names, defined once: the exporter writes with them, every runner reads with them.

A manifest is JSON beside the artifacts. It says what each file is (sha256, bytes), how to
call each entry point (input/output names, dtypes, shapes, dynamic dims), how the module
was quantized, and the decode contract (decode_steps, context, special tokens).
"""

from __future__ import annotations

MANIFEST_FILE = "manifest.json"
FORMAT = "atom-deploy-manifest"
FORMAT_VERSION = 3  # 2: the in-place KV cache and its reorder_pos input; 3: its attend_pos input


class Key:
    """Top-level and nested manifest keys."""

    FORMAT = "format"
    FORMAT_VERSION = "format_version"
    KIT_VERSION = "kit_version"
    BACKEND = "backend"
    CREATED = "created"
    VERSIONS = "versions"
    MODEL = "model"
    MODEL_NAME = "name"
    MODEL_CONFIG = "config"
    MODEL_SOURCE = "source"
    MODEL_SPEC = "spec"
    SEED = "seed"
    # What the decoder is (DecoderRole), which decides how parity judges its quantized export.
    # Optional: manifests written before it are the kit's captioners.
    DECODER_ROLE = "decoder_role"
    DECODE = "decode"
    CLIP = "clip"
    TOKENIZERS = "tokenizers"
    MODULES = "modules"
    # decode contract
    DECODE_STEPS = "decode_steps"
    MAX_CONTEXT = "max_context"
    MAX_BATCH = "max_batch"
    BOS_ID = "bos_id"
    EOS_ID = "eos_id"
    PAD_ID = "pad_id"
    # The checkpoint's conventions (issue 23). Optional for manifests written before them:
    # absent add_bos means True and absent eos_ids means [eos_id], what runners did then.
    ADD_BOS = "add_bos"  # whether generate puts BOS before a text prompt (the tokenizer's own rule)
    EOS_IDS = "eos_ids"  # every id that ends a generation; eos_id is the first
    KV_CACHE_BYTES = "kv_cache_bytes"  # float32 K + V buffers of the static cache, all layers
    NUM_VISUAL_TOKENS = "num_visual_tokens"
    BEAM_WIDTH = "beam_width"
    VOCAB_SIZE = "vocab_size"
    DIM = "dim"
    # clip contract
    SHAPE = "shape"
    MEAN = "mean"
    STD = "std"
    # files
    FILE = "file"
    FILES = "files"
    SHA256 = "sha256"
    BYTES = "bytes"
    MAX_SEQ_LENGTH = "max_seq_length"
    # modules
    ENTRY_POINTS = "entry_points"
    INPUTS = "inputs"
    OUTPUTS = "outputs"
    NAME = "name"
    DTYPE = "dtype"
    DYNAMIC = "dynamic"  # {axis: {"name", "min", "max"}}
    MIN = "min"
    MAX = "max"
    QUANTIZATION = "quantization"
    KV_CACHE = "kv_cache"
    KV_STYLE = "style"
    EXPORT_SECONDS = "export_seconds"
    # chat (optional: only a checkpoint with a chat template has it)
    CHAT = "chat"
    CHAT_TEMPLATE = "template"  # the Jinja source, rendered by the Python runner
    CHAT_SPECIAL_TOKENS = "special_tokens"  # {"bos_token": ..., "eos_token": ...}: template variables
    CHAT_PARTS = "parts"  # the template precompiled for the C++ runner (absent if it does not decompose)
    CHAT_DEFAULT_SYSTEM = "default_system"  # put first when the first message is not a system one
    CHAT_ROLES = "roles"  # {role: {"prefix", "suffix"}} around each message's content
    CHAT_PREFIX = "prefix"
    CHAT_SUFFIX = "suffix"
    CHAT_GENERATION_PROMPT = "generation_prompt"


BACKENDS = ("executorch", "onnx")


class Module:
    """Module names: one artifact each."""

    VIDEO_ENCODER = "video_encoder"
    DECODER = "decoder"
    MINILM = "minilm"
    ALL = (VIDEO_ENCODER, DECODER, MINILM)


class Entry:
    """Entry-point (method) names."""

    FORWARD = "forward"
    TOKEN_EMBEDDING = "token_embedding"
    TEXT_DECODER = "text_decoder"


# The entry points each module must offer: what the runners call.
ENTRY_POINTS_OF = {
    Module.VIDEO_ENCODER: (Entry.FORWARD,),
    Module.DECODER: (Entry.TOKEN_EMBEDDING, Entry.TEXT_DECODER),
    Module.MINILM: (Entry.FORWARD,),
}


class DecoderRole:
    """What a model's decoder is, recorded at export under model.decoder_role.

    A captioner is the kit's own decoder (presets, the demo model, kit folders): its output is
    the caption, so a quantized export is held to eager's tokens running the same recipe. A
    language model is a checkpoint trained on text (HF or GGUF import): a quantized export is
    held to its next-token distributions against fp32 on real text (docs/export.md#parity)."""

    CAPTIONER = "captioner"
    LANGUAGE_MODEL = "language_model"
    ALL = (CAPTIONER, LANGUAGE_MODEL)


class KVStyle:
    """How the decoder's static KV cache crosses the graph boundary."""

    # The cache lives in per-layer buffers inside the program, written in place
    # (ExecuTorch): callers pass (embeds, input_pos, cache_index, reorder_pos, attend_pos).
    IN_PLACE = "in_place"
    # The cache is an explicit input and output: callers also pass k_cache/v_cache and
    # keep the returned ones (the eager reference).
    EXPLICIT_IO = "explicit_io"
    # The runner holds the cache (ONNX, which has no mutable state): callers pass
    # (embeds, input_pos, k_cache_0, v_cache_0, ..., one pair per layer, [B, Hkv, T, Dh]: the T <= S_max positions held so far)
    # and write the returned new positions' keys/values [L, B, Hkv, S, Dh] at input_pos.
    # Beam reorders happen in the runner, so there is no cache_index input.
    RUNNER_HELD = "runner_held"
    ALL = (IN_PLACE, EXPLICIT_IO, RUNNER_HELD)


class Tensor:
    """Entry-point tensor names shared by every backend."""

    CLIP = "clip"
    VISUAL_PREFIX = "visual_prefix"
    TOKENS = "tokens"
    EMBEDS = "embeds"
    INPUT_POS = "input_pos"
    CACHE_INDEX = "cache_index"
    REORDER_POS = "reorder_pos"
    ATTEND_POS = "attend_pos"
    K_CACHE = "k_cache"
    V_CACHE = "v_cache"
    LOGITS = "logits"
    K_CACHE_OUT = "k_cache_out"
    V_CACHE_OUT = "v_cache_out"
    K_NEW = "k_new"
    V_NEW = "v_new"
    INPUT_IDS = "input_ids"
    ATTENTION_MASK = "attention_mask"
    SENTENCE_EMBEDDING = "sentence_embedding"


class TokenizerName:
    DECODER = "decoder"
    MINILM = "minilm"
    ALL = (DECODER, MINILM)


TOKENIZER_FILES = {
    TokenizerName.DECODER: "decoder_tokenizer.json",
    TokenizerName.MINILM: "minilm_tokenizer.json",
}


class Limit:
    """Bounds on what a manifest may ask for. Far above any real export (the demo model's
    manifest is 11 KB, 8 levels deep, its largest tensor 50 MB); they exist so a hostile
    manifest gets a one-line error, not a crash or a 233 TiB allocation. Mirrored in the
    C++ runner's schema.h."""

    MANIFEST_BYTES = 1 << 20
    DEPTH = 32  # nesting of objects and arrays
    ITEMS = 4096  # entries of any one object or array
    NAME_CHARS = 255  # a file name or tensor name
    DIM = (1 << 31) - 1  # any size, id or count (an int32 in the runners)
    TENSOR_BYTES = 1 << 34  # one clip or one KV-cache buffer, as float32 (16 GiB)
    RANK = 8
    EOS_IDS = 64  # ids in decode.eos_ids
    CHAT_BYTES = 1 << 16  # one chat string as UTF-8: the template, a prefix, a special token
