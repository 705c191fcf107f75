"""Session: load the three modules once and serve every task from them.

    with Session("artifacts/onnx") as s:
        s.caption(clip)                      # encoder + decoder
        s.embed(["a red car", "a dog"])      # MiniLM
        s.generate("summary: ...")           # the same decoder, text-only

Thread-safe: each module runs one call at a time (an ExecuTorch method owns its
activation memory and the decoder owns one KV cache), so concurrent requests queue per
module and never share a cache. Overlap of encoding and decoding comes from
`caption_stream`, which holds no lock while it waits for its caller: a paused stream
never blocks another thread, and its caller may use the session inside the loop.
"""

from __future__ import annotations

import os
import queue
import threading
import warnings
from collections import deque
from pathlib import Path
from typing import Collection, Iterable, Iterator

import numpy as np

from atom_runner.decoding import DecoderStepper, beam_search_groups, greedy_rows, prefill, prompt_room, trim_after_eos
from atom_runner.encoders import InlineEncoder, ProcessEncoder, ThreadEncoder
from atom_runner.errors import AtomError
from atom_runner.manifest import open_artifacts
from atom_runner.prompts import TextConventions, fit_prompt
from atom_runner.runtimes import LoadedModule, import_runtime, load_module, set_executorch_threads
from atom_runner.schema import Entry, Key, KVStyle, Module, TokenizerName
from atom_runner.signature import check_links, check_modules
from atom_runner.stats import Stats
from atom_runner.text import DecoderTokenizer, MiniLMTokenizer, check_text

OVERLAP_MODES = ("auto", "off", "thread", "process")


class PromptTruncatedWarning(UserWarning):
    """A prompt was cut to fit the decoder's context."""


