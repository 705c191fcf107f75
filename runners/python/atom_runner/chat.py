"""Chat prompts: messages -> the text the checkpoint's own chat template renders.

Two routes to the same text, both from the manifest's `chat` record:

- `render_template`: the Jinja template itself, rendered as transformers'
  `apply_chat_template` renders it (sandboxed, trim_blocks + lstrip_blocks, loop controls,
  `tojson`, `raise_exception`, `strftime_now`, the special tokens as variables). The Python
  runner uses this one.
- `compose_parts`: the template precompiled at export into a default system block, each
  role's prefix and suffix, and the generation prompt (export/chat_parts.py checks that the
  two routes agree before it writes the parts). The C++ runner has no Jinja; it composes
  the same text from these strings (runners/android/src/chat.cpp).

Either way the text is then tokenized with special tokens recognised and nothing added,
as `apply_chat_template(tokenize=True)` does: the template carries its own BOS, if any.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from atom_runner.errors import AtomError
from atom_runner.schema import Key
from atom_runner.text import check_text

ROLES = ("system", "user", "assistant")


def check_messages(messages: Any) -> list[dict[str, str]]:
    """[{"role": one of ROLES, "content": text}, ...], at least one; anything else is an error."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise AtomError("chat expects a non-empty list of messages ({'role': ..., 'content': ...})")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise AtomError(f"message {i} must be an object with exactly 'role' and 'content'")
        if message["role"] not in ROLES:
            raise AtomError(f"message {i} has role {message['role']!r}; valid: {list(ROLES)}")
        out.append({"role": message["role"], "content": check_text(message["content"], f"message {i} content")})
    return out


def render_template(chat: dict, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str):
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, indent=None, **kw: json.dumps(x, ensure_ascii=False, indent=indent, **kw)
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        template = env.from_string(chat[Key.CHAT_TEMPLATE])
        return template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                               **chat[Key.CHAT_SPECIAL_TOKENS])
    except jinja2.exceptions.TemplateError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise AtomError(f"the chat template failed: {first}") from None


def compose_parts(parts: dict, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
    """The precompiled route: what the C++ runner does, in Python (tests and the export check)."""
    roles = parts[Key.CHAT_ROLES]
    text = "" if messages[0]["role"] == "system" else parts[Key.CHAT_DEFAULT_SYSTEM]
    for message in messages:
        role = roles[message["role"]]
        text += role[Key.CHAT_PREFIX] + message["content"] + role[Key.CHAT_SUFFIX]
    return text + (parts[Key.CHAT_GENERATION_PROMPT] if add_generation_prompt else "")
