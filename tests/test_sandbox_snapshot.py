"""Sandbox.snapshot() / restore(): the conftest's okta_applied and azure_applied fixtures restore what a real
`apply --yes` left in another sandbox instead of running the apply again, so a restored sandbox must be exactly what
a fresh apply gives: the same data in all three services (up to the ids and times two applies never share), an
audit that finds nothing, a plan with nothing to do, and no link back to the sandbox the snapshot came from."""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.cli import main
from connector.sandbox.core import Sandbox
from connector.sandbox.snapshot import copied, replacer

SIZE = {"users": 12, "groups": 3, "seed": 7}  # the conftest sandbox's
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?")
# Random ids: Astro's cuids, Entra's GUIDs, job ids (scim.<32 hex>.<GUID>), log ids (<8 hex>-<GUID>), Okta's key
# ids and Entra's assignment ids (43 base64url characters).
RANDOM_ID = re.compile(r"\bcl[0-9a-z]{23}\b|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
                       r"|\b[0-9a-f]{32}\b|\b[0-9a-f]{8}(?=-<id)|(?<![\w-])[\w-]{43}(?![\w-])")
MEASURED = {"durationInMilliseconds"}  # how long a provisioning step took: a reading of the clock


@pytest.fixture
def sandboxes() -> Iterator[list[Sandbox]]:
    started: list[Sandbox] = []
    try:
        for _ in range(3):
            started.append(Sandbox(**SIZE).start())  # type: ignore[arg-type]
        yield started
    finally:
        for sb in started:
            sb.stop()


def apply(sb: Sandbox, directory: Path, idp: str) -> Path:
    """What the okta_applied / azure_applied fixtures did before snapshots: the real apply."""
    config = sb.write_config(directory / "astro-scim.yaml", idps=(idp,))
    if idp == "okta":
        assert sb.okta is not None
        org = sb.astro_orgs["okta"]
        sb.okta.enable_provisioning(str(sb.okta.app_by_label("Astro")["id"]), org.scim_url, org.token)
    assert main(["apply", "-c", str(config), "--yes"]) == 0
    return config


