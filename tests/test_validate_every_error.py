"""`astro-scim validate` reports every mistake of a project file in one run, and `--format github` stays within
GitHub's cap of annotations, through the real CLI."""

from __future__ import annotations

import json
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


# Seven independent mistakes, one per line below (and a mapping file that does not exist).
MISTAKES = """\
astro:
  scim_url: http://astro.example/scim/v2/org
  token: a-literal-token
  pagesize: 10
okta:
  org_url: https://acme.okta.com
  integration: custom
  mapping: mappings/okta.yaml
  push_groups: Astro Admins
safety:
  max_delete_fraction: 5
loging: x
"""
# line, column, a piece of the message, a piece of its hint
EXPECTED = [
    (2, 13, "astro.scim_url must use https", "https://"),
    (3, 10, "a secret must be a reference", "env:NAME"),
    (4, 3, "unknown key 'pagesize' in 'astro'", "did you mean 'page_size'?"),
    (7, 16, "okta.integration must be 'oin' or 'manual'", "catalogue app"),
    (8, 12, "okta.yaml does not exist", "relative to the config file"),
    (9, 16, "'push_groups' must be a list of strings", "[Name One, Name Two]"),
    (11, 24, "safety.max_delete_fraction must be a fraction from 0 to 1", "10%"),
    (12, 1, "unknown top-level key 'loging'", "allowed keys"),
]


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "astro-scim.yaml"
    path.write_text(MISTAKES)
    return path


def test_validate_reports_every_mistake_of_the_project_file_by_line(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path)
    assert main(["validate", str(path)]) == 1  # findings: README's exit code for validation errors
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(EXPECTED) + 1, lines
    for line, (row, col, message, hint) in zip(lines, EXPECTED, strict=False):
        assert line.startswith(f"{path}:{row}:{col}: error: ") and message in line, line
        assert "(hint: " in line and hint in line, line
    assert lines[-1] == f"{len(EXPECTED)} errors, 0 warnings in 1 project config"


def test_validate_json_has_every_mistake_by_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path)
    assert main(["validate", "--format", "json", str(path)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit_code"] == 1 and doc["summary"]["errors"] == len(EXPECTED)
    got = [(f["line"], f["column"]) for f in doc["findings"]]
    assert got == [(row, col) for row, col, _, _ in EXPECTED]
    assert all(f["file"] == str(path) and f["hint"] and f["severity"] == "error" for f in doc["findings"])
    assert [h in f["hint"] for f, (_, _, _, h) in zip(doc["findings"], EXPECTED, strict=True)] == [True] * 8


def test_validate_github_annotates_every_mistake_at_its_line(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path)
    assert main(["validate", "--format", "github", str(path)]) == 1
    annotations = [line for line in capsys.readouterr().out.splitlines() if line.startswith("::error ")]
    assert [a.split(",")[1:3] for a in annotations] == [[f"line={r}", f"col={c}"] for r, c, _, _ in EXPECTED]


def test_a_command_loading_the_config_lists_every_mistake_and_exits_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """plan (as every command reading the config) refuses it with all its mistakes at once, sorted by line; the
    mapping file is only opened once the config itself is right."""
    path = _config(tmp_path)
    assert main(["plan", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: 7 errors in {path}:"), err
    rows = [line for line in err.splitlines() if line.startswith(f"  {path}:")]
    assert [int(r.split(":")[1]) for r in rows] == [row for row, _, _, _ in EXPECTED if row != 8]
    assert all("(hint: " in r for r in rows) and "Traceback" not in err


def test_a_lone_mistake_is_reported_as_before(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "astro-scim.yaml"
    path.write_text("astro:\n  scim_uri: https://astro.example/scim/v2/org\n")
    assert main(["plan", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    # the misspelt key, not also "scim_url is required": that absence is the same mistake
    assert f"error: {path}:2:3: unknown key 'scim_uri' in 'astro'" in err and "required" not in err


def test_yaml_that_does_not_parse_stops_there_and_says_so(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "astro-scim.yaml"
    path.write_text("astro:\n  scim_url: https://astro.example/scim/v2/org\n  token: [env:A\nloging: x\n")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.count(": error: ") == 1 and "invalid YAML" in out and "nothing else in the file was checked" in out
    assert main(["plan", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert "invalid YAML" in err and "nothing else in the file was checked" in err and "loging" not in err


def test_an_idp_without_an_astro_token_source_is_reported_beside_the_rest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "astro-scim.yaml"
    path.write_text("okta:\n  org_url: https://acme.okta.com\n  integration: custom\n")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:2:3: error: no Astro SCIM endpoint configured for okta (hint: add an 'astro:' section" in out
    assert f"{path}:3:16: error: okta.integration must be" in out
