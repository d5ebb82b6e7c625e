"""`astro-scim init` against the sandbox, through the real CLI, from an empty folder: init -> validate -> plan ->
apply, with every answer a flag (--non-interactive) and secrets as references only."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from connector.cli import main
from connector.sandbox.core import Sandbox
from connector.sandbox.seed import ASSIGNED_TEAM


@pytest.fixture
def tokens(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox's tokens where the references init writes point."""
    monkeypatch.setenv("OKTA_API_TOKEN", sandbox.okta_token)
    monkeypatch.setenv("GRAPH_TOKEN", sandbox.graph_token)
    monkeypatch.setenv("ASTRO_API_TOKEN", sandbox.astro_orgs["okta"].token)
    monkeypatch.setenv("ASTRO_AZURE_TOKEN", sandbox.astro_orgs["azure"].token)


def okta_flags(sb: Sandbox) -> list[str]:
    return ["--okta-org-url", sb.okta_url, "--okta-token-ref", "env:OKTA_API_TOKEN",
            "--astro-scim-url", sb.astro_orgs["okta"].scim_url, "--astro-token-ref", "env:ASTRO_API_TOKEN"]


def azure_flags(sb: Sandbox) -> list[str]:
    return ["--tenant-id", sb.tenant_id, "--graph-url", str(sb.graph_url), "--graph-token-ref", "env:GRAPH_TOKEN",
            "--astro-scim-url", sb.astro_orgs["azure"].scim_url, "--astro-token-ref", "env:ASTRO_AZURE_TOKEN"]


def init(config: Path, *flags: str) -> int:
    return main(["init", "--non-interactive", "-c", str(config), *flags])


