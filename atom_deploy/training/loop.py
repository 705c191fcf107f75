"""The seeded training loop of the demo model: one decoder learns captions and text tasks.

Every step takes one batch of clips (encoder + decoder, caption loss) and one batch of
text-task examples (decoder only), so the same decoder serves captioning and every
text-only task, which is the point of ATOM. Data is generated on the fly in a worker
process: each example is new, so there is no epoch and no overfitting to watch.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from atom_deploy.config import ModelConfig, demo_architecture
from atom_deploy.demo.vocab import MOTIONS
from atom_deploy.models import Decoder, VideoEncoder
from atom_deploy.training.attributes import AttributeProbe, attribute_loss, motion_loss
from atom_deploy.training.corpus import train_world_tokenizer
from atom_deploy.training.examples import BatchStream, Encoding
from atom_deploy.training.forward import caption_loss, text_loss
from atom_deploy.training.object_motion import ObjectMotionProbe, object_motion_loss
from atom_deploy.training.warmup import KIND_TASK, warm_up
from atom_deploy.video.preprocess import ClipSpec
from atom_runner.errors import AtomError

TRAINING_RECORD = "training.json"


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    # The defaults are the shipped model's recipe (49.2 min on 2 cores, stem warm-up included; the budget is 60).
    steps: int = 2100
    caption_batch: int = 16
    text_batch: int = 16
    lr: float = 1e-3
    warmup: int = 100
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.05
    clip_grad: float = 1.0
    # Weight of the training-only attribute probe's loss (training/attributes.py); 0 turns it off.
    attribute_weight: float = 0.2
    # Steps (and clips per step) of the stem's kind classifier before the full training; 0 skips it.
    stem_warmup_steps: int = 250
    stem_warmup_batch: int = 32
    # Weight of the second probe, on the patch embedding's tokens (deep supervision of the stem).
    patch_attribute_weight: float = 0.2
    # Weight of a motion softmax on the caption batch's single-object clips (training/attributes.py); 0 turns it off.
    motion_weight: float = 1.0
    # Weight of a motion softmax per object, read by its colour, on every clip (training/object_motion.py); 0 turns it off.
    object_motion_weight: float = 1.0
    # Up to 4 captions per text example: the pipelines fit as many as the context holds.
    clips_per_example: tuple[int, int] = (1, 4)
    threads: int = 2
    save_every: int = 250  # a usable kit folder lands this often, so a cut-off run keeps its progress

    def __post_init__(self) -> None:
        if self.steps < 1 or self.caption_batch < 1 or self.text_batch < 1:
            raise AtomError("steps and batch sizes must be at least 1")


def train_demo(out: Path, train: TrainConfig, model_config: ModelConfig | None = None, progress: bool = True) -> dict:
    from tqdm import tqdm

    config = model_config or demo_architecture()
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(train.seed)
    torch.set_num_threads(train.threads)
    started = time.perf_counter()
    tokenizer = train_world_tokenizer(out / "tokenizer.json", config.decoder.vocab_size, train.seed, train.clips_per_example)
    encoder = VideoEncoder(config.encoder, decoder_dim=config.decoder.dim)
    decoder = Decoder(config.decoder)
    init_for_training(encoder, config.encoder.layers, train.seed)
    init_for_training(decoder, config.decoder.layers, train.seed + 1)
    probe = AttributeProbe(config.decoder.dim)
    # The same pooled probe on the stem's own tokens keeps them answerable for every fact
    # while the caption loss trains through the transformer (the warm-up below teaches the
    # stem shapes; this probe alone did not: docs/demo_model.md).
    patch_probe = AttributeProbe(config.encoder.width)
    motion_probe = AttributeProbe(config.decoder.dim, outputs=len(MOTIONS))
    object_motion_probe = ObjectMotionProbe(config.decoder.dim)
    # Training only: NHWC convs run the stem forward + backward ~2x faster on CPU; _save
    # writes contiguous tensors, so the weights on disk are the same either way.
    encoder.to(memory_format=torch.channels_last)
    stem_kind_accuracy = None
    if train.stem_warmup_steps and config.encoder.stem_channels:  # a linear patch embedding has no stem to warm up
        if progress:
            print(f"stem warm-up: {train.stem_warmup_steps} steps of object-kind classification", file=sys.stderr)
        stem_kind_accuracy = warm_up(encoder.patch_embed, config.encoder.width, KIND_TASK, config.encoder.image_size,
                                     train.seed, train.stem_warmup_steps, train.stem_warmup_batch, train.lr)
        if progress:
            print(f"stem warm-up: held-out kind accuracy {stem_kind_accuracy:.3f}", file=sys.stderr)
    # The patch tokens are read where the encoder makes them, so the model code stays the export code.
    patch_tokens: list[torch.Tensor] = []
    encoder.patch_embed.register_forward_hook(lambda _m, _i, out: patch_tokens.append(out))
    trained = (encoder, decoder, probe, patch_probe, motion_probe, object_motion_probe)
    params = [p for m in trained for p in m.parameters()]
    decayed = [p for p in params if p.dim() >= 2]
    others = [p for p in params if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decayed, "weight_decay": train.weight_decay}, {"params": others, "weight_decay": 0.0}],
        lr=train.lr, betas=(0.9, 0.98),
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, train))
    d = config.decoder
    encoding = Encoding(str(tokenizer), d.bos_id, d.eos_id, d.pad_id)
    spec = ClipSpec(config.encoder.num_frames, config.encoder.image_size)
    stream = BatchStream(encoding, spec, train.seed, train.steps, train.caption_batch, train.text_batch, train.clips_per_example)
    # One producer process renders clips while this one trains; batches are already batched.
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=1, prefetch_factor=4,
                                         worker_init_fn=lambda _: torch.set_num_threads(1))
    history: list[dict] = []
    smooth = {"caption": None, "text": None, "attributes": None, "patch_attributes": None, "motion": None, "object_motion": None}
    bar = tqdm(loader, total=train.steps, desc="train-demo", disable=not progress, file=sys.stderr)
    for module in trained:
        module.train()
    for step, (captions, texts) in enumerate(bar, start=1):
        prefix = encoder(captions.clips)
        loss_c = caption_loss(decoder, prefix, captions, d.bos_id)
        loss_a = attribute_loss(probe, prefix, captions.attributes)
        loss_p = attribute_loss(patch_probe, patch_tokens.pop(), captions.attributes)
        loss_m = motion_loss(motion_probe, prefix, captions.motions)
        loss_o = object_motion_loss(object_motion_probe, prefix, captions.objects)
        loss_t = text_loss(decoder, texts)
        optimizer.zero_grad(set_to_none=True)
        (loss_c + loss_t + train.attribute_weight * loss_a + train.patch_attribute_weight * loss_p
         + train.motion_weight * loss_m + train.object_motion_weight * loss_o).backward()
        nn.utils.clip_grad_norm_(params, train.clip_grad)
        optimizer.step()
        schedule.step()
        for key, value in (("caption", loss_c.item()), ("text", loss_t.item()), ("attributes", loss_a.item()),
                           ("patch_attributes", loss_p.item()), ("motion", loss_m.item()),
                           ("object_motion", loss_o.item())):
            smooth[key] = value if smooth[key] is None else 0.95 * smooth[key] + 0.05 * value
        bar.set_postfix(caption=f"{smooth['caption']:.3f}", text=f"{smooth['text']:.3f}",
                        attr=f"{smooth['attributes']:.2f}", patch=f"{smooth['patch_attributes']:.2f}",
                        motion=f"{smooth['motion']:.2f}", objects=f"{smooth['object_motion']:.2f}", lr=f"{schedule.get_last_lr()[0]:.1e}")
        if step % 25 == 0 or step == train.steps:
            history.append({"step": step, "caption_loss": round(smooth["caption"], 4), "text_loss": round(smooth["text"], 4),
                            "attribute_loss": round(smooth["attributes"], 3),
                            "patch_attribute_loss": round(smooth["patch_attributes"], 3),
                            "motion_loss": round(smooth["motion"], 3),
                            "object_motion_loss": round(smooth["object_motion"], 3), "seconds": round(time.perf_counter() - started, 1)})
        if step % train.save_every == 0 or step == train.steps:
            record = _record(train, config, step, started, smooth, history, stem_kind_accuracy)
            _save(out, config, encoder, decoder, record)
    bar.close()
    return record


def lr_factor(step: int, train: TrainConfig) -> float:
    """Linear warm-up, then cosine down to min_lr_ratio."""
    if step < train.warmup:
        return (step + 1) / train.warmup
    progress = min(1.0, (step - train.warmup) / max(1, train.steps - train.warmup))
    return train.min_lr_ratio + (1 - train.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def init_for_training(module: nn.Module, layers: int, seed: int) -> None:
    """GPT-2 style: N(0, 0.02), residual output projections scaled by 1/sqrt(2 * layers).

    The kit's `init_random` is for random-weight shape tests (it widens the decoder so
    greedy tokens vary); a model that is going to learn wants the small, standard init.
    Conv kernels keep PyTorch's fan-in init: at std 0.02 a stack of four would shrink
    its input ~100x before the first token exists.
    """
    generator = torch.Generator().manual_seed(seed)
    residual = ("out_proj.weight", "fc2.weight", "o_proj.weight", "down_proj.weight")
    with torch.no_grad():
        for name, param in module.named_parameters():
            if param.dim() == 4:
                continue
            if param.dim() >= 2 or name.endswith("embedding"):
                std = 0.02 / math.sqrt(2 * layers) if name.endswith(residual) else 0.02
                param.copy_(torch.randn(param.shape, generator=generator) * std)
            elif name.endswith("bias"):
                param.zero_()


def _record(train: TrainConfig, config: ModelConfig, step: int, started: float, smooth: dict, history: list,
            stem_kind_accuracy: float | None) -> dict:
    return {
        "command": "atom-deploy train-demo " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["train-demo"] else "train_demo()",
        "train_config": asdict(train),
        "model": config.name,
        "steps_done": step,
        "seconds": round(time.perf_counter() - started, 1),
        "final_caption_loss": round(smooth["caption"], 4),
        "final_text_loss": round(smooth["text"], 4),
        "final_attribute_loss": round(smooth["attributes"], 3),
        "final_patch_attribute_loss": round(smooth["patch_attributes"], 3),
        "final_motion_loss": round(smooth["motion"], 3),
        "final_object_motion_loss": round(smooth["object_motion"], 3),
        "stem_warmup_kind_accuracy": None if stem_kind_accuracy is None else round(stem_kind_accuracy, 3),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "history": history,
    }


def _save(out: Path, config: ModelConfig, encoder: nn.Module, decoder: nn.Module, record: dict) -> None:
    from atom_deploy.model_source import KIT_CONFIG, KIT_WEIGHTS
    from atom_deploy.weights.kit import write_kit_weights

    # float16 on disk halves the package (the 25 MB budget); export loads it into fp32.
    write_kit_weights(out / KIT_WEIGHTS, {"video_encoder": encoder, "decoder": decoder},
                      config.decoder.tie_embeddings, torch.float16)
    (out / KIT_CONFIG).write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
    (out / TRAINING_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
