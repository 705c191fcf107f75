"""Text-only decoder calls over clip captions: prompts fitted to the context, scripts parsed.

Prompts are built only with atom_runner.task_formats, the formats the demo model is
trained on; any other wording would be out of distribution for it.

Fitting: the decoder's context (prefix-free here) must hold BOS, the prompt and the
answer. A prompt that does not fit would be cut at its end by the Session, losing the
cue line ("script:") the model answers after, so captions are dropped instead: the
lowest-ranked ones for a script, every other one across the timeline for a summary or
an answer (coverage beats detail). The answer gets all the room left, at least the
manifest's decode_steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from atom_deploy.pipelines.captioning import clean_caption
from atom_runner.session import Session
from atom_runner.task_formats import SCRIPT_SEPARATOR, assembly_input, parse_script, qa_input, summary_input

Chooser = Callable[[int, int], list[int]]  # (captions available, how many to keep) -> indices


@dataclass(frozen=True)
class TextAnswer:
    text: str
    used: list[int]  # indices of the captions the prompt held, in prompt order
    prompt: str


def ranked(available: int, keep: int) -> list[int]:
    return list(range(keep))


def spread(available: int, keep: int) -> list[int]:
    """`keep` indices evenly over 0..available-1, first and last included, in order."""
    if keep >= available:
        return list(range(available))
    if keep == 1:
        return [0]
    return sorted({round(i * (available - 1) / (keep - 1)) for i in range(keep)})


def fitted_prompt(session: Session, captions: Sequence[str], build: Callable[[list[str]], str], choose: Chooser) -> tuple[str, list[int], int]:
    """(prompt, caption indices used, decode steps): the most captions whose prompt fits."""
    budget = session.max_context - 1 - session.decode_steps

    def attempt(keep: int) -> tuple[str, list[int], int]:
        used = choose(len(captions), keep)
        prompt = build([captions[i] for i in used])
        return prompt, used, len(session.tokenizer.encode(prompt))

    best = attempt(1)  # even one caption may not fit a tiny model: then the Session keeps its end (the cue) and warns
    low, high = 2, len(captions)
    while low <= high:  # binary search: tokenizing every candidate would be quadratic on long videos
        middle = (low + high) // 2
        candidate = attempt(middle)
        if candidate[2] <= budget:
            best, low = candidate, middle + 1
        else:
            high = middle - 1
    prompt, used, length = best
    steps = max(session.decode_steps, session.max_context - 1 - length)
    return prompt, used, steps


def ask_decoder(session: Session, captions: Sequence[str], build: Callable[[list[str]], str], choose: Chooser) -> TextAnswer:
    prompt, used, steps = fitted_prompt(session, [clean_caption(c) for c in captions], build, choose)
    # Answers are one line too: shown on a terminal, stored in JSON, parsed as a script.
    return TextAnswer(clean_caption(session.generate(prompt, steps=steps, truncate=True)), used, prompt)


def write_script(session: Session, captions: Sequence[str], request: str) -> TextAnswer:
    request = clean_caption(request)  # the format is line-based: a newline in a request would break it
    return ask_decoder(session, captions, lambda c: assembly_input(c, request), ranked)


def write_summary(session: Session, captions: Sequence[str]) -> TextAnswer:
    return ask_decoder(session, captions, summary_input, spread)


def write_answer(session: Session, captions: Sequence[str], question: str) -> TextAnswer:
    question = clean_caption(question)
    return ask_decoder(session, captions, lambda c: qa_input(c, question), spread)


def script_entries(text: str, num_clips: int) -> list[tuple[int, str]]:
    """The valid `clip <i>: <narration>` entries of a generated script, first mention wins.

    Lenient where parse_script is strict: a fixed-length decode can cut the last entry
    off, and one malformed entry should not throw away the good ones around it.
    """
    entries: list[tuple[int, str]] = []
    seen: set[int] = set()
    for raw in text.split(SCRIPT_SEPARATOR.strip()):
        try:
            parsed = parse_script(raw, num_clips)
        except ValueError:
            continue
        for index, narration in parsed:
            if index not in seen:
                seen.add(index)
                entries.append((index, narration))
    return entries
