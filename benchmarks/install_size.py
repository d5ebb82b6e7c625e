"""Unpacked size of what `pip install astro-scim-connector[...]` puts in a fresh venv, per set of extras.

Builds the wheel (or takes --wheel), installs it with the pins of constraints.txt into one fresh venv per
set of extras, and sums the files in site-packages, without bytecode (__pycache__, *.pyc) and without the
venv's own pip/setuptools/wheel: what the project costs a user, not what `python -m venv` costs.
Target: the core (no extras) <= 30 MB; the script exits 1 when it is over.

    python benchmarks/install_size.py [--wheel dist/x.whl] [--extras "" all all,sandbox] [--top 8]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE_TARGET_MB = 30.0
# Installed by `python -m venv` (and needed by pip itself), not by the project.
VENV_OWN = re.compile(r"^(pip|setuptools|wheel|_distutils_hack|pkg_resources|distutils-precedence\.pth)"
                      r"([-_.].*dist-info)?$")


def build_wheel(out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)], check=True)
    return next(out.glob("astro_scim_connector-*.whl"))


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def measure(site: Path) -> dict[str, int]:
    """Bytes per top-level entry of site-packages (a package, a module, a dist-info), bytecode excluded."""
    sizes: dict[str, int] = {}
    for entry in site.iterdir():
        if VENV_OWN.match(entry.name) or entry.name == "__pycache__":
            continue
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        sizes[entry.name] = sum(p.stat().st_size for p in files
                                if "__pycache__" not in p.parts and p.suffix != ".pyc" and not p.is_symlink())
    return sizes


def install(wheel: Path, extras: str, venv: Path) -> dict[str, int]:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    spec = f"{wheel}[{extras}]" if extras else str(wheel)
    constraints = ["-c", str(ROOT / "constraints.txt")] if (ROOT / "constraints.txt").is_file() else []
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-compile", *constraints, spec], check=True)
    return measure(site_packages(venv))


def _group(sizes: dict[str, int]) -> dict[str, int]:
    """Fold dist-info folders and compiled modules into their package's name, for the largest-items list."""
    out: dict[str, int] = {}
    for name, size in sizes.items():
        key = re.split(r"-\d|\.(?:cpython|abi3|py$|libs$)", name)[0].lower().replace("-", "_")
        out[key] = out.get(key, 0) + size
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="an already built wheel (default: build one)")
    parser.add_argument("--extras", nargs="*", default=["", "all", "all,sandbox"])
    parser.add_argument("--top", type=int, default=8, help="list the N largest packages of each install")
    args = parser.parse_args(argv)
    over = False
    with tempfile.TemporaryDirectory(prefix="astro-scim-size-") as tmp:
        wheel = args.wheel or build_wheel(Path(tmp) / "dist")
        for i, extras in enumerate(args.extras):
            sizes = install(wheel, extras, Path(tmp) / f"venv{i}")
            total = sum(sizes.values()) / 1e6
            label = f"[{extras}]" if extras else "core"
            target = ""
            if not extras:
                over = total > CORE_TARGET_MB
                target = f"  (target <= {CORE_TARGET_MB:g} MB: {'OVER' if over else 'ok'})"
            dists = sum(1 for n in sizes if n.endswith(".dist-info"))
            print(f"{label:<16} {total:6.1f} MB in {dists} distributions{target}", flush=True)
            largest = sorted(_group(sizes).items(), key=lambda kv: -kv[1])[: args.top]
            print("                 largest: " + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in largest), flush=True)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
