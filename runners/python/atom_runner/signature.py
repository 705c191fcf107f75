"""Do the loaded modules fit together and fit their manifest? Checked once, when a Session is built.

Two ways an encoder and a decoder from different models meet, each caught here rather
than as a reshape error in the middle of a caption:
- a manifest whose declared shapes disagree (encoder output dim vs decoder input dim);
- a file swapped in with a re-computed hash, whose real shapes differ from the manifest's.
"""

from __future__ import annotations

from atom_runner.errors import AtomError
from atom_runner.manifest import Manifest
from atom_runner.schema import Entry, Key, Module

Shape = tuple  # sizes; None (or a name, in a manifest) for a dynamic axis


def check_links(manifest: Manifest) -> None:
    """The manifest's own shapes agree: encoder output [1, N_vis, D] feeds the decoder's D."""
    decode = manifest.decode
    prefix = _declared(manifest, Module.VIDEO_ENCODER, Entry.FORWARD, Key.OUTPUTS)[0]
    embeds = _declared(manifest, Module.DECODER, Entry.TEXT_DECODER, Key.INPUTS)[0]
    links = [
        ("video_encoder output dim", prefix[-1], "decode.dim", decode[Key.DIM]),
        ("decoder text_decoder input dim", embeds[-1], "decode.dim", decode[Key.DIM]),
        ("video_encoder output tokens", prefix[-2] if len(prefix) > 1 else None, "decode.num_visual_tokens",
         decode[Key.NUM_VISUAL_TOKENS]),
    ]
    for what, got, key, want in links:
        if got != want:
            raise AtomError(f"{manifest.root}: {what} is {got}, but {key} is {want}: encoder and decoder from different models?")


def check_loaded(manifest: Manifest, name: str, actual: dict[str, tuple[list[Shape], list[Shape]]]) -> None:
    """Every static size the manifest declares matches the loaded file's ({entry: (inputs, outputs)})."""
    for entry, (inputs, outputs) in actual.items():
        for side, shapes in ((Key.INPUTS, inputs), (Key.OUTPUTS, outputs)):
            specs = manifest.module(name)[Key.ENTRY_POINTS][entry][side]
            for spec, shape in zip(specs, shapes):
                declared = spec[Key.SHAPE]
                if len(declared) != len(shape) or any(
                    isinstance(d, int) and a is not None and d != a for d, a in zip(declared, shape)
                ):
                    raise AtomError(
                        f"{manifest.root}: {name} {entry} {side[:-1]} {spec[Key.NAME]!r} has shape "
                        f"{list(shape)} in its file, the manifest says {declared}: file from another model?"
                    )


def _declared(manifest: Manifest, name: str, entry: str, side: str) -> list[list]:
    return [spec[Key.SHAPE] for spec in manifest.module(name)[Key.ENTRY_POINTS][entry][side]]


def check_modules(manifest: Manifest, modules: dict[str, object]) -> None:
    """check_loaded for each runtime module; one run elsewhere (None: the encoder worker
    process) or without sizes to report (an eager module) is skipped."""
    for name, module in modules.items():
        if module is not None and hasattr(module, "shapes"):
            entries = manifest.module(name)[Key.ENTRY_POINTS]
            check_loaded(manifest, name, {entry: module.shapes(entry) for entry in entries})
