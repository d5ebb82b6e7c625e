"""Drift reports: text (a rich table), json, markdown, junit, github annotations, html (one self-contained page).

Every renderer takes the same `AuditResult`s and returns a string; the caller redacts and writes it. Pure apart
from rich rendering into memory. Every format says when the audit ran, which tool version wrote it and which
organizations it compared (the IdP's and Astro's), so a report read later, or forwarded, stands on its own.
"""

from __future__ import annotations

import html
import io
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from connector import __version__
from connector.audit.reconcile import KIND_TITLES, AuditResult, Finding, Kind, summary
from connector.mapping.model import Severity
from connector.support import github
from connector.support.redact import printable, redact

FORMATS = ("text", "json", "markdown", "junit", "github", "html")
REPORT_VERSION = 1


def render(results: list[AuditResult], fmt: str, *, color: bool = False, width: int = 120,
           wrap: bool = False, per_kind: int | None = None) -> str:
    """The report in `fmt`. Text: the findings table is `width` wide; plain lines wrap at it only with `wrap` (a
    terminal), else they are left whole, for grep and log files (README: Terminal width); `per_kind` (a terminal:
    terminal_per_kind) lists at most that many findings of a kind that has more than twice as many, and says how
    many it left out. Every other format lists every finding."""
    renderers: dict[str, Callable[[list[AuditResult]], str]] = {
        "json": to_json, "markdown": to_markdown, "junit": to_junit, "github": to_github, "html": to_html,
    }
    if fmt == "text":
        return to_text(results, color=color, width=width, wrap=wrap, per_kind=per_kind)
    return renderers[fmt](results)


def audited_at(results: list[AuditResult]) -> datetime | None:
    """When the audit began: the earliest read of the report's IdPs (None when no result recorded one)."""
    times = [r.audited_at for r in results if r.audited_at is not None]
    return min(times) if times else None


