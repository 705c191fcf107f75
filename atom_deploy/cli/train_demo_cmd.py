"""atom-deploy train-demo: train the embedded demo model on the generated video world (seeded)."""

from __future__ import annotations

import argparse
from pathlib import Path

from atom_deploy.training.loop import TrainConfig

DEFAULTS = TrainConfig()


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-demo", help="train the demo captioner on the generated world (CPU, seeded)")
    p.add_argument("--out", type=Path, default=Path("atom_deploy/assets/demo"), help="kit model folder to write")
    p.add_argument("--steps", type=int, default=DEFAULTS.steps)
    p.add_argument("--caption-batch", type=int, default=DEFAULTS.caption_batch)
    p.add_argument("--text-batch", type=int, default=DEFAULTS.text_batch)
    p.add_argument("--lr", type=float, default=DEFAULTS.lr)
    p.add_argument("--warmup", type=int, default=DEFAULTS.warmup)
    p.add_argument("--attribute-weight", type=float, default=DEFAULTS.attribute_weight,
                   help="weight of the training-only attribute probe's loss; 0 turns it off")
    p.add_argument("--patch-attribute-weight", type=float, default=DEFAULTS.patch_attribute_weight,
                   help="weight of the training-only probe on the patch embedding's tokens; 0 turns it off")
    p.add_argument("--stem-warmup-steps", type=int, default=DEFAULTS.stem_warmup_steps,
                   help="steps of object-kind classification that train the conv stem first; 0 skips it")
    p.add_argument("--motion-weight", type=float, default=DEFAULTS.motion_weight,
                   help="weight of the motion softmax on single-object clips during training; 0 turns it off")
    p.add_argument("--object-motion-weight", type=float, default=DEFAULTS.object_motion_weight,
                   help="weight of the per-object motion softmax, read by colour, during training; 0 turns it off")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed)
    p.add_argument("--threads", type=int, default=DEFAULTS.threads)
    p.add_argument("--save-every", type=int, default=DEFAULTS.save_every)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atom_deploy.training.loop import train_demo

    config = TrainConfig(
        seed=args.seed, steps=args.steps, caption_batch=args.caption_batch, text_batch=args.text_batch,
        lr=args.lr, warmup=args.warmup, threads=args.threads, save_every=args.save_every,
        attribute_weight=args.attribute_weight, patch_attribute_weight=args.patch_attribute_weight,
        stem_warmup_steps=args.stem_warmup_steps,
        motion_weight=args.motion_weight, object_motion_weight=args.object_motion_weight,
    )
    record = train_demo(args.out, config)
    print(f"trained {record['steps_done']} steps in {record['seconds']:.0f} s: caption loss "
          f"{record['final_caption_loss']:.3f}, text loss {record['final_text_loss']:.3f} -> {args.out}")
    return 0
