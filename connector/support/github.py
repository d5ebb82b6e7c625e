"""GitHub Actions workflow commands and the job summary, for `--format github`.

Annotations are `::error file=F,line=L,col=C,title=T::message` lines on stdout
(docs.github.com/actions/reference/workflow-commands-for-github-actions); the job summary is markdown appended to
the file named by $GITHUB_STEP_SUMMARY. Outside Actions (the variable unset) no summary is written.
"""

from __future__ import annotations

import os
from pathlib import Path

from connector.support.redact import redact


def data(text: str) -> str:
    """Escape a message: newlines and % would end or corrupt the command."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def prop(text: str) -> str:
    """Escape a property value: also `:` and `,`, which separate properties."""
    return data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, message: str, *, title: str, file: str | None = None, line: int = 0,
               column: int = 0) -> str:
    """One workflow command; level is error, warning or notice."""
    props = []
    if file:
        props.append(f"file={prop(file)}")
        if line:
            props += [f"line={line}", f"col={column or 1}"]
    props.append(f"title={prop(title)}")
    return f"::{level} {','.join(props)}::{data(message)}"


def append_summary(markdown: str) -> Path | None:
    """Append to the job summary when running in GitHub Actions; the file it went to, or None outside Actions."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as f:
        f.write(redact(markdown.rstrip("\n")) + "\n\n")
    return path


# GitHub shows at most 10 annotations of each level (error, warning, notice) per step and drops the rest without a
# word (docs/problem-matchers.md in actions/toolkit: also 50 per job). Past that, a finding is a plain log line.
ANNOTATIONS_PER_LEVEL = 10


class Capped:
    """Annotations within GitHub's cap, for every command's `--format github` (drift, validate): the first
    ANNOTATIONS_PER_LEVEL of each level are annotations, each further one a plain log line, after a notice (in the
    last notice's place) that counts what was not annotated. `add` each finding, then `lines()`."""

    def __init__(self, command: str) -> None:
        self.command = command
        self._annotations: list[str] = []
        self._shown = {"error": 0, "warning": 0, "notice": 0}
        self._unshown = {"error": 0, "warning": 0, "notice": 0}
        self._later: list[str] = []

    def add(self, level: str, message: str, *, title: str, file: str | None = None, line: int = 0,
            column: int = 0) -> None:
        room = ANNOTATIONS_PER_LEVEL - (1 if level == "notice" else 0)  # the counting notice takes the last place
        if self._shown[level] < room:
            self._shown[level] += 1
            self._annotations.append(annotation(level, message, title=title, file=file, line=line, column=column))
            return
        self._unshown[level] += 1
        where = f"{file}:{line}:{column or 1}: " if file and line else f"{file}: " if file else ""
        self._later.append(f"{level}: {where}{title}: " + message.replace("\r", " ").replace("\n", " "))

    @property
    def left_out(self) -> dict[str, int]:
        """How many of each level were not annotated (levels with none left out)."""
        return {level: n for level, n in self._unshown.items() if n}

    def lines(self) -> list[str]:
        """The annotations, then (when some were left out) the counting notice and each left-out finding."""
        if not self._later:
            return list(self._annotations)
        counts = ", ".join(f"{n} {level}(s)" for level, n in self.left_out.items())
        notice = annotation(
            "notice", f"{counts} not annotated: GitHub shows {ANNOTATIONS_PER_LEVEL} annotations of each level per "
            "step; every finding is in this step's log, below.",
            title=f"astro-scim {self.command}: more findings than annotations")
        return [*self._annotations, notice, *self._later]
