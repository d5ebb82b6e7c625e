"""`astro-scim demo`: the whole story against a fresh sandbox, narrated; exit 0 only when every step verified.

Each step runs the real commands (the same `main()` a user runs) and then checks the outcome independently,
against the sandbox's own state, so a step that "succeeds" without doing its job fails the demo.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from connector import output
from connector.errors import EXIT_FINDINGS, EXIT_OK


@dataclass
class StepResult:
    title: str
    ok: bool
    detail: str
    seconds: float


class Story:
    def __init__(self) -> None:
        self.results: list[StepResult] = []

    def step(self, title: str, action: Callable[[], str]) -> bool:
        """Run one narrated step. `action` returns a one-line outcome or raises AssertionError/ConnectorError."""
        output.say("")
        output.say(f"== {len(self.results) + 1}. {title}", style="bold cyan")
        start = time.perf_counter()
        try:
            detail = action()
            ok = True
        except AssertionError as exc:
            ok, detail = False, f"not verified: {exc}"
        except Exception as exc:  # a demo step failing must still narrate, never crash the story
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        seconds = time.perf_counter() - start
        self.results.append(StepResult(title, ok, detail, seconds))
        output.say(f"   {'verified' if ok else 'FAILED'}: {detail} ({seconds:.1f}s)", style="green" if ok else "red")
        return ok

    def summary(self) -> int:
        failed = [r for r in self.results if not r.ok]
        output.say("")
        total = sum(r.seconds for r in self.results)
        if failed:
            output.say(f"demo: {len(failed)} of {len(self.results)} steps failed ({total:.1f}s)", style="bold red")
            return EXIT_FINDINGS
        output.say(f"demo: all {len(self.results)} steps verified ({total:.1f}s)", style="bold green")
        return EXIT_OK


def cli(*argv: str) -> int:
    """Run a real command, showing it as the user would type it."""
    from connector.cli import main

    output.say("   $ astro-scim " + " ".join(argv), style="dim")
    return main(list(argv))


def run(args: argparse.Namespace) -> int:
    from connector.demo import story as demo_story

    with tempfile.TemporaryDirectory(prefix="astro-scim-demo-") as tmp:
        story = Story()
        demo_story.tell(story, Path(tmp))
        return story.summary()
