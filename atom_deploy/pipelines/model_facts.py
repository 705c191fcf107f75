"""What the pipelines read off an open Session (or, for identity, its manifest alone): the clip contract and the artifacts' identity.

Clip size, frame count and normalisation come from the manifest, never from defaults:
the tiny test model takes 6 x 32 x 32 clips, the paper's model 6 x 224 x 224.
"""

from __future__ import annotations

from atom_deploy.video.preprocess import ClipSpec
from atom_runner.errors import AtomError
from atom_runner.manifest import Manifest, sha256_file
from atom_runner.schema import MANIFEST_FILE, Key
from atom_runner.session import Session


def clip_spec(session: Session) -> ClipSpec:
    """ClipSpec from the manifest's clip contract: shape [1, 3, T, H, W], mean, std."""
    clip = session.manifest.data[Key.CLIP]
    batch, channels, frames, height, width = clip[Key.SHAPE]
    if (batch, channels) != (1, 3) or height != width:
        # The video layer centre-crops square frames; any other contract needs new preprocessing.
        raise AtomError(f"{session.manifest.root}: clip shape {clip[Key.SHAPE]} is not [1, 3, T, S, S]")
    return ClipSpec(num_frames=frames, size=height, mean=tuple(clip[Key.MEAN]), std=tuple(clip[Key.STD]))


def manifest_sha256(session: Session | Manifest) -> str:
    """The identity an index is bound to: the manifest names every artifact by its sha256."""
    manifest = session.manifest if isinstance(session, Session) else session
    return sha256_file(manifest.root / MANIFEST_FILE)


def artifacts_label(session: Session | Manifest) -> str:
    """A short human name for messages, e.g. 'model tiny, onnx, exported 2026-11-24T09:00:21Z'."""
    manifest = session.manifest if isinstance(session, Session) else session
    name = manifest.data.get(Key.MODEL, {}).get(Key.MODEL_NAME, "?")
    return f"model {name}, {manifest.backend}, exported {manifest.data.get(Key.CREATED, '?')}"