class Session:
    def __init__(
        self, artifact_dir: str | Path, backend: str | None = None, overlap: str = "auto",
        threads: int | None = None, modules: Collection[str] = Module.ALL, decoder_lanes: int | None = None,
    ):
        """modules: the modules to load (default all three); a task that needs one left out is an
        error. Benchmarks use this to load each stage's model on its own.

        decoder_lanes: decodes that may run at once on the loaded decoder, each with a KV cache
        of its own (None: `DEFAULT_HELD_LANES` where the runner holds the cache, else 1). Only
        a runner-held cache (ONNX) allows more than one: an in-place cache lives inside the
        program, which then serves one decode at a time."""
        if overlap not in OVERLAP_MODES:
            raise AtomError(f"unknown overlap mode {overlap!r}; valid: {list(OVERLAP_MODES)}")
        if unknown := sorted(set(modules) - set(Module.ALL)):
            raise AtomError(f"unknown modules {unknown}; valid: {list(Module.ALL)}")
        self.manifest = open_artifacts(artifact_dir, backend)
        self.backend = self.manifest.backend
        self.stats = Stats()
        decode = self.manifest.decode
        self.decode_steps: int = decode[Key.DECODE_STEPS]
        self.bos_id, self.eos_id = decode[Key.BOS_ID], decode[Key.EOS_ID]
        self.max_context: int = decode[Key.MAX_CONTEXT]
        self.max_batch: int = decode[Key.MAX_BATCH]
        self.conventions = TextConventions.from_manifest(self.manifest.data)  # BOS rule, EOS ids, chat
        self.clip_shape = tuple(self.manifest.data[Key.CLIP][Key.SHAPE])
        # Verify every file before loading anything: nothing is left half-loaded.
        files = {name: self.manifest.entry_files(name) for name in Module.ALL if name in modules}
        tokenizers = self.manifest.data[Key.TOKENIZERS]
        tokenizer_files = {name: self.manifest.tokenizer_file(name) for name in TokenizerName.ALL if name in modules}
        check_links(self.manifest)
        import_runtime(self.backend)
        if threads and self.backend == "executorch":
            set_executorch_threads(threads)
        encoder_bytes = sum(p.stat().st_size for p in files.get(Module.VIDEO_ENCODER, {}).values())
        self.overlap = _resolve_overlap(overlap, self.backend, encoder_bytes)
        self.encoder = self._load_encoder(files, threads or 0)
        try:  # the encoder may be a worker process with shared memory: a failure below must not leak it
            self.decoder = self._load(Module.DECODER, files, threads or 0)
            self.minilm = self._load(Module.MINILM, files, threads or 0)
            loaded = {Module.VIDEO_ENCODER: getattr(self.encoder, "module", None), Module.DECODER: self.decoder,
                      Module.MINILM: self.minilm}
            check_modules(self.manifest, {name: module for name, module in loaded.items() if name in files})
            self.tokenizer = NotLoaded(Module.DECODER)  # each tokenizer reads its module's text: loaded with it
            if TokenizerName.DECODER in tokenizer_files:
                self.tokenizer = DecoderTokenizer(tokenizer_files[TokenizerName.DECODER], self.conventions.special_ids)
            self.minilm_tokenizer = NotLoaded(Module.MINILM)
            if TokenizerName.MINILM in tokenizer_files:
                self.minilm_tokenizer = MiniLMTokenizer(
                    tokenizer_files[TokenizerName.MINILM], tokenizers[TokenizerName.MINILM][Key.MAX_SEQ_LENGTH]
                )
            self._kv_style: str | None = None  # the manifest's, until replace_modules brings modules of another
            self._lanes_asked = decoder_lanes
            self._open_lanes()
            self._minilm_max_batch = _dynamic_max(self.manifest.module(Module.MINILM), 0)
        except BaseException:
            self.encoder.close()
            raise
        # The encoder serializes its own calls (encoders.py), the decoder's lanes are handed out
        # one per decode (`_decode`), and this guards MiniLM.
        self._minilm_lock = threading.Lock()

    # --- tasks ---------------------------------------------------------------------

    def encode(self, clip: np.ndarray) -> np.ndarray:
        """clip [1,3,T,H,W] float32 -> visual prefix [1, N_vis, D] in decoder space."""
        clip = self._check_clip(clip)
        return self.encoder.result(self.encoder.submit(clip))

    def caption(
        self, clips: np.ndarray | list[np.ndarray], beam: int = 4, steps: int | None = None
    ) -> str | list[str]:
        """steps: decode steps (default: the manifest's fixed count, the paper's 23). A list
        decodes `clips_per_batch(beam)` clips at a time, as `caption_stream` does."""
        if isinstance(clips, list):
            return list(self.caption_stream(clips, beam=beam, steps=steps))
        steps = self._checked_decode(beam, steps)  # a bad beam or count fails before the encoder runs
        return self.caption_prefixes(self.encode(clips), beam, steps)[0]

    def caption_stream(
        self, clips: Iterable[np.ndarray], beam: int = 4, steps: int | None = None, batch: int | None = None
    ) -> Iterator[str]:
        """Captions in order. Clips decode in batches of `batch` (default and most:
        `clips_per_batch(beam)`), each decode step reading the weights once for the whole
        batch, while the encoder works on the next batch's clips. batch=1 gives the first
        caption soonest.

        Closing the stream early (break, an exception) discards the clips still at the
        encoder, so the next call finds the session as it was."""
        steps = self._checked_decode(beam, steps)
        most = self.clips_per_batch(beam)
        batch = most if batch is None else batch
        if not 1 <= batch <= most:
            raise AtomError(f"batch must be between 1 and {most} clips at beam {beam}, got {batch}")
        waiting: deque = deque()  # encoder tickets submitted, not yet collected
        try:
            for clip in clips:
                waiting.append(self.encoder.submit(self._check_clip(clip)))
                if len(waiting) >= 2 * batch:  # this batch encoded or encoding, the next one queued behind it
                    yield from self._caption_tickets([waiting.popleft() for _ in range(batch)], beam, steps)
            while waiting:
                yield from self._caption_tickets([waiting.popleft() for _ in range(min(batch, len(waiting)))], beam, steps)
        finally:
            for ticket in waiting:
                self.encoder.discard(ticket)

    def caption_prefixes(self, prefixes: np.ndarray, beam: int = 4, steps: int | None = None) -> list[str]:
        """Captions of visual prefixes [R, N, D] (`encode`'s, concatenated) in one decode:
        for callers that encode elsewhere, such as a server encoding while it decodes."""
        rows = self.decode_batch([], prefixes, beam, steps)
        return [self.tokenizer.decode(trim_after_eos(tokens, self.eos_id)) for tokens in rows]

    def clips_per_batch(self, beam: int) -> int:
        """How many clips decode together: each takes `beam` of the exported KV-cache rows."""
        return clips_per_batch(self.max_batch, beam)

    def generate(
        self, prompt: str | bytes, steps: int | None = None, prefix: np.ndarray | None = None, beam: int = 1,
        truncate: bool = False,
    ) -> str:
        """Text-only mode on the same decoder (scripts, summaries, answers). BOS goes first
        only where the checkpoint's tokenizer adds one. A prompt longer than the context is
        an error, or with `truncate` keeps its end (PromptTruncatedWarning)."""
        prompt = check_text(prompt, "prompt")
        return self._generate(self.tokenizer.encode(prompt), prefix, beam, steps, self.conventions.add_bos, truncate)

    def generate_batch(self, prompts: list[str], steps: int | None = None, beam: int = 1, truncate: bool = False) -> list[str]:
        """`generate` for several prompts in one decode, each its own row (its own beam group
        at beam > 1). They must hold the same number of tokens once fitted (`prompt_ids`):
        the decoder takes one position vector for every row. Each text equals generating it
        alone, up to the kernels' rounding at another batch size."""
        steps = self._checked_decode(beam, steps)
        if not prompts:
            raise AtomError("generate_batch got no prompts")
        if len(prompts) * beam > self.max_batch:
            raise AtomError(f"{len(prompts)} prompts at beam {beam} need {len(prompts) * beam} KV-cache rows; "
                            f"the export has {self.max_batch} (export --max-batch)")
        bos = self.conventions.add_bos
        rows = [self._fitted(self.tokenizer.encode(check_text(p, f"prompt {i}")), None, steps, bos, truncate)
                for i, p in enumerate(prompts)]
        if len({len(r) for r in rows}) != 1:
            raise AtomError(f"generate_batch needs prompts of one token length, got lengths {[len(r) for r in rows]}")
        tokens = self._decode(np.array(rows, dtype=np.int64), None, beam, steps, bos)
        return [self.tokenizer.decode(self.conventions.trim(t)) for t in tokens]

    def prompt_ids(self, prompt: str | bytes, steps: int | None = None, truncate: bool = False) -> list[int]:
        """The prompt's ids as `generate` prefills them after any BOS: fitted to the context
        beside `steps` (or an AtomError when it does not fit and `truncate` is off)."""
        steps = self.decode_steps if steps is None else steps
        ids = self.tokenizer.encode(check_text(prompt, "prompt"))
        room = prompt_room(self.max_context, 0, steps, self.conventions.add_bos)
        return fit_prompt(ids, room, truncate, self.max_context)

    def chat(self, messages: list[dict[str, str]], steps: int | None = None, beam: int = 1, truncate: bool = False) -> str:
        """The assistant's reply to `messages` ([{"role", "content"}, ...]), formatted by the
        checkpoint's own chat template, which carries any BOS itself."""
        return self._generate(self.chat_ids(messages), None, beam, steps, False, truncate)

    def chat_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """The prompt ids of `messages`: what transformers' apply_chat_template(tokenize=True,
        add_generation_prompt=True) gives for the same template."""
        return self.tokenizer.encode(self.conventions.chat_text(messages))

    def embed(self, texts: list[str]) -> np.ndarray:
        """Sentence embeddings [n, 384], unit length (MiniLM mean pooling + L2 in the graph)."""
        if isinstance(texts, (str, bytes)) or not isinstance(texts, (list, tuple)):
            raise AtomError("embed expects a list of texts")
        if not texts:
            raise AtomError("embed got an empty list of texts")
        texts = [check_text(t, f"text {i}") for i, t in enumerate(texts)]
        out = []
        with self._minilm_lock:
            for start in range(0, len(texts), self._minilm_max_batch):
                ids, mask = self.minilm_tokenizer.batch(texts[start : start + self._minilm_max_batch])
                out.append(self.minilm.run(Entry.FORWARD, [ids, mask])[0])
        return np.concatenate(out)

    def decode_ids(
        self, prompt_ids: list[int], prefix: np.ndarray | None = None, beam: int = 1, steps: int | None = None,
        bos: bool = True,
    ) -> list[int]:
        """The decode loop on token ids: BOS (unless `bos` is False) + prefix + prompt, then exactly `steps` greedy
        (beam 1) or beam-search selections. Untrimmed: EOS and what follows it stay."""
        return self.decode_batch(prompt_ids, prefix, beam, steps, bos)[0]

    def decode_batch(
        self, prompt_ids: list[int], prefixes: np.ndarray | None = None, beam: int = 1, steps: int | None = None,
        bos: bool = True,
    ) -> list[list[int]]:
        """`decode_ids` for several visual prefixes [R, N, D] at once (R x beam cache rows),
        all after the same prompt. Row r's tokens equal those of decoding it alone, up to
        the kernels' rounding: each row is its own batch row and its own beam group."""
        steps = self._checked_decode(beam, steps)
        rows = 1 if prefixes is None else int(np.asarray(prefixes).shape[0])
        if rows * beam > self.max_batch:
            raise AtomError(f"{rows} prompts at beam {beam} need {rows * beam} KV-cache rows; "
                            f"the export has {self.max_batch} (export --max-batch)")
        prefix_len = 0 if prefixes is None else int(np.asarray(prefixes).shape[1])
        room = prompt_room(self.max_context, prefix_len, steps, bos)
        if len(prompt_ids) > room:
            warnings.warn(
                f"prompt truncated from {len(prompt_ids)} to {room} tokens to fit the context of {self.max_context}",
                PromptTruncatedWarning, stacklevel=3,
            )
            prompt_ids = prompt_ids[:room]
        return self._decode(prompt_ids, prefixes, beam, steps, bos)

    def new_stepper(self) -> DecoderStepper:
        """A stepper on this session's decoder, for callers that drive the decode loop
        themselves (parity, tests of the loop's rules). Where the runner holds the KV cache it
        has a cache of its own; an in-place cache is the program's, shared by every stepper,
        so on ExecuTorch drive one at a time, and not beside the session's own decodes."""
        kv = self.manifest.module(Module.DECODER)[Key.KV_CACHE]
        return DecoderStepper(self.decoder, self._kv_style or kv[Key.KV_STYLE], kv[Key.SHAPE])

    def replace_modules(self, encoder: LoadedModule, decoder: LoadedModule, minilm: LoadedModule, kv_style: str, backend: str) -> None:
        """Serve the same tasks, tokenizers and decode settings with modules loaded elsewhere
        (the eager PyTorch reference of eval and benchmarks). The encoder runs inline."""
        self.encoder.close()
        self.encoder = InlineEncoder(encoder)
        self.decoder, self.minilm, self.backend = decoder, minilm, backend
        self._kv_style = kv_style
        self._open_lanes()

    @property
    def decoder_lanes(self) -> int:
        """Decodes that can run at once (each holds a lane: a stepper with its own KV cache)."""
        return self._lane_count

    def _open_lanes(self) -> None:
        style = self._kv_style or self.manifest.module(Module.DECODER)[Key.KV_CACHE][Key.KV_STYLE]
        self._lane_count = decoder_lanes_for(style, self._lanes_asked)
        # A stepper allocates its cache on first use: an idle lane costs no memory.
        self._lanes: queue.SimpleQueue[DecoderStepper] = queue.SimpleQueue()
        for _ in range(self._lane_count):
            self._lanes.put(self.new_stepper())

    def close(self) -> None:
        """Stop the encoder worker, if any. Safe to call again."""
        self.encoder.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- pieces ----------------------------------------------------------------------

    def _checked_decode(self, beam: int, steps: int | None) -> int:
        """The decode steps to run (None: the manifest's); a bad beam or count is an error, 0 included."""
        steps = self.decode_steps if steps is None else steps
        clips_per_batch(self.max_batch, beam)
        if steps < 1:
            raise AtomError(f"steps must be at least 1, got {steps}")
        return steps

    def _caption_tickets(self, tickets: list, beam: int, steps: int) -> list[str]:
        prefixes = []
        try:
            for ticket in tickets:
                prefixes.append(self.encoder.result(ticket))
        except BaseException:  # the failed ticket is collected; the rest of the batch must not linger
            for ticket in tickets[len(prefixes) + 1 :]:
                self.encoder.discard(ticket)
            raise
        return self.caption_prefixes(np.concatenate(prefixes), beam, steps)

    def _generate(self, ids: list[int], prefix: np.ndarray | None, beam: int, steps: int | None, bos: bool, truncate: bool) -> str:
        steps = self._checked_decode(beam, steps)
        fitted = self._fitted(ids, prefix, steps, bos, truncate)
        tokens = self.decode_ids(fitted, prefix, beam, steps, bos=bos)
        return self.tokenizer.decode(self.conventions.trim(tokens))

    def _fitted(self, ids: list[int], prefix: np.ndarray | None, steps: int, bos: bool, truncate: bool) -> list[int]:
        prefix_len = 0 if prefix is None else int(np.asarray(prefix).shape[1])
        room = prompt_room(self.max_context, prefix_len, steps, bos)
        fitted = fit_prompt(ids, room, truncate, self.max_context)
        if len(fitted) < len(ids):
            warnings.warn(f"prompt truncated from {len(ids)} to its last {room} tokens to fit the context of "
                          f"{self.max_context}", PromptTruncatedWarning, stacklevel=4)
        if not (fitted or bos or prefix is not None):
            raise AtomError("the prompt is empty and this checkpoint adds no BOS: there is nothing to continue")
        return fitted

    def _decode(self, prompt: list[int] | np.ndarray, prefixes: np.ndarray | None, beam: int, steps: int,
                bos: bool) -> list[list[int]]:
        """The decode loop on a free lane (waiting for one if all are busy); prompt: one for
        every row, or [R, L] one per row."""
        stepper = self._lanes.get()
        try:
            logits, pos = prefill(stepper, self.bos_id if bos else None, prompt, prefixes)
            if beam == 1:
                return greedy_rows(stepper, logits, pos, steps)
            return [result.tokens for result in beam_search_groups(stepper, logits, pos, steps, self.eos_id, beam)]
        finally:
            self._lanes.put(stepper)

    def _check_clip(self, clip: np.ndarray) -> np.ndarray:
        if not isinstance(clip, np.ndarray):
            raise AtomError(f"clip must be a numpy array, got {type(clip).__name__}")
        if clip.dtype != np.float32:
            raise AtomError(f"clip has dtype {clip.dtype}, expected float32")
        if tuple(clip.shape) != self.clip_shape:
            raise AtomError(f"clip has shape {tuple(clip.shape)}, expected {self.clip_shape}")
        if not np.isfinite(clip).all():
            raise AtomError("clip contains NaN or infinite values")
        return np.ascontiguousarray(clip)

    def _load(self, name: str, files: dict[str, dict[str, Path]], threads: int):
        if name not in files:
            return NotLoaded(name)
        module = load_module(self.backend, files[name], threads)
        self.stats.record_load(name)
        return module

    def _load_encoder(self, files: dict[str, dict[str, Path]], threads: int):
        if Module.VIDEO_ENCODER in files and self.overlap == "process":
            spec = self.manifest.module(Module.VIDEO_ENCODER)[Key.ENTRY_POINTS][Entry.FORWARD]
            prefix_shape = spec[Key.OUTPUTS][0][Key.SHAPE]
            # Two batches in flight: the one the decoder waits for and the next, encoding behind it.
            encoder = ProcessEncoder(self.backend, files[Module.VIDEO_ENCODER][Entry.FORWARD], list(self.clip_shape),
                                     prefix_shape, threads or 1, slots=2 * self.max_batch)
            self.stats.record_load(Module.VIDEO_ENCODER)
            self.stats.worker_start_seconds = encoder.start_seconds
            return encoder
        module = self._load(Module.VIDEO_ENCODER, files, threads)
        return ThreadEncoder(module) if self.overlap == "thread" else InlineEncoder(module)


