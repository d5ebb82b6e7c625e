"""Start-up cost of the offline CI command: median wall time of `astro-scim validate mappings/` against a bare
`python -c pass`, N runs each, interleaved so that machine load hits both alike.

    python benchmarks/startup.py [N]

Target: the difference stays under 0.5 s (validate imports no IdP SDK, no pydantic, no rich).

Then the cost every Okta command pays before its first request: building the okta SDK client, imports included,
as this tool builds it (only the API classes it calls) and as okta.client.Client (all of them), 3 runs each.

Bytecode is cached the way an installed tool has it: PYTHONDONTWRITEBYTECODE is dropped for the children and
the cache goes to a temporary PYTHONPYCACHEPREFIX, so the checkout is not touched. CPU time (user + system of
the child) is printed next to wall time because it does not move with the load of a shared machine.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.5


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    cpu = _cpu()
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    return elapsed, _cpu() - cpu


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    validate = [sys.executable, "-m", "connector", "validate", "mappings/"]
    bare = [sys.executable, "-c", "pass"]
    with tempfile.TemporaryDirectory(prefix="astro-scim-pycache-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        _once(validate, env)  # warm the bytecode cache and the page cache
        wall: dict[str, list[float]] = {"validate": [], "bare": []}
        cpu: dict[str, list[float]] = {"validate": [], "bare": []}
        for _ in range(n):
            for name, argv in (("validate", validate), ("bare", bare)):
                w, c = _once(argv, env)
                wall[name].append(w)
                cpu[name].append(c)
    v, b = statistics.median(wall["validate"]), statistics.median(wall["bare"])
    cv, cb = statistics.median(cpu["validate"]), statistics.median(cpu["bare"])
    print(f"astro-scim validate mappings/  median {v:.3f} s wall, {cv:.3f} s cpu  (min wall {min(wall['validate']):.3f}, N={n})")
    print(f"python -c pass                 median {b:.3f} s wall, {cb:.3f} s cpu  (min wall {min(wall['bare']):.3f}, N={n})")
    print(f"start-up cost of validate      {v - b:.3f} s wall, {cv - cb:.3f} s cpu  (target < {TARGET_S} s: "
          f"{'ok' if v - b < TARGET_S else 'OVER'})")
    _okta_client(env)
    return 0


OKTA_BUILD = """
import sys
from connector.config.load import OktaConfig
from connector.providers.okta.client import client_config, new_sdk_client
from connector.support.secret import Secret
cfg = OktaConfig(org_url="https://acme.okta.com", token=Secret.from_value("x"))
if sys.argv[1] == "ours":
    new_sdk_client(cfg)
else:
    from okta.client import Client
    Client(client_config(cfg))
"""


def _okta_client(env: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="astro-scim-pycache-") as cache:
        env = {**env, "PYTHONPYCACHEPREFIX": cache}
        for which in ("ours", "sdk"):
            _once([sys.executable, "-c", OKTA_BUILD, which], env)  # bytecode cache
        runs = {w: [_once([sys.executable, "-c", OKTA_BUILD, w], env)[0] for _ in range(3)] for w in ("ours", "sdk")}
    print(f"okta SDK client, as built here  median {statistics.median(runs['ours']):.2f} s wall (imports included)")
    print(f"okta.client.Client              median {statistics.median(runs['sdk']):.2f} s wall")

if __name__ == "__main__":
    sys.exit(main())
