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
