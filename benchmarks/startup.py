"""Start-up cost of the offline CI command: median wall time of `astro-scim validate mappings/` against a bare
`python -c pass`, N runs each, interleaved so that machine load hits both alike.

    python benchmarks/startup.py [N]

Target: the difference stays under 0.5 s (validate imports no IdP SDK, no pydantic, no rich).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.5


def _once(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    return elapsed


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    validate = [sys.executable, "-m", "connector", "validate", "mappings/"]
    bare = [sys.executable, "-c", "pass"]
    _once(validate)  # warm the bytecode cache and the page cache
    times: dict[str, list[float]] = {"validate": [], "bare": []}
    for _ in range(n):
        times["validate"].append(_once(validate))
        times["bare"].append(_once(bare))
    v, b = statistics.median(times["validate"]), statistics.median(times["bare"])
    print(f"astro-scim validate mappings/  median {v:.3f} s  (min {min(times['validate']):.3f}, N={n})")
    print(f"python -c pass                 median {b:.3f} s  (min {min(times['bare']):.3f}, N={n})")
    print(f"start-up cost of validate      {v - b:.3f} s  (target < {TARGET_S} s: "
          f"{'ok' if v - b < TARGET_S else 'OVER'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