def test_init_validate_plan_apply_from_an_empty_folder_with_okta(
    sandbox: Sandbox, tokens: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # an empty folder, and every command with its default config file
    monkeypatch.delenv("ASTRO_SCIM_CONFIG", raising=False)
    config = tmp_path / "astro-scim.yaml"
    teams = sandbox.default_team_names()
    push = [arg for team in teams for arg in ("--push-group", team)]
    assert main(["init", "--non-interactive", *okta_flags(sandbox), *push]) == 0
    out = capsys.readouterr().out
    assert "okta: app Astro (" in out  # found through the provider's own read of the org
    assert f"okta.assign_groups: {ASSIGNED_TEAM} (named like the app)" in out
    assert "1 project config and 1 mapping file OK" in out  # validate ran on it
    assert "ok   Okta API token" in out  # and test-connection
    data = yaml.safe_load(config.read_text())
    assert data["okta"]["token"] == "env:OKTA_API_TOKEN" and data["astro"]["token"] == "env:ASTRO_API_TOKEN"
    assert data["okta"]["push_groups"] == teams and data["okta"]["mapping"] == "mappings/okta.yaml"
    assert (tmp_path / "mappings" / "okta.yaml").is_file() and not (tmp_path / "mappings" / "azure.yaml").exists()
    text = config.read_text()
    assert sandbox.okta_token not in text and sandbox.astro_orgs["okta"].token not in text
    assert sandbox.logs["okta"].writes() == []  # init reads the org, never writes it

    assert main(["validate", "astro-scim.yaml"]) == 0
    assert main(["plan", "--exit-code"]) == 1  # the setup to do
    app_id = str(sandbox.okta.app_by_label("Astro")["id"])
    org = sandbox.astro_orgs["okta"]
    sandbox.okta.enable_provisioning(app_id, org.scim_url, org.token)  # the plan's manual step
    assert main(["apply", "--yes"]) == 0
    assert main(["plan", "--exit-code"]) == 0


def test_init_validate_plan_apply_from_an_empty_folder_with_entra(
    sandbox: Sandbox, tokens: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "astro-scim.yaml"
    assert init(config, *azure_flags(sandbox), "--assign-group", ASSIGNED_TEAM) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "azure: no app yet" in out and "apply" in out  # the app apply will create
    assert f"azure.assign_groups: {ASSIGNED_TEAM} (from the flags)" in out
    # test-connection says the app is not set up yet (information, as Okta's provisioning before apply): apply
    # creates it; nothing fails
    assert "info app 'Astro': not set up yet" in out and "some checks did not pass" not in captured.err
    data = yaml.safe_load(config.read_text())
    assert data["azure"]["credential"] == {"token": "env:GRAPH_TOKEN"}
    assert main(["validate", str(config)]) == 0
    assert main(["plan", "-c", str(config), "--exit-code"]) == 1
    assert main(["apply", "-c", str(config), "--yes"]) == 0
    assert main(["plan", "-c", str(config), "--exit-code"]) == 0
    # run again on the configured tenant: it finds the app and the assignment
    assert init(config, *azure_flags(sandbox), "--force") == 0
    out = capsys.readouterr().out
    assert "azure: app Astro (" in out and f"assigned groups: {ASSIGNED_TEAM}" in out
    assert f"azure.assign_groups: {ASSIGNED_TEAM} (in use by the app)" in out


def test_init_refuses_to_overwrite_without_force(
    sandbox: Sandbox, tokens: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "astro-scim.yaml"
    config.write_text("# mine\n")
    assert init(config, *okta_flags(sandbox)) == 2
    assert "already exists" in capsys.readouterr().err and config.read_text() == "# mine\n"
    assert not (tmp_path / "mappings").exists()


def test_init_with_a_file_named_mappings_is_an_error_not_a_crash(
    sandbox: Sandbox, tokens: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mappings").write_text("not a folder\n")
    config = tmp_path / "astro-scim.yaml"
    assert init(config, *okta_flags(sandbox)) == 2
    err = capsys.readouterr().err
    assert "mappings is a file" in err and "Traceback" not in err and not config.exists(), err


def test_an_unreadable_secret_reference_names_the_variable_not_inits_scratch_file(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OKTA_API_TOKEN", raising=False)
    config = tmp_path / "astro-scim.yaml"
    init(config, *okta_flags(sandbox))
    out = capsys.readouterr()
    text = out.out + out.err + (config.read_text() if config.exists() else "")
    assert "OKTA_API_TOKEN" in text and ".astro-scim-init." not in text, text


def test_several_bad_answers_are_all_named_by_their_key_not_by_inits_scratch_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two answers the config refuses at once (http to hosts that are not loopback): both are said, each by its
    key, and no file:line of the draft init loaded them from (deleted, never the user's)."""
    monkeypatch.setenv("OKTA_API_TOKEN", "x")
    monkeypatch.setenv("ASTRO_API_TOKEN", "y")
    config = tmp_path / "astro-scim.yaml"
    assert init(config, "--okta-org-url", "http://okta.example.com", "--okta-token-ref", "env:OKTA_API_TOKEN",
                "--astro-scim-url", "http://astro.example.com/scim/v2/org1",
                "--astro-token-ref", "env:ASTRO_API_TOKEN") == 2
    err = capsys.readouterr().err
    assert "2 problems in the answers" in err, err
    assert "okta.org_url must use https" in err and "astro.scim_url must use https" in err
    assert ".astro-scim-init." not in err and str(tmp_path) not in err, err
    assert not config.exists()


def test_init_refuses_a_literal_secret_and_names_the_flag(
    sandbox: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "astro-scim.yaml"
    flags = okta_flags(sandbox)
    at = flags.index("--okta-token-ref")
    # One argument with "=": a token may start with "-" (urlsafe), which argparse would take for an option.
    flags[at:at + 2] = [f"--okta-token-ref={sandbox.okta_token}"]
    assert init(config, *flags) == 2
    err = capsys.readouterr().err
    assert "--okta-token-ref" in err and "reference" in err and sandbox.okta_token not in err
    assert not config.exists()


def test_init_without_an_answer_names_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert init(tmp_path / "astro-scim.yaml", "--idp", "okta") == 2
    err = capsys.readouterr().err
    assert "init needs --astro-scim-url" in err and "hint:" in err


def test_init_keeps_an_existing_mapping(
    sandbox: Sandbox, tokens: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mappings").mkdir()
    mine = (tmp_path / "mappings" / "okta.yaml")
    mine.write_text(Path(str(sandbox.config_data()["okta"]["mapping"])).read_text() + "# edited\n")
    assert init(tmp_path / "astro-scim.yaml", *okta_flags(sandbox)) == 0
    assert mine.read_text().endswith("# edited\n") and "kept " in capsys.readouterr().out


def test_init_asks_on_a_terminal(
    sandbox: Sandbox, tokens: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    answers = iter(["okta", sandbox.astro_orgs["okta"].scim_url, "", sandbox.okta_url, "",
                    "", "Data Engineering, Analytics"])
    prompts: list[str] = []

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("builtins.input", answer)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    config = tmp_path / "astro-scim.yaml"
    assert main(["init", "-c", str(config)]) == 0
    assert prompts[2] == "Astro Organization API token (a reference: env:NAME or file:PATH) [env:ASTRO_API_TOKEN]: "
    assert prompts[5] == f"okta.assign_groups (comma-separated) [{ASSIGNED_TEAM}]: "
    data = yaml.safe_load(config.read_text())
    assert data["okta"]["assign_groups"] == [ASSIGNED_TEAM]  # the default, taken with Enter
    assert data["okta"]["push_groups"] == ["Data Engineering", "Analytics"]
    assert data["astro"]["token"] == "env:ASTRO_API_TOKEN"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_init_exits_2_and_skips_test_connection_when_the_written_config_does_not_validate(
    sandbox: Sandbox, tokens: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "okta.yaml").write_text("attributes: [\n")  # kept as it is, and broken
    config = tmp_path / "astro-scim.yaml"
    assert init(config, *okta_flags(sandbox), "--format", fmt) == 2  # README: 2 for a config that does not validate
    assert config.exists()
    captured = capsys.readouterr()
    narration = captured.err if fmt == "json" else captured.out
    assert not any(line.startswith("astro-scim test-connection") for line in narration.splitlines())
    assert "Okta API token" not in narration  # no check was run
    assert f"skipped test-connection: {config} does not validate" in narration
    assert "was written but does not validate" in captured.err
    if fmt == "json":
        import json
        doc = json.loads(captured.out)
        assert doc["exit_code"] == 2 and doc["ok"] is False and doc["test_connection"] is None
        assert doc["validate"]["ok"] is False and doc["error"]["type"] == "ConfigError"


@pytest.mark.parametrize("idp", ["okta", "azure"])
def test_init_with_an_unreachable_idp_says_so_and_fills_no_groups(
    sandbox: Sandbox, tokens: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], idp: str
) -> None:
    """A discovery that could not read the IdP is no empty org: no "none found", no `assign_groups: []`, exit 3
    with the read's error (JSON ok false), and a TODO comment where the groups go."""
    import json

    dead = "http://127.0.0.1:9"
    flags = okta_flags(sandbox) if idp == "okta" else azure_flags(sandbox)
    flags[flags.index(sandbox.okta_url if idp == "okta" else str(sandbox.graph_url))] = dead
    config = tmp_path / "y.yaml"
    name = {"okta": "Okta", "azure": "Entra"}[idp]
    assert init(config, *flags) == 3
    captured = capsys.readouterr()
    assert f"{idp}: could not read {name}:" in captured.out
    assert "none found" not in captured.out and "no app yet" not in captured.out
    assert "skipped test-connection" in captured.out and f"could not read {name}" in captured.err
    text = config.read_text()
    assert "# TODO: init could not read" in text and "# assign_groups: [...]" in text
    assert "assign_groups" not in yaml.safe_load(text)[idp]
    assert main(["validate", str(config)]) == 0  # the rest of what was answered is a valid config
    capsys.readouterr()

    assert init(config, *flags, "--force", "--format", "json") == 3
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["exit_code"] == 3 and doc["error"]["type"] in ("RemoteError", "AuthError")
    (found,) = doc["discovery"]
    assert found["error"] is not None and found["app_hint"] is None
    assert {g["why"] for g in found["groups"]} == {"not_read"} and all(g["groups"] == [] for g in found["groups"])
    # flags still give groups: they are written
    capsys.readouterr()
    push = ["--push-group", "Data Engineering"] if idp == "okta" else []
    assert init(config, *flags, "--force", "--assign-group", ASSIGNED_TEAM, *push) == 3
    assert yaml.safe_load(config.read_text())[idp]["assign_groups"] == [ASSIGNED_TEAM]
    # and no TODO comment is written, so the hint does not point at one
    assert "TODO" not in config.read_text() and "TODO" not in capsys.readouterr().err
