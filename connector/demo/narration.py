"""The narration of the demo: numbered steps, each verified or failed with its reason, and a summary."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

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

    def step(self, title: str, action: Callable[[], str], *, checks: bool = True) -> bool:
        """Run one narrated step. `action` returns a one-line outcome or raises AssertionError/ConnectorError.
        `checks` False: a set-up step (the narrator plays the admin or breaks something on purpose), said "done",
        never "verified": it reads nothing back."""
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
        label = ("verified" if checks else "done") if ok else "FAILED"
        output.say(f"   {label}: {detail} ({seconds:.1f}s)", style="green" if ok else "red")
        return ok

    def summary(self) -> int:
        failed = [r for r in self.results if not r.ok]
        output.say("")
        total = sum(r.seconds for r in self.results)
        if failed:
            output.say(f"demo: {len(failed)} of {len(self.results)} steps failed ({total:.1f}s)", style="bold red")
            return EXIT_FINDINGS
        output.say(f"demo: all {len(self.results)} steps done, each check verified ({total:.1f}s)", style="bold green")
        return EXIT_OK


Program = Callable[[list[str]], int]
_program: Program | None = None


@contextmanager
def running(program: Program) -> Iterator[None]:
    """Run the story's commands with `program`: connector.cli's main, handed down by the shell when it runs the
    demo command (so nothing below the shell imports it, and the demo still drives the real program)."""
    global _program
    previous, _program = _program, program
    try:
        yield
    finally:
        _program = previous


def cli(*argv: str) -> int:
    """Run a real command, showing it as the user would type it."""
    if _program is None:
        raise RuntimeError("the demo's commands run inside narration.running(main)")
    output.say("   $ astro-scim " + " ".join(argv), style="dim")
    return _program(list(argv))
