"""The slice of OData the Graph emulator understands: `$filter`, `$select`, `$orderby`, `$top`/`$skiptoken`.

Graph's directory endpoints accept a small filter language (`eq`, `ne`, `gt`, `ge`, `lt`, `le`, `and`, `or`,
`not`, `startswith`, `endswith`, `contains`, `tolower`, `toupper`). Anything else is a 400, as on the real
service, so a client that builds a filter Graph would refuse fails here too; so is `ne`, `not` or `endswith` on
directory objects outside an advanced query (see ADVANCED_OPERATORS).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]

DEFAULT_PAGE = 100
MAX_PAGE = 999


class ODataQueryError(Exception):
    """A query option Graph would reject; `code` is the OData error code of the 400 answer."""

    def __init__(self, message: str, code: str = "BadRequest") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^']|'')*')
      | (?P<dt>\d{4}-\d{2}-\d{2}(?:T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?)(?![\w-])
      | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
      | (?P<num>-?\d+(?:\.\d+)?)(?![\w-])
      | (?P<name>[A-Za-z_@$][\w.@$]*(?:/[A-Za-z_][\w.]*)*)
      | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)

_COMPARE = {"eq", "ne", "gt", "ge", "lt", "le"}
_STRING_FUNCS = {"startswith", "endswith", "contains"}
_CASE_FUNCS = {"tolower", "toupper"}


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ODataQueryError(f"Invalid filter clause: syntax error at position {pos} in '{text}'.")
        kind = m.lastgroup or "punct"
        out.append(_Tok(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return out


def lookup(obj: dict[str, Any], path: str) -> Any:
    """Property path `a/b` on a JSON object, case-insensitive like Graph's property names in queries."""
    cur: Any = obj
    for part in path.split("/"):
        if not isinstance(cur, dict):
            return None
        if part in cur:
            cur = cur[part]
            continue
        low = part.lower()
        cur = next((v for k, v in cur.items() if k.lower() == low), None)
    return cur


