"""atom-deploy generate: text-only generation on the same decoder (scripts, summaries, answers)."""

from __future__ import annotations

import argparse

from atom_deploy.cli.runner_args import add_session_args, emit, open_session, show_warnings_as_notes
from atom_runner.errors import AtomError
from atom_runner.task_formats import assembly_input, qa_input, summary_input


def _shown(prompt: str) -> str:
    return prompt.replace("\n", "\\n")


# Shown by `generate --help`, built from the runner's own formats: the decoder answers what
# it was trained on; a free-form prompt gets words of the right vocabulary and no sense.
FORMATS = f"""prompt formats (atom_runner/task_formats.py; lines joined by newlines: $'...' in bash):
  summary:   {_shown(summary_input(["CAPTION", "CAPTION"]))}
  question:  {_shown(qa_input(["CAPTION"], "how many clips show a red object?"))}
  script:    {_shown(assembly_input(["CAPTION"], "a reel of the red objects"))}
example:
  atom-deploy generate --artifacts artifacts $'{_shown(summary_input(["a small red square moves left on a striped blue background"]))}'
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help=__doc__.split(": ", 1)[1], epilog=FORMATS,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_session_args(p)
    p.add_argument("--steps", type=int, default=None, help="decode steps (default: the manifest's)")
    p.add_argument("--beam", type=int, default=1, help="beam width (default 1: greedy)")
    p.add_argument("--chat", action="store_true",
                   help="the prompt is a user message, formatted by the checkpoint's chat template (exported from "
                        "its folder); the answer is the assistant's reply")
    p.add_argument("--system", default=None, help="with --chat: a system message first (else the template's default)")
    p.add_argument("--truncate", action="store_true",
                   help="a prompt longer than the exported context keeps its last tokens (default: an error)")
    p.add_argument("prompt", help="the prompt, in one of the formats below (or a chat message with --chat)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    show_warnings_as_notes()
    if args.system is not None and not args.chat:
        raise AtomError("--system needs --chat")
    with open_session(args) as session:
        if args.chat:
            system = [] if args.system is None else [{"role": "system", "content": args.system}]
            messages = [*system, {"role": "user", "content": args.prompt}]
            text = session.chat(messages, steps=args.steps, beam=args.beam, truncate=args.truncate)
        else:
            text = session.generate(args.prompt, steps=args.steps, beam=args.beam, truncate=args.truncate)
    emit(args, {"prompt": args.prompt, "text": text}, text)
    return 0
