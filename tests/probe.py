"""Which modules a command loads: `astro-scim ARGV` run in a fresh interpreter, its sys.modules read at the end.

The tests that keep SDKs (and other heavy imports) out of a command's process use it: offline commands, Entra's
reads, Okta's drift. `modules_loaded_each` runs several commands one after the other in one interpreter (one start
and one set of imports for several checks) and reads sys.modules after each: a module is never unloaded, so what is
missing after a command in that sequence is missing after the same command run on its own too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = (
    "import sys, json\n"
    "{pre}\n"
    "from connector.cli import main\n"
    "code = main({argv!r})\n"
    "print('\\nLOADED=' + json.dumps(sorted({{m for m in sys.modules for p in {packages!r}\n"
    "                                       if (m + '.').startswith(p + '.')}})))\n"
    "print('CODE=' + str(code))\n"
)


def modules_loaded(argv: list[str], packages: tuple[str, ...], *, cwd: Path, pre: str = "",
                   timeout: float = 300) -> tuple[list[str], int]:
    """The modules of `packages` (each a dotted name: the package and its submodules) that `astro-scim ARGV`
    loaded, run after `pre` (Python source, e.g. an import the probe must see), and the command's exit code."""
    done = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv, packages=packages, pre=pre)],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stdout.splitlines()
    assert any(ln.startswith("CODE=") for ln in lines), done.stderr[-2000:]
    loaded = json.loads(next(ln for ln in lines if ln.startswith("LOADED="))[7:])
    return loaded, int(next(ln for ln in lines if ln.startswith("CODE="))[5:])


PROBE_EACH = (
    "import sys, json\n"
    "from connector.cli import main\n"
    "def loaded():\n"
    "    return sorted({{m for m in sys.modules for p in {packages!r} if (m + '.').startswith(p + '.')}})\n"
    "for step in {steps!r}:\n"
    "    code = main(step) if isinstance(step, list) else exec(step)\n"
    "    print('\\nSTEP=' + json.dumps([loaded(), code]))\n"
)


def modules_loaded_each(steps: list[list[str] | str], packages: tuple[str, ...], *, cwd: Path,
                        timeout: float = 300) -> list[tuple[list[str], int | None]]:
    """`modules_loaded` for several steps in one fresh interpreter, one after the other: a step is the argv of an
    `astro-scim` command or Python source (e.g. an import the probe must see). For each step: the modules of
    `packages` loaded so far, and the command's exit code (None for source)."""
    done = subprocess.run([sys.executable, "-c", PROBE_EACH.format(steps=steps, packages=packages)],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout)
    assert "Traceback" not in done.stderr, done.stderr
    found = [json.loads(ln[5:]) for ln in done.stdout.splitlines() if ln.startswith("STEP=")]
    assert len(found) == len(steps), done.stderr[-2000:]
    return [(loaded, code) for loaded, code in found]
