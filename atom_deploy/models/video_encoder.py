"""CLIP-ViT video encoder over a clip tensor (B, 3, T, H, W), projected into decoder space.

The tubelet patch embedding is written as reshape/permute + Linear rather than Conv3d:
kernel == stride, so the two are the same arithmetic. ExecuTorch's CPU kernels and the
XNNPACK partitioner reject 5-D convolution, and XNNPACK rejects permutes above 6-D, so
every intermediate here stays at 6 dimensions or fewer. As a Linear the patch embedding
is delegated and int8-quantized like every other Linear.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from atom_deploy.config import VideoEncoderConfig
from atom_deploy.models.fused_linear import FusedLinear, fuse_siblings


def quick_gelu(x: Tensor) -> Tensor:
    return x * torch.sigmoid(1.702 * x)


class TubeletEmbedding(nn.Module):
    """Conv3d(3, width, kernel=stride=(t, P, P), bias=False) as a Linear over flattened tubelets."""

    def __init__(self, config: VideoEncoderConfig):
        super().__init__()
        self.config = config
        # Feature order (C, t, Ph, Pw) is exactly Conv3d's weight.flatten(1) order.
        self.proj = nn.Linear(3 * config.tubelet * config.patch_size**2, config.width, bias=False)

    def forward(self, clip: Tensor) -> Tensor:
        # clip: [B, C, T, H, W] -> tokens: [B, T' * G * G, width], time-major
        c = self.config
        B, C, T, H, W = clip.shape
        P, G, t = c.patch_size, c.grid, c.tubelet
        x = clip.reshape(B * C * T, G, P, G, P)  # 5-D
        x = x.permute(0, 1, 3, 2, 4)  # [B*C*T, Gh, Gw, Ph, Pw]
        x = x.reshape(B, C, T // t, t, G * G, P * P)  # 6-D
        x = x.permute(0, 2, 4, 1, 3, 5)  # [B, T', G*G, C, t, P*P]
        x = x.reshape(B, (T // t) * G * G, C * t * P * P)
        return self.proj(x)

    @torch.no_grad()
    def load_conv_weight(self, weight: Tensor) -> None:
        """Load a Conv3d [width, 3, t, P, P] or Conv2d [width, 3, P, P] patch weight.

        A 2-D (image CLIP) weight is inflated over the tubelet as W / t per frame, so a
        clip of identical frames embeds exactly as the image model embeds one frame.
        """
        c = self.config
        if weight.dim() == 4:
            weight = weight.unsqueeze(2).expand(-1, -1, c.tubelet, -1, -1) / c.tubelet
        expected = (c.width, 3, c.tubelet, c.patch_size, c.patch_size)
        if tuple(weight.shape) != expected:
            raise ValueError(f"patch weight has shape {tuple(weight.shape)}, expected {expected}")
        self.proj.weight.copy_(weight.reshape(c.width, -1))


class ConvStem(nn.Module):
    """Hybrid-ViT input: 3x3 convs + quick-GELU over each tubelet, max-pooled to one token per patch.

    A linear patch embedding must learn every shape at every offset inside its patch, so
    a small ViT trained from scratch on a CPU budget never learns shapes (the demo model's
    encoder stayed at chance on object kind; docs/demo_model.md). Shared conv filters see
    a shape wherever it sits, and max-pooling keeps the strongest response per patch.
    The tubelet's frames are stacked as channels, so the first conv already sees motion.
    Every op is 4-D or permutes at most 6-D, as XNNPACK requires; the convs stay fp32
    (the paper quantizes Linear and Embedding only), the token projection is a Linear.
    """

    def __init__(self, config: VideoEncoderConfig):
        super().__init__()
        self.config = config
        convs, channels = [], 3 * config.tubelet
        for out, stride in zip(config.stem_channels, config.stem_strides):
            convs.append(nn.Conv2d(channels, out, kernel_size=3, stride=stride, padding=1))
            channels = out
        self.convs = nn.ModuleList(convs)
        self.proj = nn.Linear(channels, config.width, bias=False)

    def forward(self, clip: Tensor) -> Tensor:
        # clip: [B, C, T, H, W] -> tokens: [B, T' * G * G, width], time-major like TubeletEmbedding
        c = self.config
        B, C, T, H, W = clip.shape
        t, steps = c.tubelet, T // c.tubelet
        x = clip.reshape(B, C, steps, t, H, W).permute(0, 2, 1, 3, 4, 5).reshape(B * steps, C * t, H, W)
        if c.upscale > 1:  # nearest, as a view + copy: no resize op for the backends to support
            u = c.upscale
            x = x[:, :, :, None, :, None].expand(B * steps, C * t, H, u, W, u).reshape(B * steps, C * t, H * u, W * u)
        for conv in self.convs:
            x = quick_gelu(conv(x))
        x = F.max_pool2d(x, kernel_size=c.patch_size // c.stem_stride)  # [B*T', C', G, G]
        x = x.flatten(2).transpose(1, 2).reshape(B, steps * c.num_patches, x.shape[1])
        return self.proj(x)


class EncoderBlock(nn.Module):
    """Pre-LayerNorm transformer block with quick-GELU MLP (CLIP's)."""

    def __init__(self, config: VideoEncoderConfig):
        super().__init__()
        d = config.width
        self.heads = config.heads
        self.ln_1 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.fc1 = nn.Linear(d, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, d)
        self.qkv_proj: FusedLinear | None = None  # q/k/v_proj as one, after fuse_projections()

    def fuse_projections(self) -> None:
        self.qkv_proj = fuse_siblings(self, ("q_proj", "k_proj", "v_proj"))

    def forward(self, x: Tensor) -> Tensor:
        # x: [B, N, D]
        B, N, D = x.shape
        h = self.ln_1(x)
        q, k, v = self.qkv_proj(h) if self.qkv_proj is not None else (self.q_proj(h), self.k_proj(h), self.v_proj(h))
        q = q.view(B, N, self.heads, -1).transpose(1, 2)  # [B, H, N, Dh]
        k = k.view(B, N, self.heads, -1).transpose(1, 2)
        v = v.view(B, N, self.heads, -1).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)  # [B, H, N, N]
        attn = scores.softmax(dim=-1) @ v  # [B, H, N, Dh]
        x = x + self.out_proj(attn.transpose(1, 2).reshape(B, N, D))
        return x + self.fc2(quick_gelu(self.fc1(self.ln_2(x))))


