"""'Did you mean' for names typed by hand: one case-insensitive fuzzy match, shared by every checker. Stdlib only."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice `word` most likely meant, spelled as in `choices`: a match ignoring case, else the closest
    (difflib ratio >= `cutoff`, compared in lower case), else None."""
    lowered: dict[str, str] = {}
    for c in choices:
        lowered.setdefault(c.lower(), c)
    low = word.lower()
    if low in lowered:
        return lowered[low]
    close = difflib.get_close_matches(low, list(lowered), n=1, cutoff=cutoff)
    return lowered[close[0]] if close else None


def close_names(word: str, choices: Iterable[str], n: int = 5, cutoff: float = 0.5) -> list[str]:
    """Up to `n` choices `word` may have meant, best first, spelled as in `choices`: a match ignoring case, then
    the close ones (difflib, compared in lower case: 'data eng' finds 'Data Engineering')."""
    lowered: dict[str, str] = {}
    for c in choices:
        lowered.setdefault(c.lower(), c)
    low = word.lower()
    found = [lowered[low]] if low in lowered else []
    found += [lowered[m] for m in difflib.get_close_matches(low, list(lowered), n=n, cutoff=cutoff)
              if lowered[m] not in found]
    return found[:n]


def some_of(names: Iterable[str], n: int = 5) -> str:
    """'A', 'B', 'C' and 4 more (sorted, case-insensitively), for a hint when nothing is close; 'none' if empty."""
    every = sorted(set(names), key=str.lower)
    if not every:
        return "none"
    shown = ", ".join(repr(name) for name in every[:n])
    return shown + (f" and {len(every) - n} more" if len(every) > n else "")
