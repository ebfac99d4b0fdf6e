"""The code blocks of README.md and docs/*.md, and what each one promises.

A fenced block whose language is ``python``, ``sh`` or ``js`` is an example, and the
suite runs it (tests/test_docs.py). An HTML comment on the line before a block may say
otherwise:

- ``<!-- not run: <why> -->``: not run; the reason is required (a block that changes
  the machine, say, or one that is the test command itself);
- ``<!-- run: server -->``: a command that starts a server: it must print its ready
  line, then it is stopped.

Blocks of other languages (output, configuration files, JSON) are shown, not run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNNABLE = ("python", "sh", "js")
_FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>[\w-]*)\n(?P<code>.*?)^(?P=indent)```", re.S | re.M
)
_DIRECTIVE = re.compile(r"<!--\s*(?P<kind>not run|run):\s*(?P<text>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    language: str
    code: str
    directive: str | None  # "not run", "run" or None
    note: str  # the reason (not run) or the mode (run)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.language in RUNNABLE and self.directive != "not run"

    @property
    def serves(self) -> bool:
        return self.directive == "run" and self.note == "server"


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks_of(path: Path) -> list[Block]:
    text = path.read_text()
    found = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        directive = _DIRECTIVE.search(before)
        indent = len(match.group("indent"))
        code = "\n".join(line[indent:] for line in match.group("code").splitlines())
        found.append(
            Block(
                path=path,
                line=text[: match.start()].count("\n") + 1,
                language=match.group("lang"),
                code=code + "\n",
                directive=directive.group("kind") if directive else None,
                note=directive.group("text") if directive else "",
            )
        )
    return found
