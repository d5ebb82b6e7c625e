"""Sandbox benchmark: seed a 50,000-user / 2,000-group org, then measure list-page throughput of each service.

    .venv/bin/python benchmarks/sandbox.py [--users 50000 --groups 2000 --requests 2000 --threads 4]

Targets: full Sandbox start (generate + Okta and Graph `load` + servers) <= 30 s; >= 1,000 list pages/s per
emulator. The load runs in a child process (4 threads, keep-alive httpx clients) so the client does not share
the servers' interpreter lock. Loopback only; every loop is bounded.

Each throughput line also shows the server process's CPU per request, and is followed by the same load against
a server that does no work and answers a body of the same size: on 2 cores the one client process is the limit
for big pages (httpx reading 160-340 kB per request), so that line is the most any emulator could score there.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _load(url: str, headers: dict[str, str], requests: int, threads: int) -> tuple[float, dict[int, int]]:
    """Child process: `requests` GETs of one URL over `threads` keep-alive clients -> (seconds, status counts)."""
    import httpx

    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    per_thread = [requests // threads + (1 if i < requests % threads else 0) for i in range(threads)]

    def worker(n: int) -> None:
        local: Counter[int] = Counter()
        with httpx.Client(headers=headers, timeout=60) as client:
            for _ in range(n):
                local[client.get(url).status_code] += 1
        with lock:
            statuses.update(local)

    workers = [threading.Thread(target=worker, args=(n,)) for n in per_thread]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - start, dict(statuses)


def _rate(pool: Any, url: str, headers: dict[str, str], requests: int, threads: int) -> tuple[float, dict[int, int]]:
    import httpx

    httpx.get(url, headers=headers, timeout=120)  # warm-up: first-touch costs (indexes, caches) are not the rate
    seconds, statuses = pool.apply(_load, (url, headers, requests, threads))
    return requests / seconds, statuses


def _ceiling(pool: Any, size: int, requests: int, threads: int) -> float:
    """The same load against a server that answers a fixed `size`-byte body at once -> requests per second."""
    from connector.sandbox.server import ServedApp

    body = b" " * size

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    served = ServedApp("ceiling", app).start()
    try:
        rate, _ = _rate(pool, served.url + "/", {}, requests, threads)
    finally:
        served.stop()
    return rate


def _walk(scim_url: str, token: str, page: int = 100) -> tuple[float, int]:
    """Read every user page by page, as the drift auditor does -> (seconds, users seen)."""
    import httpx

    seen, start_index = 0, 1
    start = time.perf_counter()
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
        while True:
            body = client.get(f"{scim_url}/Users", params={"startIndex": start_index, "count": page}).json()
            got = len(body.get("Resources") or [])
            if not got:
                break
            seen += got
            start_index += got
    return time.perf_counter() - start, seen


def _wrk(url: str, headers: dict[str, str], seconds: int = 4) -> float | None:
    """Requests per second measured by wrk (a C load generator), or None when wrk is not installed.

    The Python client above spends more CPU per large page than the emulators do, and on 2 cores it shares them
    with the server: wrk's client cost is negligible, so its figure is the server's own throughput.
    """
    exe = shutil.which("wrk")
    if exe is None:
        return None
    args = [exe, "-t1", "-c4", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    url = urllib.parse.quote(url, safe=":/?&=$%@")  # wrk sends the URL as given: encode the filter's quotes
    subprocess.run([*args[:3], "-d1s", *args[5:], url], capture_output=True, check=False)  # warm caches
    out = subprocess.run([*args, url], capture_output=True, text=True, check=False).stdout
    if "Non-2xx" in out:
        return None
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split(":", 1)[1])
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    from connector.sandbox.core import Sandbox
    from connector.sandbox.seed import generate

    rows: list[tuple[str, str, str]] = []
    t0 = time.perf_counter()
    seed_org = generate(args.users, args.groups, args.seed)
    rows.append(("seed.generate", f"{time.perf_counter() - t0:.2f} s", "~1 s"))

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        pool.apply(time.sleep, (0,))  # start the child before timing anything
        t0 = time.perf_counter()
        sb = Sandbox(users=args.users, groups=args.groups, seed=args.seed)
        with sb:
            start_s = time.perf_counter() - t0
            rows.append((f"Sandbox start ({args.users:,} users, {args.groups:,} groups)", f"{start_s:.2f} s",
                         "<= 30 s" + ("" if start_s <= 30 else "  MISSED")))
            org = sb.astro_orgs["okta"]
            t0 = time.perf_counter()
            sb.astro.preload(org.org_id, seed_org)
            rows.append(("Astro preload (direct to storage, not HTTP)", f"{time.perf_counter() - t0:.2f} s", "-"))

            targets = []
            if sb.okta is not None and hasattr(sb.okta, "set_rate_limit"):
                # Okta's per-minute budget (600 for /users) would turn most of the loop into 429s: lift it.
                sb.okta.set_rate_limit(10**9)
            # The same for Graph's resource-unit budget (8,000 per 10 s here) and Astro's assumed 1,000 requests/s:
            # this measures how fast the emulators answer, not their announced limits.
            if sb.graph is not None:
                sb.graph.rate_limit = 10**9
            sb.astro.rate_limit = 10**9
            if sb.okta_url:
                targets.append(("Okta GET /api/v1/users?limit=200", f"{sb.okta_url}/api/v1/users?limit=200",
                                {"Authorization": f"SSWS {sb.okta_token}", "Accept": "application/json"}))
            if sb.graph_url:
                targets.append(("Graph GET /v1.0/users?$top=999", f"{sb.graph_url}/users?$top=999",
                                {"Authorization": f"Bearer {sb.graph_token}"}))
                # Graph's default page size (what a client that does not ask for $top gets).
                targets.append(("Graph GET /v1.0/users?$top=100", f"{sb.graph_url}/users?$top=100",
                                {"Authorization": f"Bearer {sb.graph_token}"}))
            scim_auth = {"Authorization": f"Bearer {org.token}"}
            targets.append(("Astro GET /Users?count=100", f"{org.scim_url}/Users?count=100", scim_auth))
            targets.append(("Astro GET /Users?filter=userName eq",
                            f'{org.scim_url}/Users?filter=userName eq "{seed_org.people[-1].email}"', scim_auth))
            import httpx

            for label, url, headers in targets:
                size = len(httpx.get(url, headers=headers, timeout=120).content)
                cpu0 = time.process_time()  # this process: the servers' threads (the client is the child)
                rate, statuses = _rate(pool, url, headers, args.requests, args.threads)
                server_ms = (time.process_time() - cpu0) / args.requests * 1000
                ok = statuses.get(200, 0) == args.requests
                verdict = ">= 1,000/s" + ("" if rate >= 1000 else "  MISSED") + ("" if ok else f"  {statuses}")
                rows.append((label, f"{rate:,.0f} req/s", f"{verdict}  (server {server_ms:.2f} ms CPU/req)"))
                wrk_rate = _wrk(url, headers)
                if wrk_rate is not None:
                    rows.append(("  same URL, wrk load generator (1 thread, 4 connections)", f"{wrk_rate:,.0f} req/s",
                                 ">= 1,000/s" + ("" if wrk_rate >= 1000 else "  MISSED")))
                ceiling = _ceiling(pool, size, args.requests, args.threads)
                rows.append((f"  same client vs a zero-work server, {size / 1000:,.1f} kB body", f"{ceiling:,.0f} req/s",
                             "client-bound limit for this line"))

            cold_s, seen = _walk(org.scim_url, org.token)
            rows.append((f"Astro full walk, cold ({seen:,} users, pages of 100)", f"{cold_s:.2f} s", "-"))
            warm_s, seen = _walk(org.scim_url, org.token)
            rows.append((f"Astro full walk, warm ({seen:,} users)", f"{warm_s:.2f} s", "-"))
            t0 = time.perf_counter()
            httpx.get(f"{org.scim_url}/Users", params={"count": 100, "sortBy": "userName"}, headers=scim_auth,
                      timeout=300)
            rows.append(("Astro GET /Users?sortBy=userName (stock O(n log n) path)",
                         f"{time.perf_counter() - t0:.2f} s", "-"))
        t0 = time.perf_counter()
    rows.append(("Sandbox stop", f"{time.perf_counter() - t0:.2f} s", "-"))

    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'result':>14}  target")
    for label, value, target in rows:
        print(f"{label:<{width}}  {value:>14}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
