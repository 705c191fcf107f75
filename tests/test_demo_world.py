"""The demo world: determinism, visible motion, faithful captions, disjoint splits, text tasks, mp4."""

from __future__ import annotations

import dataclasses
import re

import av
import numpy as np
import pytest

from atom_deploy.demo import (
    Background,
    Scene,
    SceneObject,
    assembly_example,
    canonical_caption,
    captions,
    make_split,
    parse_caption,
    parse_script,
    qa_example,
    render_clip,
    render_frame,
    sample_at,
    sample_scene,
    summary_example,
    write_video,
)
from atom_deploy.demo.background import render_background
from atom_deploy.demo.captions import KIND_WORDS, MAX_CANONICAL_WORDS
from atom_deploy.demo.dataset import make_text_examples
from atom_deploy.demo.motion import MOVE_DISTANCE, frame_times
from atom_deploy.demo.tasks import assembly_target, number_word
from atom_runner.errors import AtomError
from atom_runner.task_formats import ANSWER_CUE, CLIPS_HEADER, SCRIPT_CUE, SUMMARY_CUE


@pytest.fixture(scope="module")
def many_scenes() -> list[Scene]:
    rng = np.random.default_rng(2024)
    return [sample_scene(rng) for _ in range(400)]


def _quiet_scene(*objects: SceneObject, kind: str = "striped") -> Scene:
    # No noise and no pan: every pixel change between frames is the object's doing.
    return Scene(objects=objects, background=Background(kind, "grey"), camera_pan=False, noise_std=0.0)


def _object_pixels(scene: Scene, size: int = 112, num_frames: int = 6) -> np.ndarray:
    """(T, H, W) bool: where the rendered clip differs from its bare background."""
    clip = render_clip(scene, num_frames, size, seed=0).astype(np.int16)
    masks = []
    for t, frame in zip(frame_times(num_frames), clip):
        bare = render_background(scene.background, float(t), scene.camera_pan, size, size)
        masks.append(np.abs(frame - np.rint(bare).astype(np.int16)).sum(axis=-1) > 40)
    return np.stack(masks)


def _centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


# --- determinism and shapes -------------------------------------------------------------

def test_same_seed_gives_same_bytes_and_captions():
    a, b = sample_at("train", 7, seed=3), sample_at("train", 7, seed=3)
    assert a == b
    assert a.frames().tobytes() == b.frames().tobytes()
    first = [(s.id, s.canonical, s.captions) for s in make_split("val", 20, seed=11)]
    again = [(s.id, s.canonical, s.captions) for s in make_split("val", 20, seed=11)]
    assert first == again


def test_different_seed_gives_different_clips():
    a, b = sample_at("train", 0, seed=1), sample_at("train", 0, seed=2)
    assert a.scene != b.scene
    assert a.frames().tobytes() != b.frames().tobytes()
    noisy = dataclasses.replace(a.scene, noise_std=5.0)
    assert render_clip(noisy, seed=1).tobytes() != render_clip(noisy, seed=2).tobytes()


@pytest.mark.parametrize("size", [224, 112])
@pytest.mark.parametrize("num_frames", [2, 6])
def test_clip_shape_and_dtype(size, num_frames):
    clip = sample_at("test", 1, seed=0, num_frames=num_frames, size=size).frames()
    assert clip.shape == (num_frames, size, size, 3)
    assert clip.dtype == np.uint8


# --- motion is visible in 6 frames ------------------------------------------------------

def test_moving_left_shifts_the_object_and_still_does_not():
    size = 112
    mover = _object_pixels(_quiet_scene(SceneObject("square", "red", "medium", "moves left", (0.75, 0.5))), size)
    (x0, y0), (x1, y1) = _centroid(mover[0]), _centroid(mover[-1])
    expected = MOVE_DISTANCE * (frame_times(6)[-1] - frame_times(6)[0]) * size
    assert x0 - x1 == pytest.approx(expected, abs=2.0)
    assert abs(y1 - y0) < 1.0
    still = _object_pixels(_quiet_scene(SceneObject("square", "red", "medium", "stays still", (0.5, 0.5))), size)
    assert np.array_equal(still[0], still[-1])


def test_bounce_spin_grow_and_appear_are_visible():
    bounce = _object_pixels(_quiet_scene(SceneObject("circle", "yellow", "medium", "bounces", (0.5, 0.7))))
    heights = [_centroid(m)[1] for m in bounce]
    assert max(heights) - min(heights) > 10  # pixels, at 112 px

    spin = _object_pixels(_quiet_scene(SceneObject("bar", "white", "large", "spins", (0.5, 0.5))))
    assert all((spin[i] ^ spin[i + 1]).sum() > 50 for i in range(5))
    assert np.allclose(_centroid(spin[0]), _centroid(spin[-1]), atol=1.0)  # turns in place

    grow = _object_pixels(_quiet_scene(SceneObject("star", "blue", "small", "grows", (0.5, 0.5))))
    areas = grow.sum(axis=(1, 2))
    assert np.all(np.diff(areas) > 0) and areas[-1] > 2 * areas[0]

    appear = _object_pixels(_quiet_scene(SceneObject("cross", "black", "medium", "appears", (0.5, 0.5))))
    assert [bool(m.any()) for m in appear] == [False, False, False, True, True, True]


