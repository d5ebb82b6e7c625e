"""Bad input in the project file: bounded YAML, safety limits in range, secrets only by reference, no credentials in
URLs. Each ends as a ConfigError (exit 2) naming file:line, never a crash, and never echoes a secret."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from connector.cli import main
from connector.config.load import load_config
from connector.errors import ConfigError
from connector.support import redact

HEAD = """\
astro:
  scim_url: https://api.astronomer.io/scim/v2/clorg123
  token: env:ASTRO_API_TOKEN
"""
CANARY = "canary-S3cr3t-Xq9v2Lk7"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "astro-scim.yaml"
    p.write_text(text)
    return p


def error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    return err.value


# -- YAML bounds -------------------------------------------------------------------------------------------------


def test_an_alias_bomb_is_refused_without_expanding_it(tmp_path: Path) -> None:
    rows = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        rows.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    err = error(tmp_path, HEAD + "\n".join(rows) + "\n")
    assert "expands to more than 100,000 values" in err.message and "aliases" in (err.hint or "")
    assert err.location is not None and err.location.line >= 1
    # 9**9 = 387 million strings if expanded; the refusal must not have grown the process by more than a little.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KB


def test_a_star_that_is_no_alias_reads_as_without_it_and_an_alias_is_still_marked_where_used() -> None:
    """A "*" in a comment or a quoted value (the sandbox's config names its *.token files) is no alias: the document
    reads exactly as the same text without it; a real alias still gives each use its own place."""
    from connector.support.yamlsrc import parse

    plain = "okta:\n  org_url: https://acme.okta.com  # x\n  glob: 'a-b'\nlist:\n- 1\n- two\n"
    starred = plain.replace("# x", "# tokens in *.token files").replace("'a-b'", "'*.b'")
    a, b = parse(plain, "f.yaml"), parse(starred, "f.yaml")
    assert b.data == {**a.data, "okta": {**a.data["okta"], "glob": "*.b"}}
    assert b.locations == a.locations and b.key_locations == a.key_locations

    aliased = parse("base: &b {x: 1}\nuse:\n  - *b\n  - *b\n", "f.yaml")
    assert aliased.data["use"] == [{"x": 1}, {"x": 1}]
    assert [aliased.locations[("use", i, "x")].line for i in (0, 1)] == [3, 4]
    with pytest.raises(ConfigError) as err:  # C and pure loaders differ in wording: the pure one's is kept
        parse("a: *nowhere\n", "f.yaml")
    assert "nowhere" in err.value.message


def test_deep_nesting_is_refused_with_its_line(tmp_path: Path) -> None:
    err = error(tmp_path, HEAD + "okta: " + "[" * 100 + "]" * 100 + "\n")
    assert "nests" in err.message


def test_a_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    err = error(tmp_path, HEAD + "# " + "x" * (3 * 1024 * 1024) + "\n")
    assert "larger than 2 MB" in err.message


# -- safety limits -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "needle"), [
    ("max_delete_fraction: .nan", "max_delete_fraction must be a fraction from 0 to 1"),
    ("max_delete_fraction: 5", "max_delete_fraction must be a fraction from 0 to 1"),
    ("max_delete_fraction: -0.1", "max_delete_fraction must be a fraction from 0 to 1"),
    ("max_delete_fraction: .inf", "max_delete_fraction must be a fraction from 0 to 1"),
    ("max_delete_fraction: '10%'", "max_delete_fraction must be a fraction from 0 to 1"),
    ("max_delete_fraction: true", "max_delete_fraction must be a fraction from 0 to 1"),
    ("max_delete_count: .inf", "max_delete_count must be a whole number >= 0"),
    ("max_delete_count: -1", "max_delete_count must be a whole number >= 0"),
    ("max_delete_count: 2.5", "max_delete_count must be a whole number >= 0"),
    ("max_delete_count: many", "max_delete_count must be a whole number >= 0"),
])
def test_safety_limits_out_of_range_are_refused_at_their_line(tmp_path: Path, line: str, needle: str) -> None:
    err = error(tmp_path, HEAD + "safety:\n  " + line + "\n")
    assert needle in err.message
    assert err.location is not None and err.location.line == 5


def test_safety_limits_in_range_load(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, HEAD + "safety: {max_delete_fraction: 1, max_delete_count: 0}\n"))
    assert cfg.safety.max_delete_fraction == 1.0 and cfg.safety.max_delete_count == 0


# -- secrets -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "hint"), [
    (CANARY, "write env:NAME"),
    ("$OKTA_API_TOKEN", "write env:OKTA_API_TOKEN"),
    ("${OKTA_API_TOKEN}", "write env:OKTA_API_TOKEN"),
    ("ENV:OKTA_API_TOKEN", "write env:OKTA_API_TOKEN"),
    ("File:okta.token", "write file:okta.token"),
    ("env:", "letters, digits and underscores"),
    ("env:OKTA-TOKEN", "letters, digits and underscores"),
    ("file:", "write env:NAME"),
    (f"env:{CANARY}", "letters, digits and underscores"),  # the token pasted after env:
    (f"ENV:{CANARY}", "prefixes are lower case"),
])
def test_a_secret_that_is_not_a_reference_is_refused_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, hint: str
) -> None:
    path = write(tmp_path, HEAD + f"okta:\n  org_url: https://acme.okta.com\n  token: '{value}'\n")
    assert main(["plan", "--idp", "okta", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:6:" in err and hint in err
    assert CANARY not in err


def test_env_reference_with_a_space_and_a_trailing_newline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(write(tmp_path, HEAD + "okta:\n  org_url: https://acme.okta.com\n  token: 'env: OKTA_T'\n"))
    monkeypatch.setenv("OKTA_T", CANARY + "\n")
    assert cfg.okta is not None and cfg.okta.token is not None
    assert cfg.okta.token.ref == "env:OKTA_T"
    assert cfg.okta.token.reveal() == CANARY  # the newline of `export T=$(cat file)` is not part of the token


def test_an_empty_env_secret_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(write(tmp_path, HEAD))
    monkeypatch.setenv("ASTRO_API_TOKEN", " \n")
    with pytest.raises(ConfigError, match="ASTRO_API_TOKEN is empty"):
        cfg.astro_for("okta").token.reveal()


def test_a_secret_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "astro.token").write_bytes(b"\xff\xfe\x00tok\x80en")
    cfg = load_config(write(tmp_path, HEAD.replace("env:ASTRO_API_TOKEN", "file:astro.token")))
    with pytest.raises(ConfigError) as err:
        cfg.astro_for("okta").token.reveal()
    assert "is not UTF-8 text" in err.value.message and err.value.location is not None


# -- URLs --------------------------------------------------------------------------------------------------------


def test_a_secret_file_rotated_or_removed_between_reveals_is_read_again(tmp_path: Path) -> None:
    """A file token is read once while the file stays as it was (clients reveal it per request); a rotated file
    gives the new token, a removed one the error naming the file."""
    import os

    from connector.support.secret import Secret

    token = tmp_path / "astro.token"
    token.write_text("first-token-aaaa\n")
    secret = Secret("file:astro.token", base_dir=tmp_path)
    assert secret.reveal() == "first-token-aaaa"
    token.write_text("second-token-bbb\n")  # same length, and perhaps within the file system's timestamp tick:
    st = token.stat()
    os.utime(token, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # as a rotation a second later
    assert secret.reveal() == "second-token-bbb"
    token.unlink()
    with pytest.raises(ConfigError) as err:
        secret.reveal()
    assert "cannot read secret file" in err.value.message and "astro.token" in err.value.message


def test_a_password_in_a_url_is_refused_and_never_echoed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, HEAD.replace("https://api.astronomer.io", f"https://admin:{CANARY}@api.astronomer.io"))
    assert main(["drift", "--idp", "okta", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "must not carry credentials" in err and f"{path}:2:" in err
    assert CANARY not in err


@pytest.mark.parametrize("url", [
    f"https://{CANARY}@api.astronomer.io/scim/v2/clorg123",  # a token as the user, no password
    f"https://admin:{CANARY}/x@api.astronomer.io/scim/v2/clorg123",  # a '/' in the password: read as a path
    f"https://admin:{CANARY}#x@api.astronomer.io/scim/v2/clorg123",  # a '#': read as a fragment
    f"https://api.astronomer.io/scim/v2/clorg123?api_key={CANARY}",  # a token in the query
    f"https://api.astronomer.io/scim/v2/clorg123#{CANARY}",
    f"https://api.astronomer.io:{CANARY}/scim/v2/clorg123",  # a port that is no number
])
def test_a_url_that_may_hold_a_secret_is_refused_without_being_shown(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str) -> None:
    path = write(tmp_path, HEAD.replace("https://api.astronomer.io/scim/v2/clorg123", url))
    assert main(["validate", str(path)]) in (1, 2)  # a finding or a config error
    out, err = capsys.readouterr()
    assert f"{path}:2:" in out + err and "astro.scim_url" in out + err
    assert CANARY not in out + err


def test_redaction_masks_url_passwords_it_was_never_told_about() -> None:
    assert redact.redact("GET https://bob:pa55word@host.example/x") == "GET https://bob:****@host.example/x"
    assert redact.redact("mail bob@host.example, see https://host.example/a@b") == (
        "mail bob@host.example, see https://host.example/a@b")
    # in a long text (a drift report of 20,000 findings) after other URLs: found by its "://" first, masked still
    long = "see https://api.example/scim/v2/o, ada@x.example\n" * 20000 + "GET ftp://bob:pa55word@host.example/x"
    assert redact.redact(long).endswith("GET ftp://bob:****@host.example/x")


def test_a_bad_port_is_a_config_error(tmp_path: Path) -> None:
    err = error(tmp_path, HEAD.replace("api.astronomer.io", "api.astronomer.io:99999"))
    assert "not a valid URL" in err.message and err.location is not None and err.location.line == 2


# -- did you mean ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "line", "hint"), [
    (HEAD + "okat:\n  org_url: https://acme.okta.com\n", 4, "did you mean 'okta'?"),
    (HEAD + "okta:\n  org_url: https://acme.okta.com\n  push_group: [A]\n", 6, "did you mean 'push_groups'?"),
    (HEAD.replace("scim_url", "scim_uri"), 2, "did you mean 'scim_url'?"),
    (HEAD + "safety: {limit: 3}\n", 4, "allowed keys: max_delete_count, max_delete_fraction"),
])
def test_a_mistyped_config_key_gets_the_closest_key(tmp_path: Path, text: str, line: int, hint: str) -> None:
    err = error(tmp_path, text)
    assert "unknown" in err.message and err.hint == hint
    assert err.location is not None and err.location.line == line


# -- azure.authority (Entra's sign-in host) ----------------------------------------------------------------------

AZURE = HEAD + "azure:\n  tenant_id: t1\n  credential: {type: cli}\n  authority: {authority}\n"


@pytest.mark.parametrize("url", ["https://login.microsoftonline.us", "https://login.chinacloudapi.cn/",
                                 "https://127.0.0.1:8443"])
def test_azure_authority_takes_an_https_host(tmp_path: Path, url: str) -> None:
    cfg = load_config(write(tmp_path, AZURE.replace("{authority}", url)))
    assert cfg.azure is not None and cfg.azure.authority == url.rstrip("/")


def test_azure_authority_defaults_to_azure_identitys_own(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, AZURE.replace("  authority: {authority}\n", "")))
    assert cfg.azure is not None and cfg.azure.authority is None


@pytest.mark.parametrize(("url", "needle"), [
    ("http://login.microsoftonline.us", "must use https"),
    ("http://127.0.0.1:8443", "must use https, loopback included"),  # MSAL takes https authorities only
    ("https://login.microsoftonline.us/11111111-2222", "without a path"),
    ("login.microsoftonline.us", "not a bare host"),  # as AZURE_AUTHORITY_HOST takes it: the hint says https://
    (f"https://admin:{CANARY}@login.microsoftonline.us", "must not carry credentials"),
])
def test_a_bad_azure_authority_is_refused_at_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      url: str, needle: str) -> None:
    path = write(tmp_path, AZURE.replace("{authority}", url))
    assert main(["drift", "--idp", "azure", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert needle in err and f"{path}:7:" in err and "azure.authority" in err
    assert CANARY not in err and "Traceback" not in err
    if "://" not in url:
        assert "use https://login.microsoftonline.us" in err


# -- where a secret could still show ------------------------------------------------------------------------------


def test_a_server_echoing_the_token_past_the_cut_is_masked_whole() -> None:
    from connector.astro.errors import _detail

    redact.register(CANARY)
    text, _ = _detail(("x" * 185 + f" got Bearer {CANARY}").encode())
    assert CANARY[:6] not in text and len(text) <= 200


def test_each_line_of_a_multi_line_secret_is_masked_alone() -> None:
    key = "-----BEGIN PRIVATE KEY-----\nMIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"
    redact.register(key)
    assert redact.redact('  File "x", line 2\n    MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQC7') == (
        '  File "x", line 2\n    ****')


def test_a_librarys_warning_is_masked_without_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from connector.cli import _verbose_logging

    redact.register(CANARY)
    with _verbose_logging(False):  # what every command runs in without -v
        logging.getLogger("azure.identity").warning("get_token failed: Received %r", f"secret={CANARY}")
    err = capsys.readouterr().err
    assert "get_token failed" in err and CANARY not in err


@pytest.mark.parametrize("section", ["okta", "azure"])
def test_a_group_listed_twice_is_refused_at_its_second_line(tmp_path: Path, section: str) -> None:
    """One group in the IdP, twice in the list: plan listed its change twice and apply counted it twice (Okta's
    push-groups raced itself over it). The second mention is the error, naming the first's line."""
    idp = ("okta:\n  org_url: https://acme.okta.com\n  token: env:OKTA_API_TOKEN\n" if section == "okta" else
           "azure:\n  tenant_id: 11111111-2222-3333-4444-555555555555\n"
           "  credential: {client_id: a, client_secret: env:AZURE_CLIENT_SECRET}\n")
    err = error(tmp_path, HEAD + idp + "  assign_groups:\n    - Data Engineering\n    - Analytics\n"
                "    - Data Engineering\n")
    assert err.message == f"'Data Engineering' is listed twice in '{section}.assign_groups' (first at line " \
                          f"{len((HEAD + idp).splitlines()) + 2})"
    assert err.location is not None and err.location.line == len((HEAD + idp).splitlines()) + 4
    assert err.hint == "remove one of them"


def test_a_blank_group_name_or_one_with_a_control_character_is_refused_at_its_line(tmp_path: Path) -> None:
    """`push_groups: ["", "x\\ny"]` validated clean: a blank name matches no group (the only word was a warning
    naming an empty group), and a newline is no group's name (the runbook showed it on two lines)."""
    text = HEAD + ("okta:\n  org_url: https://acme.okta.com\n  token: env:OKTA_API_TOKEN\n"
                   "  assign_groups: ['  ']\n  push_groups: ['Data', \"x\\ny\"]\n")
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    listed = str(err.value)
    assert "astro-scim.yaml:7:19: an empty name in 'okta.assign_groups'" in listed
    assert "astro-scim.yaml:8:25: 'x\\ny' holds a control character in 'okta.push_groups'" in listed
    assert "both assignment and Group Push" not in listed


@pytest.mark.parametrize("flag", ["--assign-group", "--push-group"])
def test_init_refuses_a_blank_group_flag_before_reading_or_writing(tmp_path: Path, flag: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """init wrote `- ''` and then said the file did not validate: the flag is refused first, naming it."""
    config = tmp_path / "astro-scim.yaml"
    assert main(["init", "--non-interactive", "--idp", "okta", "-c", str(config), flag, "Astro Users",
                 flag, " "]) == 2
    assert capsys.readouterr().err.startswith(f"error: {flag}: an empty name\n")
    assert not config.exists()
