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
