"""Drift reports at scale: how long each format takes to render 1,000 / 20,000 / 100,000 findings.

    .venv/bin/python benchmarks/report_scale.py [--sizes 1000,20000,100000] [--formats text,markdown,...]
                                                [--repeat 3] [--via-rich] [--profile text-file@20000]

The findings are the real `Finding`s of connector/audit/reconcile.py, built by tests/report_corpus.py: every kind,
long userNames, other scripts (wide CJK), and a hostile name every few dozen (markup, escapes, control
characters). Each format is rendered as `drift` renders it:

- "file": `drift -o FILE` or a pipe: no colour, the table 120 columns wide, plain lines whole;
- "term": a terminal (a rich Console of a fixed width, no real terminal needed): colour, 100 columns, wrapped;
- "narrow": a 40-column terminal (one block per finding instead of a table); text only;
- then the result is masked (redact) and written to a file, as `drift` does (output.raw, -o): "+write", seconds
  on top of the rendering.

--via-rich renders the text report through rich itself (its Table and a Console.print a line): the report as it
was before connector/audit/report_text.py, which the fast path is tested against.

Rendering figures are CPU seconds (process time: rendering is one thread, and on a machine shared with other work
CPU time moves less than wall time), the best of --repeat runs (one at 100,000); masking and writing are wall time.
The goal (README: Scale): every human format renders 20,000 findings in well under a second, growing linearly.
--profile FORMAT-MODE@SIZE prints cProfile's top functions for one case instead.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # tests/report_corpus.py: the same findings the report tests use

from report_corpus import results as corpus  # noqa: E402
from rich.cells import cached_cell_len  # noqa: E402

from connector.audit.reconcile import AuditResult  # noqa: E402
from connector.audit.report import FORMATS, render, to_text  # noqa: E402
from connector.support.redact import redact  # noqa: E402

MODES: dict[str, dict[str, object]] = {
    "file": {"color": False, "width": 120, "wrap": False},
    "term": {"color": True, "width": 100, "wrap": True},
    "narrow": {"color": True, "width": 40, "wrap": True},
}


def _cases(formats: list[str]) -> list[tuple[str, str]]:
    out = []
    for fmt in formats:
        for mode in (("file", "term", "narrow") if fmt == "text" else ("file",)):
            out.append((fmt, mode))
    return out


def _render(results: list[AuditResult], fmt: str, mode: str, via_rich: bool = False) -> Callable[[], str]:
    if fmt == "text" and via_rich:
        return lambda: to_text(results, **MODES[mode], via_rich=True)  # type: ignore[arg-type]
    kwargs = MODES[mode] if fmt == "text" else {}
    return lambda: render(results, fmt, **kwargs)  # type: ignore[arg-type]


def _best(fn: Callable[[], object], repeat: int) -> float:
    """The best of `repeat` runs, each with rich's cache of cell widths emptied: `drift` renders once a process."""
    best = float("inf")
    for _ in range(repeat):
        cached_cell_len.cache_clear()
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,20000,100000")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--via-rich", action="store_true", help="the text report through rich (as before)")
    parser.add_argument("--profile", help="FORMAT-MODE@SIZE, e.g. text-file@20000")
    args = parser.parse_args()

    if args.profile:
        case, size = args.profile.split("@")
        fmt, mode = case.split("-")
        results = corpus(int(size))
        render_once = _render(results, fmt, mode, args.via_rich)
        _render(corpus(50), fmt, mode, args.via_rich)()  # imports out of the profile
        profiler = cProfile.Profile()
        profiler.runcall(render_once)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    cases = _cases(args.formats.split(","))
    per: dict[tuple[str, str], list[tuple[float, float]]] = {c: [] for c in cases}
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp, "report")
        for n in sizes:
            results, warm = corpus(n), corpus(50)
            gc.freeze()  # as in drift, where what the audit built is out of the collector's reach (support/gcpause)
            repeat = 1 if n >= 100_000 else args.repeat
            for fmt, mode in cases:
                _render(warm, fmt, mode, args.via_rich)()  # imports, out of the figures
                render_once = _render(results, fmt, mode, args.via_rich)
                rendered = _best(render_once, repeat)
                text = render_once()
                start = time.perf_counter()
                target.write_text(redact(text), encoding="utf-8")  # what drift does with it (output.raw, -o)
                per[(fmt, mode)].append((rendered, time.perf_counter() - start))
                print(f"  {fmt} ({mode}) at {n:,}: {rendered:.3f} s, then {per[(fmt, mode)][-1][1]:.3f} s to mask "
                      f"and write {len(text) / 1e6:.1f} MB", file=sys.stderr, flush=True)
    print(f"{'format':<16}" + "".join(f"{n:>12,} {'+write':>8}" for n in sizes)
          + "   (CPU seconds rendering, then wall seconds masking and writing the result)")
    for (fmt, mode), figures in per.items():
        label = f"{fmt} ({mode})" if fmt == "text" else fmt
        print(f"{label:<16}" + "".join(f"{r:>12.3f} {w:>8.3f}" for r, w in figures))
    if len(sizes) > 1:
        print(f"\ngrowth of the rendering {sizes[0]:,} -> {sizes[-1]:,} findings ({sizes[-1] / sizes[0]:.0f}x):")
        for (fmt, mode), figures in per.items():
            label = f"{fmt} ({mode})" if fmt == "text" else fmt
            print(f"  {label:<16}{figures[-1][0] / max(figures[0][0], 1e-9):>6.0f}x")


if __name__ == "__main__":
    main()
