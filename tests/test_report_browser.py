"""The HTML drift report as a real browser draws it: Debian's chromium, headless, at 360, 768 and 1280 CSS px.

Each width loads the report offline with scripts off (it must need neither), then reads the laid-out page back:
no page-level horizontal overflow and nothing drawn past the right edge, no box that has to scroll, no text drawn
smaller than 11 px (the chart's text included, at the scale it is drawn), finding tables as cards on a phone and
as tables on wider screens, no markup showing as text, each remedy once, notices as information, the chart's
bars coloured by severity, and no request for any asset. A screenshot of the top of the page is taken at each
width (a PNG of that width, not one flat colour).

Chromium comes from `make browser` (apt-get). Without it the test is skipped on a workstation and fails in CI
(`CI` set, as .ci/run does). `ASTRO_SCIM_SCREENSHOTS=docs` makes the sandbox test write its screenshots there
(docs/report-<width>.png; shrunk with `pngquant 40 --strip --ext .png --force` and `optipng -o2`, from Debian).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import chromium
import httpx
import pytest

from connector import __version__
from connector.audit.reconcile import AuditResult, Finding, Kind, finding_id, remedy_text
from connector.audit.report import render
from connector.cli import main
from connector.mapping.model import Severity
from connector.sandbox.core import Sandbox

pytestmark = pytest.mark.xdist_group("browser")  # one worker, one browser for the module

WIDTHS = [(360, True), (768, True), (1280, False)]  # CSS px, and whether the page is shown as on a phone/tablet
SHOT_HEIGHTS = {360: 1400, 768: 1150, 1280: 1000}  # the top: header, chart, the first remedies (docs/report-*.png)
ERROR, WARNING, INFO = "rgb(180, 35, 24)", "rgb(181, 71, 8)", "rgb(23, 92, 211)"  # the CSS's --error ...

# What the page reports about itself once laid out. Boxes inside a box that clips or scrolls are judged by that
# box; the chart's text is measured at the scale the SVG is drawn. Folded <details> are opened first.
MEASURE = """(() => {
  for (const d of document.querySelectorAll('details')) d.open = true;  // their content must fit too
  const de = document.documentElement, edge = de.clientWidth;
  const name = el => el.tagName.toLowerCase() + (typeof el.className === 'string' && el.className
    ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
  const clipped = el => { for (let p = el.parentElement; p && p !== document.body; p = p.parentElement)
    if (getComputedStyle(p).overflowX !== 'visible') return true; return false; };
  const beyond = [], scrolling = [], fonts = [];
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect(), style = getComputedStyle(el);
    if (box.width && (box.right > edge + 0.5 || box.left < -0.5) && !clipped(el))
      beyond.push(`${name(el)} ${Math.round(box.left)}..${Math.round(box.right)}`);
    if (style.overflowX !== 'visible' && box.width > 1 && el.scrollWidth > el.clientWidth + 1)
      scrolling.push(name(el));  // a 1 px box is a visually hidden one (the table head on a phone)
    const text = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!text || !box.width || el.closest('title, desc')) continue;
    const svg = el.closest('svg');
    const scale = svg ? svg.getBoundingClientRect().width / svg.viewBox.baseVal.width : 1;
    fonts.push([parseFloat(style.fontSize) * scale, name(el)]);
  }
  fonts.sort((a, b) => a[0] - b[0]);
  return {
    clientWidth: edge, innerWidth: innerWidth, scrollWidth: de.scrollWidth, beyond, scrolling,
    smallestFont: fonts[0], text: document.body.innerText,
    meta: document.querySelector('.meta').innerText,
    remedies: [...document.querySelectorAll('.remedy')].map(s => s.querySelector('h3 + p').innerText),
    remedyCode: [...document.querySelectorAll('.remedy h3 + p code')].map(c => c.textContent),
    rowDisplay: [...new Set([...document.querySelectorAll('table.findings tr')].map(
      tr => getComputedStyle(tr).display))],
    notices: [...document.querySelectorAll('.note')].map(n => [n.innerText, getComputedStyle(n).borderLeftColor]),
    barFills: [...new Set([...document.querySelectorAll('svg rect')].map(r => getComputedStyle(r).fill))],
    legend: [...document.querySelectorAll('.legend li')].map(li => li.innerText),
    chartText: document.querySelector('svg desc') ? document.querySelector('svg desc').textContent : '',
    resources: performance.getEntriesByType('resource').length,
  };
})()"""


@pytest.fixture(scope="module")
def browser() -> Iterator[chromium.Chromium]:
    exe = chromium.find()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed, and CI must run the browser test (`make browser` installs it)")
        pytest.skip("chromium is not installed: `make browser` installs it (in CI this test fails instead)")
    with chromium.Chromium(exe) as b:
        yield b


def look(browser: chromium.Chromium, report: Path, width: int, mobile: bool) -> tuple[dict[str, Any], bytes]:
    """Lay the report out at `width` and check what holds for every report; the measurements and a screenshot."""
    page = browser.open(report.as_uri(), width=width, mobile=mobile)
    try:
        shot = page.screenshot(height=SHOT_HEIGHTS[width])  # first: as a reader first sees it, details folded
        seen: dict[str, Any] = page.evaluate(MEASURE)
    finally:
        page.close()
    where = f"at {width} px"
    assert seen["innerWidth"] == width, where
    assert seen["scrollWidth"] <= seen["clientWidth"], f"the page scrolls sideways {where}"
    assert seen["beyond"] == [], f"drawn past the edge {where}: {seen['beyond'][:5]}"
    assert seen["scrolling"] == [], f"boxes that must scroll {where}: {seen['scrolling']}"
    assert seen["smallestFont"][0] >= 11, f"text too small {where}: {seen['smallestFont']}"
    assert seen["rowDisplay"] == (["block"] if width < 640 else ["table-row"]), where  # cards on a phone
    assert seen["resources"] == 0  # offline, and nothing to fetch anyway
    text: str = seen["text"]
    for leak in ("<code", "<span", "&lt;", "&gt;", "&amp;", "&quot;", "&rarr;", "&#"):  # markup, or escaped twice
        assert leak not in text, f"{leak!r} shows as text {where}"
    assert not any("`" in remedy for remedy in seen["remedies"]), f"backticks in a remedy {where}"
    assert f"astro-scim {__version__}" in seen["meta"] and " UTC" in seen["meta"]
    assert seen["legend"][0].startswith("error") and seen["legend"][2].startswith("info")
    assert png_size(shot)[0] == width and not blank(shot)
    return seen, shot


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def blank(png: bytes) -> bool:
    """True when the image is one flat colour (what a page that failed to draw gives)."""
    data, pos = b"", 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        if png[pos + 4:pos + 8] == b"IDAT":
            data += png[pos + 8:pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(data))) < 8


def plain(remedy: str) -> str:
    """A remedy as the page reads: its `code` spans are <code> elements, without the backticks."""
    return remedy.replace("`", "")


# -- the worst case: long unbreakable names, markup in the data, notices, both severities, two IdPs ------------

LONG = "firstname.middlename.lastname.with.a.very.long.suffix.for.testing@subsidiary.acme-corporation.example"
TRICKY = 'Team "R&D" <Ops>, 100% | a:b `not code`'


def _f(idp: str, kind: Kind, subject: str, detail: str, severity: Severity = Severity.ERROR,
       issue_kind: str = "") -> Finding:
    return Finding(id=finding_id(idp, kind, subject), kind=kind, idp=idp, subject=subject, detail=detail,
                   remedy=remedy_text(idp, kind, issue_kind=issue_kind), severity=severity, issue_kind=issue_kind)


def stress_results() -> list[AuditResult]:
    at = datetime(2026, 12, 6, 21, 30, 5, tzinfo=UTC)
    okta = AuditResult(
        "okta", "https://api.astronomer.io/scim/v2/clx4q2v9k000008l5bzq1c2d3", [
            _f("okta", Kind.USER_MISSING, LONG, "no Astro account (and from 2 Teams: Data Engineering, Analytics)"),
            _f("okta", Kind.ORPHANED, "eve.orphan@acme.example", "active in Astro, unknown to okta"),
            _f("okta", Kind.ATTRIBUTE_MISMATCH, "bob@acme.example",
               "name.givenName: expected 'Bob', Astro has 'Robert <b>bold</b>'", Severity.WARNING),
            _f("okta", Kind.ATTRIBUTE_MISMATCH, LONG.upper(), f"emails: expected '{LONG}', Astro has None",
               Severity.WARNING),
            _f("okta", Kind.MEMBERSHIP_MISSING, TRICKY, "cy@acme.example is in the okta group\nbut not in the Team"),
            _f("okta", Kind.TEAM_MISSING, "Analytics", "no Astro Team for this group (40 members in okta)"),
        ], idp_users=1200, idp_groups=14, astro_users=1199, astro_teams=13,
        deviations=["responses are JSON served as 'application/json', not application/scim+json",
                    "ListResponse without itemsPerPage (RFC 7644 3.4.2 makes it required)"],
        idp_org="acme.okta.com", audited_at=at,
    )
    azure = AuditResult(
        "azure", "https://api.astronomer.io/scim/v2/clx4q2v9k000008l5bzq1c2d4", [
            _f("azure", Kind.IDP_ERROR, "Astro", "the provisioning job is in quarantine: "
               "SCIM endpoint answered 401 Unauthorized", issue_kind="entra.quarantine"),
            _f("azure", Kind.MEMBERSHIP_EXTRA, "Data Engineering", "dana@acme.example is in the Team but not in the "
               "azure group"),
        ], idp_users=300, idp_groups=3, astro_users=300, astro_teams=3,
        idp_org="2b1c9a77-5d0e-4f4b-9c61-0d3a1e6f8b42", audited_at=at,
    )
    return [okta, azure]


@pytest.mark.parametrize(("width", "mobile"), WIDTHS)
def test_the_worst_case_report_reads_well(browser: chromium.Chromium, tmp_path: Path, width: int,
                                          mobile: bool) -> None:
    results = stress_results()
    report = tmp_path / "drift.html"
    report.write_text(render(results, "html"), encoding="utf-8")
    seen, _ = look(browser, report, width, mobile)
    text = seen["text"]
    assert TRICKY in text and "Robert <b>bold</b>" in text  # escaped in the markup, intact as text
    assert "2026-12-06 21:30:05 UTC" in seen["meta"] and "acme.okta.com" in seen["meta"]
    assert "clx4q2v9k000008l5bzq1c2d3" in seen["meta"] and "2b1c9a77-5d0e-4f4b-9c61-0d3a1e6f8b42" in seen["meta"]
    remedies = [plain(f.remedy) for r in results for f in r.findings]
    assert sorted(seen["remedies"]) == sorted(set(remedies))  # each remedy once, above the findings it fixes
    for remedy in set(remedies):
        assert text.count(remedy) == 1, remedy
    assert "astro-scim drift --fix --yes" in seen["remedyCode"]
    assert "astro-scim drift --fix --delete-orphans --yes" in seen["remedyCode"]
    assert len(seen["notices"]) == 2
    for notice, border in seen["notices"]:
        assert notice.startswith("Notice (information, nothing to fix)") and border == INFO
    assert set(seen["barFills"]) == {ERROR, WARNING, INFO}  # errors, warnings, and the notices' bar
    assert "attribute_mismatch: 2 warnings" in seen["chartText"] and "user_missing: 1 error" in seen["chartText"]
    assert seen["legend"] == ["error: 6 findings", "warning: 2 findings", "info: 2 notices"]


# -- a report the CLI writes from a real audit of the sandbox --------------------------------------------------


def _scim(sb: Sandbox, idp: str) -> httpx.Client:
    org = sb.astro_orgs[idp]
    return httpx.Client(base_url=org.scim_url, headers={"Authorization": f"Bearer {org.token}"})


def test_a_drift_report_from_the_cli_reads_well_at_every_width(
    browser: chromium.Chromium, sandbox: Sandbox, tmp_path: Path
) -> None:
    config = sandbox.write_config(tmp_path / "astro-scim.yaml")
    assert sandbox.okta is not None
    app = str(sandbox.okta.app_by_label("Astro")["id"])
    sandbox.okta.enable_provisioning(app, sandbox.astro_orgs["okta"].scim_url, sandbox.astro_orgs["okta"].token)
    assert main(["apply", "-c", str(config), "--yes"]) == 0
    # Drift behind the tool's back, as an Astro admin or a script would make it
    people = sandbox.seed_org.people
    okta_org, azure_org = sandbox.astro_orgs["okta"].org_id, sandbox.astro_orgs["azure"].org_id
    sandbox.astro.edit_user(okta_org, people[3].email, "name.givenName", "Mallory")
    sandbox.astro.add_orphan(okta_org, "eve.orphan@acme.example", "Eve", "Orphan")
    team = sandbox.default_team_names()[1]
    member = sandbox.seed_org.person(sandbox.seed_org.team(team).member_keys[0]).email
    sandbox.astro.drop_membership(okta_org, team, member)
    sandbox.astro.edit_user(azure_org, people[5].email, "name.familyName", "Nobody")
    group = sandbox.astro.find_group(azure_org, sandbox.default_team_names()[0])
    assert group is not None
    assert _scim(sandbox, "azure").delete(f"/Groups/{group['id']}").status_code == 204

    report = tmp_path / "drift.html"
    assert main(["drift", "-c", str(config), "--format", "html", "-o", str(report)]) == 1
    out = os.environ.get("ASTRO_SCIM_SCREENSHOTS")
    for width, mobile in WIDTHS:
        seen, shot = look(browser, report, width, mobile)
        assert "eve.orphan@acme.example" in seen["text"] and "Mallory" in seen["text"]
        assert {"okta", "azure"} <= set(seen["meta"].split()) and "Okta org 127.0.0.1" in seen["meta"]
        assert len(seen["remedies"]) == len(set(seen["remedies"])) >= 3
        assert ERROR in seen["barFills"] and WARNING in seen["barFills"]
        if out:
            Path(out, f"report-{width}.png").write_bytes(shot)
