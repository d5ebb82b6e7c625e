"""`applied()`: a sandbox as `astro-scim apply --yes` leaves it, for the tests that start there (the conftest's
okta_applied / azure_applied fixtures, test_verdicts' configured setups).

The first time in a process (a pytest worker) for a given IdP, sandbox identity and config, it runs the real apply
and keeps a snapshot of what it left; afterwards it restores that snapshot into the test's own fresh sandbox
(Sandbox.restore), ~0.1-0.2 s of CPU less per test. tests/test_sandbox_snapshot.py checks that a restored sandbox
is a freshly applied one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connector.sandbox.core import Sandbox, SandboxSnapshot
from connector.sandbox.snapshot import replacer

# per (IdP, console step, sandbox identity, config with the sandbox's addresses named)
_APPLIED: dict[tuple[Any, ...], SandboxSnapshot] = {}


def applied(sb: Sandbox, config: Path, idp: str, console_step: bool = False, only: bool = False,
            extra: tuple[str, ...] = ()) -> None:
    """`sb` as after `astro-scim apply -c CONFIG --yes [EXTRA]` for `idp` (with `--idp IDP` when `only`; the Okta
    admin's manual step done first when `console_step`): the real apply the first time in this process, a restored
    snapshot of it afterwards."""
    from connector.cli import main

    named = replacer({sb.okta_url or "": "<okta>", sb.graph_url or "": "<graph>", sb.astro_url: "<astro>"})
    argv = ["apply", "-c", str(config), "--yes", *(["--idp", idp] if only else []), *extra]
    key = (idp, console_step, tuple(argv[3:]), sb._identity(), named(config.read_text()))
    snap = _APPLIED.get(key)
    if snap is not None:
        sb.restore(snap)
        return
    if console_step:
        org = sb.astro_orgs["okta"]
        assert sb.okta is not None
        sb.okta.enable_provisioning(_astro_app_id(sb), org.scim_url, org.token)
    assert main(argv) == 0
    _APPLIED[key] = sb.snapshot()


def _astro_app_id(sb: Sandbox) -> str:
    assert sb.okta is not None
    return str(sb.okta.app_by_label("Astro")["id"])