class _Parser:
    def __init__(self, text: str, case_insensitive: bool) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.ci = case_insensitive

    def _peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _next(self) -> _Tok:
        tok = self._peek()
        if tok is None:
            raise ODataQueryError(f"Invalid filter clause: unexpected end of '{self.text}'.")
        self.i += 1
        return tok

    def _expect(self, text: str) -> None:
        tok = self._next()
        if tok.text != text:
            raise ODataQueryError(f"Invalid filter clause: expected '{text}' at position {tok.pos}.")

    def _keyword(self, word: str) -> bool:
        tok = self._peek()
        if tok is not None and tok.kind == "name" and tok.text.lower() == word:
            self.i += 1
            return True
        return False

    def parse(self) -> Predicate:
        pred = self._or()
        if self._peek() is not None:
            tok = self._next()
            raise ODataQueryError(f"Invalid filter clause: unexpected '{tok.text}' at position {tok.pos}.")
        return pred

    def _or(self) -> Predicate:
        left = self._and()
        while self._keyword("or"):
            right = self._and()
            left = (lambda a, b: lambda o: a(o) or b(o))(left, right)
        return left

    def _and(self) -> Predicate:
        left = self._unary()
        while self._keyword("and"):
            right = self._unary()
            left = (lambda a, b: lambda o: a(o) and b(o))(left, right)
        return left

    def _unary(self) -> Predicate:
        if self._keyword("not"):
            inner = self._unary()
            return lambda o: not inner(o)
        tok = self._peek()
        if tok is not None and tok.text == "(":
            self._next()
            pred = self._or()
            self._expect(")")
            return pred
        if tok is not None and tok.kind == "name" and tok.text.lower() in _STRING_FUNCS:
            return self._string_func()
        left = self._operand()
        op = self._next()
        if op.kind != "name" or op.text.lower() not in _COMPARE:
            raise ODataQueryError(f"Invalid filter clause: unsupported operator '{op.text}'.")
        right = self._operand()
        return self._compare(op.text.lower(), left, right)

    def _string_func(self) -> Predicate:
        name = self._next().text.lower()
        self._expect("(")
        subject = self._operand()
        self._expect(",")
        needle = self._operand()
        self._expect(")")
        ci = self.ci

        def pred(o: dict[str, Any]) -> bool:
            s, n = subject(o), needle(o)
            if not isinstance(s, str) or not isinstance(n, str):
                return False
            if ci:
                s, n = s.lower(), n.lower()
            if name == "startswith":
                return s.startswith(n)
            if name == "endswith":
                return s.endswith(n)
            return n in s

        return pred

    def _operand(self) -> Callable[[dict[str, Any]], Any]:
        tok = self._next()
        if tok.kind == "str":
            value = tok.text[1:-1].replace("''", "'")
            return lambda o: value
        if tok.kind in ("dt", "guid"):
            text = tok.text
            return lambda o: text
        if tok.kind == "num":
            number = float(tok.text) if "." in tok.text else int(tok.text)
            return lambda o: number
        if tok.kind == "name":
            low = tok.text.lower()
            if low in ("true", "false"):
                flag = low == "true"
                return lambda o: flag
            if low == "null":
                return lambda o: None
            if low in _CASE_FUNCS:
                self._expect("(")
                inner = self._operand()
                self._expect(")")
                upper = low == "toupper"

                def case(o: dict[str, Any]) -> Any:
                    v = inner(o)
                    if not isinstance(v, str):
                        return v
                    return v.upper() if upper else v.lower()

                return case
            path = tok.text
            return lambda o: lookup(o, path)
        raise ODataQueryError(f"Invalid filter clause: unexpected '{tok.text}' at position {tok.pos}.")

    def _compare(
        self, op: str, left: Callable[[dict[str, Any]], Any], right: Callable[[dict[str, Any]], Any]
    ) -> Predicate:
        ci = self.ci

        def pred(o: dict[str, Any]) -> bool:
            a, b = _comparable(left(o), ci), _comparable(right(o), ci)
            if op == "eq":
                return bool(a == b)
            if op == "ne":
                return bool(a != b)
            if a is None or b is None:
                return False
            try:
                if op == "gt":
                    return bool(a > b)
                if op == "ge":
                    return bool(a >= b)
                if op == "lt":
                    return bool(a < b)
                return bool(a <= b)
            except TypeError:
                return False

        return pred


def _comparable(value: Any, case_insensitive: bool) -> Any:
    if isinstance(value, str):
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}(T.*)?", value):
            try:
                text = value if "T" in value else value + "T00:00:00Z"
                return datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                pass
        return value.lower() if case_insensitive else value
    return value


def compile_filter(text: str, *, case_insensitive: bool = True) -> Predicate:
    """`$filter` text -> predicate on a JSON object. Directory objects compare strings case-insensitively;
    the provisioning log does not (documented as case-sensitive)."""
    if not text.strip():
        raise ODataQueryError("Invalid filter clause: the filter is empty.")
    return _Parser(text, case_insensitive).parse()


# Operators Graph serves on directory objects only as "advanced queries": with the header ConsistencyLevel: eventual
# and $count=true ("Advanced query capabilities on Microsoft Entra ID objects": "the addition of not (not), not
# equals (ne), and ends with (endsWith) operators"; without them the request "isn't supported by default").
ADVANCED_OPERATORS = ("ne", "not", "endsWith")
_ADVANCED = {op.lower(): op for op in ADVANCED_OPERATORS}


def advanced_operator(text: str) -> str | None:
    """The first operator of `text` (a $filter) that only an advanced query may use, spelled as Graph spells it
    in its error; None when a plain request can ask it. Quoted strings are tokens of their own, so a value like
    'not' is not an operator."""
    for tok in _tokenize(text):
        if tok.kind == "name":
            op = _ADVANCED.get(tok.text.lower())
            if op is not None:
                return op
    return None


_SIMPLE_EQ = re.compile(r"^\s*([A-Za-z]+)\s+eq\s+'((?:[^']|'')*)'\s*$")