class NotLoaded:
    """In place of a module, or its tokenizer, that the session was opened without: any use
    (run, encode, decode, ...) is a one-line error."""

    def __init__(self, name: str):
        self.name = name

    def __getattr__(self, attr: str):
        if attr.startswith("__"):  # copy, pickle and friends probe for these
            raise AttributeError(attr)
        raise AtomError(f"this session was opened without the {self.name} module (Session modules=)")


# Lanes where the runner holds the KV cache. The demo decoder's step is mostly per-operator
# overhead on one core, so a second decode beside it uses the other: on 2 cores, two lanes
# decoded 4-clip beam-4 batches 1.4-1.6x as fast as one (ONNX int8, in one process).
DEFAULT_HELD_LANES = 2


def decoder_lanes_for(kv_style: str, asked: int | None = None) -> int:
    """The decoder lanes a Session opens for a KV style (asked: None for the default)."""
    if asked is not None and asked < 1:
        raise AtomError(f"decoder_lanes must be at least 1, got {asked}")
    if kv_style != KVStyle.RUNNER_HELD and (asked or 1) > 1:
        raise AtomError(f"decoder_lanes {asked} needs a decoder whose KV cache the runner holds (ONNX exports); "
                        f"this one keeps its cache inside the program ({kv_style}), so it decodes one request at a time")
    return (asked or DEFAULT_HELD_LANES) if kv_style == KVStyle.RUNNER_HELD else 1


