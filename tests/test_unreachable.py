"""A service that does not answer at all: exit 3, the endpoint, and a hint naming the config key to check."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from connector.cli import main
from connector.sandbox.core import Sandbox
from connector.support.clock import FakeClock
from connector.support.http import DEFAULT_POLICY


def _closed_port() -> int:
    with socket.socket() as s:  # bind then close: nothing listens there afterwards
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("idp", "key", "edit"), [
    ("okta", "okta.org_url", lambda d, url: d["okta"].__setitem__("org_url", url)),
    ("azure", "azure.graph_url", lambda d, url: d["azure"].__setitem__("graph_url", url + "/v1.0")),
    ("okta", "astro.scim_url", lambda d, url: d["okta"]["astro"].__setitem__("scim_url", url + "/scim/v2/x")),
])
def test_unreachable_service_exits_3_with_a_hint(sandbox: Sandbox, tmp_path: Path, idp: str, key: str,
                                                 edit: object, capsys: pytest.CaptureFixture[str],
                                                 fake_clock: FakeClock) -> None:
    config = sandbox.write_config(tmp_path / "astro-scim.yaml")
    data = yaml.safe_load(config.read_text())
    edit(data, f"http://127.0.0.1:{_closed_port()}")  # type: ignore[operator]
    config.write_text(yaml.safe_dump(data))
    command = ["drift"] if key.startswith("astro") else ["plan"]
    assert main([*command, "-c", str(config), "--idp", idp]) == 3
    err = capsys.readouterr().err
    assert "reach" in err and f"hint: check {key}" in err and "Traceback" not in err
    # It was retried with the policy's backoff first: a closed loopback port refuses at once, and the waits
    # between attempts pass on the test's virtual clock.
    assert len(fake_clock.sleeps) >= DEFAULT_POLICY.attempts - 1
