"""The steps of `astro-scim demo`. Steps are added as the pieces they show land."""

from __future__ import annotations

from pathlib import Path

from connector.commands.demo import REPO, Story, cli


def _validate() -> str:
    code = cli("validate", str(REPO / "mappings"))
    assert code == 0, f"validate exited {code}"
    return "the shipped Okta and Azure mappings are valid"


def _render(out: Path) -> str:
    written = []
    for idp in ("okta", "azure"):
        code = cli("render", "--idp", idp, "--out", str(out / idp))
        assert code == 0, f"render --idp {idp} exited {code}"
        written += [p for p in (out / idp).rglob("*") if p.is_file()]
    assert written, "render wrote no files"
    return f"{len(written)} files rendered under {out}"


def tell(story: Story, tmp: Path) -> None:
    story.step("Validate the mappings as code (what CI runs)", _validate)
    story.step("Render each IdP's configuration, runbooks and Terraform", lambda: _render(tmp / "render"))