def test_camera_pan_moves_the_background_only():
    scene = dataclasses.replace(
        _quiet_scene(SceneObject("triangle", "red", "medium", "stays still", (0.5, 0.5)), kind="checkered"),
        camera_pan=True,
    )
    clip = render_clip(scene, 6, 112).astype(np.int16)
    assert np.abs(clip[0, :20, :20] - clip[-1, :20, :20]).mean() > 5  # texture slid
    mask = _object_pixels(scene)
    assert np.array_equal(mask[0], mask[-1])  # the object did not


def test_sampled_objects_stay_in_frame_and_apart(many_scenes):
    for scene in many_scenes[:60]:
        quiet = dataclasses.replace(scene, noise_std=0.0, camera_pan=False)
        # One object at a time, so each mask is that object's pixels alone.
        masks = [_object_pixels(dataclasses.replace(quiet, objects=(obj,)), size=64) for obj in scene.objects]
        for mask in masks:
            # Nothing touches the border: the sampler keeps whole trajectories inside.
            assert not mask[:, [0, -1], :].any() and not mask[:, :, [0, -1]].any(), scene
        for a in range(len(masks)):
            for b in range(a + 1, len(masks)):
                assert not (masks[a] & masks[b]).any(), scene  # and objects never overlap


# --- captions ---------------------------------------------------------------------------

def _mentions(text: str, obj: SceneObject) -> bool:
    words = f" {text} "
    return f" {obj.colour} " in words and any(f" {w} " in words for w in KIND_WORDS[obj.kind])


def test_every_caption_names_every_object(many_scenes):
    rng = np.random.default_rng(0)
    for scene in many_scenes:
        for text in [canonical_caption(scene), *captions(scene, rng, n=5)]:
            assert text == text.lower() and not text.endswith("."), text
            assert all(_mentions(text, obj) for obj in scene.objects), (text, scene)


def test_reference_captions_vary():
    scene = _quiet_scene(SceneObject("square", "red", "small", "moves left", (0.75, 0.5)))
    refs = captions(scene, np.random.default_rng(0), n=5)
    assert len(refs) == 5 and len(set(refs)) == 5


def test_canonical_caption_is_short_and_reads_back_to_the_scene(many_scenes):
    for scene in many_scenes:
        text = canonical_caption(scene)
        assert len(text.split()) + text.count(",") <= MAX_CANONICAL_WORDS, text
        parsed = parse_caption(text)
        said = sorted((o.kind, o.colour, o.motion) for o in parsed.objects)
        assert said == sorted((o.kind, o.colour, o.motion) for o in scene.objects), text
        assert parsed.background_colour in (None, scene.background.colour), text
    one = _quiet_scene(SceneObject("square", "red", "small", "moves left", (0.75, 0.5)))
    assert canonical_caption(one) == "a small red square moves left on a striped grey background"


def test_reference_captions_read_back_to_the_scene(many_scenes):
    rng = np.random.default_rng(1)
    for scene in many_scenes[:150]:
        for text in captions(scene, rng, n=5):
            said = sorted((o.kind, o.colour, o.motion) for o in parse_caption(text).objects)
            assert said == sorted((o.kind, o.colour, o.motion) for o in scene.objects), text


# --- splits -----------------------------------------------------------------------------

def test_splits_are_disjoint_and_validated():
    splits = {name: list(make_split(name, 150, seed=5, size=32)) for name in ("train", "val", "test")}
    ids = [s.id for samples in splits.values() for s in samples]
    assert len(ids) == len(set(ids))
    scenes = [s.scene for samples in splits.values() for s in samples]
    assert len(scenes) == len(set(scenes))  # frozen dataclasses hash by value
    assert [s.scene for s in make_split("train", 3, seed=5)] == [s.scene for s in splits["train"][:3]]
    with pytest.raises(AtomError, match="valid splits"):
        make_split("dev", 1, seed=0)
    with pytest.raises(AtomError, match="valid"):
        SceneObject("hexagon", "red", "small", "spins", (0.5, 0.5))


# --- text tasks ---------------------------------------------------------------------------

CLIPS = [
    "a small red square moves left on a striped blue background",
    "a green circle bounces while a small yellow star spins",
    "a large red star spins, a white ring grows and a black bar moves up",
]


