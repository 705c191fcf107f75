"""A seeded synthetic video world with ground-truth captions, for training and evaluation.

Coloured sprites move over textured backgrounds; every clip comes with a canonical
caption (the training target), varied reference captions, and text-only task examples
(assembly script, summary, question answering) built from captions. Torch-free.

    vocab.py          every name a scene can hold
    scene.py          Scene dataclasses and sample_scene(rng)
    motion.py         trajectories over normalised clip time, frame_times()
    background.py     textures, camera pan
    render.py         render_clip / render_frame
    captions.py       canonical_caption / captions
    caption_parse.py  captions back to facts
    tasks.py          text-task examples and their targets
    dataset.py        make_split, make_text_examples
    video_file.py     write_video: scenes back to back as an mp4
"""

from atom_deploy.demo.caption_parse import ParsedCaption, parse_caption
from atom_deploy.demo.captions import canonical_caption, captions
from atom_deploy.demo.dataset import Sample, make_split, make_text_examples, sample_at
from atom_deploy.demo.motion import frame_times, object_state
from atom_deploy.demo.render import render_clip, render_frame
from atom_deploy.demo.scene import Background, Scene, SceneObject, sample_scene
from atom_deploy.demo.tasks import TextExample, assembly_example, qa_example, summary_example
from atom_deploy.demo.video_file import write_video
from atom_runner.task_formats import assembly_input, parse_script, qa_input, summary_input

__all__ = [
    "Background", "ParsedCaption", "Sample", "Scene", "SceneObject", "TextExample",
    "assembly_example", "assembly_input", "canonical_caption", "captions", "frame_times",
    "make_split", "make_text_examples", "object_state", "parse_caption", "parse_script",
    "qa_example", "qa_input", "render_clip", "render_frame", "sample_at", "sample_scene",
    "summary_example", "summary_input", "write_video",
]
