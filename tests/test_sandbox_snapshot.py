"""Sandbox.snapshot() / restore(): the conftest's okta_applied and azure_applied fixtures restore what a real
`apply --yes` left in another sandbox instead of running the apply again, so a restored sandbox must be exactly what
a fresh apply gives: the same data in all three services (up to the ids and times two applies never share), an
audit that finds nothing, a plan with nothing to do, and no link back to the sandbox the snapshot came from."""

from __future__ import annotations

import json
import re
from collections import defaultdict, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.cli import main
from connector.sandbox.core import Sandbox
from connector.sandbox.snapshot import copied, replacer

SIZE = {"users": 12, "groups": 3, "seed": 7}  # the conftest sandbox's
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?")
VERSION = re.compile(r'W/"\d+"')  # an Astro resource's version: its place among all writes
# Ids no name stands for: Entra's log ids (<8 hex>-<GUID>) and the like, Okta's key ids (43 base64url characters).
RANDOM_ID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|\b[0-9a-f]{8}-<id>"
                       r"|(?<![\w-])[\w-]{43}(?![\w-])")
MEASURED = {"durationInMilliseconds"}  # how long a provisioning step took: a reading of the clock
CACHES = {"user_bytes", "member_bytes", "_user_list", "lock", "clock", "_lock", "cycle_lock"}  # derived or not data


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
    """Everything the three services hold, as plain data, this sandbox's URLs and tokens named: every attribute of
    the IdP emulators' states (not what their snapshot() picks, so a field it leaves out shows), Astro's users and
    Teams as GET answers them, the Platform's organizations."""
    assert sb.okta is not None and sb.graph is not None
    astro = {org.org_id: {"users": sb.astro.users(org.org_id), "groups": sb.astro.groups(org.org_id)}
             for org in sb.astro_orgs.values()}
    data = {"okta": everything(sb.okta.state), "graph": everything(sb.graph.state), "astro": astro,
            "platform": everything(sb.astro_platform._orgs), "okta_oauth": everything(sb.okta._service_apps),
            "graph_api": everything([sb.graph._pending_propagation, sb.graph._last_created])}
    return json.loads(json.dumps(copied(everything(data), replacer(
        {value: f"<{key}>" for key, value in sb._addresses().items()}))))


def canonical(sb: Sandbox) -> Any:
    """`picture` as two applies of the same config give it: every object id replaced by what the object is (an
    IdP engine provisions side by side, so which Team got which id, and in which order, differs between applies),
    times, write versions and ids nothing names replaced by placeholders, and lists in a fixed order."""
    assert sb.okta is not None and sb.graph is not None
    names: dict[str, str] = {}
    state = sb.okta.state
    for row in state.users.values():
        names[row["id"]] = f"okta-user:{row['profile']['login']}"
    for row in state.groups.values():
        names[row["id"]] = f"okta-group:{row['profile']['name']}/{row['type']}"
    for row in state.apps.values():
        names[row["id"]] = f"okta-app:{row['label']}"
    for row in state.mappings.values():
        names[row["id"]] = f"okta-mapping:{row['source']['name']}>{row['target']['name']}"
    for table in state.push.values():
        for row in table.values():
            names[row["id"]] = f"okta-push:{names[row['sourceGroupId']]}"
    for org in sb.astro_orgs.values():
        names.update({u["id"]: f"astro-user:{u['userName']}" for u in sb.astro.users(org.org_id)})
        names.update({g["id"]: f"astro-team:{g['displayName']}" for g in sb.astro.groups(org.org_id)})
    graph = sb.graph.state
    for app in graph.applications.values():
        names[app["id"]], names[app["appId"]] = f"entra-app:{app['displayName']}", f"entra-appid:{app['displayName']}"
    for sp in graph.service_principals.values():
        names[sp["id"]] = f"entra-sp:{sp['displayName']}"
    for sync in graph.sync.values():
        names.update({job.id: f"entra-job:{job.template_id}" for job in sync.jobs.values()})
    for assignments in graph.assignments.values():
        names.update({a["id"]: f"entra-assignment:{a['principalId']}" for a in assignments})
    known = re.compile("|".join(re.escape(i) for i in sorted(names, key=len, reverse=True)))

    def stable(s: str) -> str:
        s = known.sub(lambda m: names[m.group(0)], s)
        s = VERSION.sub("<version>", TIME.sub("<time>", s))
        return RANDOM_ID.sub("<id>", RANDOM_ID.sub("<id>", s))

    def fixed(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"_rows", "_index", "_removed"}:  # an Okta table: its rows, not their positions
                return fixed([r for r in value["_rows"] if r is not None])
            return {stable(k): "<measured>" if k in MEASURED else fixed(v) for k, v in value.items()}
        if isinstance(value, list):
            return sorted((fixed(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
        return stable(value) if isinstance(value, str) else value

    return fixed(picture(sb))


def everything(value: Any) -> Any:
    """An object's attributes, recursively, as plain data (caches, locks and clocks left out)."""
    if isinstance(value, dict):
        return {k: everything(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, deque)):
        return [everything(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(everything(v) for v in value)
    if isinstance(value, bytes):
        return value.decode()
    if hasattr(value, "__dict__") and not callable(value):
        return {k: everything(v) for k, v in vars(value).items() if k not in CACHES}
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
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
    assert picture(restored) == picture(source)  # exactly, order and write versions included
    apply(fresh, tmp_path / "fresh", idp)
    assert canonical(restored) == canonical(fresh)
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
    with pytest.raises(TypeError, match="defaultdict"):  # would come back a plain dict, without its default
        copied({"index": defaultdict(list)})