def test_assembly_follows_the_request():
    assert assembly_target(CLIPS, "make a highlight reel of the red objects") == (
        "clip 0: the red square moves left | clip 2: the red star spins"
    )
    assert assembly_target(CLIPS, "show every clip with a star, last clip first") == (
        "clip 2: the red star spins | clip 1: the yellow star spins"
    )
    assert parse_script(assembly_target(CLIPS, "start with the green objects, then the rest")) == [
        (1, "the green circle bounces"), (0, "the red square moves left"), (2, "the red star spins"),
    ]
    assert assembly_target(CLIPS, "make a short video of shapes that shrink") == "no matching clips"
    assert parse_script("no matching clips") == []
    with pytest.raises(ValueError, match="there are 3 clips"):
        parse_script("clip 4: the red star spins", num_clips=3)


def test_sampled_text_examples_are_well_formed():
    rng = np.random.default_rng(3)
    for task, (text, target) in make_text_examples("train", 60, seed=9):
        lines = text.split("\n")
        assert lines[0] == CLIPS_HEADER
        captions_in = [line.split(": ", 1)[1] for line in lines[1:] if re.match(r"\d+: ", line)]
        assert [int(line.split(":")[0]) for line in lines[1:1 + len(captions_in)]] == list(range(len(captions_in)))
        assert target and target == target.strip() and "\n" not in target
        if task == "assembly":
            assert lines[-1] == SCRIPT_CUE
            for index, narration in parse_script(target, num_clips=len(captions_in)):
                assert narration.startswith("the ")
                focus = parse_caption(narration).objects[0]
                assert (focus.colour, focus.kind) in {(o.colour, o.kind) for o in parse_caption(captions_in[index]).objects}
        elif task == "summary":
            assert lines[-1] == SUMMARY_CUE and target.startswith(number_word(len(captions_in)) + " clip")
        else:
            assert lines[-1] == ANSWER_CUE and lines[-2].startswith("question: ")
    text, target = assembly_example(CLIPS, None, rng)
    assert text.endswith(SCRIPT_CUE) and parse_script(target, num_clips=3) is not None


def test_answers_match_the_scenes():
    rng = np.random.default_rng(4)
    samples = list(make_split("val", 30, seed=1, size=32))
    for start in range(0, 30, 3):
        group = samples[start:start + 3]
        text, answer = qa_example([s.canonical for s in group], rng)
        question = text.split("\n")[-2].removeprefix("question: ")
        counted = re.fullmatch(r"how many clips show an? (\w+) object\?", question)
        if counted:
            truth = sum(any(o.colour == counted.group(1) for o in s.scene.objects) for s in group)
            assert answer == number_word(truth)
        exists = re.fullmatch(r"is there an? (\w+)\?", question)
        if exists:
            truth = any(o.kind == exists.group(1) for s in group for o in s.scene.objects)
            assert answer == ("yes" if truth else "no")
    assert summary_example(CLIPS).target_text == (
        "three clips with a red square, a green circle, a yellow star and three more shapes"
    )
    assert qa_example(CLIPS[:1], np.random.default_rng(0)).input_text.startswith("clips:\n0: a small red square")


# --- whole videos -------------------------------------------------------------------------

def test_write_video_has_expected_duration_size_and_segments(tmp_path):
    rng = np.random.default_rng(8)
    scenes = [sample_scene(rng) for _ in range(3)]
    path = tmp_path / "world.mp4"
    fps, seconds = 8, 2.0
    segments = write_video(path, scenes, seconds_per_scene=seconds, fps=fps, size=(160, 120))
    assert [(s, e) for s, e, _ in segments] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
    assert [c for _, _, c in segments] == [canonical_caption(s) for s in scenes]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (160, 120)
        frames = [f for f in container.decode(stream)]
        assert abs(container.duration / 1e6 - 6.0) <= 1.0 / fps
    assert abs(len(frames) - 3 * seconds * fps) <= 1
    assert frames[0].to_ndarray(format="rgb24").shape == (120, 160, 3)
    # Each segment's frames show its own scene: decoded pixels match a noise-free render.
    per_scene = int(seconds * fps)
    for index, scene in enumerate(scenes):
        k = per_scene // 2
        decoded = frames[index * per_scene + k].to_ndarray(format="rgb24").astype(np.int16)
        clean = render_frame(scene, (k + 0.5) / per_scene, 160, 120).astype(np.int16)
        other = render_frame(scenes[(index + 1) % 3], (k + 0.5) / per_scene, 160, 120).astype(np.int16)
        assert np.abs(decoded - clean).mean() < 10 < np.abs(decoded - other).mean()
    # A wide frame is the square clip plus more background at the sides, so the video
    # pipeline's centre crop sees what render_clip draws.
    wide, square = render_frame(scenes[0], 0.3, 160, 120), render_frame(scenes[0], 0.3, 120, 120)
    assert np.abs(wide[:, 20:140].astype(np.int16) - square).max() <= 2
