"""Report formats: each parses as what it claims to be and carries every finding."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from connector import __version__
from connector.audit.reconcile import AuditResult, Finding, Kind, finding_id, remedy_text
from connector.audit.report import FORMATS, _inline_code, render, terminal_per_kind, to_markdown
from connector.mapping.model import Severity
from connector.support.redact import redact, register


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
    row = next(line for line in text.splitlines() if "R&amp;D" in line and line.startswith("| `"))
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
    assert parser.tags.count("svg") == 1
    assert parser.tags.count("rect") == 4  # a bar per kind with findings (3), and the notices'
    assert "script" not in parser.tags and "link" not in parser.tags and "img" not in parser.tags
    assert parser.urls == []  # no external assets, no links out
    assert TRICKY in "".join(parser.text)  # escaped in the markup, intact as text
    assert "<Ops>" not in page


def test_html_chart_is_coloured_by_severity_with_a_legend_and_a_text_alternative(
    results: list[AuditResult],
) -> None:
    page = render(results, "html")
    fills = re.findall(r'<rect [^>]*fill="(#[0-9a-f]{6})"', page)
    assert fills == ["#b42318", "#b54708", "#b42318", "#175cd3"]  # error, warning, error; the notice as info
    assert 'aria-labelledby="chart-title chart-desc"' in page
    desc = re.search(r'<desc id="chart-desc">([^<]*)</desc>', page)
    assert desc and "attribute_mismatch: 1 warning" in desc.group(1) and "user_missing: 1 error" in desc.group(1)
    assert re.findall(r'<li><span class="swatch sev-(\w+)"></span>', page) == ["error", "warning", "info"]
    rows = re.findall(r'<tr><td><code>([^<]+)</code>', page)  # the chart's numbers as a table: every check
    assert rows == [k.value for k in Kind] + ["notices (tolerated)"]


def test_html_shows_each_remedy_once_over_the_findings_it_fixes(results: list[AuditResult]) -> None:
    okta = results[0]
    okta.findings.insert(1, _f("okta", Kind.USER_MISSING, "dee@acme.example", "no Astro account"))
    page = render(results, "html")
    remedies = list(dict.fromkeys(f.remedy for f in okta.findings))
    assert page.count('<section class="remedy"') == len(remedies)
    first = page.index('<section class="remedy"')
    section = page[first:page.index("</section>", first)]  # the errors' first remedy: ada's and dee's
    fixes = [f for f in okta.findings if f.remedy == remedies[0]]  # which other kinds share it is reconcile's say
    assert f"Remedy 1 of {len(remedies)}" in section and "for user_missing" in section
    assert section.count("<tr>") == 1 + len(fixes) and "ada@" in section and "dee@" in section
    assert "<code>astro-scim drift --fix --yes</code> re-assigns" in section  # the remedy's backticks are code spans
    assert page.count("re-assigns the user") == 1 and "`" not in page
    assert "remove and re-assign the user in Okta" in remedy_text("okta", Kind.USER_MISSING)


def test_html_notices_are_information_not_warnings(results: list[AuditResult]) -> None:
    page = render(results, "html")
    (notice,) = re.findall(r'<p class="note">.*?</p>', page)
    assert '<strong class="info">Notice</strong> (information, nothing to fix)' in notice
    assert "responses are JSON served as" in notice and "warning" not in notice


@pytest.mark.parametrize(("text", "markup"), [
    ("run `drift --fix` now", "run <code>drift --fix</code> now"),
    ("`a` and `b <c>`", "<code>a</code> and <code>b &lt;c&gt;</code>"),
    ("one ` stray", "one ` stray"),
    ("`a` then ` stray", "<code>a</code> then ` stray"),
    ("no code & <tags>", "no code &amp; &lt;tags&gt;"),
])
def test_inline_code_in_remedies(text: str, markup: str) -> None:
    assert _inline_code(text) == markup


AT = datetime(2026, 12, 6, 21, 30, 5, tzinfo=UTC)


@pytest.fixture
def stamped(results: list[AuditResult]) -> list[AuditResult]:
    okta, azure = results
    okta.idp_org, okta.audited_at = "acme.okta.com", AT
    azure.idp_org, azure.audited_at = "0000-tenant", AT.replace(second=9)
    return results


def test_every_format_says_when_with_which_version_and_which_organizations(stamped: list[AuditResult]) -> None:
    when, version = "2026-12-06 21:30:05 UTC", f"astro-scim {__version__}"
    scope = ("okta (Okta org acme.okta.com) -> Astro org clorg at api.astronomer.io; "
             "azure (Entra tenant 0000-tenant) -> Astro org clorg2 at api.astronomer.io")
    assert render(stamped, "text", width=300).splitlines()[0] == f"{version} drift report, {when}: {scope}"
    assert render(stamped, "github").splitlines()[0] == f"{version} drift report, {when}: {scope}"
    doc = json.loads(render(stamped, "json"))
    assert doc["tool"] == "astro-scim" and doc["tool_version"] == __version__
    assert doc["audited_at"] == "2026-12-06T21:30:05Z"
    assert doc["orgs"][0] == {"idp": "okta", "idp_org": "acme.okta.com", "astro_org": "clorg",
                              "scim_url": "https://api.astronomer.io/scim/v2/clorg"}
    assert doc["idps"][1]["idp_org"] == "0000-tenant" and doc["idps"][1]["audited_at"] == "2026-12-06T21:30:09Z"
    markdown = render(stamped, "markdown")
    assert f"{version}, audited {when}." in markdown
    assert "Okta org acme.okta.com -> Astro organization `clorg` at `api.astronomer.io`." in markdown
    suite = ET.fromstring(render(stamped, "junit").split("\n", 1)[1]).find("testsuite")
    assert suite is not None and suite.get("timestamp") == "2026-12-06T21:30:05"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["tool_version"] == __version__ and props["idp_org"] == "acme.okta.com"
    assert props["astro_org"] == "clorg" and props["audited_at"] == "2026-12-06T21:30:05Z"
    page = render(stamped, "html")
    assert f'<time datetime="2026-12-06T21:30:05Z">{when}</time>' in page and version in page
    assert "Okta org acme.okta.com &rarr; Astro organization <code>clorg</code>" in page
    assert "Entra tenant 0000-tenant" in page


def test_a_result_built_by_hand_says_its_time_was_not_recorded(results: list[AuditResult]) -> None:
    assert "time not recorded" in render(results, "text", width=300).splitlines()[0]
    assert json.loads(render(results, "json"))["audited_at"] is None


def test_html_masks_a_secret_before_escaping_or_wrapping_it(results: list[AuditResult]) -> None:
    secret = "tok.en&with/wrap-points_0123456789"  # long, with every soft-wrap point, and a character to escape
    register(secret)
    results[0].findings.append(_f("okta", Kind.IDP_ERROR, "Astro", f"okta reports: token {secret} refused"))
    page = render(results, "html")
    assert "token **** refused" in page and "0123456789" not in page


def test_the_astro_organization_is_the_scim_urls_last_segment() -> None:
    result = AuditResult("okta", "https://api.astronomer.io/scim/v2/clorg123/", [])
    assert (result.astro_org, result.astro_host) == ("clorg123", "api.astronomer.io")


def test_text_is_a_table_with_remedies_and_deviations(results: list[AuditResult]) -> None:
    text = render(results, "text", width=160)
    assert "ada@acme.example" in text and "user_missing" in text
    assert "tolerated: responses are JSON" in text
    assert "remedies (Astro SCIM FAQ)" in text and "azure:" in text and "no drift" in text
    assert "\x1b[" not in text  # no colour codes unless asked


def test_text_shows_notices_as_information_not_in_the_warning_colour(results: list[AuditResult]) -> None:
    text = render(results, "text", color=True, width=200)
    notice = next(line for line in text.splitlines() if "tolerated: responses are JSON" in line)
    warning = next(line for line in text.splitlines() if "attribute_mismatch" in line)
    assert "\x1b[33m" in warning and "\x1b[33m" not in notice and "\x1b[34m" in notice  # yellow vs blue


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_clean_audit_renders_in_every_format(fmt: str) -> None:
    out = render([AuditResult("okta", "https://x.example/scim/v2/o", [])], fmt)
    assert out.strip()


def test_text_table_headings_are_never_folded_by_a_short_subject() -> None:
    """A setup finding's subject is "Astro", shorter than the "subject" heading, which was folded into
    "subje" / "ct"; the same for a kind or id column narrower than its heading."""
    result = AuditResult("okta", "https://x.example/scim/v2/o",
                         [_f("okta", Kind.NOT_SET_UP, "Astro", "not set up: provisioning is not switched on")])
    text = render([result], "text", width=120)
    heading = next(line for line in text.splitlines() if "┃" in line and "detail" in line)
    assert [cell.strip() for cell in heading.strip("┃").split("┃")] == ["id", "kind", "subject", "detail"]


# Names from Astro or the IdP that a report must survive: rich markup, a terminal escape (an OSC 8 link), a control
# character XML 1.0 cannot hold, a lone surrogate (from a JSON "\ud800" escape: not encodable as UTF-8).
HOSTILE = ["mark[/b]up@x.example", "[bold red]loud[/]@x.example", "esc\x1b]8;;http://evil\x1b\\link@x.example",
           "ctl\x01\x7f\x85@x.example", "half\ud800@x.example", "\u202emoc.elpmaxe@nimda"]


@pytest.fixture
def hostile() -> list[AuditResult]:
    return [AuditResult("okta", "https://api.astronomer.io/scim/v2/clorg",
                        [_f("okta", Kind.ORPHANED, name, f"active in Astro; displayName {name!s}") for name in HOSTILE],
                        idp_users=1, astro_users=6, deviations=["odd \x1b[2J header"])]


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "json"])
def test_a_hostile_name_is_shown_escaped_in_every_format_never_as_markup_or_control(
        hostile: list[AuditResult], fmt: str) -> None:
    out = render(hostile, fmt)  # a str cell was rich markup: "[/b]" stopped the text report with MarkupError
    out.encode("utf-8")  # a lone surrogate written as is fails here (and on stdout)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e]", out)
    for shown in ("mark[/b]up@x.example", "[bold red]loud[/]@x.example", r"esc\x1b]8;;http://evil\x1b\link",
                  r"ctl\x01\x7f\x85@x.example", r"half\ud800@x.example",
                  r"\u202emoc.elpmaxe@nimda"):  # a bidi override shows another user's address: escaped
        if fmt == "html":
            assert html.escape(shown) in out.replace("<wbr>", "")
        else:  # markdown escapes what could be markup (rendered as the character itself)
            assert shown in (html.unescape(re.sub(r"\\([\\|*\[\]~])", r"\1", out)) if fmt == "markdown" else out)
    if fmt == "junit":
        ET.fromstring(out.split("\n", 1)[1])  # well-formed: a raw \x01 is not


def test_json_keeps_a_hostile_name_exact(hostile: list[AuditResult]) -> None:
    doc = json.loads(render(hostile, "json"))
    assert [f["subject"] for f in doc["idps"][0]["findings"]] == HOSTILE


def _many(n: int) -> list[AuditResult]:
    findings = [_f("okta", Kind.USER_MISSING, f"user{i:05}@acme.example", "no Astro account (and from 1 Team: X)")
                for i in range(n)]
    findings += [_f("okta", Kind.ATTRIBUTE_MISMATCH, f"w{i}@acme.example", "title differs", Severity.WARNING)
                 for i in range(12)]
    return [AuditResult("okta", "https://api.astronomer.io/scim/v2/clorg", findings, idp_users=n, astro_users=0,
                        deviations=[f"deviation {i}" for i in range(12)])]


def test_github_annotates_no_more_than_github_shows_and_logs_and_counts_the_rest() -> None:
    lines = render(_many(2000), "github").splitlines()
    levels = [line.split(" ", 1)[0] for line in lines if line.startswith("::")]
    # GitHub shows 10 of each level per step and drops the rest silently: 2,000 annotations read as 10 findings
    assert levels.count("::error") == 10 and levels.count("::warning") == 10 and levels.count("::notice") == 10
    more = next(line for line in lines if "more findings than annotations" in line)
    assert "1990 error(s), 2 warning(s), 3 notice(s) not annotated" in more
    logged = [line for line in lines if line.startswith(("error: ", "warning: ", "notice: "))]
    assert len(logged) == 1990 + 2 + 3  # every finding is still in the log, once
    assert any("user01999@acme.example" in line for line in logged)
    assert lines[-1] == "astro-scim drift: 2012 finding(s) across 1 IdP(s)"


def test_the_job_summary_stays_under_githubs_cap_and_says_what_it_left_out() -> None:
    results = _many(12000)
    full = render(results, "markdown")
    assert len(full.encode()) > 1024 * 1024 and "not listed" not in full  # a file gets every finding
    summary = to_markdown(results, max_bytes=1024 * 1024)
    assert 900 * 1024 < len(summary.encode()) <= 1024 * 1024
    listed = summary.count("| `")
    assert f"**{12012 - listed} more finding(s) not listed** (of 12012" in summary


def test_text_on_a_terminal_honours_no_color(results: list[AuditResult], monkeypatch: pytest.MonkeyPatch) -> None:
    colour = re.compile(r"\x1b\[[0-9;]*(3[0-9]|9[0-7])[0-9;]*m")  # a foreground colour (bold alone is no colour)
    assert colour.search(render(results, "text", color=True))
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour.search(render(results, "text", color=True))  # it was red and yellow regardless


def test_text_too_narrow_for_a_table_lists_one_finding_a_block(results: list[AuditResult]) -> None:
    """At 40 columns the table left its detail column 3 wide ("de" / "ta" / "il", a word in 2-letter pieces)."""
    text = render(results, "text", width=40, wrap=True)
    assert not any(line[:1] in set("┏┃┡│└") for line in text.splitlines())  # no table
    assert max(len(line) for line in text.splitlines()) <= 40
    lines = [line.strip() for line in text.splitlines()]
    for f in results[0].findings:  # id and kind, then the subject and the detail, each whole where they fit
        at = lines.index(f"{f.id}  {f.kind.value}")
        assert lines[at + 1] == f.subject or f.subject.startswith(lines[at + 1])
    assert "bob@acme.example" in lines and "no Astro account" in lines
    wide = render(results, "text", width=100)
    assert any(line.startswith("┃ id") for line in wide.splitlines())  # wide enough: the table


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_after_a_fix_every_report_names_the_failed_remedies_and_what_was_not_fixed(fmt: str) -> None:
    """The remedies that failed and the findings gone unfixed were only narrated during the run (and in JSON): a
    report file (-o) or the job summary said 'fixed 1 finding' and nothing of the failure."""
    done = _f("okta", Kind.USER_MISSING, "ada@acme.example", "no Astro account")
    gone = _f("okta", Kind.ATTRIBUTE_MISMATCH, "bob@acme.example", "title differs")
    left = _f("okta", Kind.TEAM_MISSING, "Analytics", "no Astro Team")
    r = AuditResult("okta", "https://api.astronomer.io/scim/v2/clorg", [left], idp_users=2, astro_users=2,
                    fixed=[done], not_fixed=[(gone, "it left the IdP's scope during the fix")],
                    remedies=[{"resource": "remedy.okta.reassign_user", "key": "ada@acme.example", "ok": True,
                               "message": "re-assigned"},
                              {"resource": "remedy.okta.repush_group", "key": "Analytics", "ok": False,
                               "message": "Okta answered 500"}])
    out = render([r], fmt).replace("<wbr>", "")
    assert "FAILED remedy.okta.repush_group Analytics: Okta answered 500" in out
    assert ("not fixed: attribute_mismatch bob@acme.example: it left the IdP" + ("&#x27;" if fmt == "html" else "'")
            + "s scope during the fix") in out
    assert "remedy.okta.reassign_user" not in out  # what worked is counted, not listed


def _soft_per_piece(text: str) -> str:
    """_soft as it was before it escaped each long word whole: the word split after @ . / _ : -, each piece
    escaped on its own, joined by <wbr>. The reference the faster one must equal."""
    from connector.audit.report import _LONG_WORD, _SOFT_BREAK, _esc

    text = redact(text)
    out, end = [], 0
    for word in _LONG_WORD.finditer(text):
        out.append(_esc(text[end:word.start()]))
        out.append("<wbr>".join(_esc(piece) for piece in _SOFT_BREAK.split(word.group())))
        end = word.end()
    out.append(_esc(text[end:]))
    return "".join(out)


def test_html_cells_break_long_words_as_before() -> None:
    from report_corpus import findings

    from connector.audit.report import _soft

    register("s3cret.token-value")  # masked before any <wbr> could split it
    texts = [t for f in findings(300) for t in (f.subject, f.detail)]
    texts += ["a" * 15, "a&b" * 6, "x@y.z/" * 4 + " <b>'\"&</b> " + "https://h.example/a_b:c-d", "tok=s3cret.token-value."]
    for text in texts:
        assert _soft(text) == _soft_per_piece(text), text
    assert "s3cret" not in _soft("tok=s3cret.token-value.")


@pytest.mark.parametrize("width", [40, 160])
def test_per_kind_lists_the_first_of_a_large_kind_and_counts_the_rest(width: int) -> None:
    """A terminal's report (render's per_kind: terminal_per_kind) lists the first 50 of a kind with more than 100
    and says how many it left out and where they all are; the totals and remedies stay whole."""
    assert terminal_per_kind(True) == 50 and terminal_per_kind(False) is None
    results = _many(300)  # 300 user_missing, 12 attribute_mismatch
    text = render(results, "text", width=width, wrap=True, per_kind=50)
    assert all(f"user{i:05}@acme.example" in text for i in range(50))
    assert not any(f"user{i:05}@acme.example" in text for i in range(50, 300))
    assert all(f"w{i}@acme.example" in text for i in range(12))  # a kind of 12: all of it
    words = " ".join(text.split())  # lines wrapped at 40 columns, joined again
    assert "not listed on this terminal: 250 of 300 user_missing (the first 50 of each are above)" in words
    assert "every finding: write the report to a file or a pipe (-o drift.txt, | less), or --format json" in words
    assert "312 finding(s): 300 user_missing, 12 attribute_mismatch" in words
    assert "remedies (Astro SCIM FAQ)" in text
    full = render(results, "text", width=width, wrap=True)  # a file or a pipe: every finding
    assert all(f"user{i:05}@acme.example" in full for i in range(300)) and "not listed" not in full
    hundred = render(_many(100), "text", width=width, wrap=True, per_kind=50)  # not more than twice 50: all
    assert all(f"user{i:05}@acme.example" in hundred for i in range(100)) and "not listed" not in hundred


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "text"])
def test_per_kind_never_shortens_another_format(fmt: str) -> None:
    results = _many(300)
    assert render(results, fmt, per_kind=50) == render(results, fmt)


def test_a_name_in_the_markdown_report_never_becomes_html_or_a_link() -> None:
    """A user or group name such as `<img src=...>` or `[reset your SSO here](https://...)` was live markup in the
    markdown report and in a GitHub job summary (its escaping covered `\\` and `|` only)."""
    from markdown_it import MarkdownIt

    names = ["<img src=https://evil.example/p.gif>", "[reset your SSO here](https://evil.example/login)",
             "a`b` <b>c</b> *d* ~~e~~ x&y"]
    found = [_f("okta", Kind.ORPHANED, name, f"active in Astro, unknown to okta: {name}") for name in names]
    rendered = MarkdownIt("commonmark").enable("table").enable("strikethrough").render(
        render([AuditResult("okta", "https://api.astronomer.io/scim/v2/clorg", found)], "markdown"))
    assert "<img" not in rendered and "evil.example/login\"" not in rendered and "<b>c" not in rendered
    assert "<em>d" not in rendered and "<s>e" not in rendered
    assert "&lt;img src=https://evil.example/p.gif&gt;" in rendered and "[reset your SSO here]" in rendered
