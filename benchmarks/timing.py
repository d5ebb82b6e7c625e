"""The speed figures the test suite used to assert, measured here instead and printed against their bounds.

    .venv/bin/python benchmarks/timing.py [--quick]

Tests prove behaviour; wall time depends on the machine and its load, so it is a figure, never a test failure.
Each line names the test that keeps the behaviour part:

- seed: generate a 50,000-person / 2,000-team org                     <= 5 s     (tests/test_seed.py)
- Okta emulator: load that org                                         <= 15 s    (tests/test_okta_emulator.py)
- Okta emulator: a page from a cursor near the end of 50k users        <= 1 s     (a cursor resumes in place)
- Astro reader: 40 users in pages of 4, 4 at a time, 100 ms a request  <= 1 s     (tests/test_astro_reader.py;
  one request at a time takes 1.4 s, the critical path 0.5 s)
- aiohttp engine: all_sent() for 4 requests a server answers in 0.5 s  <= 0.25 s  (tests/test_scim_aiohttp.py)
- access: plan with a Team not pushed yet and team_wait_seconds 10     <= 2 s     (tests/test_access_sandbox.py;
  plan never waits)
- access: apply gives up on a Team that never appears, wait 1 s        1 s .. 6 s

--quick uses a 5,000-person org for the first three lines (their bounds are for 50,000, so they only say "fast").
The figures are wall time on whatever else the machine is doing; run on an idle machine to compare with bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

Row = tuple[str, float, str, bool]  # measure, seconds, bound as text, within the bound


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def seed_and_okta(users: int, groups: int) -> list[Row]:
    from werkzeug.test import Client

    from connector.sandbox.okta.api import OktaEmulator
    from connector.sandbox.seed import generate

    rows: list[Row] = []
    seconds, seed = _timed(lambda: generate(users, groups, 1))
    rows.append((f"seed: generate {users:,} people, {groups:,} teams", seconds, "<= 5 s", seconds <= 5))
    token = "bench-okta-token"
    okta = OktaEmulator(token)
    try:
        seconds, _ = _timed(lambda: okta.load(seed))
        rows.append((f"okta emulator: load {users:,} users, {groups:,} groups", seconds, "<= 15 s", seconds <= 15))
        client = Client(okta.app)
        headers = {"Authorization": f"SSWS {token}"}
        client.get("/api/v1/users?limit=200", headers=headers)  # warm-up: first-touch costs are not the figure
        cursor = okta.user_by_login(seed.people[users - 101].email)["id"]
        seconds, page = _timed(lambda: client.get(f"/api/v1/users?limit=200&after={cursor}", headers=headers))
        assert len(page.get_json()) == 100, "the cursor page is not the last 100 users"
        rows.append((f"okta emulator: page after a cursor near the end of {users:,}", seconds, "<= 1 s",
                     seconds <= 1))
    finally:
        okta.close()
    return rows


class _Slow:
    """Answers every request `delay` seconds late, so concurrency shows in wall time."""

    def __init__(self, app: Any, delay: float) -> None:
        self.app, self.delay = app, delay

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        time.sleep(self.delay)
        return self.app(environ, start_response)


def astro_reader() -> list[Row]:
    from connector.astro.reader import read_astro
    from connector.config.load import AstroConfig
    from connector.sandbox.astro.scim import AstroScim
    from connector.sandbox.server import ServedApp
    from connector.support.secret import Secret

    org, token = "clorgbench00000000000000001", "bench-astro-token"
    scim = AstroScim()
    scim.add_org(org, token)
    for i in range(40):
        scim.add_orphan(org, f"user{i:04d}@acme.example", "Given", f"Family{i}")
    slow = _Slow(scim.app, 0.0)
    served = ServedApp("bench-astro", slow).start()
    scim.base_url = served.url
    try:
        config = AstroConfig(scim_url=scim.scim_url(org), token=Secret.from_value(token))
        read_astro(config)  # warm-up: imports and model building are not the figure
        slow.delay = 0.1
        seconds, view = _timed(lambda: read_astro(config, page_size=4, concurrency=4))
        assert len(view.users) == 40
    finally:
        served.stop()
    return [("astro reader: 40 users, pages of 4, 4 at a time, 100 ms a request", seconds,
             "<= 1 s (serial 1.4 s)", seconds <= 1)]


def aiohttp_all_sent() -> list[Row]:
    from connector.astro.engine import AstroSession
    from connector.sandbox.server import ServedApp

    body = b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0}'

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        time.sleep(0.5)
        start_response("200 OK", [("Content-Type", "application/scim+json"), ("Content-Length", str(len(body)))])
        return [body]

    served = ServedApp("bench-held", app).start()

    async def go() -> float:
        async with AstroSession(served.url, headers={"Authorization": "Bearer x"}, concurrency=4,
                                timeout=10) as session:
            tasks = [asyncio.ensure_future(session.request("GET", f"/Users?startIndex={i}")) for i in range(4)]
            seconds, _ = await _atimed(session.all_sent())
            await asyncio.gather(*tasks)
            return seconds

    try:
        seconds = asyncio.run(go())
    finally:
        served.stop()
    return [("Astro session: all_sent() for 4 requests answered in 0.5 s", seconds, "<= 0.25 s", seconds <= 0.25)]


async def _atimed(awaitable: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = await awaitable
    return time.perf_counter() - start, result


def access_waits() -> list[Row]:
    from connector.access.provider import AstroAccessProvider
    from connector.cli import main
    from connector.config.load import load_config
    from connector.sandbox.core import Sandbox

    roles = {"organization": "ORGANIZATION_MEMBER", "workspaces": {"analytics": "WORKSPACE_AUTHOR"},
             "deployments": {"analytics/prod": "DEPLOYMENT_ADMIN"}}
    rows: list[Row] = []
    with Sandbox(users=12, groups=3, seed=7) as sb, tempfile.TemporaryDirectory(prefix="bench-access-") as tmp:
        team = sb.default_team_names()[0]

        def config(wait: float) -> Path:
            path = sb.write_config(Path(tmp) / f"astro-scim-{wait:g}.yaml", idps=("okta",))
            data = yaml.safe_load(path.read_text())
            data["access"] = {team: roles}
            data["okta"]["astro"]["team_wait_seconds"] = wait
            path.write_text(yaml.safe_dump(data, sort_keys=False))
            return path

        patient = config(10)
        AstroAccessProvider(load_config(patient)).plan()  # warm-up
        seconds, _ = _timed(lambda: AstroAccessProvider(load_config(patient)).plan())
        rows.append(("access: plan with a Team not pushed yet (wait 10 s)", seconds, "<= 2 s", seconds <= 2))
        hasty = config(1)
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            seconds, code = _timed(lambda: main(["apply", "--idp", "astro", "-c", str(hasty), "--yes"]))
        assert code == 3, f"apply exited {code}, expected 3"
        rows.append(("access: apply gives up on a Team that never appears (wait 1 s)", seconds, "1 s .. 6 s",
                     1 <= seconds < 6))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 5,000-person org instead of 50,000")
    args = parser.parse_args(argv)
    users, groups = (5_000, 200) if args.quick else (50_000, 2_000)
    rows = seed_and_okta(users, groups) + astro_reader() + aiohttp_all_sent() + access_waits()
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'seconds':>8}  {'bound':<22}  verdict")
    for label, seconds, bound, ok in rows:
        print(f"{label:<{width}}  {seconds:>8.3f}  {bound:<22}  {'within' if ok else 'OVER'}")
    # Wall time moves with the machine's load: say what it was, so a figure over its bound can be judged.
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
