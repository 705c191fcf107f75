"""The ATOM model: three separately exportable modules built from one `ModelConfig`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from atom_deploy.config import ModelConfig
from atom_deploy.models import Decoder, MiniLM, VideoEncoder


@dataclass
class AtomModel:
    config: ModelConfig
    encoder: VideoEncoder
    decoder: Decoder
    minilm: MiniLM

    def modules(self) -> dict[str, nn.Module]:
        return {"video_encoder": self.encoder, "decoder": self.decoder, "minilm": self.minilm}


def init_random(module: nn.Module, seed: int, gain: float = 1.0) -> None:
    """Seeded init, std = gain / sqrt(fan_in); norms stay at identity, biases at zero."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if param.dim() >= 2:
                param.copy_(torch.randn(param.shape, generator=generator) * (gain / param.shape[1] ** 0.5))
            elif name.endswith("_embedding"):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
            elif name.endswith("bias"):
                param.zero_()


# A random decoder with tied embeddings and a small init just repeats its last token, so
# a greedy-token comparison would prove nothing. A larger gain gives varied sequences.
RANDOM_DECODER_GAIN = 2.4


def build_model(config: ModelConfig, seed: int = 0) -> AtomModel:
    """Random-initialized modules (seeded), with real all-MiniLM-L6-v2 weights when asked."""
    torch.manual_seed(seed)
    encoder = VideoEncoder(config.encoder, decoder_dim=config.decoder.dim)
    decoder = Decoder(config.decoder)
    minilm = MiniLM(config.minilm)
    init_random(encoder, seed)
    init_random(decoder, seed + 1, gain=RANDOM_DECODER_GAIN)
    init_random(minilm, seed + 2)
    if config.minilm_pretrained:
        from atom_deploy.weights.minilm import load_minilm

        load_minilm(minilm)
    model = AtomModel(config, encoder, decoder, minilm)
    for module in model.modules().values():
        module.eval().requires_grad_(False)
    return model
