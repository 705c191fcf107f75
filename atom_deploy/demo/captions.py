"""Captions that say only what the renderer draws.

`canonical_caption` is the training target: one fixed wording per scene, short enough
for the decoder's caption budget. `captions` gives varied reference captions for
evaluation: synonyms, reordered clauses, optional background and pan. Every phrasing
table lists the canonical word first; the caption parser reads the same tables.
Omitting a detail is allowed (still true); adding one that is not drawn never is.
"""

from __future__ import annotations

import numpy as np

from atom_deploy.demo.scene import Background, Scene, SceneObject
from atom_deploy.demo.vocab import HORIZONTAL_MOTIONS

KIND_WORDS: dict[str, tuple[str, ...]] = {
    "square": ("square", "block", "box"),
    "circle": ("circle", "ball", "disc"),
    "triangle": ("triangle",),
    "star": ("star",),
    "cross": ("cross", "plus sign"),
    "ring": ("ring", "hoop"),
    "bar": ("bar", "stick", "rod"),
}
SIZE_WORDS: dict[str, tuple[str, ...]] = {
    "small": ("small", "little"),
    "medium": ("medium", "medium-sized"),  # canonical captions leave "medium" unsaid
    "large": ("large", "big"),
}
MOTION_WORDS: dict[str, tuple[str, ...]] = {
    "moves left": ("moves left", "slides to the left", "drifts left", "travels to the left"),
    "moves right": ("moves right", "slides to the right", "drifts right", "travels to the right"),
    "moves up": ("moves up", "rises", "drifts upward", "floats up"),
    "moves down": ("moves down", "sinks", "drifts downward", "slides down"),
    "bounces": ("bounces", "bounces up and down", "hops"),
    "grows": ("grows", "gets bigger", "expands"),
    "shrinks": ("shrinks", "gets smaller", "contracts"),
    "spins": ("spins", "rotates", "turns around"),
    "appears": ("appears", "pops into view", "shows up"),
    "disappears": ("disappears", "vanishes", "pops out of view"),
    "stays still": ("stays still", "does not move", "sits still", "stays in place"),
}
# "{colour}" is filled in; the first entry is the canonical wording.
BACKGROUND_WORDS: dict[str, tuple[str, ...]] = {
    "gradient": ("{colour} gradient background", "{colour} gradient", "shaded {colour} background"),
    "striped": ("striped {colour} background", "{colour} striped backdrop", "striped {colour} backdrop"),
    "checkered": ("checkered {colour} background", "{colour} checkerboard", "checkered {colour} backdrop"),
    "dotted": ("dotted {colour} background", "polka-dot {colour} background", "dotted {colour} backdrop"),
    "speckled": ("speckled {colour} background", "grainy {colour} background", "mottled {colour} backdrop"),
}
BACKGROUND_NOUNS = ("background", "backdrop", "gradient", "checkerboard")
PAN_WORDS = ("as the camera pans", "while the camera pans", "with the camera panning", "as the view pans")
_PLAIN_BACKGROUND = "{colour} background"  # any kind may be described by colour alone
_PREPOSITIONS = ("on", "against", "over", "in front of")

# Words plus commas: a stand-in for tokens, since a BPE trained on these captions maps
# nearly every word to one token. Leaves room for BOS/EOS inside 23 decoder tokens.
MAX_CANONICAL_WORDS = 20


def canonical_caption(scene: Scene) -> str:
    """Objects first, then background, then the pan, each only while it fits the budget."""
    clauses = [f"{with_article(_canonical_noun(o))} {o.motion}" for o in scene.objects]
    text = _join_clauses(clauses, ("while",))
    background = f" on {with_article(BACKGROUND_WORDS[scene.background.kind][0].format(colour=scene.background.colour))}"
    if _word_count(text + background) <= MAX_CANONICAL_WORDS:
        text += background
    if scene.camera_pan and _word_count(text + " " + PAN_WORDS[0]) <= MAX_CANONICAL_WORDS:
        text += " " + PAN_WORDS[0]
    return text


def captions(scene: Scene, rng: np.random.Generator, n: int = 5) -> list[str]:
    """`n` varied reference captions, distinct where the phrasings allow it."""
    found: list[str] = []
    for _ in range(50 * n):
        if len(found) == n:
            break
        candidate = _one_caption(scene, rng)
        if candidate not in found:
            found.append(candidate)
    distinct = len(found)
    while len(found) < n:  # a scene with few synonyms: repeat rather than return short
        found.append(found[len(found) % distinct])
    return found


def _one_caption(scene: Scene, rng: np.random.Generator) -> str:
    background = _background_phrase(scene.background, rng)
    objects = scene.objects
    if len(objects) == 1 and objects[0].motion in HORIZONTAL_MOTIONS and rng.random() < 0.25:
        # "a red block moves left across a blue background": the move spans the frame.
        obj = objects[0]
        return f"{with_article(_noun(obj, rng))} {_pick(rng, MOTION_WORDS[obj.motion])} across {background}"
    clauses = [f"{with_article(_noun(o, rng))} {_pick(rng, MOTION_WORDS[o.motion])}" for o in objects]
    if len(objects) == 1 and rng.random() < 0.2:
        clauses = [f"there is {with_article(_noun(objects[0], rng))} that {_pick(rng, MOTION_WORDS[objects[0].motion])}"]
    text = _join_clauses(clauses, ("while", "and", "as"), rng)
    placement = rng.random()
    if placement < 0.35:
        text = f"{text} {_pick(rng, _PREPOSITIONS)} {background}"
    elif placement < 0.55:
        text = f"{_pick(rng, _PREPOSITIONS)} {background}, {text}"
    if scene.camera_pan and rng.random() < 0.6:
        text = f"{text} {_pick(rng, PAN_WORDS)}"
    return text


def _canonical_noun(obj: SceneObject) -> str:
    size = "" if obj.size == "medium" else obj.size + " "
    return f"{size}{obj.colour} {obj.kind}"


def _noun(obj: SceneObject, rng: np.random.Generator) -> str:
    # Medium is the unremarkable size, so it is usually left unsaid, as people do.
    say_size = rng.random() < (0.3 if obj.size == "medium" else 0.8)
    size = _pick(rng, SIZE_WORDS[obj.size]) + " " if say_size else ""
    return f"{size}{obj.colour} {_pick(rng, KIND_WORDS[obj.kind])}"


def _background_phrase(background: Background, rng: np.random.Generator) -> str:
    templates = BACKGROUND_WORDS[background.kind] + (_PLAIN_BACKGROUND,)
    return with_article(_pick(rng, templates).format(colour=background.colour))


def _join_clauses(clauses: list[str], joiners: tuple[str, ...], rng: np.random.Generator | None = None) -> str:
    joiner = joiners[0] if rng is None else _pick(rng, joiners)
    if len(clauses) == 1:
        return clauses[0]
    if len(clauses) == 2:
        return f"{clauses[0]} {joiner} {clauses[1]}"
    return f"{', '.join(clauses[:-1])} and {clauses[-1]}"


def with_article(noun_phrase: str) -> str:
    return ("an " if noun_phrase[0] in "aeiou" else "a ") + noun_phrase


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _word_count(text: str) -> int:
    return len(text.split()) + text.count(",")
