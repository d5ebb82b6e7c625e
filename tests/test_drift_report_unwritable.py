"""`drift --fix --yes -o FILE` whose report cannot be written once the fix has acted: the repairs stand, so the
user is told what they were and why the report is missing, and the exit code is the drift verdict's, not a usage
error's; through the real CLI against the sandbox."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from connector.cli import main
from connector.sandbox.core import Sandbox


def _folder_becomes_a_file_at_the_first_write(sandbox: Sandbox, folder: Path) -> tuple[Any, Any, list[str]]:
    """The report's folder is there when drift starts (it checks), and is replaced by a file once the fix writes
    to Astro (another job cleaning up, a full volume remounted): the report is then written under a file."""
    middleware = sandbox._middleware["astro"]
    inner = middleware.app
    wrote: list[str] = []

    def swap_on_write(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] != "GET" and not wrote:
            wrote.append(environ["REQUEST_METHOD"])
            shutil.rmtree(folder)
            folder.write_text("a file where the report's folder was\n")
        return inner(environ, start_response)

    middleware.app = swap_on_write
    return middleware, inner, wrote


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_report_that_cannot_be_written_after_the_fix_acted_says_what_was_done(
        sandbox: Sandbox, okta_applied: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    org = sandbox.astro_orgs["okta"]
    people = [p.email for p in sandbox.seed_org.people]
    login = next(e for e in people if sandbox.astro.find_user(org.org_id, e) is not None)
    sandbox.astro.delete_user(org.org_id, login)
    folder = tmp_path / "reports"
    folder.mkdir()
    report = folder / f"drift.{fmt}"
    middleware, inner, wrote = _folder_becomes_a_file_at_the_first_write(sandbox, folder)
    try:
        capsys.readouterr()
        rc = main(["drift", "-c", str(okta_applied), "--fix", "--yes", "--format", fmt, "-o", str(report)])
        out, err = capsys.readouterr()
    finally:
        middleware.app = inner
    assert wrote, "the fix never wrote to Astro"
    assert sandbox.astro.find_user(org.org_id, login) is not None  # the repair happened
    assert rc == 0, (out, err)  # README: 0 no drift left; never 2 (a usage error, as if nothing had been done)
    assert f"cannot write the report to {report}" in err and "Not a directory" in err, err
    assert "the fix carried out 2 remedy action(s) before that (2 done, 0 failed); they stand:" in err, err
    assert f"okta: done remedy.okta.reassign_user {login}: " in err, err
    assert "Traceback" not in out + err
    log = [json.loads(line) for line in (okta_applied.parent / ".astro-scim" / "audit.log").read_text().splitlines()]
    (line,) = [r for r in log if r["command"] == "drift --fix"]
    assert line["exit_code"] == 0 and login in json.dumps(line["changes"]), line


def test_a_report_that_cannot_be_written_without_a_fix_is_still_a_usage_error(
        sandbox: Sandbox, okta_applied: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing was done: the write failure is the news (exit 2, as README says)."""
    folder = tmp_path / "reports"
    folder.mkdir()
    org = sandbox.astro_orgs["okta"]
    middleware = sandbox._middleware["astro"]
    inner = middleware.app

    def swap_on_read(environ: dict[str, Any], start_response: Any) -> Any:
        if folder.is_dir():
            shutil.rmtree(folder)
            folder.write_text("x\n")
        return inner(environ, start_response)

    middleware.app = swap_on_read
    try:
        capsys.readouterr()
        rc = main(["drift", "-c", str(okta_applied), "-o", str(folder / "drift.json"), "--format", "json"])
    finally:
        middleware.app = inner
    assert rc == 2 and "cannot write the report" in capsys.readouterr().err
    assert org.org_id
