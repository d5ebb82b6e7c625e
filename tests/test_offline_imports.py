"""Offline commands never import an IdP SDK: they must stay fast and work without network or credentials."""

from __future__ import annotations

from pathlib import Path

import pytest
from probe import modules_loaded

ROOT = Path(__file__).resolve().parents[1]
SDKS = ("okta", "msgraph", "azure", "kiota_abstractions", "kiota_http", "msgraph_core")

def _loaded(argv: list[str], cwd: Path, pre: str = "") -> tuple[list[str], int]:
    return modules_loaded(argv, SDKS, cwd=cwd, pre=pre, timeout=120)


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
