"""`astro-scim validate` end to end: one broken fixture per failure mode, the real CLI, exact file:line:col."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from connector.cli import main

ROOT = Path(__file__).resolve().parents[1]
BROKEN = Path(__file__).parent / "fixtures" / "mappings" / "broken"
VALID = Path(__file__).parent / "fixtures" / "mappings" / "valid"
SHIPPED = ROOT / "mappings"

# fixture, exit code, line, column, a substring of the message (hint included)
CASES = [
    ("yaml-syntax.yaml", 1, 6, 11, "invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence "
                                   "that starts at line 5, column 13)"),
    ("yaml-unclosed-quote.yaml", 1, 7, 1, "a quoted scalar that starts at line 5, column 13"),
    ("okta-elvis-unquoted.yaml", 1, 6, 31, "invalid YAML: mapping values are not allowed in this context (hint: "
                                           "quote a value that contains ': '"),
    ("tabs.yaml", 1, 4, 1, "hint: YAML does not allow tabs for indentation; use spaces"),
    ("duplicate-key.yaml", 1, 7, 5, "duplicate key 'source' in users.1"),
    ("unknown-key.yaml", 1, 6, 5, "unknown key 'sorce' in users[1] (hint: did you mean 'source'?)"),
    ("unknown-top-key.yaml", 1, 2, 1, "unknown top-level key 'user' (hint: did you mean 'users'?)"),
    ("missing-username.yaml", 1, 2, 1, "no mapping for userName"),
    ("two-usernames.yaml", 1, 6, 13, "more than one userName mapping (first at line 3)"),
    ("duplicate-target.yaml", 1, 7, 13, "users maps displayName twice (first at line 5)"),
    ("bad-scim-path.yaml", 1, 5, 34, "invalid SCIM path 'emails[type eq \"work\".value': expected 'and', 'or' or ']'"),
    ("unknown-scim-attribute.yaml", 1, 5, 13, "unknown SCIM attribute 'givenName' in the User schema (hint: did "
                                              "you mean name.givenName?)"),
    ("unknown-enterprise-attribute.yaml", 1, 5, 13, "unknown SCIM attribute 'departmnt' in urn:ietf:params:scim:"
                                                    "schemas:extension:enterprise:2.0:User (hint: did you mean"),
    ("bad-okta-expression.yaml", 1, 6, 29, "invalid Okta expression for displayName: unexpected end of expression"),
    ("bad-entra-expression.yaml", 1, 7, 26, "invalid Entra expression for displayName: unexpected character '+'"),
    ("unknown-function-entra.yaml", 1, 7, 13, "unknown function 'toLower' (hint: did you mean ToLower?"),
    ("unknown-function-okta.yaml", 1, 6, 13, "unknown function 'String.toLowercase' (hint: did you mean "
                                             "String.toLowerCase?"),
    ("wrong-arity-entra.yaml", 1, 7, 13, "Append takes 2 arguments, got 1 (hint: usage: Append(source, suffix))"),
    ("wrong-arity-okta.yaml", 1, 6, 13, "String.substringBefore takes 2 arguments, got 1"),
    ("switch-odd-arguments.yaml", 1, 7, 13, "Switch needs source, default, then key/value pairs"),
    ("unbalanced-brackets-entra.yaml", 1, 7, 21, "unclosed '(' of ToLower: missing ')'"),
    ("unbalanced-brackets-okta.yaml", 1, 6, 31, "unclosed '(' of String.toLowerCase: missing ')'"),
    ("unbalanced-attribute-bracket-entra.yaml", 1, 7, 13, "unclosed '[': attribute names end with ']'"),
    ("unbalanced-quotes-entra.yaml", 1, 7, 34, "unterminated string: missing closing '\"'"),
    ("unbalanced-quotes-okta.yaml", 1, 6, 31, "unterminated string: missing closing \""),
    ("wrong-type-source.yaml", 1, 6, 13, "'source' must be an expression string, not a number (hint: quote it"),
    ("wrong-type-matching.yaml", 1, 5, 15, "'matching' must be a whole number >= 0"),
    ("wrong-type-from-sign-on.yaml", 1, 4, 19, "'from_sign_on' must be true or false, not a string"),
    ("empty.yaml", 1, 1, 1, "mapping file is empty"),
    ("comments-only.yaml", 1, 1, 1, "mapping file is empty"),
    ("binary.yaml", 1, 1, 1, "file is binary, not YAML"),
    ("not-utf8.yaml", 1, 6, 38, "file is not UTF-8 text (byte 0xe9)"),
    ("idp-missing.yaml", 1, 1, 1, "missing 'idp'"),
    ("idp-unknown.yaml", 1, 1, 6, "unknown idp 'entra' (hint: did you mean 'azure'? (the expressions and targets were "
                          "not checked: they depend on the IdP))"),
    ("list-instead-of-mapping.yaml", 1, 1, 1, "must be a YAML mapping with idp, users and groups, not a list"),
    ("users-not-a-list.yaml", 1, 3, 3, "'users' must be a list of mappings"),
    ("entry-not-a-mapping.yaml", 1, 3, 5, "users[0] must be a mapping with target and source, not a string"),
    ("from-sign-on-not-username.yaml", 1, 6, 19, "from_sign_on only applies to userName, not displayName"),
    ("from-sign-on-on-azure.yaml", 1, 4, 19, "from_sign_on is Okta-only"),
    ("matching-on-okta.yaml", 1, 5, 15, "matching is Entra-only"),
    ("default-on-okta.yaml", 1, 7, 14, "default is Entra-only"),
    ("bad-apply-on.yaml", 1, 7, 15, "apply_on must be one of create_and_update, create_only, not 'always'"),
    ("missing-source.yaml", 1, 5, 5, "users[1] (displayName) has no 'source' expression"),
    ("missing-target.yaml", 1, 5, 5, "users[1] has no 'target'"),
    ("okta-username-from-source.yaml", 1, 4, 13, "Okta sets userName from the app's sign-on settings"),
    ("duplicate-matching.yaml", 1, 8, 15, "matching 1 is also used by userName"),
    ("no-matching-azure.yaml", 1, 2, 1, "Entra needs a matching attribute for users (hint: add matching: 1 to "
                                        "userName)"),
    ("group-missing-display-name.yaml", 1, 5, 1, "groups have no displayName mapping"),
    ("read-only-target.yaml", 1, 6, 13, "id is read-only"),
    ("members-under-users.yaml", 1, 5, 13, "members is a Group attribute: put it under groups:"),
    ("wrong-object-okta.yaml", 1, 6, 13, "group.name: user mappings cannot read the group"),
    ("okta-group-create-only.yaml", 1, 8, 15, "apply_on: create_only has no effect on an Okta group: Group Push "
                                              "sends the name and members on every push"),
    ("okta-group-mapping-not-applied.yaml", 1, 7, 13, "Okta Group Push sends the group's name as displayName "
                                                      "and its members, nothing else: this mapping would not be "
                                                      "applied (hint: write source: group.name"),
    ("multi-valued-target.yaml", 1, 5, 13, "emails is multi-valued; select one entry with a filter"),
    ("entra-target-spelling.yaml", 1, 6, 13, "Entra names a target attribute by its text: 'emails[type  EQ "
                                             "\"work\"].value' is another attribute than Entra's emails[type eq "
                                             "\"work\"].value (hint: write emails[type eq \"work\"].value)"),
    ("target-filter-not-eq.yaml", 1, 6, 13, "a target's filter names the entry to write: only eq conditions "
                                            "joined by and (hint: e.g. emails[type eq \"work\"].value)"),
    ("target-filter-or.yaml", 1, 6, 13, "a target's filter names the entry to write: only eq conditions"),
    ("target-multi-valued-sub-without-filter.yaml", 1, 6, 13, "emails is multi-valued; select one entry with a "
                                                              "filter (hint: e.g. emails[type eq \"work\"].value)"),
    ("comparison-outside-function.yaml", 1, 7, 13, "a comparison ('=') is only allowed inside a function"),
    ("warn-unknown-source-attribute.yaml", 0, 6, 13,
     "warning: user.displayname is not in Okta's standard user profile (hint: did you mean user.displayName?)"),
    ("warn-undocumented-target.yaml", 0, 6, 13, "warning: Astro does not document 'title'"),
    ("warn-okta-other-app-object.yaml", 0, 6, 13, "warning: profile.displayName reads the app user of an app "
                                                  "named 'profile' (hint: fine if profile is an app's instance name "
                                                  "in your Okta org; the Okta user's own is user.displayName)"),
]


def test_every_fixture_has_a_case() -> None:
    assert sorted(p.name for p in BROKEN.iterdir()) == sorted(c[0] for c in CASES)
    assert len(CASES) >= 30


@pytest.mark.parametrize(("name", "code", "line", "column", "text"), CASES, ids=[c[0] for c in CASES])
def test_broken_fixture(name: str, code: int, line: int, column: int, text: str,
                        capsys: pytest.CaptureFixture[str]) -> None:
    path = BROKEN / name
    assert main(["validate", str(path)]) == code
    out, err = capsys.readouterr()
    lines = [ln for ln in out.splitlines() if ln.startswith(f"{path}:")]
    assert len(lines) == 1, out  # one failure mode, one finding
    assert lines[0].startswith(f"{path}:{line}:{column}: "), lines[0]
    assert text in lines[0]
    assert "Traceback" not in out + err


@pytest.mark.parametrize("name", ["warn-unknown-source-attribute.yaml", "warn-undocumented-target.yaml"])
def test_strict_makes_warnings_fail(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--strict", str(BROKEN / name)]) == 1
    assert "(--strict: warnings fail)" in capsys.readouterr().out


def test_shipped_and_valid_mappings_are_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--strict", str(SHIPPED), str(VALID)]) == 0
    assert capsys.readouterr().out.strip() == "4 mapping files OK"


def test_a_folder_reports_every_finding_of_every_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(BROKEN)]) == 1
    out = capsys.readouterr().out
    errors = sum(1 for c in CASES if c[1])
    assert out.strip().splitlines()[-1] == f"{errors} errors, 3 warnings in {len(CASES)} mapping files"
    for name, _, line, column, _ in CASES:
        assert f"{BROKEN / name}:{line}:{column}: " in out


def test_missing_path_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert f"{tmp_path / 'nope.yaml'}: error: no such file or folder (hint: " in capsys.readouterr().out
    assert main(["validate", str(tmp_path)]) == 2  # a folder without mapping files
    assert "no *.yaml or *.yml files in folder" in capsys.readouterr().out


def test_missing_path_alongside_good_files_still_reports_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(SHIPPED), "does-not-exist"]) == 2
    out = capsys.readouterr().out
    assert "does-not-exist: error: no such file or folder" in out


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 2
    assert main(["validate", "--format", "xml", str(SHIPPED)]) == 2
    capsys.readouterr()


def test_json_format(capsys: pytest.CaptureFixture[str]) -> None:
    path = BROKEN / "two-usernames.yaml"
    assert main(["validate", "--format", "json", str(path), str(SHIPPED / "okta.yaml")]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["files"] == [str(path), str(SHIPPED / "okta.yaml")]
    assert data["summary"] == {"files": 2, "errors": 1, "warnings": 0, "strict": False, "exit_code": 1}
    assert data["findings"] == [{
        "file": str(path), "line": 6, "column": 13, "severity": "error", "code": "duplicate-username",
        "message": "more than one userName mapping (first at line 3)", "hint": "keep exactly one",
    }]


def test_github_format(capsys: pytest.CaptureFixture[str]) -> None:
    path = BROKEN / "wrong-arity-entra.yaml"
    assert main(["validate", "--format", "github", str(path), str(BROKEN / "warn-undocumented-target.yaml")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"::error file={path},line=7,col=13,title=astro-scim arity::invalid Entra expression for "
                        "displayName: Append takes 2 arguments, got 1 (hint: usage: Append(source, suffix))")
    assert lines[1].startswith("::warning file=")
    assert lines[-1] == "1 error, 1 warning in 2 mapping files"


def test_github_escapes_newlines_and_separators(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a,b:c.yaml"
    path.write_text("idp: okta\nusers:\n  - target: userName\n    from_sign_on: true\n  - target: \"x\\ny\"\n"
                    "    source: user.firstName\n")
    assert main(["validate", "--format", "github", str(path)]) == 1
    line = capsys.readouterr().out.splitlines()[0]
    assert "file=" + str(path).replace(":", "%3A").replace(",", "%2C") + "," in line
    from connector.commands.validate import _github_add
    from connector.errors import Location
    from connector.mapping.model import Finding, Severity
    from connector.support import github

    finding = Finding(Severity.WARNING, Location("f.yaml", 2, 3), "c", "two\nlines 100%", "h")
    capped = github.Capped("validate")
    _github_add(capped, finding)
    assert capped.lines() == ["::warning file=f.yaml,line=2,col=3,title=astro-scim c::two%0Alines 100%25 (hint: h)"]


@pytest.mark.parametrize("junk", [
    b"", b"\xff\xfe", b"idp: [", b"{{{{", b"idp: okta\nusers: [1, 2, {target: 3}]\n", b"!!python/object:os.system x",
    b"idp: okta\nusers:\n  - target: userName\n    from_sign_on: true\n  - target: a[b eq \"\n    source: ((((\n",
    b"- - - -\n", b"idp: azure\nusers:\n  - {target: userName, source: '[a]', matching: -1}\n", b"a: &x [*x]\n",
    b"idp: okta\nusers:\n  - target: userName\n    from_sign_on: true\n  - target: displayName\n    source: " +
    b"(" * 200 + b"\n", b"? [a]\n: b\n",
])
def test_no_traceback_on_junk(junk: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "junk.yaml"
    path.write_bytes(junk)
    assert main(["validate", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "unexpected" not in err
    assert f"{path}:" in out


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "connector", "validate", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=60)


def test_subprocess_clean_shipped_mappings() -> None:
    done = _run("mappings/")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2 mapping files OK"
    assert done.stderr == ""


@pytest.mark.parametrize(("name", "code"), [("tabs.yaml", 1), ("not-utf8.yaml", 1), ("idp-unknown.yaml", 1)])
def test_subprocess_broken(name: str, code: int) -> None:
    done = _run(str(BROKEN / name))
    assert done.returncode == code
    assert done.stdout.startswith(str(BROKEN / name) + ":")
    assert "Traceback" not in done.stderr


def test_subprocess_missing_path() -> None:
    done = _run("no/such/dir")
    assert done.returncode == 2
    assert "no/such/dir: error: no such file or folder" in done.stdout


def test_pre_commit_hook_runs_validate_on_mapping_files(capsys: pytest.CaptureFixture[str]) -> None:
    import re
    import shlex

    import yaml

    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "astro-scim-validate")
    assert hook["language"] == "python"
    pattern = re.compile(hook["files"])
    assert pattern.search("mappings/okta.yaml") and pattern.search("mappings/x.yml")
    # The project config too (it validated nothing when only the config was edited), wherever it sits.
    assert pattern.search("astro-scim.yaml") and pattern.search("deploy/astro-scim.yml")
    assert not pattern.search("other.yaml") and not pattern.search("my-astro-scim.yaml")
    program, *args = shlex.split(hook["entry"])
    assert program == "astro-scim"  # the console script pyproject.toml installs
    files = sorted(str(p.relative_to(ROOT)) for p in SHIPPED.iterdir() if pattern.search(str(p.relative_to(ROOT))))
    assert files
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        assert main([*args, *files]) == 0  # what pre-commit runs, with the matching files appended
    finally:
        os.chdir(cwd)
    capsys.readouterr()


def _project(tmp_path: Path, okta_mapping: str, azure_mapping: str | None = None) -> Path:
    text = ("astro:\n  scim_url: https://api.astronomer.io/scim/v2/clorg1\n  token: env:ASTRO_API_TOKEN\n"
            f"okta:\n  org_url: https://acme.okta.com\n  token: env:OKTA_API_TOKEN\n  mapping: {okta_mapping}\n")
    if azure_mapping:
        text += ("azure:\n  tenant_id: t1\n  credential: {client_id: c, client_secret: env:S}\n"
                 f"  mapping: {azure_mapping}\n")
    path = tmp_path / "astro-scim.yaml"
    path.write_text(text)
    return path


def test_a_project_config_is_checked_with_the_mappings_it_names(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = _project(tmp_path, str(SHIPPED / "okta.yaml"), str(SHIPPED / "azure.yaml"))
    assert main(["validate", str(config)]) == 0
    assert capsys.readouterr().out.strip() == "1 project config and 2 mapping files OK"
    # Named and given: checked once.
    assert main(["validate", str(config), str(SHIPPED / "okta.yaml")]) == 0
    assert capsys.readouterr().out.strip() == "1 project config and 2 mapping files OK"


def test_a_broken_mapping_named_by_the_config_fails_validate(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = _project(tmp_path, str(BROKEN / "bad-okta-expression.yaml"))
    assert main(["validate", str(config)]) == 1
    out = capsys.readouterr().out
    assert f"{BROKEN / 'bad-okta-expression.yaml'}:" in out
    assert out.strip().splitlines()[-1].endswith("in 1 project config and 1 mapping file")


def test_a_missing_mapping_named_by_the_config_points_at_its_line(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    config = _project(tmp_path, "mappings/nope.yaml")
    assert main(["validate", "--format", "json", str(config)]) == 1
    report = json.loads(capsys.readouterr().out)
    (finding,) = report["findings"]
    assert (finding["file"], finding["line"], finding["code"]) == (str(config), 7, "mapping-not-found")
    assert str(tmp_path / "mappings" / "nope.yaml") in finding["message"]


def test_a_group_both_assigned_and_pushed_in_okta_is_a_warning_at_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "astro-scim.yaml"
    config.write_text("astro:\n  scim_url: https://api.astronomer.io/scim/v2/clorg123\n  token: env:ASTRO_API_TOKEN\n"
                      "okta:\n  org_url: https://acme.okta.com\n  token: env:OKTA_API_TOKEN\n"
                      "  assign_groups: [Astro Users, Data Engineering]\n  push_groups: [Data Engineering]\n")
    from connector.cli import main

    assert main(["validate", str(config)]) == 0  # a warning, not an error (plan notes it too)
    out = capsys.readouterr().out
    assert f"{config}:8:" in out and "both assignment and Group Push: Data Engineering" in out, out


def test_a_config_naming_the_other_idps_mapping_fails_validate_at_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """okta.mapping naming an `idp: azure` file was '1 project config and 2 mapping files OK', and plan then
    refused it; also when the file was given on the command line as well (checked once, still matched)."""
    config = _project(tmp_path, str(SHIPPED / "azure.yaml"), str(SHIPPED / "okta.yaml"))
    for extra in ([], [str(SHIPPED / "azure.yaml")]):
        assert main(["validate", str(config), *extra]) == 1
        out = capsys.readouterr().out
        assert f"{config}:7:12: error: okta.mapping names a mapping for azure ({SHIPPED / 'azure.yaml'}), " \
               "not okta (hint: point okta.mapping at a file with 'idp: okta')" in out, out
        assert f"{config}:11:12: error: azure.mapping names a mapping for okta" in out, out


def test_yaml_merge_keys_are_read_as_pyyaml_reads_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`<<: *anchor` was 'could not determine a constructor for the tag merge': a file yaml.safe_load reads was
    refused. The entry's own keys win over merged ones, and are no duplicates of them."""
    from connector.mapping.load import load_mapping
    from connector.mapping.model import ApplyOn

    path = tmp_path / "okta.yaml"
    path.write_text("idp: okta\nusers:\n  - target: userName\n    from_sign_on: true\n"
                    "  - &given\n    target: name.givenName\n    source: user.firstName\n    apply_on: create_only\n"
                    "  - <<: *given\n    target: name.familyName\n    source: user.lastName\n"
                    "  - <<: [*given]\n    target: displayName\n    source: user.displayName\n"
                    "    apply_on: create_and_update\n")
    assert main(["validate", "--strict", str(path)]) == 0, capsys.readouterr().out
    mapping, findings = load_mapping(path)
    assert mapping is not None and findings == []
    assert [(m.target, m.source, m.apply_on) for m in mapping.users[1:]] == [
        ("name.givenName", "user.firstName", ApplyOn.CREATE_ONLY),
        ("name.familyName", "user.lastName", ApplyOn.CREATE_ONLY),
        ("displayName", "user.displayName", ApplyOn.CREATE_AND_UPDATE)]
    capsys.readouterr()
    path.write_text("idp: okta\nusers:\n  - target: userName\n    from_sign_on: true\n  - <<: 3\n")
    assert main(["validate", str(path)]) == 1
    assert f"{path}:5:9: error: '<<' merges a mapping" in capsys.readouterr().out


