"""Replay the vendors' published test material against running services, and say step by step what passed.

Two formats, both read as data (no external runner):
- Runscope exports (Okta's "SCIM 2.0 SPEC Test" and "SCIM 2.0 CRUD Test"): `steps` of `request` (method, url,
  headers, body with `{{variables}}`, `assertions`, `variables` to extract, `scripts`) and `pause`. The
  assertion kinds these exports use are implemented below with Runscope's semantics (values compared as the
  strings Runscope renders: JSON `false` equals "false"); the one script they carry is implemented in Python.
- Request lists transcribed from documentation (`okta-scim-doc-examples.json`, `entra-scim-doc-examples.json`):
  `steps` with `method`, `path`, `query`, `body`, `expect_status`, `save`, `checks` and an optional `verify`
  GET, each check `[property, op, expected]`.

A pause never sleeps: the sandbox's engines provision inside the request that triggers them, so there is nothing
to wait for; the caller may pass `on_pause` to run anything that should happen "meanwhile".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

_VAR = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
_INDEX = re.compile(r"^([^\[]*)\[([^\]]*)\]$")
_MISSING = object()


@dataclass
class Outcome:
    step: str  # "3 Assign user to SCIM App" / a documented step id
    check: str  # what was checked, e.g. "response_status equal_number 200"
    ok: bool
    detail: str = ""


@dataclass
class Report:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)

    def add(self, step: str, check: str, ok: bool, detail: str = "") -> None:
        self.outcomes.append(Outcome(step, check, ok, detail))

    @property
    def passed(self) -> int:
        return sum(o.ok for o in self.outcomes)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def steps(self) -> dict[str, bool]:
        """Step -> whether every check of it passed (in order)."""
        out: dict[str, bool] = {}
        for o in self.outcomes:
            out[o.step] = out.get(o.step, True) and o.ok
        return out

    def table(self) -> str:
        """One line per check, PASS/FAIL, then the score: what a failing test prints."""
        lines = [f"{self.name}: {self.passed}/{len(self.outcomes)} checks passed"]
        for o in self.outcomes:
            lines.append(f"  {'PASS' if o.ok else 'FAIL'}  {o.step}: {o.check}" + (f"  -- {o.detail}" if o.detail
                                                                                     else ""))
        return "\n".join(lines)


def substitute(value: Any, variables: Mapping[str, Any]) -> Any:
    """`{{name}}` replaced in strings (recursively in lists and dicts); an unknown name is an error."""
    if isinstance(value, str):
        def one(m: re.Match[str]) -> str:
            if m.group(1) not in variables:
                raise KeyError(f"no value for {{{{{m.group(1)}}}}}")
            return str(variables[m.group(1)])
        return _VAR.sub(one, value)
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    if isinstance(value, dict):
        return {substitute(k, variables): substitute(v, variables) for k, v in value.items()}
    return value


def lookup(data: Any, prop: str) -> Any:
    """A property of a JSON answer, or `_MISSING`. Paths: `a.b`, `a[0].b` (Runscope), `a[*].b` (every entry),
    `a[type=work].b` (the entry whose `type` is `work`; a list when not exactly one), and a leading schema URN key
    (`urn:...:enterprise:2.0:User.manager.value`)."""
    if prop == "":
        return data
    parts: list[str] = []
    if prop.startswith("urn:") and isinstance(data, dict):
        keys = sorted((k for k in data if prop == k or prop.startswith(k + ".")), key=len, reverse=True)
        if not keys:
            return _MISSING
        parts.append(keys[0])
        prop = prop[len(keys[0]) + 1:]
    parts.extend(p for p in prop.split(".") if p)
    current: list[Any] = [data]
    many = False
    for part in parts:
        m = _INDEX.match(part)
        name, selector = (m.group(1), m.group(2)) if m else (part, None)
        nxt: list[Any] = []
        for item in current:
            value = item.get(name, _MISSING) if isinstance(item, dict) and name else item
            if value is _MISSING:
                continue
            if selector is None:
                nxt.append(value)
            elif not isinstance(value, list):
                continue
            elif selector == "*":
                many = True
                nxt.extend(value)
            elif selector.isdigit():
                if int(selector) < len(value):
                    nxt.append(value[int(selector)])
            else:
                key, _, wanted = selector.partition("=")
                matched = [v for v in value if isinstance(v, dict) and str(v.get(key)) == wanted]
                many = many or len(matched) != 1  # "the work email" is one value; none or several, a list
                nxt.extend(matched)
        current = nxt
    if many:
        return current
    return current[0] if current else _MISSING


def _render(value: Any) -> str:
    """A value as Runscope compares it: JSON text for booleans and null, plain text for strings and numbers."""
    if value is _MISSING:
        return ""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def runscope_assertion(kind: str, actual: Any, expected: Any) -> bool:
    """The comparisons Okta's exports use (Runscope's assertion reference)."""
    if kind == "equal_number":
        a, e = _number(actual), _number(expected)
        return a is not None and a == e
    if kind == "equal":
        return actual is not _MISSING and _render(actual) == str(expected)
    if kind == "not_empty":
        return actual is not _MISSING and actual is not None and _render(actual) not in ("", "[]", "{}")
    if kind == "has_value":
        return isinstance(actual, list) and any(_render(v) == str(expected) for v in actual)
    if kind == "contains":
        if isinstance(actual, list):
            return any(_render(v) == str(expected) for v in actual)
        return actual is not _MISSING and str(expected) in _render(actual)
    if kind == "is_a_number":
        return _number(actual) is not None
    if kind == "is_less_than":
        a, e = _number(actual), _number(expected)
        return a is not None and e is not None and a < e
    raise ValueError(f"unsupported Runscope assertion {kind!r}")


def _groups_endpoint_script(body: Any) -> tuple[bool, str]:
    """Okta SPEC test, "Verify Groups endpoint": no groups is fine (it only logs "nogroups"); with some,
    `Resources` must be an array."""
    data = body if isinstance(body, dict) else {}
    total = data.get("totalResults")
    if total == 0:
        return True, "no groups (the script only notes it)"
    if isinstance(total, int) and total >= 1:
        return isinstance(data.get("Resources"), list), "Resources is an array"
    return True, "script asserts nothing for this answer"


def _script_key(text: str) -> str:
    return re.sub(r"\s+", "", text)


# The scripts the exports carry, by their text without whitespace -> a Python equivalent.
SCRIPTS: dict[str, Callable[[Any], tuple[bool, str]]] = {
    _script_key(
        "var data = JSON.parse(response.body);\nvar max = data.totalResults;\nvar res = data.Resources;\n"
        "var exists = false;\n\nif (max === 0)\n\tassert(\"nogroups\", \"No Groups found in the endpoint\");\n"
        "else if (max >= 1 && Array.isArray(res)) {\n    exists = true;\n    assert.ok(exists, \"Resources is of "
        "type Array\");\n\tlog(exists);\n}"
    ): _groups_endpoint_script,
}


def _headers(raw: Mapping[str, Any], variables: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in raw.items():
        values = value if isinstance(value, list) else [value]
        out[key] = ", ".join(str(substitute(v, variables)) for v in values)
    return out


def run_runscope(
    export: Mapping[str, Any],
    client: httpx.Client,
    variables: dict[str, Any],
    *,
    response_time: Callable[[httpx.Response], float],
    on_pause: Callable[[float], None] | None = None,
) -> Report:
    """Run a Runscope export. `variables` holds the environment and receives what steps extract.

    `response_time(response)` gives the milliseconds a `response_time` assertion reads: the caller decides what
    that means (tests pass the latency the sandbox injects, never a wall-clock measure)."""
    report = Report(str(export.get("name", "runscope export")))
    number = 0
    for step in export.get("steps", []):
        number += 1
        if step.get("skipped"):
            continue
        if step.get("step_type") == "pause":
            if on_pause is not None:
                on_pause(float(step.get("duration", 0)))
            continue
        if step.get("step_type") != "request":
            report.add(f"{number}", f"step type {step.get('step_type')!r}", False, "not supported")
            continue
        label = f"{number} {step.get('note', '').strip()}"
        try:
            url = substitute(step["url"], variables)
            headers = _headers(step.get("headers") or {}, variables)
            body = substitute(step.get("body") or "", variables)
        except KeyError as exc:
            report.add(label, "variables", False, str(exc))
            continue
        response = client.request(step["method"], url, headers=headers, content=body.encode() or None)
        try:
            data: Any = response.json()
        except ValueError:
            data = _MISSING
        for assertion in step.get("assertions", []):
            source, kind = assertion["source"], assertion["comparison"]
            prop = assertion.get("property") or ""
            expected = substitute(assertion.get("value"), variables)
            if source == "response_status":
                actual: Any = response.status_code
            elif source == "response_time":
                actual = response_time(response)
            elif source == "response_json":
                actual = lookup(data, prop) if data is not _MISSING else _MISSING
            else:
                report.add(label, f"{source} {kind}", False, "unsupported assertion source")
                continue
            check = f"{source}{'.' + prop if prop else ''} {kind}" + (f" {expected}" if expected is not None else "")
            try:
                ok = runscope_assertion(kind, actual, expected)
            except ValueError as exc:
                report.add(label, check, False, str(exc))
                continue
            report.add(label, check, ok, "" if ok else f"got {_render(actual)!r} (HTTP {response.status_code})")
        for script in step.get("scripts") or []:
            if not script.strip():
                continue
            fn = SCRIPTS.get(_script_key(script))
            if fn is None:
                report.add(label, "script", False, "a script this runner does not implement")
                continue
            ok, what = fn(data if data is not _MISSING else None)
            report.add(label, f"script: {what}", ok)
        for extract in step.get("variables") or []:
            name = extract.get("name")
            if not name or extract.get("source") != "response_json":
                continue
            value = lookup(data, extract.get("property") or "") if data is not _MISSING else _MISSING
            if value is not _MISSING:
                variables[name] = _render(value)
    return report


# -- documented request lists ------------------------------------------------------------------------------


def _doc_check(data: Any, prop: str, op: str, expected: Any) -> tuple[bool, str]:
    actual = lookup(data, prop) if data is not None else _MISSING
    shown = "absent" if actual is _MISSING else json.dumps(actual)
    if op == "present":
        return actual is not _MISSING and actual is not None, shown
    if op == "absent":
        return actual is _MISSING or actual is None, shown
    if op == "eq":
        return actual is not _MISSING and actual == expected, shown
    if op == "eq_soft":  # equal when present; an omitted attribute is acceptable too
        return actual is _MISSING or actual is None or actual == expected, shown
    if op == "contains":
        return isinstance(actual, list | str) and expected in actual, shown
    if op == "has":
        return isinstance(actual, list) and expected in actual, shown
    if op == "lacks":
        return actual is _MISSING or (isinstance(actual, list) and expected not in actual), shown
    if op == "len":
        return isinstance(actual, list) and len(actual) == expected, shown
    raise ValueError(f"unsupported check {op!r}")


def run_documented(
    document: Mapping[str, Any],
    client: httpx.Client,
    variables: dict[str, Any],
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Report:
    """Run a transcribed request list against `client` (its base URL is the SCIM base, auth set).

    `overrides`: step id -> keys that replace the step's own (`expect_status`, `checks`), for a documented
    request whose printed answer is not the RFC's (the caller says why)."""
    report = Report(str(document.get("about", "documented requests"))[:60])
    for raw in document.get("steps", []):
        step = {**raw, **(overrides or {}).get(raw["id"], {})}
        label = str(step["id"])
        try:
            path = substitute(step["path"], variables)
            query = substitute(step.get("query") or {}, variables)
            body = substitute(step.get("body"), variables)
            checks = substitute(step.get("checks") or [], variables)
            verify = substitute(step.get("verify"), variables)
        except KeyError as exc:
            report.add(label, "variables", False, str(exc))
            continue
        headers = {"Accept": "application/scim+json"}
        content = None
        if body is not None:
            headers["Content-Type"] = step.get("content_type") or "application/scim+json"
            content = json.dumps(body).encode()
        response = client.request(step["method"], path, params=query, headers=headers, content=content)
        try:
            data: Any = response.json() if response.content else None
        except ValueError:
            data = None
        wanted = step.get("expect_status") or [200]
        report.add(label, f"{step['method']} {path} -> {' or '.join(map(str, wanted))}",
                   response.status_code in wanted,
                   "" if response.status_code in wanted else f"HTTP {response.status_code}: {response.text[:300]}")
        ok_status = response.status_code in wanted
        if ok_status and data is not None:
            for prop, op, *rest in checks:
                expected = rest[0] if rest else None
                ok, shown = _doc_check(data, prop, op, expected)
                report.add(label, f"{prop} {op} {json.dumps(expected)}", ok, "" if ok else f"got {shown}")
        elif checks and data is None and ok_status and response.status_code != 204:
            report.add(label, "checks", False, "no JSON body")
        if ok_status:
            for name, prop in (step.get("save") or {}).items():
                value = lookup(data, prop) if data is not None else _MISSING
                if value is not _MISSING:
                    variables[name] = value
        if verify and ok_status:
            got = client.get(verify["path"], headers={"Accept": "application/scim+json"})
            status = verify.get("status", 200)
            report.add(label, f"verify GET {verify['path']} -> {status}", got.status_code == status,
                       "" if got.status_code == status else f"HTTP {got.status_code}: {got.text[:300]}")
            if got.status_code == status and status == 200:
                vdata = got.json()
                for prop, op, *rest in verify.get("checks") or []:
                    expected = rest[0] if rest else None
                    ok, shown = _doc_check(vdata, prop, op, expected)
                    report.add(label, f"verify {prop} {op} {json.dumps(expected)}", ok, "" if ok else f"got {shown}")
    return report
