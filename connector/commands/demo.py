"""`astro-scim demo`: the whole story against a fresh sandbox, narrated; exit 0 only when every step verified.

Each step runs the real commands (the same `main()` a user runs) and then checks the outcome independently,
against the sandbox's own state, so a step that "succeeds" without doing its job fails the demo
(connector/demo/story.py).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from connector.demo import narration
from connector.demo import story as demo_story
from connector.demo.narration import Story


def run(args: argparse.Namespace) -> int:
    # args.program is connector.cli's main, given by the shell: the story runs the real program with it.
    with tempfile.TemporaryDirectory(prefix="astro-scim-demo-") as tmp, narration.running(args.program):
        story = Story()
        demo_story.tell(story, Path(tmp))
        return story.summary()
