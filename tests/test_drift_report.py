"""Report formats: each parses as what it claims to be and carries every finding."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from connector.audit.reconcile import AuditResult, Finding, Kind, finding_id, remedy_text
from connector.audit.report import FORMATS, render
from connector.mapping.model import Severity


def _f(idp: str, kind: Kind, subject: str, detail: str, severity: Severity = Severity.ERROR) -> Finding:
    return Finding(id=finding_id(idp, kind, subject), kind=kind, idp=idp, subject=subject, detail=detail,
                   remedy=remedy_text(idp, kind), severity=severity)


TRICKY = 'Team "R&D" <Ops>, 100% | a:b'


@pytest.fixture
def results() -> list[AuditResult]:
    okta = AuditResult(
        "okta", "https://api.astronomer.io/scim/v2/clorg", [
            _f("okta", Kind.USER_MISSING, "ada@acme.example", "no Astro account"),
            _f("okta", Kind.ATTRIBUTE_MISMATCH, "bob@acme.example", "name.givenName: expected 'Bob', Astro has 'X'",
               Severity.WARNING),
            _f("okta", Kind.MEMBERSHIP_MISSING, TRICKY, "cy@acme.example is in the okta group\nbut not in the Team"),
        ], idp_users=3, idp_groups=1, astro_users=2, astro_teams=1,
        deviations=["responses are JSON served as 'text/plain', not application/scim+json"],
    )
    azure = AuditResult("azure", "https://api.astronomer.io/scim/v2/clorg2", [], idp_users=5, astro_users=5)
    return [okta, azure]


def test_json_has_totals_counts_and_every_finding(results: list[AuditResult]) -> None:
    doc = json.loads(render(results, "json"))
    assert doc["version"] == 1 and doc["clean"] is False
    assert doc["totals"]["user_missing"] == 1 and sum(doc["totals"].values()) == 3
    okta, azure = doc["idps"]
    assert [f["kind"] for f in okta["findings"]] == ["user_missing", "attribute_mismatch", "membership_missing"]
    assert okta["deviations"] and okta["counts"]["astro_users"] == 2
    assert azure["clean"] is True and azure["findings"] == []


def test_junit_has_a_passing_case_per_clean_check_and_a_failure_per_finding(results: list[AuditResult]) -> None:
    root = ET.fromstring(render(results, "junit").split("\n", 1)[1])
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    okta = suites["drift.okta"]
    failures = okta.findall("testcase/failure")
    assert len(failures) == 3 == int(okta.get("failures") or 0)
    assert int(okta.get("tests") or 0) == len(Kind)  # one case per kind: three fail once each, the others pass
    assert {f.get("type") for f in failures} == {"user_missing", "attribute_mismatch", "membership_missing"}
    assert any(TRICKY in (c.get("name") or "") for c in okta.iter("testcase"))
    azure = suites["drift.azure"]
    assert azure.get("failures") == "0" and len(azure.findall("testcase")) == len(Kind)
    assert root.get("failures") == "3"


def test_github_annotations_are_one_line_each_and_escaped(results: list[AuditResult]) -> None:
    lines = render(results, "github").splitlines()
    annotations = [line for line in lines if line.startswith("::")]
    assert [a.split(" ", 1)[0] for a in annotations] == ["::notice", "::error", "::warning", "::error"]
    tricky = annotations[-1]
    assert "%0A" in tricky and "\n" not in tricky  # the newline in the detail is escaped
    title = re.match(r"::error title=([^:]*)::", tricky)
    assert title and "%2C" in title.group(1) and "%3A" in title.group(1)  # , and : escaped in the property
    assert lines[-1] == "astro-scim drift: 3 finding(s) across 2 IdP(s)"


def test_markdown_tables_escape_pipes(results: list[AuditResult]) -> None:
    text = render(results, "markdown")
    assert "# Astro SCIM drift report" in text and "**Result:** 3 finding(s)" in text
    row = next(line for line in text.splitlines() if "R&D" in line and line.startswith("| `"))
    assert row.count("|") - row.count("\\|") == 6  # 5 columns: the pipe in the subject is escaped
    assert "remove and re-assign the user in Okta" in text


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.urls += [v or "" for k, v in attrs if k in ("src", "href")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_one_self_contained_page_with_a_chart(results: list[AuditResult]) -> None:
    page = render(results, "html")
    parser = _Collect()
    parser.feed(page)
    assert parser.tags.count("svg") == 1 and parser.tags.count("rect") == len(Kind)
    assert "script" not in parser.tags and "link" not in parser.tags and "img" not in parser.tags
    assert parser.urls == []  # no external assets, no links out
    assert TRICKY in "".join(parser.text)  # escaped in the markup, intact as text
    assert "<Ops>" not in page


def test_text_is_a_table_with_remedies_and_deviations(results: list[AuditResult]) -> None:
    text = render(results, "text", width=160)
    assert "ada@acme.example" in text and "user_missing" in text
    assert "tolerated: responses are JSON" in text
    assert "remedies (Astro SCIM FAQ)" in text and "azure:" in text and "no drift" in text
    assert "\x1b[" not in text  # no colour codes unless asked


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_clean_audit_renders_in_every_format(fmt: str) -> None:
    out = render([AuditResult("okta", "https://x.example/scim/v2/o", [])], fmt)
    assert out.strip()
