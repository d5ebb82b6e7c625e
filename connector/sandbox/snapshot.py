"""Copies of an emulator's state as plain data, for `Sandbox.snapshot()` / `Sandbox.restore()`.

A test that needs "a sandbox after `apply --yes`" can restore the state a real apply left in another sandbox of the
same seed instead of running the apply again (~0.1-0.2 s of CPU each, in ~50 test fixtures). The new sandbox has
other ports and tokens, so every string is passed through `translate` on the way in: the Okta app's and the Entra
job's Astro SCIM URL and token then name this sandbox's Astro.

Each state module turns its own containers (tables, dataclasses, locks) into plain data and back; this module only
copies plain data, and refuses anything else, so a state that grows a new kind of field is noticed (the guard test
compares a restored sandbox with a freshly applied one).
"""

from __future__ import annotations

import pickle
import re
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

Translate = Callable[[str], str]
T = TypeVar("T")

_ATOMS = (int, float, bool, bytes, type(None))


def copied(value: Any, translate: Translate | None = None, memo: dict[int, Any] | None = None) -> Any:
    """A deep copy of plain data (dict, list, tuple, set, frozenset, deque, str, numbers, bytes, None), strings
    passed through `translate`. A container met twice is copied once (aliasing kept, as copy.deepcopy does)."""
    if memo is None:
        memo = {}
    if isinstance(value, str):
        return translate(value) if translate is not None else value
    if isinstance(value, _ATOMS):
        return value
    hit = memo.get(id(value))
    if hit is not None:
        return hit
    out: Any
    # Exact types: a subclass (defaultdict, OrderedDict, a namedtuple) would come back as its base and behave
    # differently after a restore, so it is refused below like any other object.
    kind = type(value)
    if kind is dict:
        out = memo[id(value)] = {}
        for k, v in value.items():
            out[copied(k, translate, memo)] = copied(v, translate, memo)
    elif kind is list:
        out = memo[id(value)] = []
        out.extend(copied(v, translate, memo) for v in value)
    elif kind is deque:
        out = memo[id(value)] = deque(maxlen=value.maxlen)
        out.extend(copied(v, translate, memo) for v in value)
    elif kind in (tuple, set, frozenset):
        out = memo[id(value)] = kind(copied(v, translate, memo) for v in value)
    else:
        raise TypeError(f"not plain data, cannot be copied into a snapshot: {type(value).__name__}")
    return out


def plain_copy(value: T) -> T:
    """What copy.deepcopy gives for plain data (JSON-like dicts and lists, aliasing kept), through pickle in C: ~5x
    less CPU (0.4 vs 1.9 ms for an Entra synchronization schema). The Graph emulator copies schemas, jobs and
    service principals on every read and cycle, ~1,000 times in the test suite."""
    return cast(T, pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL)))


def replacer(pairs: Mapping[str, str]) -> Translate:
    """A translate function replacing each key of `pairs` by its value wherever it occurs in a string. A key that
    ends in a digit (a URL's port) is not replaced where more digits follow: :5432 is not a prefix of :54321."""
    pairs = {old: new for old, new in pairs.items() if old and old != new}
    if not pairs:
        return lambda s: s
    pattern = re.compile("|".join(
        re.escape(old) + (r"(?!\d)" if old[-1].isdigit() else "")
        for old in sorted(pairs, key=len, reverse=True)))
    # Most strings hold none of them: a substring test per key is cheaper than the regex.
    keys = tuple(pairs)

    def translate(s: str) -> str:
        if not any(k in s for k in keys):
            return s
        return pattern.sub(lambda m: pairs[m.group(0)], s)

    return translate
