"""Text prompts the way the checkpoint expects them: its BOS rule, every EOS id, its chat
template, and what happens when a prompt does not fit the exported context.

The rules live in the manifest (schema.Key.ADD_BOS, EOS_IDS, CHAT), written at export from
the checkpoint's own files (atom_deploy/weights/hf_conventions.py), so both runners follow
the same ones. The C++ runner mirrors this file in runners/android/src/chat.cpp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atom_runner.chat import check_messages, render_template
from atom_runner.errors import AtomError
from atom_runner.schema import Key


@dataclass(frozen=True)
class TextConventions:
    bos_id: int
    add_bos: bool  # generate: BOS before the prompt, as the tokenizer's post-processor does
    eos_ids: tuple[int, ...]  # any of them ends a generation
    pad_id: int
    chat: dict[str, Any] | None  # the manifest's chat record; None: the checkpoint has no template

    @classmethod
    def from_manifest(cls, data: dict) -> "TextConventions":
        decode = data[Key.DECODE]
        # Manifests from before issue 23 carry neither key; these defaults are what runners did then.
        eos_ids = tuple(decode.get(Key.EOS_IDS, [decode[Key.EOS_ID]]))
        return cls(decode[Key.BOS_ID], decode.get(Key.ADD_BOS, True), eos_ids, decode[Key.PAD_ID], data.get(Key.CHAT))

    @property
    def special_ids(self) -> set[int]:
        """Ids the decoded text never shows."""
        return {self.bos_id, self.pad_id, *self.eos_ids}

    def trim(self, tokens: list[int]) -> list[int]:
        """Tokens before the first EOS, whichever of the EOS ids it is."""
        for i, token in enumerate(tokens):
            if token in self.eos_ids:
                return list(tokens[:i])
        return list(tokens)

    def chat_text(self, messages: Any) -> str:
        if self.chat is None:
            raise AtomError("this export has no chat template (the checkpoint had none): use generate with a plain prompt")
        return render_template(self.chat, check_messages(messages))


def fit_prompt(ids: list[int], room: int, truncate: bool, max_context: int) -> list[int]:
    """The prompt when it fits in `room` tokens; else its last `room` tokens with `truncate`
    (the end holds the question and the cue the model answers), else a one-line error."""
    if len(ids) <= room:
        return ids
    if not truncate:
        raise AtomError(
            f"the prompt has {len(ids)} tokens but {room} fit the exported context of {max_context} beside "
            f"the decode steps: shorten it, export with a larger --max-context, or pass --truncate to keep its last {room}"
        )
    return ids[len(ids) - room:]
