"""Every `streamgan ...` command shown in a code block of the README and docs/ is one the CLI
takes: the subcommand exists and every option it uses parses (argparse, as `main` would), so the
pages cannot drift from the program: a renamed or removed option or command fails here the day it
happens. test_docs_run.py then runs them on small inputs."""

import re
import shlex
from pathlib import Path

import pytest

from streamgan.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def commands(page: Path) -> list[tuple[int, str]]:
    """(line number, command) of every `streamgan ...` line in the page's code blocks (indented by
    four spaces, or fenced), its trailing `  # comment` removed."""
    out, fenced, held = [], False, ""
    for i, line in enumerate(page.read_text().splitlines(), 1):
        if line.strip().startswith("```"):
            fenced = not fenced
            continue
        if not (fenced or line.startswith("    ")):
            continue
        text = held + line.strip().removeprefix("$ ")
        if text.endswith("\\"):  # continued on the next line
            held = text[:-1]
            continue
        held = ""
        for part in re.split(r"\s*(?:&&|;)\s*", text):
            part = re.split(r"\s{2,}#", part)[0].strip()
            if part.startswith("streamgan ") or part.startswith("python -m streamgan "):
                out.append((i, part.removeprefix("python -m ")))
    return out


CASES = [(page, n, cmd) for page in PAGES for n, cmd in commands(page)]


def test_the_pages_show_commands():
    assert len(CASES) >= 20 and {c.split()[1] for _, _, c in CASES} >= {"run", "build", "serve", "doctor"}


@pytest.mark.parametrize("page,line,command", CASES, ids=[f"{p.name}:{n}" for p, n, _ in CASES])
def test_a_shown_command_parses(page, line, command):
    argv = shlex.split(command)[1:]
    name = argv[0]
    assert name in (*COMMANDS, "run", "info"), f"{page.name}:{line}: no command {name!r}"
    try:
        build_parser(name).parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{page.name}:{line}: `{command}` does not parse (exit {exc.code})")
