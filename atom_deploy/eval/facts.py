"""Are the captions right about the scene? Facts read back from each caption, checked against the scene.

CIDEr rewards shared n-grams, so a caption with the right grammar and background but the
wrong objects still scores. This asks the questions a viewer would: is each drawn object
named with its colour (and kind), is its motion right, are as many objects named as drawn,
is the background's colour right. The reader is the world's own caption parser, which
understands every wording the references use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from atom_deploy.demo.caption_parse import parse_caption
from atom_deploy.demo.scene import Scene


@dataclass(frozen=True)
class FactScores:
    colours: float  # % of drawn objects whose colour is named
    objects: float  # % of drawn objects named with their colour and kind
    motions: float  # % of drawn objects whose colour is named with their motion
    counts: float  # % of clips naming exactly as many objects as drawn
    backgrounds: float  # % of clips naming the background's colour correctly


def score_facts(captions: Sequence[str], scenes: Sequence[Scene]) -> FactScores:
    if len(captions) != len(scenes) or not scenes:
        raise ValueError(f"need one caption per scene, got {len(captions)} captions for {len(scenes)} scenes")
    colours = objects = motions = counts = backgrounds = drawn = 0
    for caption, scene in zip(captions, scenes):
        parsed = parse_caption(caption)
        named = {(o.colour, o.kind) for o in parsed.objects}
        named_colours = {o.colour for o in parsed.objects}
        moving = {(o.colour, o.motion) for o in parsed.objects}
        for o in scene.objects:
            drawn += 1
            colours += o.colour in named_colours
            objects += (o.colour, o.kind) in named
            motions += (o.colour, o.motion) in moving
        counts += len(parsed.objects) == len(scene.objects)
        backgrounds += parsed.background_colour == scene.background.colour
    clips = len(scenes)
    return FactScores(100 * colours / drawn, 100 * objects / drawn, 100 * motions / drawn, 100 * counts / clips, 100 * backgrounds / clips)
