"""Training examples for the decoder's text-only tasks, with targets derived from captions.

Targets follow fixed rules over the facts parse_caption reads, so the decoder can learn
them and a test can check them: an assembly request keeps the clips whose objects match
every colour, kind and motion it names ("start with ..." keeps all, matches first;
"last clip first" reverses); a summary counts clips and lists the distinct objects; a
question is answered from the captions alone. Formats live in atom_runner/task_formats.py,
the runners' task contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from atom_deploy.demo.caption_parse import MentionedObject, match_phrase, parse_caption, phrase_table, words_of
from atom_deploy.demo.captions import KIND_WORDS, MOTION_WORDS, with_article
from atom_deploy.demo.vocab import KINDS, MOTIONS, OBJECT_COLOURS
from atom_runner.task_formats import assembly_input, format_script, qa_input, summary_input

# How a request names a motion; the first entry is what sampled requests say.
MOTION_REQUEST_WORDS: dict[str, tuple[str, ...]] = {
    "moves left": ("move left", "moving left", "go left"),
    "moves right": ("move right", "moving right", "go right"),
    "moves up": ("move up", "moving up", "rise", "rising"),
    "moves down": ("move down", "moving down", "sink", "sinking"),
    "bounces": ("bounce", "bouncing"),
    "grows": ("grow", "growing"),
    "shrinks": ("shrink", "shrinking"),
    "spins": ("spin", "spinning", "rotate", "rotating"),
    "appears": ("appear", "appearing"),
    "disappears": ("disappear", "disappearing", "vanish", "vanishing"),
    "stays still": ("stay still", "staying still", "still"),
}
_REVERSE_PHRASES = (("last", "clip", "first"), ("reverse",), ("backwards",))
_LEAD_PHRASES = (("start", "with"), ("begin", "with"), ("open", "with"))
_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_SUMMARY_LISTED_OBJECTS = 3


class TextExample(NamedTuple):
    input_text: str
    target_text: str


@dataclass(frozen=True)
class AssemblyRequest:
    colour: str | None
    kind: str | None
    motion: str | None
    lead_with_matches: bool  # keep every clip, matching ones first
    reverse: bool

    def matches(self, obj: MentionedObject) -> bool:
        return all(want is None or want == got for want, got in
                   ((self.colour, obj.colour), (self.kind, obj.kind), (self.motion, obj.motion)))

    @property
    def selective(self) -> bool:
        return any(v is not None for v in (self.colour, self.kind, self.motion))


def plural(noun: str) -> str:
    head, _, last = noun.rpartition(" ")
    last = last + ("es" if last.endswith(("s", "x", "sh", "ch")) else "s")
    return f"{head} {last}" if head else last


_REQUEST_KINDS = phrase_table({k: [*w, *(plural(x) for x in w)] for k, w in KIND_WORDS.items()})
_REQUEST_MOTIONS = phrase_table({m: [*MOTION_REQUEST_WORDS[m], *MOTION_WORDS[m]] for m in MOTIONS})


def read_request(prompt: str) -> AssemblyRequest:
    """What an assembly request asks for; words outside the vocabulary are ignored."""
    words = words_of(prompt)
    colour = next((w for w in words if w in OBJECT_COLOURS), None)
    kind = _first_hit(words, _REQUEST_KINDS)
    motion = _first_hit(words, _REQUEST_MOTIONS)
    return AssemblyRequest(colour, kind, motion, _contains(words, _LEAD_PHRASES), _contains(words, _REVERSE_PHRASES))


def assembly_target(captions: Sequence[str], prompt: str) -> str:
    request = read_request(prompt)
    parsed = [parse_caption(c).objects for c in captions]
    matching = [i for i, objs in enumerate(parsed) if any(request.matches(o) for o in objs)]
    if not request.selective:
        order = list(range(len(captions)))
    elif request.lead_with_matches:
        order = matching + [i for i in range(len(captions)) if i not in matching]
    else:
        order = matching
    if request.reverse:
        order.reverse()
    return format_script([(i, _narration(captions[i], parsed[i], request)) for i in order])


def _narration(caption: str, objects: tuple[MentionedObject, ...], request: AssemblyRequest) -> str:
    if not objects:
        return caption  # nothing recognisable: narrate with the caption itself
    focus = next((o for o in objects if request.selective and request.matches(o)), objects[0])
    colour = f"{focus.colour} " if focus.colour else ""
    return f"the {colour}{focus.kind} {focus.motion or 'is shown'}"


def sample_request(captions: Sequence[str], rng: np.random.Generator) -> str:
    present = [o for c in captions for o in parse_caption(c).objects]
    # Mostly ask about what is there; sometimes about anything, to teach "no matching clips".
    pool = present if present and rng.random() < 0.85 else None
    obj = pool[int(rng.integers(len(pool)))] if pool else None
    colour = obj.colour if obj and obj.colour else _pick(rng, tuple(OBJECT_COLOURS))
    kind = obj.kind if obj else _pick(rng, KINDS)
    motion = obj.motion if obj and obj.motion else _pick(rng, MOTIONS)
    options = (
        "make a highlight reel",
        f"make a highlight reel of the {colour} objects",
        f"show every clip with a {kind}",
        f"make a short video of shapes that {MOTION_REQUEST_WORDS[motion][0]}",
        f"collect the clips with {with_article(colour + ' ' + kind)}",
        f"start with the {colour} objects, then the rest",
    )
    prompt = _pick(rng, options)
    if not prompt.startswith("start") and rng.random() < 0.2:
        prompt += ", last clip first"
    return prompt


def assembly_example(captions: Sequence[str], prompt: str | None, rng: np.random.Generator) -> TextExample:
    """`prompt=None` samples a request about these captions."""
    prompt = sample_request(captions, rng) if prompt is None else prompt
    return TextExample(assembly_input(captions, prompt), assembly_target(captions, prompt))


def summary_example(captions: Sequence[str]) -> TextExample:
    distinct: list[str] = []
    for caption in captions:
        for o in parse_caption(caption).objects:
            name = f"{o.colour} {o.kind}" if o.colour else o.kind
            if name not in distinct:
                distinct.append(name)
    items = [with_article(name) for name in distinct[:_SUMMARY_LISTED_OBJECTS]]
    if len(distinct) > _SUMMARY_LISTED_OBJECTS:
        rest = len(distinct) - _SUMMARY_LISTED_OBJECTS
        items.append(f"{number_word(rest)} more shape{'s' if rest > 1 else ''}")
    count = len(captions)
    target = f"{number_word(count)} clip{'s' if count != 1 else ''}"
    if items:
        target += " with " + _join_list(items)
    return TextExample(summary_input(captions), target)


def qa_example(captions: Sequence[str], rng: np.random.Generator) -> TextExample:
    question, answer = sample_question(captions, rng)
    return TextExample(qa_input(captions, question), answer)


def sample_question(captions: Sequence[str], rng: np.random.Generator) -> tuple[str, str]:
    per_clip = [parse_caption(c).objects for c in captions]
    present = [o for objs in per_clip for o in objs if o.colour]
    by_name: dict[tuple[str, str], list[int]] = {}
    for index, objs in enumerate(per_clip):
        for o in objs:
            if o.colour:
                by_name.setdefault((o.colour, o.kind), []).append(index)
    unique = [(o, by_name[(o.colour, o.kind)][0]) for o in present if len(by_name[(o.colour, o.kind)]) == 1]
    kind_counts = {k: sum(o.kind == k for o in present) for k in KINDS}
    lone_kinds = [o for o in present if kind_counts[o.kind] == 1]
    askable = ["count colour", "count kind", "exists kind", "exists object"]
    if unique:  # "the red square" must name exactly one object across all clips
        askable += ["what motion", "which clip"]
    if lone_kinds:
        askable.append("what colour")
    ask = _pick(rng, tuple(askable))
    real = present[int(rng.integers(len(present)))] if present and rng.random() < 0.6 else None
    colour = real.colour if real else _pick(rng, tuple(OBJECT_COLOURS))
    kind = real.kind if real else _pick(rng, KINDS)
    if ask == "count colour":
        count = sum(any(o.colour == colour for o in objs) for objs in per_clip)
        return f"how many clips show {with_article(colour)} object?", number_word(count)
    if ask == "count kind":
        count = sum(any(o.kind == kind for o in objs) for objs in per_clip)
        return f"how many clips show a {kind}?", number_word(count)
    # Yes/no questions ask about something absent half the time, so "yes" is no shortcut.
    ask_absent = rng.random() < 0.5
    if ask == "exists kind":
        shown = sorted({o.kind for objs in per_clip for o in objs})
        hidden = [k for k in KINDS if k not in shown]
        kind = _pick(rng, tuple(hidden if (ask_absent or not shown) and hidden else shown))
        return f"is there a {kind}?", "yes" if kind in shown else "no"
    if ask == "exists object":
        absent = [(c, k) for c in OBJECT_COLOURS for k in KINDS if (c, k) not in by_name]
        pairs = absent if (ask_absent or not by_name) and absent else sorted(by_name)
        colour, kind = pairs[int(rng.integers(len(pairs)))]
        return f"is there {with_article(colour + ' ' + kind)}?", "yes" if (colour, kind) in by_name else "no"
    if ask == "what colour":
        lone = lone_kinds[int(rng.integers(len(lone_kinds)))]
        return f"what colour is the {lone.kind}?", str(lone.colour)
    obj, clip = unique[int(rng.integers(len(unique)))]
    if ask == "what motion" and obj.motion:
        return f"what does the {obj.colour} {obj.kind} do?", f"it {obj.motion}"
    # "which clip", or a motion question about a caption that named no motion.
    return f"which clip shows the {obj.colour} {obj.kind}?", f"clip {clip}"


def number_word(n: int) -> str:
    return _NUMBER_WORDS[n] if 0 <= n < len(_NUMBER_WORDS) else str(n)


def _join_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _first_hit(words: list[str], table: list[tuple[tuple[str, ...], str]]) -> str | None:
    for at in range(len(words)):
        hit = match_phrase(words, at, table)
        if hit is not None:
            return hit[0]
    return None


def _contains(words: list[str], phrases: tuple[tuple[str, ...], ...]) -> bool:
    return any(tuple(words[i:i + len(p)]) == p for p in phrases for i in range(len(words)))


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]
