"""Drift reports: text (a rich table), json, markdown, junit, github annotations, html (one self-contained page).

Every renderer takes the same `AuditResult`s and returns a string; the caller redacts and writes it. Pure apart
from rich rendering into memory.
"""

from __future__ import annotations

import html
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from connector.audit.reconcile import KIND_TITLES, AuditResult, Finding, Kind, summary
from connector.mapping.model import Severity
from connector.support import github

FORMATS = ("text", "json", "markdown", "junit", "github", "html")
REPORT_VERSION = 1


def render(results: list[AuditResult], fmt: str, *, color: bool = False, width: int = 120) -> str:
    renderers: dict[str, Callable[[list[AuditResult]], str]] = {
        "json": to_json, "markdown": to_markdown, "junit": to_junit, "github": to_github, "html": to_html,
    }
    if fmt == "text":
        return to_text(results, color=color, width=width)
    return renderers[fmt](results)


def _totals(results: list[AuditResult]) -> dict[str, int]:
    counts = {k.value: 0 for k in Kind}
    for r in results:
        for k, n in summary(r.findings).items():
            counts[k] += n
    return counts


# -- text ---------------------------------------------------------------------------------------------------


def to_text(results: list[AuditResult], *, color: bool = False, width: int = 120) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=color, no_color=not color, highlight=False,
                      soft_wrap=False)
    for r in results:
        head = (f"{r.idp}: {r.idp_users} IdP users, {r.idp_groups} groups | Astro {r.scim_url}: "
                f"{r.astro_users} users, {r.astro_teams} Teams")
        console.print(Text(head, style="bold"))
        for d in r.deviations:
            console.print(Text(f"  tolerated: {d}", style="yellow"))
        if r.remedies:
            console.print(Text(f"  fixed {len(r.fixed)} finding(s) with {len(r.remedies)} remedy action(s)",
                               style="green"))
        if r.clean:
            console.print(Text("  no drift", style="green"))
            continue
        table = Table(show_header=True, header_style="bold", expand=False)
        for col in ("id", "kind", "subject", "detail"):
            table.add_column(col, overflow="fold")
        for f in r.findings:
            style = "red" if f.severity is Severity.ERROR else "yellow"
            table.add_row(f.id, Text(f.kind.value, style=style), f.subject, f.detail)
        console.print(table)
        counts = ", ".join(f"{n} {k}" for k, n in summary(r.findings).items() if n)
        console.print(Text(f"  {len(r.findings)} finding(s): {counts}", style="bold red"))
        console.print(Text("  remedies (Astro SCIM FAQ):", style="bold"))
        for remedy, kinds in _remedies(r.findings):
            console.print(Text(f"  - {', '.join(kinds)}: {remedy}"), soft_wrap=True)
    return buf.getvalue()


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
        "version": REPORT_VERSION,
        "clean": all(r.clean for r in results),
        "totals": _totals(results),
        "idps": [
            {
                "idp": r.idp,
                "scim_url": r.scim_url,
                "clean": r.clean,
                "counts": {"idp_users": r.idp_users, "idp_groups": r.idp_groups, "astro_users": r.astro_users,
                           "astro_teams": r.astro_teams},
                "summary": summary(r.findings),
                "deviations": r.deviations,
                "seconds": round(r.seconds, 3),
                "findings": [f.to_json() for f in r.findings],
                **({"fixed": [f.to_json() for f in r.fixed], "remedies": r.remedies} if r.remedies else {}),
            }
            for r in results
        ],
    }
    return json.dumps(doc, indent=2, default=str) + "\n"


# -- markdown -----------------------------------------------------------------------------------------------


def _md(text: Any) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(results: list[AuditResult]) -> str:
    lines = ["# Astro SCIM drift report", ""]
    status = "no drift" if all(r.clean for r in results) else f"{sum(len(r.findings) for r in results)} finding(s)"
    lines += [f"**Result:** {status}", ""]
    for r in results:
        lines += [f"## {r.idp}", "",
                  f"{r.idp_users} IdP users, {r.idp_groups} groups; Astro `{r.scim_url}`: {r.astro_users} users, "
                  f"{r.astro_teams} Teams.", ""]
        for d in r.deviations:
            lines.append(f"- tolerated: {_md(d)}")
        if r.deviations:
            lines.append("")
        lines += ["| check | findings |", "|---|---:|"]
        for kind, n in summary(r.findings).items():
            lines.append(f"| {KIND_TITLES[Kind(kind)]} (`{kind}`) | {n} |")
        lines.append("")
        if r.clean:
            lines += ["No drift.", ""]
            continue
        lines += ["| id | severity | kind | subject | detail |", "|---|---|---|---|---|"]
        for f in r.findings:
            lines.append(f"| `{f.id}` | {f.severity.value} | {f.kind.value} | {_md(f.subject)} | {_md(f.detail)} |")
        lines += ["", "### Remedies", ""]
        for remedy, kinds in _remedies(r.findings):
            lines.append(f"- **{', '.join(kinds)}**: {_md(remedy)}")
        lines.append("")
    return "\n".join(lines)


