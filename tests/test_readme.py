"""Every shell command of the README's quick start and tour runs, exits 0 and prints something.

The commands run verbatim through bash in a scratch folder where `artifacts` is the test
session's tiny int8 export and `.venv` and `runners` are this checkout's. Those in SKIPPED
are not run, each for the reason given there.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("## Quick start", "## A tour")
SKIPPED = {
    "./scripts/setup.sh": "sets up and exports the demo model: the session's tiny export stands in for its `artifacts`",
    "./scripts/test.sh": "runs this suite",
    "atom-deploy parity artifacts": "tests/test_export.py runs this command on the same tiny int8 export (exit 0, "
                                    "its printed table and its report); a second run here adds a minute, not a check",
    "atom-deploy device": "needs a phone; tests/test_device.py runs the device commands through the adb stand-in",
}


def readme_commands() -> list[str]:
    """The lines of the fenced bash blocks under SECTIONS, comments stripped, in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands = []
    for section in re.split(r"^(?=## )", text, flags=re.M):
        if section.startswith(SECTIONS):
            for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
                commands += [_strip_comment(line) for line in block.splitlines() if line.strip()]
    return commands


def _strip_comment(line: str) -> str:
    # A comment starts at `  #` outside quotes; `$'...'` prompts hold no '#'.
    return re.sub(r"\s+#(?=(?:[^'\"]*['\"][^'\"]*['\"])*[^'\"]*$).*", "", line).strip()


def skip_reason(command: str) -> str | None:
    return next((why for key, why in SKIPPED.items() if key in command), None)


def test_the_readme_has_commands_to_check():
    commands = readme_commands()
    assert len(commands) >= 10 and all(c.startswith((".venv/bin/", "./scripts/")) for c in commands), commands


@pytest.fixture(scope="module")
def scratch(tiny_exports, host_runner, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("readme")
    (folder / "artifacts").symlink_to(tiny_exports["int8"])
    (folder / ".venv").symlink_to(REPO / ".venv")
    (folder / "runners").symlink_to(REPO / "runners")
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_runs_and_prints(command, scratch):
    """In README order: the tour's later commands use what its earlier ones wrote."""
    if (why := skip_reason(command)) is not None:
        pytest.skip(why)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = subprocess.run(["bash", "-c", command], cwd=scratch, capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, f"{command}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    assert out.stdout.strip(), f"{command} printed nothing\n{out.stderr[-2000:]}"
