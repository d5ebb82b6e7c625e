"""`astro-scim validate` reports every mistake of a project file in one run, and `--format github` stays within
GitHub's cap of annotations, through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.cli import main


def _many_bad_targets(path: Path, n: int) -> Path:
    entries = "".join(f"  - target: bogus{i}\n    source: user.firstName\n" for i in range(n))
    path.write_text("idp: okta\nusers:\n  - target: userName\n    from_sign_on: true\n" + entries)
    return path


def test_github_annotates_at_most_ten_errors_and_counts_the_rest(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = _many_bad_targets(tmp_path / "okta.yaml", 13)
    assert main(["validate", "--format", "github", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    assert len(errors) == 10, lines  # GitHub drops the 11th and later without a word
    (notice,) = [line for line in lines if line.startswith("::notice ")]
    assert "3 error(s) not annotated" in notice and "more findings than annotations" in notice
    # the 3 left out are still in the log, with their file:line
    later = [line for line in lines if line.startswith("error: ")]
    assert len(later) == 3 and all(f"{path}:" in line for line in later), later
    assert "bogus12" in later[-1]
    assert lines[-1] == "13 errors, 0 warnings in 1 mapping file"


def test_github_under_the_cap_has_no_notice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _many_bad_targets(tmp_path / "okta.yaml", 10)
    assert main(["validate", "--format", "github", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.count("::error ") == 10 and "::notice" not in out