def _stamp(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else "time not recorded"


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at else None


_IDP_ORG_LABELS = {"okta": "Okta org", "azure": "Entra tenant"}


def _idp_org(r: AuditResult) -> str:
    """'Okta org acme.okta.com', 'Entra tenant <id>'; empty when the result does not know it."""
    return f"{_IDP_ORG_LABELS.get(r.idp, r.idp + ' org')} {r.idp_org}" if r.idp_org else ""


def _scope(r: AuditResult) -> str:
    """One IdP and the Astro organization it provisions into, on one line."""
    idp = f"{r.idp} ({_idp_org(r)})" if r.idp_org else r.idp
    astro = f"Astro org {r.astro_org} at {r.astro_host}" if r.astro_host else "Astro"
    return f"{idp} -> {astro}"


def header_line(results: list[AuditResult]) -> str:
    """The line every plain-text report starts with: tool version, time, and what was compared."""
    scope = "; ".join(_scope(r) for r in results) or "no IdP"
    return f"astro-scim {__version__} drift report, {_stamp(audited_at(results))}: {scope}"


def _totals(results: list[AuditResult]) -> dict[str, int]:
    counts = {k.value: 0 for k in Kind}
    for r in results:
        for k, n in summary(r.findings).items():
            counts[k] += n
    return counts


# -- text ---------------------------------------------------------------------------------------------------


def to_text(results: list[AuditResult], *, color: bool = False, width: int = 120, wrap: bool = False,
            per_kind: int | None = None, via_rich: bool = False) -> str:
    """Only the table is fitted to `width`; a plain line wraps at it only with `wrap` (stdout is a terminal):
    in a pipe or a file a header or remedy broken mid-sentence at a guessed width defeats grep.

    The characters are rich's (a Console of that width, colour and wrap), written by report_text.Lines: rich's
    own Table took 9 s for 20,000 findings. `via_rich`: every line through rich itself (what Lines is tested
    against)."""
    from rich.console import Console

    from connector.audit.report_text import Lines

    # no_color None when colour is asked for: rich then honours NO_COLOR (https://no-color.org), as the console does
    console = Console(file=io.StringIO(), width=width, force_terminal=color, no_color=None if color else True,
                      highlight=False, soft_wrap=not wrap)
    out = Lines(console, via_rich=via_rich)
    out.print((header_line(results), "dim"))
    for r in results:
        head = (f"{r.idp}: {r.idp_users} IdP users, {r.idp_groups} groups | Astro {r.scim_url}: "
                f"{r.astro_users} users, {r.astro_teams} Teams")
        out.print((head, "bold"))
        for d in r.deviations:
            # information, not a warning: yellow is what warning findings are drawn in
            out.print((f"  tolerated: {printable(d)}", "blue"))
        if r.remedies:
            out.print((f"  fixed {len(r.fixed)} finding(s) with {len(r.remedies)} remedy action(s)", "green"))
            for line in _fix_problems(r):  # a report file holds them too, not only the run's narration
                out.print(("  " + printable(line), "red"))
        for note in r.not_verified:
            out.print((f"  not verified: {printable(note)}", "yellow"))
        if not r.findings:
            if r.clean:
                out.print(("  no drift", "green"))
            continue
        listed, left_out = _listed(r.findings, per_kind)
        id_w, kind_w, subject_w = _finding_columns(listed, width)
        if width - _FRAME - id_w - kind_w - subject_w < _NARROW_DETAIL:
            # Too narrow for a table (a split pane, a phone): at 40 columns the detail was folded 2 letters a line.
            # One finding a block instead: id and kind, then subject and detail on lines of their own.
            for f in listed:
                style = "red" if f.severity is Severity.ERROR else "yellow"
                out.print(("  " + f.id + "  ", ""), (f.kind.value, style))
                out.print(("    " + printable(f.subject), "bold"))
                out.print(("    " + printable(f.detail), ""))
        else:
            # Text, not markup: a userName such as "a[/b]" stopped the report (exit 70) when a cell was rich markup
            out.table([(f.id, f.kind.value, "red" if f.severity is Severity.ERROR else "yellow", printable(f.subject),
                        printable(f.detail)) for f in listed], id_w, kind_w, subject_w)
        if left_out and per_kind is not None:
            out.print(("  not listed on this terminal: " + ", ".join(f"{n - per_kind:,} of {n:,} {kind}" for kind, n
                                                                    in left_out.items())
                       + f" (the first {per_kind} of each are above)", "bold"))
            out.print(("  every finding: write the report to a file or a pipe (-o drift.txt, | less), or "
                       "--format json", "bold"))
        counts = ", ".join(f"{n} {k}" for k, n in summary(r.findings).items() if n)
        out.print((f"  {len(r.findings)} finding(s): {counts}", "bold red"))
        out.print(("  remedies (Astro SCIM FAQ):", "bold"))
        for remedy, kinds in _remedies(r.findings):
            out.print((f"  - {', '.join(kinds)}: {remedy}", ""))
    return out.getvalue()


# On a terminal, a kind with more than twice this many findings lists its first this many (README: Large drifts):
# 20,000 users missing are ~50,000 lines (9.5 MB) that scroll the header and the totals' context out of reach.
TERMINAL_PER_KIND = 50


def terminal_per_kind(is_terminal: bool) -> int | None:
    """What `render(per_kind=)` a text report gets: a limit on a terminal, none in a file or a pipe (grep)."""
    return TERMINAL_PER_KIND if is_terminal else None


def _listed(findings: list[Finding], per_kind: int | None) -> tuple[list[Finding], dict[str, int]]:
    """The findings a text report lists, in their order, and the kinds it cuts short with their full counts."""
    if per_kind is None:
        return findings, {}
    cut = {k: n for k, n in summary(findings).items() if n > 2 * per_kind}
    if not cut:
        return findings, {}
    seen: dict[str, int] = {}
    listed = []
    for f in findings:
        kind = f.kind.value
        seen[kind] = seen.get(kind, 0) + 1
        if kind not in cut or seen[kind] <= per_kind:
            listed.append(f)
    return listed, cut


# Below this many columns for the detail (the table's floor: under ~50 columns), the findings are listed one block
# each instead of as a table.
_NARROW_DETAIL = 12
_FRAME = 13  # a findings table's 5 borders and 4 x 2 of padding


def _fix_problems(r: AuditResult) -> list[str]:
    """After --fix --yes: each remedy that failed, and each finding that went away unfixed (with why)."""
    failed = [f"FAILED {rem.get('resource')} {rem.get('key')}: {rem.get('message')}"
              for rem in r.remedies if not rem.get("ok")]
    return failed + [f"not fixed: {f.kind.value} {f.subject}: {why}" for f, why in r.not_fixed]


def _finding_columns(findings: list[Finding], width: int) -> tuple[int, int, int]:
    """Widths of the id, kind and subject columns of a findings table `width` wide, the detail taking the rest.

    Set here, not left to rich: rich narrows the widest wrappable columns first, which folded a subject (a
    user's email: what one searches the report for) while the detail had room to wrap. The finding id (what
    --fix and scripts refer to) is never broken; kind and subject are whole while they fit in their share,
    folded (never cut) past it; the detail wraps in what is left, at least a fifth of the width.
    """
    frame = _FRAME
    # At least their headings: a one-word subject ("Astro") folded the heading into "subje" / "ct".
    id_w = max(len("id"), *(len(f.id) for f in findings))
    room = max(12, width - frame - id_w - max(12, width // 5))  # for kind and subject together
    kind_w = max(len("kind"), *(len(f.kind.value) for f in findings))
    subject_w = max(len("subject"), *(len(f.subject) for f in findings))
    if kind_w + subject_w > room:  # the subject first, leaving the kind at least 6; the kind takes what is left
        subject_w = min(subject_w, max(room - 6, room * 6 // 10))
        kind_w = min(kind_w, max(6, room - subject_w))
    return id_w, kind_w, subject_w


def _remedies(findings: list[Finding]) -> list[tuple[str, list[str]]]:
    """Distinct remedy texts with the finding kinds they answer, in first-seen order."""
    out: dict[str, list[str]] = {}
    for f in findings:
        kinds = out.setdefault(f.remedy, [])
        if f.kind.value not in kinds:
            kinds.append(f.kind.value)
    return [(text, kinds) for text, kinds in out.items()]


# -- json ---------------------------------------------------------------------------------------------------


def to_json(results: list[AuditResult]) -> str:
    doc = {
        "schema": f"astro-scim/drift/v{REPORT_VERSION}",  # its JSON Schema: docs/schemas/drift.v1.json
        "version": REPORT_VERSION,
        "tool": "astro-scim",
        "tool_version": __version__,
        "audited_at": _iso(audited_at(results)),
        "orgs": [{"idp": r.idp, "idp_org": r.idp_org, "astro_org": r.astro_org, "scim_url": r.scim_url}
                 for r in results],
        "clean": all(r.clean for r in results),
        "totals": _totals(results),
        "idps": [
            {
                "idp": r.idp,
                "idp_org": r.idp_org,
                "astro_org": r.astro_org,
                "scim_url": r.scim_url,
                "audited_at": _iso(r.audited_at),
                "clean": r.clean,
                "counts": {"idp_users": r.idp_users, "idp_groups": r.idp_groups, "astro_users": r.astro_users,
                           "astro_teams": r.astro_teams},
                "summary": summary(r.findings),
                "deviations": r.deviations,
                "seconds": round(r.seconds, 3),
                "findings": [f.to_json() for f in r.findings],
                **({"not_verified": r.not_verified} if r.not_verified else {}),
                **({"fixed": [f.to_json() for f in r.fixed],
                    "not_fixed": [{"finding": f.to_json(), "why": why} for f, why in r.not_fixed],
                    "remedies": r.remedies} if r.remedies else {}),
                **({"planned": r.planned} if r.planned else {}),
                **({"refused_with_yes": r.refused_with_yes} if r.refused_with_yes else {}),
            }
            for r in results
        ],
        "error": None,  # drift --format json: what stopped the audit (connector/commands/drift.py)
    }
    return json.dumps(doc, indent=2, default=str) + "\n"


# -- markdown -----------------------------------------------------------------------------------------------


# The Markdown that could make markup of a name, backslash-escaped (links and images need `[`, emphasis `*` or
# `~`), and the HTML specials as entities: a user or group name such as `<img src=...>` or `[reset your
# SSO](https://...)` was live markup in the report and in a GitHub job summary. `_` inside a word emphasizes
# nothing, and backticks show what they enclose literally: left as they are.
_MD_ESCAPE = str.maketrans({**{c: "\\" + c for c in "\\|*[]~"}, "<": "&lt;", ">": "&gt;", "&": "&amp;",
                            "\n": " ", "\r": " "})


def _md(text: Any) -> str:
    return str(text).translate(_MD_ESCAPE)


# GitHub refuses a job summary over 1 MiB per step (the whole summary is then lost, with an error annotation).
SUMMARY_BYTES = 1024 * 1024


def to_markdown(results: list[AuditResult], *, max_bytes: int | None = None) -> str:
    """The markdown report; with `max_bytes` (a job summary) at most that many UTF-8 bytes: each IdP's findings
    table then lists its first findings, and says how many more there are and where to see them all."""
    text = _markdown(results, None)
    rows = sum(len(r.findings) for r in results)
    while max_bytes is not None and len(text.encode("utf-8")) > max_bytes and rows > 0:
        # the rows' share of the bytes shrinks in proportion, then by a tenth, until it fits
        rows = min(rows - 1, int(rows * max_bytes / len(text.encode("utf-8")) * 0.9))
        text = _markdown(results, max(rows, 0))
    return text


def _markdown(results: list[AuditResult], max_rows: int | None) -> str:
    """`max_rows`: findings listed in all (the first of each IdP's, in proportion), None: every one."""
    total = sum(len(r.findings) for r in results)
    lines = ["# Astro SCIM drift report", "",
             f"astro-scim {__version__}, audited {_stamp(audited_at(results))}.", ""]
    status = ("no drift" if all(r.clean for r in results) else f"{total} finding(s)" if total
              else "no finding left, but not clean")
    lines += [f"**Result:** {status}", ""]
    for r in results:
        lines += [f"## {r.idp}", ""]
        if r.idp_org or r.astro_host:
            lines += [f"{_idp_org(r) or r.idp} -> Astro organization `{r.astro_org}` at `{r.astro_host}`.", ""]
        lines += [f"{r.idp_users} IdP users, {r.idp_groups} groups; Astro `{r.scim_url}`: {r.astro_users} users, "
                  f"{r.astro_teams} Teams.", ""]
        for d in r.deviations:
            lines.append(f"- tolerated: {_md(d)}")
        if r.deviations:
            lines.append("")
        if r.remedies:
            failed = sum(1 for rem in r.remedies if not rem.get("ok"))
            lines += [f"**Fixed** {len(r.fixed)} finding(s) with {len(r.remedies)} remedy action(s)"
                      + (f", {failed} of them failed" if failed else "") + ".", ""]
            problems = _fix_problems(r)
            lines += [f"- {_md(line)}" for line in problems] + ([""] if problems else [])
        lines += ["| check | findings |", "|---|---:|"]
        for kind, n in summary(r.findings).items():
            lines.append(f"| {KIND_TITLES[Kind(kind)]} (`{kind}`) | {n} |")
        lines.append("")
        lines += [f"**Not verified:** {_md(note)}" for note in r.not_verified] + ([""] if r.not_verified else [])
        if not r.findings:
            lines += ["No drift." if r.clean else "No finding left, but not clean (above).", ""]
            continue
        lines += ["| id | severity | kind | subject | detail |", "|---|---|---|---|---|"]
        listed = r.findings if max_rows is None else r.findings[:len(r.findings) * max_rows // max(total, 1)]
        for f in listed:
            lines.append(f"| `{f.id}` | {f.severity.value} | {f.kind.value} | {_md(f.subject)} | {_md(f.detail)} |")
        if len(listed) < len(r.findings):
            lines += ["", f"**{len(r.findings) - len(listed)} more finding(s) not listed** (of {len(r.findings)}: "
                      "a job summary holds at most 1 MiB); every one is in `--format json`, `markdown` or `html` "
                      "written with `-o FILE`."]
        lines += ["", "### Remedies", ""]
        for remedy, kinds in _remedies(r.findings):
            lines.append(f"- **{', '.join(kinds)}**: {_md(remedy)}")
        lines.append("")
    return printable("\n".join(lines))


# -- junit --------------------------------------------------------------------------------------------------


def to_junit(results: list[AuditResult]) -> str:
    """One testsuite per IdP; per check kind a passing testcase, or one failing testcase per finding."""
    root = ET.Element("testsuites", name="astro-scim drift")
    total_tests = total_failures = 0
    for r in results:
        suite = ET.SubElement(root, "testsuite", name=f"drift.{r.idp}", time=f"{r.seconds:.3f}")
        if r.audited_at is not None:  # JUnit's timestamp is ISO 8601 without a zone: this one is UTC
            suite.set("timestamp", r.audited_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        props = ET.SubElement(suite, "properties")  # first in a testsuite, as the JUnit schema orders it
        for name, value in (("tool_version", __version__), ("audited_at", _iso(r.audited_at) or ""),
                            ("idp", r.idp), ("idp_org", r.idp_org), ("astro_org", r.astro_org),
                            ("scim_url", r.scim_url)):
            ET.SubElement(props, "property", name=name, value=value)
        tests = failures = 0
        by_kind: dict[Kind, list[Finding]] = {k: [] for k in Kind}
        for f in r.findings:
            by_kind[f.kind].append(f)
        for kind, found in by_kind.items():
            classname = f"drift.{r.idp}.{kind.value}"
            if not found:
                ET.SubElement(suite, "testcase", classname=classname, name=KIND_TITLES[kind])
                tests += 1
                continue
            for f in found:
                case = ET.SubElement(suite, "testcase", classname=classname, name=f"{f.subject} [{f.id}]")
                failure = ET.SubElement(case, "failure", message=f.detail, type=f.kind.value)
                failure.text = f"{f.detail}\nremedy: {f.remedy}"
                tests += 1
                failures += 1
        for note in r.not_verified:
            case = ET.SubElement(suite, "testcase", classname=f"drift.{r.idp}.not_verified", name=note)
            ET.SubElement(case, "error", message=note, type="not_verified").text = note
            tests += 1
        if r.deviations:
            out = ET.SubElement(suite, "system-out")
            out.text = "\n".join(f"tolerated: {d}" for d in r.deviations)
        suite.set("tests", str(tests))
        suite.set("failures", str(failures))
        suite.set("errors", str(len(r.not_verified)))
        total_tests += tests
        total_failures += failures
    root.set("tests", str(total_tests))
    root.set("failures", str(total_failures))
    root.set("errors", str(sum(len(r.not_verified) for r in results)))  # what a CI reading the root alone sees
    ET.indent(root)
    return printable('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n")


# -- github -------------------------------------------------------------------------------------------------


def to_github(results: list[AuditResult]) -> str:
    """GitHub Actions workflow commands: an ::error / ::warning annotation per finding while GitHub shows them (the
    first github.ANNOTATIONS_PER_LEVEL of each level: support/github.Capped), each further finding a plain log
    line, and a notice that says how many were not annotated (the markdown report goes to the job summary: commands/drift.py)."""
    lines: list[str] = [header_line(results)]  # a plain log line: not an annotation
    capped = github.Capped("drift")
    for r in results:
        for d in r.deviations:
            capped.add("notice", "tolerated: " + d, title=f"astro-scim drift {r.idp}")
        for note in r.not_verified:
            capped.add("error", f"not verified: {note}", title=f"astro-scim drift {r.idp}")
        for f in r.findings:
            capped.add("error" if f.severity is Severity.ERROR else "warning",
                       f"{f.detail} [{f.id}]. Remedy: {f.remedy}", title=f"drift {r.idp} {f.kind.value}: {f.subject}")
    lines += capped.lines()
    found = sum(len(r.findings) for r in results)
    lines.append(f"astro-scim drift: {found} finding(s) across {len(results)} IdP(s)" if found
                 else f"astro-scim drift: no drift across {len(results)} IdP(s)" if all(r.clean for r in results)
                 else f"astro-scim drift: no finding left, but not clean across {len(results)} IdP(s)")
    return printable("\n".join(lines) + "\n")


# -- html ---------------------------------------------------------------------------------------------------

# The chart's, legend's and remedy groups' order. Tolerated deviations of Astro's SCIM server (notices) are
# "info": the reader should know of them, but there is nothing to fix.
SEVERITIES = ("error", "warning", "info")

# Readable from a 360 px phone to a wide screen with no page-level horizontal scrolling: text wraps anywhere
# it must (long userNames, SCIM URLs), finding tables become one card per finding below 40rem, and any box
# that still cannot fit scrolls inside itself. Colours stay in print (they carry the severity).
_CSS = """
:root{--ink:#1d2330;--muted:#5b6475;--line:#d5d9e0;--soft:#f3f5f8;--error:#b42318;--warning:#b54708;
--info:#175cd3;--ok:#067647}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);margin:0 auto;
max-width:72rem;padding:1rem;overflow-wrap:break-word;-webkit-print-color-adjust:exact;print-color-adjust:exact}
h1{font-size:1.5rem;line-height:1.25;margin:0 0 .75rem}
h2{font-size:1.25rem;margin:2rem 0 .5rem;padding-top:1rem;border-top:1px solid var(--line)}
h3{font-size:1rem;margin:0 0 .25rem}
p{margin:.5rem 0}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.875em;background:var(--soft);
padding:0 .2em;border-radius:3px;overflow-wrap:anywhere}
.meta{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.2rem 1rem;margin:0 0 1rem}
.meta dt{font-weight:600;color:var(--muted)}.meta dd{margin:0}
.verdict{font-size:1.1rem}
.error{color:var(--error)}.warning{color:var(--warning)}.info{color:var(--info)}.ok{color:var(--ok)}
.muted{color:var(--muted)}
.overview{display:flex;flex-wrap:wrap;gap:1rem 2.5rem;align-items:flex-start;margin:1rem 0}
.chart{margin:0;max-width:100%}.chart svg{display:block;max-width:100%;height:auto}
.legend{list-style:none;margin:0;padding:0}.legend li{margin:.15rem 0}
.swatch{display:inline-block;width:.9em;height:.9em;margin-right:.4em;vertical-align:-.1em;border-radius:2px}
.badge{display:inline-block;padding:0 .5em;border-radius:999px;font-size:.8rem;font-weight:600;color:#fff;
white-space:nowrap}
.sev-error{background:var(--error)}.sev-warning{background:var(--warning)}.sev-info{background:var(--info)}
.note{border-left:4px solid var(--info);background:#eff4ff;padding:.5rem .75rem;margin:.5rem 0}
.remedy{border-left:4px solid var(--line);padding:.1rem 0 .1rem .75rem;margin:1.25rem 0}
.remedy[data-severity=error]{border-left-color:var(--error)}
.remedy[data-severity=warning]{border-left-color:var(--warning)}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border:1px solid var(--line);padding:.35rem .5rem;text-align:left;vertical-align:top;overflow-wrap:break-word}
th{background:var(--soft);white-space:nowrap}.n{text-align:right;font-variant-numeric:tabular-nums}
td.id code{white-space:nowrap}td.kind code{overflow-wrap:normal}table.checks{width:auto}
details{margin:.75rem 0}summary{cursor:pointer;color:var(--muted)}
@media (max-width:40rem){
.meta{grid-template-columns:minmax(0,1fr);gap:0}.meta dd{margin-bottom:.35rem}
table.findings thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
table.findings,table.findings tbody,table.findings tr,table.findings td{display:block;width:100%}
table.findings tr{border:1px solid var(--line);border-radius:4px;margin:.5rem 0;padding:.25rem .5rem}
table.findings td{border:0;padding:.1rem 0;display:grid;grid-template-columns:4.5rem minmax(0,1fr);gap:.5rem;
justify-items:start}
table.findings td::before{content:attr(data-label);font-weight:600;color:var(--muted)}
}
@media print{body{max-width:none}.remedy,tr{break-inside:avoid}}
"""

def _esc(text: str) -> str:
    """Secrets masked, then escaped: the caller redacts the page too, but a secret escaped (`&` -> `&amp;`) or
    split by <wbr> would no longer be found there."""
    return html.escape(redact(text))


_COLOURS = {"error": "#b42318", "warning": "#b54708", "info": "#175cd3"}  # as --error, --warning, --info


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


def _inline_code(text: str) -> str:
    """Escape `text` for HTML, with its `backticked` spans as <code> (remedies quote commands that way)."""
    parts = redact(text).split("`")
    if len(parts) % 2 == 0:  # an odd number of backticks: the last one is a character, not a span
        parts[-2:] = [parts[-2] + "`" + parts[-1]]
    return "".join(f"<code>{_esc(p)}</code>" if i % 2 else _esc(p) for i, p in enumerate(parts))


def _by_severity(findings: list[Finding]) -> dict[str, int]:
    counts = Counter(f.severity for f in findings)  # by the enum: its .value, 20,000 times, was most of the cost
    return dict(sorted(((s.value, n) for s, n in counts.items()), key=lambda item: _rank(item[0])))


def _badges(counts: dict[str, int]) -> str:
    return " ".join(f'<span class="badge sev-{_esc(sev)}">{_plural(n, _esc(sev))}</span>'
                    for sev, n in counts.items() if n)


def _chart_rows(results: list[AuditResult]) -> list[tuple[str, dict[str, int]]]:
    """Per finding kind (every kind, in the canonical order), its count per severity; notices last, as info."""
    rows: dict[str, dict[str, int]] = {k.value: {} for k in Kind}
    for r in results:
        for (kind, severity), n in Counter((f.kind, f.severity) for f in r.findings).items():
            per = rows.setdefault(kind.value, {})
            per[severity.value] = per.get(severity.value, 0) + n
    notices = sum(len(r.deviations) for r in results)
    out = [(kind, dict(sorted(per.items(), key=lambda item: _rank(item[0])))) for kind, per in rows.items()]
    return out + [("notices (tolerated)", {"info": notices})]


def _describe(per: dict[str, int]) -> str:
    return ", ".join(_plural(n, sev) for sev, n in per.items() if n) or "none"


def _svg_chart(rows: list[tuple[str, dict[str, int]]]) -> str:
    """A bar per finding kind that has findings, its segments coloured by severity; inline SVG (no scripts, no
    external assets), 320 units wide and drawn 1:1 (labels above the bars) so its text stays legible on a
    phone. Its <title> and <desc> are the text alternative; the table after it holds the same numbers."""
    shown = [(kind, per) for kind, per in rows if sum(per.values())]
    width, row_h, bar_h, count_w = 320, 36, 12, 44
    peak = max((sum(per.values()) for _, per in shown), default=1)
    parts = []
    for i, (kind, per) in enumerate(shown):
        y = i * row_h
        parts.append(f'<text x="0" y="{y + 12}" font-size="12" fill="#1d2330">{_esc(kind)}</text>')
        x = 0
        for sev, n in per.items():
            w = max(3, round((width - count_w) * n / peak))
            parts.append(f'<rect x="{x}" y="{y + 17}" width="{w}" height="{bar_h}" '
                         f'fill="{_COLOURS.get(sev, "#5b6475")}"><title>{_esc(kind)}: '
                         f"{_plural(n, _esc(sev))}</title></rect>")
            x += w
        parts.append(f'<text x="{x + 6}" y="{y + 27}" font-size="12" fill="#1d2330">{sum(per.values())}</text>')
    height = len(shown) * row_h
    desc = "; ".join(f"{kind}: {_describe(per)}" for kind, per in shown)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="chart-title chart-desc" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f'<title id="chart-title">Findings by kind and severity</title>'
            f'<desc id="chart-desc">{_esc(desc)}.</desc>' + "".join(parts) + "</svg>")


def _overview(results: list[AuditResult]) -> list[str]:
    rows = _chart_rows(results)
    totals = {sev: sum(per.get(sev, 0) for _, per in rows) for sev in SEVERITIES}
    legend = "".join(
        f'<li><span class="swatch sev-{sev}"></span>{sev}: '
        f'{_plural(totals[sev], "notice" if sev == "info" else "finding")}</li>' for sev in SEVERITIES
    )
    out = ['<div class="overview">']
    if any(sum(per.values()) for _, per in rows):
        out.append(f'<figure class="chart">{_svg_chart(rows)}</figure>')
    out.append(f'<ul class="legend" aria-label="severities">{legend}</ul></div>')
    titles: dict[str, str] = {k.value: t for k, t in KIND_TITLES.items()}
    checks = "".join(
        f"<tr><td><code>{_esc(kind)}</code> {_esc(titles.get(kind, ''))}</td>"
        + "".join(f'<td class="n">{per.get(sev, 0)}</td>' for sev in SEVERITIES) + "</tr>"
        for kind, per in rows
    )
    out.append('<details><summary>Every check, as a table (the chart\'s numbers)</summary><div class="scroll">'
               '<table class="checks"><thead><tr><th>check</th>'
               + "".join(f'<th class="n">{sev}</th>' for sev in SEVERITIES)
               + f"</tr></thead><tbody>{checks}</tbody></table></div></details>")
    return out


def _remedy_groups(findings: list[Finding]) -> list[tuple[str, list[Finding]]]:
    """Findings grouped by remedy text, each remedy once: the most severe first, then in first-seen order."""
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        groups.setdefault(f.remedy, []).append(f)
    return sorted(groups.items(), key=lambda g: min(_rank(s.value) for s in {f.severity for f in g[1]}))


def _breakable(name: str) -> str:
    """A snake_case name that may wrap after its underscores, and nowhere else (a narrow table column)."""
    return "_<wbr>".join(_esc(part) for part in name.split("_"))


_LONG_WORD = re.compile(r"\S{16,}")
_SOFT_BREAK = re.compile(r"(?<=[@./_:-])")


def _soft(text: str) -> str:
    """Escape `text`, letting its long words (userNames, URLs, paths) wrap after @ . / _ : -.

    In a table cell that is what lets a column narrow without breaking names mid-word: the browser sizes
    columns by their longest unbreakable run, and wraps at these points before it wraps anywhere.
    """
    text = redact(text)  # before <wbr> splits a secret apart
    if len(text) < 16:  # no long word (the common short subject or detail: 40,000 cells in a large drift)
        return html.escape(text)
    out, end = [], 0
    for word in _LONG_WORD.finditer(text):
        out.append(html.escape(text[end:word.start()]))
        # escaped whole: html.escape writes none of @ . / _ : -, so the breaks fall where they fell in the word
        out.append(_SOFT_BREAK.sub("<wbr>", html.escape(word.group())))
        end = word.end()
    out.append(html.escape(text[end:]))
    return "".join(out)


def _findings_table(findings: list[Finding]) -> str:
    """One row per finding. Built once per kind and severity what repeats (20,000 rows in a large drift)."""
    e = _esc
    kinds: dict[Kind, str] = {}
    badges: dict[str, str] = {}
    rows = []
    for f in findings:
        kind = kinds.get(f.kind)
        if kind is None:
            kind = kinds[f.kind] = f'<td class="kind" data-label="kind"><code>{_breakable(f.kind.value)}</code></td>'
        severity = f.severity.value
        badge = badges.get(severity)
        if badge is None:
            badge = badges[severity] = (f'<td data-label="severity"><span class="badge sev-{e(severity)}">'
                                        f"{e(severity)}</span></td>")
        rows.append(f'<tr>{badge}{kind}<td data-label="subject">{_soft(f.subject)}</td><td data-label="detail">'
                    f'{_soft(f.detail)}</td><td class="id" data-label="id"><code>{e(f.id)}</code></td></tr>')
    return ('<div class="scroll"><table class="findings"><thead><tr><th>severity</th><th>kind</th><th>subject</th>'
            f"<th>detail</th><th>id</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _idp_section(r: AuditResult) -> list[str]:
    e = _esc
    where = e(_idp_org(r)) if r.idp_org else e(r.idp)
    parts = [f"<section><h2>{e(r.idp)}</h2>",
             f'<p class="muted">{where} &rarr; Astro organization <code>{e(r.astro_org)}</code> at '
             f"<code>{e(r.astro_host)}</code>. {_plural(r.idp_users, 'IdP user')}, {_plural(r.idp_groups, 'group')};"
             f" Astro <code>{e(r.scim_url)}</code>: {_plural(r.astro_users, 'user')}, "
             f"{_plural(r.astro_teams, 'Team')}. Audited {_stamp(r.audited_at)}.</p>"]
    for d in r.deviations:
        parts.append(f'<p class="note"><strong class="info">Notice</strong> (information, nothing to fix): '
                     f"Astro's SCIM server deviates from the standard and the audit tolerated it: {e(d)}</p>")
    if r.remedies:
        parts.append(f'<p class="ok">Fixed {_plural(len(r.fixed), "finding")} with '
                     f'{_plural(len(r.remedies), "remedy action")}.</p>')
        parts += [f'<p class="error">{_soft(line)}</p>' for line in _fix_problems(r)]
    parts += [f'<p class="warning"><strong>Not verified:</strong> {_soft(note)}</p>' for note in r.not_verified]
    if not r.findings:
        parts.append('<p class="ok"><strong>No drift.</strong></p></section>' if r.clean else
                     '<p class="warning"><strong>No finding left, but not clean</strong> (above).</p></section>')
        return parts
    groups = _remedy_groups(r.findings)
    parts.append(f"<p><strong>{_plural(len(r.findings), 'finding')}</strong> {_badges(_by_severity(r.findings))}, "
                 f"{_plural(len(groups), 'remedy')}:</p>")
    for i, (remedy, found) in enumerate(groups, 1):
        worst = min({f.severity.value for f in found}, key=_rank)
        kinds = [k.value for k in dict.fromkeys(f.kind for f in found)]
        parts += [f'<section class="remedy" data-severity="{e(worst)}">',
                  f"<h3>Remedy {i} of {len(groups)} <span class=\"muted\">for {e(', '.join(kinds))}</span></h3>",
                  f"<p>{_inline_code(remedy)}</p>",
                  f"<p class=\"muted\">It fixes {_plural(len(found), 'finding')}: {_badges(_by_severity(found))}</p>",
                  _findings_table(found), "</section>"]
    parts.append("</section>")
    return parts


def to_html(results: list[AuditResult]) -> str:
    """One self-contained page: no scripts, no external assets, readable offline and at any width."""
    e = _esc
    found = [f for r in results for f in r.findings]
    counts = _by_severity(found)
    notices = sum(len(r.deviations) for r in results)
    at = audited_at(results)
    verdict_class = min(counts, key=_rank) if found else "ok" if all(r.clean for r in results) else "warning"
    verdict = (f"<strong>{_plural(len(found), 'finding')}</strong> ({_describe(counts)})" if found
               else "<strong>No finding left, but not clean</strong>" if not all(r.clean for r in results)
               else "<strong>No drift</strong>")
    verdict += f" across {_plural(len(results), 'IdP')}" + (f"; {_plural(notices, 'notice')}." if notices else ".")
    when = f'<time datetime="{_iso(at)}">{_stamp(at)}</time>' if at else _stamp(at)
    meta = [f"<dt>Audited</dt><dd>{when}</dd>", f"<dt>Tool</dt><dd>astro-scim {e(__version__)}</dd>"]
    for r in results:
        idp = e(_idp_org(r)) if r.idp_org else "IdP"
        meta.append(f"<dt>{e(r.idp)}</dt><dd>{idp} &rarr; Astro organization <code>{e(r.astro_org)}</code> "
                    f"at <code>{e(r.astro_host)}</code></dd>")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f'<meta name="generator" content="astro-scim {e(__version__)}">',
        f"<title>Astro SCIM drift report, {e(_stamp(at))}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<header><h1>Astro SCIM drift report</h1>",
        f'<dl class="meta">{"".join(meta)}</dl>',
        f'<p class="verdict {verdict_class}">{verdict}</p></header>',
        "<main>", *_overview(results),
    ]
    for r in results:
        parts += _idp_section(r)
    parts.append("</main></body></html>")
    return printable("\n".join(parts) + "\n")