# ExecuTorch's encoder worker process costs seconds to start (Python, runtime import,
# module load: 4 s for the demo model on a 2-core x86). It pays back only for an encoder
# slow enough to hide much behind decoding; file size stands in for its compute. The
# demo encoder (int8, ~3 MB) encodes a clip in ~0.1 s: overlap would save less than the
# start costs. A CLIP-ViT-B encoder (~90 MB int8) takes seconds per clip.
PROCESS_OVERLAP_MIN_ENCODER_BYTES = 32 * 1024 * 1024


# Both runtimes already spread each stage over every core; with fewer than this many, an
# encoder beside the decoder only competes for them. Measured on 2 cores, mplug2plus shapes:
# an ONNX Runtime encoder thread made the caption stage 1.14x its serial time (1.25x on the
# demo model); an ExecuTorch encoder process made it 1.26x with batched decoding, and its
# start added 3.6 s of loading (docs/measurements.md).
OVERLAP_MIN_CORES = 4


def clips_per_batch(max_batch: int, beam: int) -> int:
    """Clips that share one decode pass on an export with `max_batch` KV-cache rows (the
    manifest's): each takes `beam` rows. A beam the rows cannot hold is an error."""
    if beam < 1 or beam > max_batch:
        raise AtomError(f"beam must be between 1 and {max_batch} (the exported KV-cache batch), got {beam}")
    return max_batch // beam


def _resolve_overlap(mode: str, backend: str, encoder_bytes: int, cores: int | None = None) -> str:
    if mode != "auto":
        return mode
    if cores is None:  # the cores this process may use (a container's cpuset, not the host's count)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cores < OVERLAP_MIN_CORES:
        return "off"
    # ONNX Runtime releases the GIL, so a thread overlaps; ExecuTorch's bindings do not.
    if backend == "onnx":
        return "thread"
    return "process" if encoder_bytes >= PROCESS_OVERLAP_MIN_ENCODER_BYTES else "off"


def _dynamic_max(module: dict, axis: int) -> int:
    spec = module[Key.ENTRY_POINTS][Entry.FORWARD][Key.INPUTS][0]
    return int(spec[Key.DYNAMIC][str(axis)][Key.MAX])
