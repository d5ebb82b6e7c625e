"""Offline commands never import an IdP SDK: they must stay fast and work without network or credentials."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SDKS = ("okta", "msgraph", "azure", "kiota_abstractions", "kiota_http", "msgraph_core")

PROBE = (
    "import sys, json\n"
    "{pre}\n"
    "from connector.cli import main\n"
    "code = main({argv!r})\n"
    "print('\\nSDKS=' + json.dumps(sorted({{m for m in sys.modules if m.split('.')[0] in {sdks!r}}})))\n"
    "print('CODE=' + str(code))\n"
)


def _loaded(argv: list[str], cwd: Path, pre: str = "") -> tuple[list[str], int]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv, sdks=SDKS, pre=pre)], capture_output=True,
                          text=True, cwd=cwd, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stdout.splitlines()
    sdks = json.loads(next(ln for ln in lines if ln.startswith("SDKS="))[5:])
    code = int(next(ln for ln in lines if ln.startswith("CODE="))[5:])
    return sdks, code


def test_probe_detects_an_sdk_import() -> None:
    # The probe itself must be able to fail: an SDK imported along the way shows up.
    sdks, code = _loaded(["--help"], ROOT, pre="import okta, msgraph_core")
    assert code == 0
    assert "okta" in sdks and "msgraph_core" in sdks


def test_validate_imports_no_sdk() -> None:
    sdks, code = _loaded(["validate", "mappings/"], ROOT)
    assert code == 0
    assert sdks == []


def test_help_imports_no_sdk() -> None:
    sdks, code = _loaded(["--help"], ROOT)
    assert code == 0
    assert sdks == []
    sdks, code = _loaded(["validate", "--help"], ROOT)
    assert (sdks, code) == ([], 0)


@pytest.mark.parametrize("idp", ["okta", "azure"])
def test_render_imports_no_sdk(idp: str, tmp_path: Path) -> None:
    sdks, code = _loaded(["render", "--idp", idp, "--mapping", str(ROOT / "mappings" / f"{idp}.yaml"),
                          "--out", str(tmp_path)], ROOT)
    assert code == 0
    assert sdks == []