class VideoEncoder(nn.Module):
    """clip [1, 3, T, H, W] -> visual prefix [1, N_vis, decoder_dim] in decoder space."""

    def __init__(self, config: VideoEncoderConfig, decoder_dim: int):
        super().__init__()
        self.config = config
        d = config.width
        self.patch_embed = ConvStem(config) if config.stem_channels else TubeletEmbedding(config)
        self.class_embedding = nn.Parameter(torch.zeros(d))
        # Spatial positions are CLIP's (class + G*G); temporal positions are added per
        # time step, so imported image weights start from zero temporal offsets.
        self.position_embedding = nn.Parameter(torch.zeros(config.num_patches + 1, d))
        self.temporal_embedding = nn.Parameter(torch.zeros(config.time_steps, d))
        self.pre_layernorm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.blocks = nn.ModuleList(EncoderBlock(config) for _ in range(config.layers))
        self.post_layernorm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.projector = nn.Linear(d, decoder_dim)

    def features(self, clip: Tensor) -> Tensor:
        # clip: [B, 3, T, H, W] -> hidden states [B, 1 + T' * G * G, width] (pre post-LN)
        c = self.config
        B = clip.shape[0]
        patches = self.patch_embed(clip).view(B, c.time_steps, c.num_patches, c.width)
        patches = patches + self.position_embedding[1:] + self.temporal_embedding[:, None, :]
        cls = (self.class_embedding + self.position_embedding[0]).expand(B, 1, c.width)
        x = torch.cat([cls, patches.reshape(B, -1, c.width)], dim=1)
        x = self.pre_layernorm(x)
        for block in self.blocks:
            x = block(x)
        return x

    def pool(self, tokens: Tensor) -> Tensor:
        # tokens: [B, 1 + T' * G * G, width] -> [B, N_vis, width]
        c = self.config
        if c.pool == 1:
            return tokens
        B = tokens.shape[0]
        grid = tokens[:, 1:].reshape(B * c.time_steps, c.grid, c.grid, c.width).permute(0, 3, 1, 2)
        pooled = F.avg_pool2d(grid, kernel_size=c.pool)  # [B*T', width, G/p, G/p]
        pooled = pooled.flatten(2).transpose(1, 2).reshape(B, -1, c.width)
        return torch.cat([tokens[:, :1], pooled], dim=1)

    def forward(self, clip: Tensor) -> Tensor:
        return self.projector(self.pool(self.post_layernorm(self.features(clip))))
