"""The sandbox's provisioning engines at scale: CPU seconds for Entra's and Okta's first provisioning into the
emulated Astro, an incremental cycle with nothing to do, and the drift audit that follows.

    .venv/bin/python benchmarks/engines.py [--users 5000,20000] [--groups 200] [--idp okta,azure] [--profile N]

How: one Sandbox per IdP and size (every service on loopback in this process), the project file it writes, then
- Entra: `astro-scim apply --pause` (app, assignments, no cycle), then one provisioning cycle run by the
  emulator (`run_cycle`), then a second cycle (nothing changed: the escrow skips everything);
- Okta: `astro-scim apply` (the emulated engine provisions inside the assignment and push requests, as Okta's
  does: every user, the pushed Teams and their members), then `astro-scim apply` again (nothing to do);
- then `astro-scim drift` once.
Figures are this process's CPU seconds (time.process_time: every thread, so the engine, the emulated Astro and
the IdP emulator together; less sensitive to other load on the machine than wall time, though not insensitive:
on 2 cores the same Entra cycle measured 1.36 ms of CPU a user at load 2.4 and 1.78 ms at 5.8, so compare runs
side by side) and the wall. The CLI runs in this process too; its share is small next to the engines' (a few dozen requests for
apply). The note gives the emulated Astro's own share (its request handling as FaultMiddleware accounts it: the
app, not the HTTP server around it), for Entra the engine thread's (the cycle, its HTTP client included; the
rest is the HTTP server around the app and the collector), and the load average at the end.
--profile N prints cProfile's top N functions (by own time) of the first provisioning at each size.
No target is asserted: the aim (issue 15) is cost linear in users + memberships.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class _Profiles:
    """cProfile in every thread that serves a request (the emulators answer in their own threads), merged."""

    def __init__(self) -> None:
        self.on = False
        self.done: list[cProfile.Profile] = []

    def wrap(self, app: Any) -> Any:
        def profiled(environ: dict[str, Any], start_response: Any) -> Any:
            if not self.on:
                return app(environ, start_response)
            profile = cProfile.Profile()
            profile.enable()
            try:
                return list(app(environ, start_response))
            finally:
                profile.disable()
                self.done.append(profile)

        return profiled

    def stats(self, main: cProfile.Profile, top: int) -> str:
        text = io.StringIO()
        stats = pstats.Stats(main, stream=text)
        for profile in self.done:
            stats.add(profile)
        stats.sort_stats("tottime").print_stats(top)
        if os.environ.get("ENGINES_CUMULATIVE"):
            stats.sort_stats("cumulative").print_stats(top)
        return "\n".join(line for line in text.getvalue().splitlines() if line.strip())


@contextlib.contextmanager
def _measure(out: dict[str, float], profile: cProfile.Profile | None = None,
             profiles: _Profiles | None = None) -> Iterator[None]:
    cpu, wall, own = time.process_time(), time.perf_counter(), time.thread_time()
    if profile is not None and profiles is not None:
        profiles.on = True
        profile.enable()
    try:
        yield
    finally:
        if profile is not None and profiles is not None:
            profile.disable()
            profiles.on = False
        out["cpu"], out["wall"] = time.process_time() - cpu, time.perf_counter() - wall
        out["thread"] = time.thread_time() - own  # this thread's: Entra's engine (it runs the cycle here)


def _quiet(fn: Callable[[], int]) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return fn()


def run(idp: str, users: int, groups: int, profile_top: int) -> list[tuple[str, dict[str, float], str]]:
    from connector.cli import main as cli
    from connector.sandbox.core import Sandbox

    rows: list[tuple[str, dict[str, float], str]] = []
    profile = cProfile.Profile() if profile_top else None
    profiles = _Profiles()
    with tempfile.TemporaryDirectory() as tmp, Sandbox(users=users, groups=groups, seed=1) as sb:
        for middleware in sb._middleware.values():
            middleware.app = profiles.wrap(middleware.app)
        if sb.graph is not None:
            sb.graph.background_cycles = False
        if sb.okta is not None:
            sb.okta.set_rate_limit(10**9)  # the budget would only add the SDK's waits to the figures
        sb.astro.rate_limit = 10**9  # Astro's assumed 1,000 requests/s: engines stay below it, but never measure it
        config = str(sb.write_config(Path(tmp) / "astro-scim.yaml", idps=(idp,)))
        org = sb.astro_orgs[idp]
        first: dict[str, float] = {}
        again: dict[str, float] = {}
        astro_log = sb._middleware["astro"].log  # the emulated Astro's own CPU per request (its threads' time)
        if idp == "azure":
            assert _quiet(lambda: cli(["apply", "-c", config, "--yes", "--pause"])) == 0
            assert sb.graph is not None
            sp_id = _entra_sp(sb)
            jobs = list(sb.graph.state.sync[sp_id].jobs.values())  # paused by --pause: run them directly
            astro_cpu = astro_log.cpu_seconds()
            with _measure(first, profile, profiles):
                for job in jobs:
                    sb.graph.engine.run_cycle(sp_id, job)
            astro_cpu = astro_log.cpu_seconds() - astro_cpu
            with _measure(again):
                for job in jobs:
                    sb.graph.engine.run_cycle(sp_id, job)
            what = "provisioning cycle"
        else:
            assert sb.okta is not None
            sb.okta.enable_provisioning(str(sb.okta.app_by_label("Astro")["id"]), org.scim_url, org.token)
            astro_cpu = astro_log.cpu_seconds()
            with _measure(first, profile, profiles):
                assert _quiet(lambda: cli(["apply", "-c", config, "--yes"])) == 0
            astro_cpu = astro_log.cpu_seconds() - astro_cpu
            with _measure(again):
                assert _quiet(lambda: cli(["apply", "-c", config, "--yes"])) == 0
            what = "apply (engine provisions inside the requests)"
        astro_users = sb.astro._count(org.org_id, "User")
        astro_teams = sb.astro._count(org.org_id, "Group")
        storage = sb.astro._org(org.org_id).storage
        memberships = sum(len(getattr(g, "members", None) or []) for g in
                          storage._resources.get("Group", {}).values())
        drift: dict[str, float] = {}
        with _measure(drift):
            code = _quiet(lambda: cli(["drift", "-c", config, "--idp", idp]))
        tag = f"{idp} {users:,} users"
        engine = f", the engine thread {first['thread']:.1f} s" if idp == "azure" else ""
        rows.append((f"{tag}: first {what}", first, f"Astro: {astro_users:,} users, {astro_teams} Teams, "
                     f"{memberships:,} memberships; the emulated Astro's own share {astro_cpu:.1f} s{engine}; "
                     f"load {os.getloadavg()[0]:.1f}"))
        rows.append((f"{tag}: again, nothing to do", again, "-"))
        rows.append((f"{tag}: drift", drift, f"exit {code}"))
    if profile is not None:
        print(f"--- profile: {idp} {users:,} users, first provisioning (by own time, every thread)")
        print(profiles.stats(profile, profile_top))
    return rows


def _entra_sp(sb: Any) -> str:
    st = sb.graph.state
    with st.lock:
        for sp_id, sp in st.service_principals.items():
            if sp.get("displayName") == "Astro":
                return str(sp_id)
    raise SystemExit("no Astro service principal after apply")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", default="5000,20000", help="comma-separated sizes")
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--idp", default="azure,okta")
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    args = parser.parse_args(argv)
    rows: list[tuple[str, dict[str, float], str]] = []
    for idp in args.idp.split(","):
        for users in (int(u) for u in args.users.split(",")):
            done = run(idp, users, args.groups, args.profile)
            for label, m, note in done:  # as they come: a 20,000-user run takes minutes on a loaded machine
                print(f"{label}: {m['cpu']:.2f} s CPU, {m['wall']:.2f} s wall; {note}", flush=True)
            rows += done
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'CPU s':>8}  {'wall s':>8}  note")
    for label, m, note in rows:
        print(f"{label:<{width}}  {m['cpu']:>8.2f}  {m['wall']:>8.2f}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