def picture(sb: Sandbox) -> Any:
    """Everything the three services hold, as plain data, with this sandbox's URLs and tokens named and the ids
    and times that differ between two applies (random Astro and Entra ids, clock readings) replaced by their order
    of first appearance."""
    assert sb.okta is not None and sb.graph is not None
    # Astro's users and Teams by name: an IdP engine provisions side by side, so the order differs between applies.
    astro = {org.org_id: {"users": sorted_by(sb.astro.users(org.org_id), "userName"),
                          "groups": sorted_by(sb.astro.groups(org.org_id), "displayName")}
             for org in sb.astro_orgs.values()}
    # Every attribute of the IdP emulators' states, not what their snapshot() picks: a field it leaves out shows.
    data = {"okta": everything(sb.okta.state), "graph": everything(sb.graph.state), "astro": astro,
            "platform": everything(sb.astro_platform._orgs), "okta_oauth": everything(sb.okta._service_apps),
            "graph_api": everything([sb.graph._pending_propagation, sb.graph._last_created])}
    named = replacer({value: f"<{key}>" for key, value in sb._addresses().items()})
    seen: dict[str, str] = {}

    def stable(s: str) -> str:
        s = named(s)
        s = TIME.sub("<time>", s)
        for _ in range(2):  # a log id's GUID first, then the 8 hex digits before it
            s = RANDOM_ID.sub(lambda m: seen.setdefault(m.group(0), f"<id{len(seen)}>"), s)
        return s

    def plain(value: Any) -> Any:  # the platform's dataclasses as dicts
        if hasattr(value, "__dataclass_fields__"):
            return {k: plain(getattr(value, k)) for k in value.__dataclass_fields__}
        if isinstance(value, dict):
            return {k: "<measured>" if k in MEASURED else plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return copied(json.loads(json.dumps(plain(data), default=sorted_list)), stable)


def sorted_by(resources: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    for r in resources:
        for name in ("members", "groups"):
            if name in r:
                r[name] = sorted(r[name], key=lambda m: str(m.get("display")))
    return sorted(resources, key=lambda r: str(r[key]))


CACHES = {"user_bytes", "_user_list", "lock", "clock", "_lock", "cycle_lock"}  # derived or not data


def everything(value: Any) -> Any:
    """An object's attributes, recursively, as plain data (caches, locks and clocks left out)."""
    if isinstance(value, dict):
        return {k: everything(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, deque)):
        return [everything(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(everything(v) for v in value)
    if hasattr(value, "__dict__") and not callable(value):
        return {k: everything(v) for k, v in vars(value).items() if k not in CACHES}
    return value


def sorted_list(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, bytes):
        return value.decode()
    return str(value)  # e.g. a UUID


def audit(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[Any], int]:
    capsys.readouterr()
    drift_rc = main(["drift", "-c", str(config), "--format", "json"])
    findings = [f for idp in json.loads(capsys.readouterr().out)["idps"] for f in idp["findings"]]
    plan_rc = main(["plan", "-c", str(config), "--format", "json"])
    capsys.readouterr()
    return drift_rc, findings, plan_rc


@pytest.mark.parametrize("idp", ["okta", "azure"])
def test_a_restored_sandbox_is_a_freshly_applied_one(idp: str, sandboxes: list[Sandbox], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    source, restored, fresh = sandboxes
    apply(source, tmp_path / "source", idp)
    snap = source.snapshot()
    restored.restore(snap)
    apply(fresh, tmp_path / "fresh", idp)
    assert picture(restored) == picture(fresh)
    # and the connector sees it so: nothing found, nothing to do, through this sandbox's own URLs and tokens
    config = restored.write_config(tmp_path / "restored" / "astro-scim.yaml", idps=(idp,))
    source.stop()  # nothing may still point at it
    assert audit(config, capsys) == (0, [], 0)


def test_a_restored_sandbox_is_its_own(sandboxes: list[Sandbox], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    # Changes in a restored sandbox reach neither the snapshot nor the next sandbox restored from it.
    source, first, second = sandboxes
    apply(source, tmp_path / "source", "okta")
    snap = source.snapshot()
    before = picture(source)
    first.restore(snap)
    org = first.astro_orgs["okta"].org_id
    user = first.astro.users(org)[0]["userName"]
    first.astro.delete_user(org, user)
    assert first.okta is not None
    first.okta.state.users.remove(next(iter(first.okta.state.users.keys())))
    second.restore(snap)
    assert picture(second) == before
    config = second.write_config(tmp_path / "second" / "astro-scim.yaml", idps=("okta",))
    assert audit(config, capsys) == (0, [], 0)


def test_a_snapshot_goes_only_into_a_sandbox_of_the_same_seed_and_size() -> None:
    with (Sandbox(**SIZE) as one, Sandbox(users=5, groups=3, seed=7) as other,  # type: ignore[arg-type]
          pytest.raises(ValueError, match="another seed or size")):
        other.restore(one.snapshot())


def test_ports_are_replaced_whole_and_data_is_copied_not_shared() -> None:
    translate = replacer({"http://127.0.0.1:5432": "http://127.0.0.1:6000", "tok": "TOK"})
    assert translate("http://127.0.0.1:5432/scim") == "http://127.0.0.1:6000/scim"
    assert translate("http://127.0.0.1:54321/scim") == "http://127.0.0.1:54321/scim"  # another port
    assert translate("Bearer tok") == "Bearer TOK"
    shared = {"a": 1}
    data = {"x": [shared, shared], "y": ("tok", {"tok"}), "z": deque([1], maxlen=3)}
    copy = copied(data, translate)
    assert copy == {"x": [{"a": 1}, {"a": 1}], "y": ("TOK", {"TOK"}), "z": deque([1], maxlen=3)}
    assert copy["x"][0] is not shared and copy["x"][0] is copy["x"][1]  # copied once, aliasing kept
    with pytest.raises(TypeError, match="not plain data"):
        copied({"lock": object()})