def test_entra_default_mappings_have_no_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """Entra's own defaults, enterprise manager from [manager] included (Entra sends the reference as the
    attribute's value): 'manager is complex' failed a mapping copied from the portal."""
    path = Path(__file__).parent / "fixtures" / "mappings" / "entra-defaults.yaml"
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert " error: " not in out and "Astro does not document 'urn:ietf:params:scim:schemas:extension:" \
        "enterprise:2.0:User:manager'" in out, out


def test_a_folder_leaves_hidden_yaml_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`astro-scim validate .` at a repository's root failed on .github/workflows/*.yml and
    .pre-commit-config.yaml ("missing 'idp'"); hidden files and folders are now left out of a folder, and still
    checked when named."""
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "ci.yml").write_text("on: push\njobs: {}\n")
    (tmp_path / ".pre-commit-config.yaml").write_text("repos: []\n")
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "OKTA.YAML").write_text((SHIPPED / "okta.yaml").read_text())
    assert main(["validate", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == "1 mapping file OK"
    assert main(["validate", str(tmp_path / ".pre-commit-config.yaml")]) == 1
    capsys.readouterr()


def test_a_folder_named_as_the_configs_mapping_is_called_a_folder(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """okta.mapping: mappings/ (a folder) was 'mapping file ... does not exist', which sends one looking for a
    typo in a path that is there."""
    (tmp_path / "mappings").mkdir()
    config = _project(tmp_path, "mappings")
    assert main(["validate", str(config)]) == 1
    out = capsys.readouterr().out
    assert f"{config}:7:12: error: mapping file {tmp_path / 'mappings'} is a folder, not a file (hint: name the " \
           "mapping file itself, e.g. mappings/okta.yaml)" in out, out


def test_every_finding_carries_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    """The project's rule for bad input: a place and a hint. Path syntax, read-only and unknown SCIM attributes,
    expression syntax and YAML syntax errors came without one."""
    assert main(["validate", "--format", "json", str(BROKEN)]) == 1
    report = json.loads(capsys.readouterr().out)
    bare = [(Path(f["file"]).name, f["message"]) for f in report["findings"] if not f["hint"]]
    assert bare == []


def test_a_project_config_with_a_misspelt_section_is_told_so(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A config whose only section is misspelt ('okat:') is no project config to validate, so it was read as a
    mapping: 'allowed keys: idp, users, groups' sent one to rewrite it as one."""
    path = tmp_path / "astro-scim.yaml"
    path.write_text("okat:\n  org_url: https://acme.okta.com\n  token: env:OKTA_API_TOKEN\n")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:1:1: error: unknown top-level key 'okat' (hint: did you mean 'okta'? (a project config's " \
           "section)" in out, out


@pytest.mark.parametrize(("text", "where", "wanted"), [
    ("idp: okta\nusers: 5\n", ":2:8:", "'users' must be a list of mappings, not a number (hint: "),
    ("idp: okta\nusers:\n  - target: 5\n    source: user.x\n", ":3:13:", "'target' must be a SCIM attribute path "
                                                                    "string, not a number (hint: "),
    ("idp: okta\nusers:\n  - target: ''\n    source: user.x\n", ":3:13:", "'target' is empty (hint: "),
    ("idp: okta\nusers:\n  - target: title\n    source: [user.x]\n", ":4:13:", "not a list (hint: "),
    ("idp: okta\nusers:\n  - target: title\n    source: user.title\n    apply_on: 3\n", ":5:15:",
     "not 3 (hint: "),
    ("idp: azure\nusers:\n  - target: title\n    source: '[jobTitle]'\n    default: [a]\n", ":5:14:",
     "'default' must be a string, not a list (hint: "),
    ("idp: okta\nusers: []\n---\nidp: azure\n", ":3:1:", "(hint: one mapping per file"),
    ("idp: okta\nusers:\n  - target: !foo userName\n", ":3:13:", "(hint: remove the !tag"),
])
def test_wrong_types_carry_a_hint(tmp_path: Path, text: str, where: str, wanted: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Wrong types had no hint, and an empty target was 'must be a ... string, not a string'."""
    path = tmp_path / "m.yaml"
    path.write_text(text)
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert any(line.startswith(f"{path}{where}") and wanted in line for line in out.splitlines()), out


def test_a_finding_in_an_aliased_entry_points_at_the_alias(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An alias (`- *u`) repeating the userName entry was reported at the anchor's own line ('more than one
    userName mapping (first at line 4)' at line 4), so the duplicate could not be found."""
    path = tmp_path / "azure.yaml"
    path.write_text('idp: azure\nusers:\n  - &u\n    target: userName\n    source: "[userPrincipalName]"\n'
                    '    matching: 1\n  - *u\n')
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:7:5: error: more than one userName mapping (first at line 4)" in out, out


def test_an_unknown_idp_still_reports_the_entries_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`idp: Okta` stopped every other check: a CI user fixed one mistake a run. The entries' shape (keys, types)
    is the same for either IdP and is reported beside it; the hint says what could not be checked."""
    path = tmp_path / "m.yaml"
    path.write_text("idp: Okta\nusers:\n  - target: userName\n    from_sign_on: \"yes\"\n  - name.familyName\n")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "unknown idp 'Okta' (hint: did you mean 'okta'? (the expressions and targets were not checked" in out
    assert "'from_sign_on' must be true or false" in out and "users[1] must be a mapping" in out
    assert "3 errors" in out