# -- junit --------------------------------------------------------------------------------------------------


def to_junit(results: list[AuditResult]) -> str:
    """One testsuite per IdP; per check kind a passing testcase, or one failing testcase per finding."""
    root = ET.Element("testsuites", name="astro-scim drift")
    total_tests = total_failures = 0
    for r in results:
        suite = ET.SubElement(root, "testsuite", name=f"drift.{r.idp}", time=f"{r.seconds:.3f}")
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
        if r.deviations:
            out = ET.SubElement(suite, "system-out")
            out.text = "\n".join(f"tolerated: {d}" for d in r.deviations)
        suite.set("tests", str(tests))
        suite.set("failures", str(failures))
        suite.set("errors", "0")
        total_tests += tests
        total_failures += failures
    root.set("tests", str(total_tests))
    root.set("failures", str(total_failures))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# -- github -------------------------------------------------------------------------------------------------


def to_github(results: list[AuditResult]) -> str:
    """GitHub Actions workflow commands: one ::error / ::warning annotation per finding (the markdown report goes
    to the job summary: commands/drift.py)."""
    lines: list[str] = []
    for r in results:
        for d in r.deviations:
            lines.append(github.annotation("notice", "tolerated: " + d, title=f"astro-scim drift {r.idp}"))
        for f in r.findings:
            level = "error" if f.severity is Severity.ERROR else "warning"
            lines.append(github.annotation(level, f"{f.detail} [{f.id}]. Remedy: {f.remedy}",
                                           title=f"drift {r.idp} {f.kind.value}: {f.subject}"))
    found = sum(len(r.findings) for r in results)
    lines.append(f"astro-scim drift: {found} finding(s) across {len(results)} IdP(s)" if found
                 else f"astro-scim drift: no drift across {len(results)} IdP(s)")
    return "\n".join(lines) + "\n"


# -- html ---------------------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1d2330;max-width:72rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border:1px solid #d5d9e0;padding:.35rem .5rem;
text-align:left;vertical-align:top}th{background:#f3f5f8}.error{color:#b42318}.warning{color:#a15c07}
.ok{color:#067647}code{font-size:.85rem}.muted{color:#5b6475}
"""


def _svg_chart(counts: dict[str, int]) -> str:
    """A horizontal bar chart of findings per kind, inline SVG (no scripts, no external assets)."""
    bar_h, gap, label_w, chart_w = 18, 6, 210, 300
    peak = max(counts.values()) or 1
    rows = []
    for i, (kind, n) in enumerate(counts.items()):
        y = i * (bar_h + gap)
        w = 0 if n == 0 else max(2, round(chart_w * n / peak))
        fill = "#d92d20" if n else "#c5cad3"
        rows.append(
            f'<text x="{label_w - 8}" y="{y + 13}" text-anchor="end" font-size="12">{html.escape(kind)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="{fill}"/>'
            f'<text x="{label_w + w + 6}" y="{y + 13}" font-size="12">{n}</text>'
        )
    height = len(counts) * (bar_h + gap)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="findings by kind" '
            f'width="{label_w + chart_w + 40}" height="{height}" viewBox="0 0 {label_w + chart_w + 40} {height}">'
            + "".join(rows) + "</svg>")


def to_html(results: list[AuditResult]) -> str:
    e = html.escape
    found = sum(len(r.findings) for r in results)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        "<title>Astro SCIM drift report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Astro SCIM drift report</h1>",
        f'<p class="{"ok" if not found else "error"}"><strong>'
        f'{"No drift" if not found else f"{found} finding(s)"}</strong> across {len(results)} IdP(s).</p>',
        _svg_chart(_totals(results)),
    ]
    for r in results:
        parts.append(f"<h2>{e(r.idp)}</h2>")
        parts.append(f'<p class="muted">{r.idp_users} IdP users, {r.idp_groups} groups; Astro '
                     f"<code>{e(r.scim_url)}</code>: {r.astro_users} users, {r.astro_teams} Teams.</p>")
        for d in r.deviations:
            parts.append(f'<p class="warning">tolerated: {e(d)}</p>')
        if r.clean:
            parts.append('<p class="ok">No drift.</p>')
            continue
        parts.append("<table><thead><tr><th>id</th><th>kind</th><th>subject</th><th>detail</th><th>remedy</th>"
                     "</tr></thead><tbody>")
        for f in r.findings:
            parts.append(
                f'<tr><td><code>{e(f.id)}</code></td><td class="{f.severity.value}">{e(f.kind.value)}</td>'
                f"<td>{e(f.subject)}</td><td>{e(f.detail)}</td><td>{e(f.remedy)}</td></tr>"
            )
        parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# -- progress -----------------------------------------------------------------------------------------------


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr for long reads (TTY only); yields a (done, total) callback."""
    if not enabled:
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from connector.output import err_console

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console(), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, done))

        yield update
