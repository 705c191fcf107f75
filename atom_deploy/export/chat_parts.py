"""Precompile a chat template into strings the C++ runner can compose (it has no Jinja).

Rendering the template on marker contents splits it into a default system block (what the
template puts first when the conversation does not open with a system message), each
role's prefix and suffix around the content, and the generation prompt. The parts are kept
only if composing them gives exactly the template's text on a set of conversations
(roles in every order, empty, multi-line and space-padded contents); a template that
branches on content, position or date does not decompose, and the export then writes no
parts: the Python runner still renders it, the C++ runner says it cannot.
"""

from __future__ import annotations

from typing import Any

from atom_runner.chat import ROLES, compose_parts, render_template
from atom_runner.errors import AtomError
from atom_runner.schema import Key

MARK_A, MARK_B = "\u2063ATOM-A\u2063", "\u2063ATOM-B\u2063"  # invisible separators: no template edits these

CHECK_CONVERSATIONS = (
    [("user", "What is the capital of France?")],
    [("system", "Be brief."), ("user", "Hi")],
    [("system", "S"), ("user", "a\nb"), ("assistant", "  padded  "), ("user", "")],
    [("user", "one"), ("assistant", "two"), ("user", "three")],
    [("assistant", "I start."), ("user", "ok")],
)


def precompile(chat: dict[str, Any]) -> dict[str, Any] | None:
    """The parts, or None when the template does not decompose into them."""
    try:
        parts = _split(chat)
    except (AtomError, ValueError):
        return None
    for conversation in CHECK_CONVERSATIONS:
        messages = [{"role": r, "content": c} for r, c in conversation]
        for generation in (True, False):
            try:
                expected = render_template(chat, messages, generation)
            except AtomError:
                return None
            if compose_parts(parts, messages, generation) != expected:
                return None
    return parts


def _split(chat: dict[str, Any]) -> dict[str, Any]:
    def render(pairs: list[tuple[str, str]], generation: bool = False) -> str:
        return render_template(chat, [{"role": r, "content": c} for r, c in pairs], generation)

    def around(text: str, mark: str) -> tuple[str, str]:
        before, found, after = text.partition(mark)
        if not found or mark in after:
            raise ValueError("the content does not appear exactly once")
        return before, after

    opening = render([("system", MARK_A)])
    roles = {"system": dict(zip((Key.CHAT_PREFIX, Key.CHAT_SUFFIX), around(opening, MARK_A)))}
    for role in ROLES[1:]:
        both = render([("system", MARK_A), (role, MARK_B)])
        if not both.startswith(opening):
            raise ValueError("a later message changes what came before it")
        roles[role] = dict(zip((Key.CHAT_PREFIX, Key.CHAT_SUFFIX), around(both[len(opening):], MARK_B)))
    user = roles["user"]
    lone_user = render([("user", MARK_B)])
    tail = user[Key.CHAT_PREFIX] + MARK_B + user[Key.CHAT_SUFFIX]
    if not lone_user.endswith(tail):
        raise ValueError("a first user message is wrapped differently")
    pair = [("system", MARK_A), ("user", MARK_B)]
    closed = render(pair)
    prompted = render(pair, True)
    if not prompted.startswith(closed):
        raise ValueError("the generation prompt changes what came before it")
    return {
        Key.CHAT_DEFAULT_SYSTEM: lone_user[: len(lone_user) - len(tail)],
        Key.CHAT_ROLES: roles,
        Key.CHAT_GENERATION_PROMPT: prompted[len(closed):],
    }
