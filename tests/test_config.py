"""Project config: typed loading, file:line errors, secrets by reference, https rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config.load import load_config
from connector.errors import ConfigError
from connector.support.secret import Secret

GOOD = """\
astro:
  scim_url: https://api.astronomer.io/scim/v2/clorg123
  token: env:ASTRO_API_TOKEN
okta:
  org_url: https://acme.okta.com
  token: env:OKTA_API_TOKEN
  app: {label: Astro}
  mapping: mappings/okta.yaml
  assign_groups: [Astro Users]
  push_groups: [Data Engineering]
azure:
  tenant_id: 00000000-0000-0000-0000-000000000000
  credential: {client_id: abc, client_secret: env:AZURE_CLIENT_SECRET}
  app: {display_name: Astro}
  mapping: mappings/azure.yaml
  assign_groups: [Astro Users]
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "astro-scim.yaml"
    p.write_text(text)
    return p


def test_good_config_loads_typed(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.idps() == ["okta", "azure"]
    assert cfg.okta is not None and cfg.okta.app_label == "Astro" and cfg.okta.push_groups == ["Data Engineering"]
    assert cfg.okta.mapping == tmp_path / "mappings/okta.yaml"
    assert cfg.azure is not None and cfg.azure.credential.kind == "secret"
    assert cfg.astro_for("okta").organization_id == "clorg123"
    assert cfg.astro_for("okta").page_size is None  # the drift reader asks for what the server honours


def test_secret_from_env_and_missing_env_names_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    monkeypatch.setenv("ASTRO_API_TOKEN", "canary-astro-token-123")
    assert cfg.astro_for("okta").token.reveal() == "canary-astro-token-123"
    assert "canary" not in repr(cfg.astro_for("okta").token) and "canary" not in str(cfg.astro_for("okta").token)
    monkeypatch.delenv("OKTA_API_TOKEN", raising=False)
    assert cfg.okta is not None and cfg.okta.token is not None
    with pytest.raises(ConfigError) as err:
        cfg.okta.token.reveal()
    assert "OKTA_API_TOKEN" in str(err.value) and ":6:" in str(err.value)


def test_secret_from_file(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("file-secret-value\n")
    s = Secret("file:tok", base_dir=tmp_path)
    assert s.reveal() == "file-secret-value"


@pytest.mark.parametrize(("content", "needle"), [
    ("tok-value\n# a comment\n", "holds more than one line (a line break after line 1)"),
    ("tok\r\nvalue", "holds more than one line"),
    ("tok\x00value", "control character (U+0000, character 4)"),
    ("tok\u00a0value", "not printable ASCII (U+00A0, character 4)"),  # a pasted no-break space
    ("tok\u200bvalue", "not printable ASCII (U+200B, character 4)"),  # a zero-width space
])
def test_a_token_must_be_one_line_of_text(tmp_path: Path, content: str, needle: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens go into HTTP headers: a second line or a control character is a config error naming the file (and
    never the value), not the HTTP library's ValueError."""
    (tmp_path / "tok").write_text(content, newline="")
    with pytest.raises(ConfigError) as err:
        Secret("file:tok", base_dir=tmp_path).reveal()
    assert needle in str(err.value) and "tok-value" not in str(err.value) and err.value.hint
    if "\x00" not in content:  # an environment variable cannot hold a NUL
        monkeypatch.setenv("ASTRO_SCIM_TEST_TOKEN", content)
        with pytest.raises(ConfigError, match="environment variable ASTRO_SCIM_TEST_TOKEN"):
            Secret("env:ASTRO_SCIM_TEST_TOKEN").reveal()
    pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    (tmp_path / "key.pem").write_text(pem)
    assert Secret("file:key.pem", base_dir=tmp_path, multiline=True).reveal() == pem.strip()  # a key is lines


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        (GOOD.replace("https://acme.okta.com", "http://acme.okta.com"), 5, "must use https"),
        (GOOD + "oktaa: {}\n", 17, "unknown top-level key 'oktaa'"),
        (GOOD.replace("  push_groups:", "  push_group:"), 10, "unknown key 'push_group'"),
        (GOOD.replace("  assign_groups: [Astro Users]\n  push", "  assign_groups: Astro Users\n  push"), 9,
         "must be a list of strings"),
        ("astro:\n  scim_url: https://x/scim/v2/o\nastro:\n  scim_url: https://y\n", 3, "duplicate key"),
        ("astro:\n\t scim_url: x\n", 2, "invalid YAML"),
        (GOOD.replace("  token: env:ASTRO_API_TOKEN\n", "  token: env:ASTRO_API_TOKEN\n  page_size: 5000\n"), 4,
         "page_size must be a whole number from 1 to 1000"),
        (GOOD.replace("  token: env:ASTRO_API_TOKEN\n", "  token: env:ASTRO_API_TOKEN\n  page_size: '100'\n"), 4,
         "page_size must be a whole number"),
    ],
)
def test_bad_config_points_at_line(tmp_path: Path, text: str, line: int, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert needle in str(err.value)
    assert f"astro-scim.yaml:{line}:" in str(err.value)


def test_loopback_may_use_http(tmp_path: Path) -> None:
    text = GOOD.replace("https://acme.okta.com", "http://127.0.0.1:8080")
    cfg = load_config(write(tmp_path, text))
    assert cfg.okta is not None and cfg.okta.org_url == "http://127.0.0.1:8080"
