"""`make demo` is the README's first command: it must tell the whole story and verify every step."""

from __future__ import annotations

import pytest

from connector.cli import main


def test_demo_verifies_every_step(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "FAILED" not in out
    assert "demo: all 22 steps done, each check verified" in out
    # The set-up steps (the narrator playing the admin, breaking things on purpose) read nothing back: "done", never
    # "verified".
    assert out.count("   done: ") == 2 and out.count("   verified: ") == 20
    # The story shows the manual Okta step and the drift it repairs, not just a green line.
    assert "Configure API integration" in out and "membership_missing" in out
