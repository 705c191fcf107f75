"""HF checkpoint import proven against transformers itself, on tiny random checkpoints.

Every parameter (layer-norm weights included) is randomized before saving, so a swapped
or skipped tensor changes the outputs far beyond the tolerances.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

# Set before transformers imports huggingface_hub, which reads it once: never the network.
os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlamaForCausalLM

from atom_deploy.config import VideoEncoderConfig
from atom_deploy.models import Decoder, VideoEncoder
from atom_deploy.models.video_encoder import TubeletEmbedding
from atom_deploy.weights import (
    decoder_config_from_llama,
    encoder_config_from_clip,
    llama_tokenizer_path,
    load_clip_vision,
    load_llama,
)
from atom_runner.errors import AtomError

TOL = 1e-4
PROMPT_LEN = 40  # beyond original_max_position_embeddings=32: llama3 scaling matters


def randomize(model: nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if param.dim() >= 2:
                param.copy_(noise / param.shape[-1] ** 0.5)
            else:  # 1-D weights are norm scales (around 1); biases, class embedding around 0
                param.copy_(noise * 0.2 + (1.0 if name.endswith("weight") else 0.0))


def rewrite_weights(src: Path, dst: Path, edit) -> Path:
    """Copy an HF folder and apply `edit(tensors)` to its model.safetensors."""
    shutil.copytree(src, dst)
    tensors = load_file(str(dst / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(dst / "model.safetensors"))
    return dst


# --- CLIP vision -----------------------------------------------------------------------

CLIP_VISION = dict(image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                   intermediate_size=128)


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory) -> tuple[Path, CLIPVisionModel]:
    model = CLIPVisionModel(CLIPVisionConfig(**CLIP_VISION)).eval()
    randomize(model, seed=0)
    folder = tmp_path_factory.mktemp("clip")
    model.save_pretrained(folder)
    return folder, model


def clip_encoder(folder: Path, **overrides) -> VideoEncoder:
    config = encoder_config_from_clip(folder, num_frames=2, tubelet=2)
    config = dataclasses.replace(config, **overrides)
    encoder = VideoEncoder(config, decoder_dim=32).eval()
    with torch.no_grad():
        encoder.temporal_embedding.fill_(3.0)  # must come back zeroed
    return encoder


def assert_matches_hf_clip(encoder: VideoEncoder, hf: CLIPVisionModel) -> None:
    image = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    clip = image.unsqueeze(2).expand(-1, -1, 2, -1, -1)  # two identical frames = one tubelet
    with torch.no_grad():
        expected = hf(pixel_values=image)
        ours = encoder.features(clip)
    assert ours.shape == expected.last_hidden_state.shape == (1, 17, 64)
    assert (ours - expected.last_hidden_state).abs().max() <= TOL
    pooled = encoder.post_layernorm(ours[:, 0])
    assert (pooled - expected.pooler_output).abs().max() <= TOL


def test_clip_config_from_hf(clip_folder):
    config = encoder_config_from_clip(clip_folder[0])
    assert (config.width, config.layers, config.heads, config.patch_size, config.image_size) == (64, 2, 4, 8, 32)
    assert (config.num_frames, config.tubelet, config.pool) == (6, 2, 1)  # grid 4 is already <= 4 x 4


def test_clip_vision_matches_transformers_per_frame(clip_folder):
    folder, hf = clip_folder
    encoder = clip_encoder(folder)
    projector = encoder.projector.weight.clone()
    load_clip_vision(folder, encoder)
    assert_matches_hf_clip(encoder, hf)
    assert torch.equal(encoder.temporal_embedding, torch.zeros_like(encoder.temporal_embedding))
    assert torch.equal(encoder.projector.weight, projector)  # not in CLIP: untouched


def test_clip_model_layout_with_text_tower(clip_folder, tmp_path):
    # CLIPModel (openai/clip-vit-*): vision_model.* beside text_model.*, logit_scale, projections.
    folder, hf = clip_folder
    full = CLIPModel(CLIPConfig(vision_config=CLIP_VISION, projection_dim=16, text_config=dict(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, vocab_size=100,
        bos_token_id=0, eos_token_id=1, pad_token_id=1)))
    full.vision_model.load_state_dict(hf.state_dict())  # transformers 5 saves CLIPVisionModel unprefixed
    full.save_pretrained(tmp_path / "full")
    assert any(k.startswith("text_model.") for k in load_file(str(tmp_path / "full" / "model.safetensors")))
    encoder = clip_encoder(tmp_path / "full")
    load_clip_vision(tmp_path / "full", encoder)
    assert_matches_hf_clip(encoder, hf)


@pytest.mark.parametrize("field, override", [("num_hidden_layers", {"layers": 3}), ("hidden_size", {"width": 32}),
                                             ("num_attention_heads", {"heads": 8}), ("patch_size", {"patch_size": 4}),
                                             ("image_size", {"image_size": 64})])
def test_clip_config_mismatch_names_the_field(clip_folder, field, override):
    encoder = clip_encoder(clip_folder[0], **override)
    with pytest.raises(AtomError, match=field):
        load_clip_vision(clip_folder[0], encoder)


def _extra(t): t["encoder.layers.0.self_attn.extra.weight"] = torch.zeros(2)
def _missing(t): del t["encoder.layers.1.mlp.fc2.bias"]
def _shape(t): t["embeddings.position_embedding.weight"] = torch.zeros(16, 64)


@pytest.mark.parametrize("edit, tensor", [
    (_extra, "encoder.layers.0.self_attn.extra.weight"),
    (_missing, "encoder.layers.1.mlp.fc2.bias"),
    (_shape, "embeddings.position_embedding.weight"),
])
def test_clip_bad_tensors_name_the_tensor(clip_folder, tmp_path, edit, tensor):
    folder = rewrite_weights(clip_folder[0], tmp_path / "bad", edit)
    encoder = clip_encoder(clip_folder[0])
    before = encoder.state_dict()
    with pytest.raises(AtomError, match=tensor):
        load_clip_vision(folder, encoder)
    after = encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # nothing half-written


# --- Tubelet patch embedding -----------------------------------------------------------

def test_tubelet_equals_conv3d():
    config = VideoEncoderConfig(image_size=32, num_frames=6, patch_size=8, tubelet=2, width=64, layers=1, heads=4)
    conv = nn.Conv3d(3, 64, kernel_size=(2, 8, 8), stride=(2, 8, 8), bias=False)
    embed = TubeletEmbedding(config)
    embed.load_conv_weight(conv.weight.detach())
    clip = torch.randn(2, 3, 6, 32, 32)
    with torch.no_grad():
        expected = conv(clip)  # [B, W, T', G, G]
        expected = expected.permute(0, 2, 3, 4, 1).reshape(2, 3 * 16, 64)  # time-major tokens
        assert (embed(clip) - expected).abs().max() <= 1e-5


def test_tubelet_inflated_conv2d_equals_image_conv():
    config = VideoEncoderConfig(image_size=32, num_frames=4, patch_size=8, tubelet=2, width=64, layers=1, heads=4)
    conv = nn.Conv2d(3, 64, kernel_size=8, stride=8, bias=False)
    embed = TubeletEmbedding(config)
    embed.load_conv_weight(conv.weight.detach())
    frames = torch.randn(1, 3, 2, 32, 32)
    clip = frames.repeat_interleave(2, dim=2)  # each frame twice: one tubelet per frame
    with torch.no_grad():
        tokens = embed(clip).view(1, 2, 16, 64)
        for step in range(2):
            expected = conv(frames[:, :, step]).flatten(2).transpose(1, 2)  # [1, G*G, W]
            assert (tokens[:, step] - expected).abs().max() <= 1e-5


# --- Llama -----------------------------------------------------------------------------

@pytest.fixture(scope="module", params=[True, False], ids=["tied", "untied"])
def llama_folder(request, tmp_path_factory) -> tuple[Path, LlamaForCausalLM]:
    config = LlamaConfig(
        vocab_size=256, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=160, max_position_embeddings=128, tie_word_embeddings=request.param,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 32},
        bos_token_id=1, eos_token_id=[2, 3], pad_token_id=None,
    )
    model = LlamaForCausalLM(config).eval()
    randomize(model, seed=2)
    folder = tmp_path_factory.mktemp("llama")
    model.save_pretrained(folder)
    return folder, model


def loaded_decoder(folder: Path) -> Decoder:
    decoder = Decoder(decoder_config_from_llama(folder, max_context=64)).eval()
    load_llama(folder, decoder)
    return decoder


def prompt_logits(decoder: Decoder, tokens: torch.Tensor) -> torch.Tensor:
    zeros = torch.zeros(decoder.cache_shape(1))
    with torch.no_grad():
        logits, _, _ = decoder.forward_explicit(decoder.embed(tokens), torch.arange(tokens.shape[1]), zeros, zeros.clone())
    return logits


@pytest.fixture(scope="module")
def prompt() -> torch.Tensor:
    return torch.randint(0, 256, (1, PROMPT_LEN), generator=torch.Generator().manual_seed(3))


def test_llama_config_from_hf(llama_folder):
    folder, hf = llama_folder
    config = decoder_config_from_llama(folder, max_context=64)
    assert (config.vocab_size, config.dim, config.layers, config.heads, config.kv_heads) == (256, 64, 2, 4, 2)
    assert (config.rope_scaling_factor, config.rope_original_max_positions) == (8.0, 32)
    assert config.tie_embeddings == hf.config.tie_word_embeddings
    assert (config.bos_id, config.eos_id, config.pad_id) == (1, 2, 2)  # eos list -> first; pad -> eos


def test_llama_legacy_rope_scaling_layout(llama_folder, tmp_path):
    # transformers 4 / hub Llama 3.2 files: rope_scaling plus a top-level rope_theta.
    data = json.loads((llama_folder[0] / "config.json").read_text())
    rope = data.pop("rope_parameters")
    data["rope_theta"] = rope.pop("rope_theta")
    data["rope_scaling"] = rope
    (tmp_path / "config.json").write_text(json.dumps(data))
    legacy = decoder_config_from_llama(tmp_path, max_context=64)
    assert legacy == decoder_config_from_llama(llama_folder[0], max_context=64)


def test_llama_prompt_matches_transformers(llama_folder, prompt):
    folder, hf = llama_folder
    decoder = loaded_decoder(folder)
    with torch.no_grad():
        expected = hf(prompt).logits[:, -1]
    assert (prompt_logits(decoder, prompt) - expected).abs().max() <= TOL
    # The comparison is sensitive to llama3 scaling: without it the logits move well past TOL.
    unscaled = Decoder(dataclasses.replace(decoder.config, rope_scaling_factor=0.0)).eval()
    unscaled.load_state_dict(decoder.state_dict())
    assert (prompt_logits(unscaled, prompt) - expected).abs().max() > 100 * TOL


def test_llama_step_by_step_matches_transformers(llama_folder, prompt):
    folder, hf = llama_folder
    decoder = loaded_decoder(folder)
    with torch.no_grad():
        expected = hf(prompt).logits[0]  # [S, V]
        k = torch.zeros(decoder.cache_shape(1))
        v = torch.zeros(decoder.cache_shape(1))
        for pos in range(PROMPT_LEN):
            logits, k, v = decoder.forward_explicit(decoder.embed(prompt[:, pos:pos + 1]), torch.tensor([pos]), k, v)
            assert (logits[0] - expected[pos]).abs().max() <= TOL, f"position {pos}"


def _tied_head_differs(t): t["lm_head.weight"] = torch.zeros_like(t["model.embed_tokens.weight"])
def _llama_extra(t): t["model.layers.0.mlp.extra.weight"] = torch.zeros(2)
def _llama_missing(t): del t["model.layers.1.post_attention_layernorm.weight"]
def _llama_shape(t): t["model.norm.weight"] = torch.zeros(32)


@pytest.mark.parametrize("edit, tensor", [
    (_llama_extra, "model.layers.0.mlp.extra.weight"),
    (_llama_missing, "model.layers.1.post_attention_layernorm.weight"),
    (_llama_shape, "model.norm.weight"),
])
def test_llama_bad_tensors_name_the_tensor(llama_folder, tmp_path, edit, tensor):
    folder = rewrite_weights(llama_folder[0], tmp_path / "bad", edit)
    with pytest.raises(AtomError, match=tensor.replace(".", r"\.")):
        loaded_decoder(folder)


def test_llama_untied_head_missing_and_tied_head_mismatch(llama_folder, tmp_path):
    folder, hf = llama_folder
    if hf.config.tie_word_embeddings:
        bad = rewrite_weights(folder, tmp_path / "bad", _tied_head_differs)
    else:
        bad = rewrite_weights(folder, tmp_path / "bad", lambda t: t.pop("lm_head.weight"))
    with pytest.raises(AtomError, match="lm_head.weight"):
        loaded_decoder(bad)


def test_llama_config_mismatch_names_the_field(llama_folder):
    folder = llama_folder[0]
    config = decoder_config_from_llama(folder, max_context=64)
    wrong = Decoder(dataclasses.replace(config, rope_scaling_factor=32.0))
    with pytest.raises(AtomError, match="factor"):
        load_llama(folder, wrong)


def test_llama_tokenizer_path(tmp_path):
    with pytest.raises(AtomError, match="tokenizer.json"):
        llama_tokenizer_path(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{}")
    assert llama_tokenizer_path(tmp_path) == tmp_path / "tokenizer.json"
