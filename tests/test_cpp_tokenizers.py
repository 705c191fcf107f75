"""The C++ tokenizers (byte-level BPE for the decoder, WordPiece for MiniLM) against HF `tokenizers`,
on the exported tokenizer.json files, over a few hundred strings including non-ASCII."""

from __future__ import annotations

import random

import pytest
from tokenizers import Tokenizer

from test_cpp_common import run_json

BASE = [
    "a red car", "A dog in the park!", "summary: the cat sat on the mat.", "It's 5 o'clock; they're here, we've won.",
    "I'll say 'hello' and he'd go", "Don't STOP", "  leading spaces", "trailing spaces   ", "multiple   inner   spaces",
    "tabs\tand\nnew\r\nlines", "\n\nparagraph\n\n", "numbers 12345 and 3.14159 and 1,000,000", "x2y3z4",
    "punctuation!!! ??? ... ---", "email@example.com https://example.org/path?q=1&r=2", "(parens) [brackets] {braces}",
    "Café naïve résumé façade", "Ünïcödé ÀÉÎÕÜ ßtraße", "Ελληνικά γράμματα", "Русский текст с буквами",
    "日本語のテキスト", "中文字符测试", "한국어 텍스트", "emoji 😀🎉👍 mixed", "arabic العربية", "hindi हिन्दी",
    "thai ภาษาไทย", "combining e\u0301 a\u0308", "non\u00a0breaking\u2003em space", "zero\u200bwidth",
    "control\x07bell\x1bescape", "fullwidth ＡＢＣ１２３", "superscript x² ½ ⅓ ①", "math ∑∫√∞ ≠ ≤", "currency $€£¥₹",
    "quotes “curly” ‘single’ «guillemets»", "dash – em — minus −", "ellipsis… bullet •", "İstanbul ı I", "ǅ ǈ ǋ titlecase",
    "ℌ ℑ ℜ letterlike", "Ⅻ roman", "tab\t\ttabs", " ", "a", "'", "''", "'s", "'re'", "x 'll",
]


def corpus() -> list[str]:
    rng = random.Random(0)
    words = [w for s in BASE for w in s.split()] + ["the", "video", "shows", "a", "person", "walking", "."]
    seps = [" ", "  ", "\t", "\n", "", " ", " ", ", ", "! "]
    out = [s for s in BASE if s.strip()]
    while len(out) < 320:
        n = rng.randint(1, 12)
        out.append("".join(rng.choice(words) + rng.choice(seps) for _ in range(n)).rstrip("\n"))
    return out


@pytest.fixture(scope="module")
def texts():
    return corpus()


def cpp_ids(binary, art, which, texts):
    ids = []
    for start in range(0, len(texts), 80):
        ids += run_json(binary, "tokenize", "--artifacts", str(art), which, "--", *texts[start : start + 80])["ids"]
    return ids


def test_decoder_bpe_matches_hf(host_runner, tiny_exports, texts):
    art = tiny_exports["int8"] / "executorch"
    hf = Tokenizer.from_file(str(art / "decoder_tokenizer.json"))
    got = cpp_ids(host_runner, art, "--decoder", texts)
    mismatches = [(t, g, hf.encode(t, add_special_tokens=False).ids) for t, g in zip(texts, got)
                  if g != hf.encode(t, add_special_tokens=False).ids]
    print(f"BPE: {len(texts) - len(mismatches)}/{len(texts)} equal")
    assert mismatches == []


def test_decoder_bpe_special_tokens_and_roundtrip(host_runner, tiny_exports):
    art = tiny_exports["int8"] / "executorch"
    hf = Tokenizer.from_file(str(art / "decoder_tokenizer.json"))
    text = "a<|end_of_text|>b <|begin_of_text|>"
    assert cpp_ids(host_runner, art, "--decoder", [text])[0] == hf.encode(text, add_special_tokens=False).ids


@pytest.mark.slow
def test_minilm_wordpiece_matches_hf(host_runner, tiny_exports, texts):
    from atom_runner.text import MiniLMTokenizer

    art = tiny_exports["int8"] / "executorch"
    py = MiniLMTokenizer(art / "minilm_tokenizer.json", 256)
    long_text = " ".join(["word"] * 400)  # truncation to max_seq_length with [SEP] kept
    all_texts = texts + [long_text]
    got = cpp_ids(host_runner, art, "--minilm", all_texts)
    mismatches = []
    for t, g in zip(all_texts, got):
        ids, mask = py.batch([t])
        want = [int(i) for i, m in zip(ids[0], mask[0]) if m]
        if g != want:
            mismatches.append((t, g, want))
    print(f"WordPiece: {len(all_texts) - len(mismatches)}/{len(all_texts)} equal")
    assert mismatches == []
    assert len(got[-1]) == 256 and got[-1][-1] == 102


def _with_decoder_tokenizer(src, dst, edit):
    """A copy of the artifact folder `src` whose decoder tokenizer.json went through `edit`
    (a dict -> None function), its manifest record re-hashed to match."""
    import hashlib
    import json
    import shutil

    shutil.copytree(src, dst)
    path = dst / "decoder_tokenizer.json"
    tok = json.loads(path.read_text(encoding="utf-8"))
    edit(tok)
    path.write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")
    manifest = json.loads((dst / "manifest.json").read_text())
    for record in manifest["tokenizers"].values():
        if record["file"] == path.name:
            record["sha256"], record["bytes"] = hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


def test_decoder_bpe_reads_gguf_converted_no_op_settings(host_runner, tiny_exports, texts, tmp_path):
    # What tokenizers writes for a GGUF-converted byte-level vocabulary (SmolLM2): an empty
    # normalizer Sequence, and byte fallback with no <0xXX> tokens to fall back to. Both
    # change nothing, so the C++ tokenizer must take them and still equal HF's ids.
    def gguf_style(tok):
        tok["normalizer"] = {"type": "Sequence", "normalizers": []}
        tok["model"]["byte_fallback"] = True

    art = _with_decoder_tokenizer(tiny_exports["int8"] / "executorch", tmp_path / "gguf", gguf_style)
    hf = Tokenizer.from_file(str(art / "decoder_tokenizer.json"))
    got = cpp_ids(host_runner, art, "--decoder", texts)
    assert got == [hf.encode(t, add_special_tokens=False).ids for t in texts]


def test_decoder_bpe_refuses_byte_fallback_it_cannot_follow(host_runner, tiny_exports, tmp_path):
    import subprocess

    def with_byte_tokens(tok):
        tok["model"]["byte_fallback"] = True
        tok["model"]["vocab"]["<0x41>"] = len(tok["model"]["vocab"])

    art = _with_decoder_tokenizer(tiny_exports["int8"] / "executorch", tmp_path / "bytes", with_byte_tokens)
    proc = subprocess.run([str(host_runner), "tokenize", "--artifacts", str(art), "--decoder", "a"],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "byte_fallback with <0xXX> tokens is not supported" in proc.stderr
