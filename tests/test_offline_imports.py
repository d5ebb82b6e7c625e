"""Offline commands never import an IdP SDK: they must stay fast and work without network or credentials."""

from __future__ import annotations

from pathlib import Path

import pytest
from probe import modules_loaded_each

ROOT = Path(__file__).resolve().parents[1]
SDKS = ("okta", "msgraph", "azure", "kiota_abstractions", "kiota_http", "msgraph_core")
pytestmark = pytest.mark.xdist_group("offline-imports")  # one worker runs the one probe below
OFFLINE = {
    "validate": ["validate", "mappings/"],
    "help": ["--help"],
    "validate-help": ["validate", "--help"],
    "render-okta": ["render", "--idp", "okta", "--mapping", str(ROOT / "mappings" / "okta.yaml"), "--out", "{out}/okta"],
    "render-azure": ["render", "--idp", "azure", "--mapping", str(ROOT / "mappings" / "azure.yaml"),
                     "--out", "{out}/azure"],
}


@pytest.fixture(scope="module")
def offline_probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list[str], int | None]]:
    """One probe interpreter runs the OFFLINE commands one after the other, then imports two SDKs: the SDK modules
    loaded after each step (what none of them loads in sequence, none loads on its own either)."""
    out = tmp_path_factory.mktemp("render")
    steps: list[list[str] | str] = [[a.format(out=out) for a in argv] for argv in OFFLINE.values()]
    found = modules_loaded_each([*steps, "import okta, msgraph_core"], SDKS, cwd=ROOT, timeout=120)
    return dict(zip([*OFFLINE, "sdk-imported"], found, strict=True))


def test_probe_detects_an_sdk_import(offline_probe: dict[str, tuple[list[str], int | None]]) -> None:
    # The probe itself must be able to fail: an SDK imported along the way shows up.
    sdks, _ = offline_probe["sdk-imported"]
    assert "okta" in sdks and "msgraph_core" in sdks


def test_validate_imports_no_sdk(offline_probe: dict[str, tuple[list[str], int | None]]) -> None:
    assert offline_probe["validate"] == ([], 0)


def test_help_imports_no_sdk(offline_probe: dict[str, tuple[list[str], int | None]]) -> None:
    assert offline_probe["help"] == ([], 0)
    assert offline_probe["validate-help"] == ([], 0)


@pytest.mark.parametrize("idp", ["okta", "azure"])
def test_render_imports_no_sdk(idp: str, offline_probe: dict[str, tuple[list[str], int | None]]) -> None:
    assert offline_probe[f"render-{idp}"] == ([], 0)
