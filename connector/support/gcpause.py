"""The cyclic garbage collector kept off a bulk read: `with collection_paused(): ...`.

An audit allocates millions of containers (the decoded JSON of every page, a view row per user) and makes no
garbage cycles, yet the collector walks them: at 100,000 Okta users its passes took ~1.1 s of a drift's ~6.5 s of
CPU (12 full passes over the views already built). Reference counting still frees everything meanwhile.

The cost: garbage cycles made inside the block (an event loop, a retried request's traceback) are frozen with the
rest and never collected. Bounded and small for a command that runs once; a program that audits again and again
in one process (drift's re-checks after --fix do it a few times) keeps each audit's few such cycles.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collection_paused() -> Iterator[None]:
    """Collector off for the block (nested blocks are no-ops: the outermost one decides); when it ends, whatever
    the block built and still holds is moved out of the collector's reach (gc.freeze: what an audit built lives
    until the command ends, and the first full pass would otherwise walk all of it once more), and the collector
    resumes if it was on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.enable()