def simple_equality(text: str) -> tuple[str, str] | None:
    """`prop eq 'value'` -> (prop, value): lets an endpoint answer from an index instead of a scan."""
    m = _SIMPLE_EQ.match(text)
    if not m:
        return None
    return m.group(1), m.group(2).replace("''", "'")


def page_size(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_PAGE
    try:
        top = int(raw)
    except ValueError as cause:
        raise ODataQueryError(f"Invalid page size specified: '{raw}'.", "Request_UnsupportedQuery") from cause
    if not 1 <= top <= MAX_PAGE:
        raise ODataQueryError(
            f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_PAGE} inclusive.",
            "Request_UnsupportedQuery",
        )
    return top


def encode_skiptoken(offset: int) -> str:
    # Opaque to clients, like Graph's: they must follow @odata.nextLink, never build one.
    return base64.urlsafe_b64encode(f"RFNwdAIAAQAAA:{offset}".encode()).decode().rstrip("=")


def decode_skiptoken(token: str | None) -> int:
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        offset = int(text.rsplit(":", 1)[1])
    except (ValueError, IndexError, UnicodeDecodeError) as cause:
        raise ODataQueryError("The specified page token value has expired and can no longer be included "
                              "in your request.", "Directory_ExpiredPageToken") from cause
    if offset < 0:
        raise ODataQueryError("Invalid skip token.", "Directory_ExpiredPageToken")
    return offset


def select_fields(raw: str | None) -> list[str] | None:
    if not raw:
        return None
    return [f.strip() for f in raw.split(",") if f.strip()]


def project(obj: dict[str, Any], fields: list[str] | None, default: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Apply `$select` (case-insensitive), else the resource's default property set (users have one)."""
    if fields is None:
        if default is None:
            return dict(obj)
        # The common case (no $select): exact property names, no case folding needed.
        out_default = {k: obj[k] for k in default if k in obj}
        if "@odata.type" in obj:
            return {"@odata.type": obj["@odata.type"], **out_default}
        return out_default
    keep = fields
    lowered = {k.lower(): k for k in obj}
    out: dict[str, Any] = {}
    if "@odata.type" in obj:
        out["@odata.type"] = obj["@odata.type"]
    for f in keep:
        key = lowered.get(f.lower())
        if key is not None:
            out[key] = obj[key]
        elif fields is not None and f != "*":
            # Graph answers unknown selected properties with null rather than an error for directory objects.
            out[f] = None
    return out


def project_page(objs: list[dict[str, Any]], fields: list[str] | None, default: tuple[str, ...] | None = None
                 ) -> list[dict[str, Any]]:
    """`project` of each object of a page: with `$select`, the case-insensitive matching is worked out once per
    set of property names (a page's objects mostly share one), not once per object (each object's ~30 property
    names lower-cased again, 999 times a page of group members: the chain a Graph audit waits on, link by
    link). The same dicts as `project`'s."""
    if fields is None:
        return [project(o, None, default) for o in objs]
    plans: dict[tuple[str, ...], list[tuple[str, str | None]]] = {}
    out = []
    for obj in objs:
        names = tuple(obj)
        plan = plans.get(names)
        if plan is None:
            lowered = {k.lower(): k for k in names}
            plan = [("@odata.type", "@odata.type")] if "@odata.type" in obj else []
            for f in fields:
                key = lowered.get(f.lower())
                if key is not None:
                    plan.append((key, key))
                elif f != "*":
                    plan.append((f, None))
            plans[names] = plan
        out.append({name: obj[src] if src is not None else None for name, src in plan})
    return out


def order_by(items: list[dict[str, Any]], raw: str | None) -> list[dict[str, Any]]:
    if not raw:
        return items
    result = items
    # Apply the keys from last to first: Python's sort is stable, so this gives a lexicographic order.
    for clause in reversed([c.strip() for c in raw.split(",") if c.strip()]):
        parts = clause.split()
        path = parts[0]
        desc = len(parts) > 1 and parts[1].lower() == "desc"
        result = sorted(
            result,
            key=lambda o: (lookup(o, path) is None, str(_comparable(lookup(o, path), True) or "")),
            reverse=desc,
        )
    return result
