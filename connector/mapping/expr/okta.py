"""Okta Expression Language (the subset profile mappings use): parse, check, evaluate, format.

Okta's language is a subset of Spring's SpEL (developer.okta.com `reference/okta-expression-language`):
`user.firstName`, `appuser.x`, `app.x`, `group.name`, string literals in single or double quotes (a quote is
escaped by doubling it; a backslash is an ordinary character), numbers, true/false/null, `+` concatenation,
`==`/`!=`/`<`/`>`/`<=`/`>=`, `&&`/`||`/`!` (also AND/OR/NOT), `cond ? a : b`, the elvis `a ?: b`, array
literals `{a, b}`, and the function families String.*, Arrays.*, Convert.*, Iso3166Convert.*, Time.* and the
group/manager helpers. Evaluation is null-safe like Okta: a missing attribute is null, `null + "a"` is "a".

Pure and stdlib-only: the validator, the renderer and the Okta emulator's provisioning engine all use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector.errors import ExpressionError
from connector.support.suggest import closest

__all__ = [
    "FUNCTIONS",
    "ROOTS",
    "ArrayLit",
    "Binary",
    "Call",
    "Conditional",
    "Elvis",
    "ExpressionError",
    "Expr",
    "Literal",
    "Member",
    "Path",
    "Unary",
    "attributes",
    "calls",
    "evaluate",
    "format",
    "parse",
]


# ---------------------------------------------------------------------------------------------------- AST


@dataclass
class Literal:
    value: Any  # str | int | float | bool | None
    column: int = 1


@dataclass
class Path:
    """`root.name`: an attribute of the Okta user, the app user, the app, the group, the org, or of an app
    named explicitly (`zendesk.firstName`)."""

    root: str
    name: str
    column: int = 1


@dataclass
class Call:
    """`String.toLowerCase(x)` (namespace "String"), `isMemberOfGroupName("x")` (no namespace),
    `user.getLinkedObject("manager")` (namespace "user")."""

    namespace: str | None
    name: str
    args: list[Expr] = field(default_factory=list)
    column: int = 1

    @property
    def qualified(self) -> str:
        return f"{self.namespace}.{self.name}" if self.namespace else self.name


@dataclass
class Member:
    """`getManagerUser("active_directory").firstName`: an attribute of what a call returned."""

    obj: Expr
    name: str
    column: int = 1


@dataclass
class Unary:
    op: str  # "!"
    operand: Expr
    column: int = 1


@dataclass
class Binary:
    op: str  # + == != < > <= >= && ||
    left: Expr
    right: Expr
    column: int = 1


@dataclass
class Conditional:
    cond: Expr
    then: Expr
    other: Expr
    column: int = 1


@dataclass
class Elvis:
    left: Expr
    right: Expr
    column: int = 1


@dataclass
class ArrayLit:
    items: list[Expr] = field(default_factory=list)
    column: int = 1


Expr = Literal | Path | Call | Member | Unary | Binary | Conditional | Elvis | ArrayLit

# The objects an expression may name. "user" is the Okta profile, "appuser" the in-context app user profile.
ROOTS = ("user", "appuser", "app", "group", "org", "idpuser", "session", "source")


# ------------------------------------------------------------------------------------------ function table


@dataclass(frozen=True)
class FunctionSpec:
    qualified: str
    params: tuple[str, ...]
    min_args: int
    max_args: int | None
    deprecated_for: str | None = None
    note: str = ""

    def signature(self) -> str:
        return f"{self.qualified}({', '.join(self.params)})"

    def arity_text(self) -> str:
        if self.max_args is None:
            return f"at least {self.min_args}"
        if self.min_args == self.max_args:
            return str(self.min_args)
        return f"{self.min_args} to {self.max_args}"


def _f(qualified: str, params: str, lo: int, hi: int | None, **kw: Any) -> FunctionSpec:
    return FunctionSpec(qualified, tuple(p for p in params.split(",") if p), lo, hi, **kw)


FUNCTIONS: dict[str, FunctionSpec] = {
    s.qualified: s
    for s in (
        _f("String.append", "str,suffix", 2, 2),
        _f("String.join", "separator,strings...", 1, None),
        _f("String.len", "input", 1, 1),
        _f("String.removeSpaces", "input", 1, 1),
        _f("String.replace", "input,match,replacement", 3, 3),
        _f("String.replaceFirst", "input,match,replacement", 3, 3),
        _f("String.stringContains", "input,searchString", 2, 2),
        _f("String.stringSwitch", "input,defaultString,keyValuePairs...", 2, None),
        _f("String.substring", "input,startIndex,endIndex", 2, 3),
        _f("String.substringAfter", "input,searchString", 2, 2),
        _f("String.substringBefore", "input,searchString", 2, 2),
        _f("String.toUpperCase", "input", 1, 1),
        _f("String.toLowerCase", "input", 1, 1),
        _f("Arrays.add", "array,value", 2, 2),
        _f("Arrays.remove", "array,value", 2, 2),
        _f("Arrays.clear", "array", 1, 1),
        _f("Arrays.get", "array,position", 2, 2),
        _f("Arrays.flatten", "values...", 1, None),
        _f("Arrays.contains", "array,value", 2, 2),
        _f("Arrays.size", "array", 1, 1),
        _f("Arrays.isEmpty", "array", 1, 1),
        _f("Arrays.toCsvString", "array", 1, 1),
        _f("Convert.toInt", "value", 1, 1),
        _f("Convert.toNum", "value", 1, 1),
        _f("Iso3166Convert.toAlpha2", "code", 1, 1),
        _f("Iso3166Convert.toAlpha3", "code", 1, 1),
        _f("Iso3166Convert.toNumeric", "code", 1, 1),
        _f("Iso3166Convert.toName", "code", 1, 1),
        _f("Time.now", "timeZoneId,format", 0, 2),
        _f("Time.fromWindowsToIso8601", "time", 1, 1),
        _f("Time.fromUnixToIso8601", "time", 1, 1),
        _f("Time.fromStringToIso8601", "time,format", 2, 2),
        _f("Time.fromIso8601ToWindows", "time", 1, 1),
        _f("Time.fromIso8601ToUnix", "time", 1, 1),
        _f("Time.fromIso8601ToString", "time,format", 2, 2),
        _f("Groups.contains", "app,pattern,limit", 3, 3, note="only works in group claims, not mappings"),
        _f("Groups.startsWith", "app,pattern,limit", 3, 3, note="only works in group claims, not mappings"),
        _f("Groups.endsWith", "app,pattern,limit", 3, 3, note="only works in group claims, not mappings"),
        _f("getFilteredGroups", "groupIds,groupExpression,limit", 3, 3),
        _f("isMemberOfGroupName", "groupName", 1, 1),
        _f("isMemberOfGroup", "groupId", 1, 1),
        _f("isMemberOfAnyGroup", "groupIds...", 1, None),
        _f("isMemberOfGroupNameStartsWith", "prefix", 1, 1),
        _f("isMemberOfGroupNameContains", "text", 1, 1),
        _f("isMemberOfGroupNameRegex", "regex", 1, 1),
        _f("getManagerUser", "managerSource", 1, 1),
        _f("getManagerAppUser", "managerSource,attributeSource", 2, 2),
        _f("getAssistantUser", "assistantSource", 1, 1),
        _f("getAssistantAppUser", "assistantSource,attributeSource", 2, 2),
        _f("hasDirectoryUser", "", 0, 0),
        _f("hasWorkdayUser", "", 0, 0),
        _f("findDirectoryUser", "", 0, 0),
        _f("findWorkdayUser", "", 0, 0),
        _f("user.getLinkedObject", "primaryName", 1, 1),
        _f("user.getInternalProperty", "name", 1, 1),
        # Deprecated spellings Okta still evaluates.
        _f("toUpperCase", "input", 1, 1, deprecated_for="String.toUpperCase"),
        _f("toLowerCase", "input", 1, 1, deprecated_for="String.toLowerCase"),
        _f("substringBefore", "input,searchString", 2, 2, deprecated_for="String.substringBefore"),
        _f("substringAfter", "input,searchString", 2, 2, deprecated_for="String.substringAfter"),
        _f("substring", "input,startIndex,endIndex", 3, 3, deprecated_for="String.substring"),
    )
}

NAMESPACES = sorted({q.split(".")[0] for q in FUNCTIONS if "." in q} - set(ROOTS))  # function families


def _did_you_mean(name: str, choices: Sequence[str], cutoff: float = 0.6) -> str | None:
    return closest(name, choices, cutoff)


# ----------------------------------------------------------------------------------------------- lexer


@dataclass
class _Tok:
    kind: str  # string number ident op end
    text: str
    column: int
    value: Any = None


_OPS = ("?:", "==", "!=", "<=", ">=", "&&", "||", "+", "<", ">", "!", "?", ":", "(", ")", ",", ".", "{", "}", "-")
_NUMBER = re.compile(r"\d+(\.\d+)?")
_IDENT = re.compile(r"[^\W\d]\w*|\$\w+")


def _lex(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        col = i + 1
        if c.isspace():
            i += 1
            continue
        if c in "'\"":
            out: list[str] = []
            j = i + 1
            while True:
                if j >= n:
                    raise ExpressionError(f"unterminated string: missing closing {c}", col,
                                          f"to put a {c} inside the string, double it: {c}{c}")
                if text[j] == c:
                    if j + 1 < n and text[j + 1] == c:  # SpEL: a doubled quote is a literal quote
                        out.append(c)
                        j += 2
                        continue
                    break
                out.append(text[j])
                j += 1
            toks.append(_Tok("string", text[i:j + 1], col, "".join(out)))
            i = j + 1
            continue
        if c.isdigit():
            m = _NUMBER.match(text, i)
            assert m is not None  # c is a digit
            raw = m.group(0)
            toks.append(_Tok("number", raw, col, float(raw) if "." in raw else int(raw)))
            i = m.end()
            continue
        m = _IDENT.match(text, i)
        if m:
            toks.append(_Tok("ident", m.group(0), col))
            i = m.end()
            continue
        for op in _OPS:
            if text.startswith(op, i):
                toks.append(_Tok("op", op, col))
                i += len(op)
                break
        else:
            hints = {"=": "compare with == (Okta expressions cannot assign)", "&": "use && or AND",
                     "|": "use || or OR", "[": "Okta attributes are written user.attribute, not [attribute]"}
            raise ExpressionError(f"unexpected character {c!r}", col, hints.get(c))
    toks.append(_Tok("end", "", n + 1))
    return toks


# ---------------------------------------------------------------------------------------------- parser

_KEYWORD_OPS = {"and": "&&", "or": "||", "not": "!"}


# Bounds that keep every reader of a tree (recursive: checks, evaluation, formatting) far inside Python's stack: a
# nested call costs ~15 frames of the parser, and 63 of them overflowed it (exit 70). Real mappings are a few
# levels deep and join a few values.
MAX_NESTING = 32
MAX_TREE_DEPTH = 100


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _lex(text)
        self.pos = 0
        self.depth = 0

    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.pos + ahead, len(self.toks) - 1)]

    def take(self) -> _Tok:
        tok = self.toks[self.pos]
        self.pos = min(self.pos + 1, len(self.toks) - 1)
        return tok

    def at_op(self, *ops: str) -> bool:
        tok = self.peek()
        if tok.kind == "op":
            return tok.text in ops
        return tok.kind == "ident" and _KEYWORD_OPS.get(tok.text.lower()) in ops

    def expect(self, op: str, opened: _Tok | None = None, what: str = "") -> _Tok:
        tok = self.peek()
        if tok.kind == "op" and tok.text == op:
            return self.take()
        if opened is not None and tok.kind == "end":
            raise ExpressionError(f"unclosed {opened.text!r}: missing {op!r}", opened.column)
        raise ExpressionError(f"expected {op!r}{what}, found {_describe(tok)}", tok.column)

    def top(self) -> Expr:
        if self.peek().kind == "end":
            raise ExpressionError("empty expression", 1, "e.g. user.firstName")
        expr = self.expr()
        tok = self.peek()
        if tok.kind == "op" and tok.text in (")", "}"):
            raise ExpressionError(f"unbalanced {tok.text!r}: nothing to close", tok.column)
        if tok.kind != "end":
            raise ExpressionError(f"unexpected {_describe(tok)} after a complete expression", tok.column,
                                  "join values with + (e.g. user.firstName + \" \" + user.lastName)")
        if _depth(expr) > MAX_TREE_DEPTH:
            # A chain of 1,000 `a + b + ...` parses in a loop, but every reader of the tree (checks, evaluation,
            # formatting) recurses once per operator: past Python's stack, a crash (exit 70) instead of an error.
            raise ExpressionError(f"expression too long: more than {MAX_TREE_DEPTH} operators or levels in a row", 1,
                                  "a mapping expression joins a few values; split the logic")
        return expr

    def expr(self) -> Expr:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ExpressionError(f"expression nested too deeply (more than {MAX_NESTING} levels)",
                                  self.peek().column, "a mapping expression is a few calls deep; split the logic")
        cond = self.or_()
        tok = self.peek()
        if self.at_op("?:"):
            self.take()
            result: Expr = Elvis(cond, self.expr(), _col(cond))
        elif self.at_op("?"):
            self.take()
            then = self.expr()
            if not self.at_op(":"):
                raise ExpressionError("incomplete conditional: missing ':' and the else value", tok.column,
                                      "write condition ? valueIfTrue : valueIfFalse")
            self.take()
            result = Conditional(cond, then, self.expr(), _col(cond))
        else:
            result = cond
        self.depth -= 1
        return result

    def _binary(self, ops: tuple[str, ...], sub: Callable[[], Expr]) -> Expr:
        left = sub()
        while self.at_op(*ops):
            tok = self.take()
            op = _KEYWORD_OPS.get(tok.text.lower(), tok.text) if tok.kind == "ident" else tok.text
            right = sub()
            left = Binary(op, left, right, _col(left))
        return left

    def or_(self) -> Expr:
        return self._binary(("||",), self.and_)

    def and_(self) -> Expr:
        return self._binary(("&&",), self.equality)

    def equality(self) -> Expr:
        return self._binary(("==", "!="), self.relational)

    def relational(self) -> Expr:
        return self._binary(("<", ">", "<=", ">="), self.additive)

    def additive(self) -> Expr:
        left = self._binary(("+",), self.unary)
        if self.at_op("-"):
            raise ExpressionError("'-' (subtraction) is not supported in Okta mappings", self.peek().column,
                                  "to join strings use +")
        return left

    def unary(self) -> Expr:
        if self.at_op("!"):
            tok = self.take()
            return Unary("!", self.unary(), tok.column)
        if self.at_op("-") and self.peek(1).kind == "number":
            tok = self.take()
            num = self.take()
            return Literal(-num.value, tok.column)
        return self.postfix()

    def postfix(self) -> Expr:
        expr = self.primary()
        while self.at_op("."):
            dot = self.take()
            name = self.take()
            if name.kind != "ident":
                raise ExpressionError(f"expected an attribute name after '.', found {_describe(name)}", dot.column + 1)
            if self.at_op("("):
                raise ExpressionError(f"method calls on a value are not supported: .{name.text}(...)", name.column,
                                      f"use the String.* form, e.g. String.{name.text}(value)")
            expr = Member(expr, name.text, _col(expr))
        return expr

    def primary(self) -> Expr:
        tok = self.take()
        if tok.kind == "string":
            return Literal(tok.value, tok.column)
        if tok.kind == "number":
            return Literal(tok.value, tok.column)
        if tok.kind == "op" and tok.text == "(":
            inner = self.expr()
            self.expect(")", tok)
            return inner
        if tok.kind == "op" and tok.text == "{":
            items: list[Expr] = []
            if not self.at_op("}"):
                while True:
                    items.append(self.expr())
                    if self.at_op(","):
                        self.take()
                        continue
                    break
            self.expect("}", tok, " to close the array")
            return ArrayLit(items, tok.column)
        if tok.kind == "ident":
            return self.name(tok)
        if tok.kind == "end":
            raise ExpressionError("unexpected end of expression: a value is missing", tok.column)
        if tok.text == ")":
            raise ExpressionError("unbalanced ')': nothing to close", tok.column)
        raise ExpressionError(f"unexpected {_describe(tok)}", tok.column)

    def name(self, tok: _Tok) -> Expr:
        word = tok.text
        low = word.lower()
        if low in ("true", "false"):
            return Literal(low == "true", tok.column)
        if low == "null":
            return Literal(None, tok.column)
        if low in _KEYWORD_OPS:
            raise ExpressionError(f"{word} needs a value before it", tok.column)
        if self.at_op("("):
            return self.call(None, word, tok)
        if not self.at_op("."):
            raise ExpressionError(
                f"unknown name {word!r}", tok.column,
                f"attributes are written object.attribute, e.g. user.{word}; strings go in quotes: \"{word}\"",
            )
        self.take()  # "."
        attr = self.take()
        if attr.kind != "ident":
            raise ExpressionError(f"expected an attribute name after '{word}.', found {_describe(attr)}",
                                  attr.column)
        if self.at_op("("):
            return self.call(word, attr.text, tok)
        if word in NAMESPACES:
            raise ExpressionError(f"{word}.{attr.text} is a function: missing '('", attr.column + len(attr.text))
        if word not in ROOTS:
            close = _did_you_mean(word, ROOTS, 0.75)
            if close is not None:
                raise ExpressionError(f"unknown object {word!r}", tok.column, f"did you mean {close}.{attr.text}?")
            # Otherwise an explicit app reference such as zendesk.firstName (Okta allows $appuser.$attribute).
        return Path(word, attr.text, tok.column)

    def call(self, namespace: str | None, name: str, start: _Tok) -> Call:
        qualified = f"{namespace}.{name}" if namespace else name
        spec = FUNCTIONS.get(qualified)
        if spec is None:
            if namespace is not None and namespace not in NAMESPACES and namespace not in ROOTS:
                guess_ns = _did_you_mean(namespace, NAMESPACES)
                hint = f"did you mean {guess_ns}.{name}?" if guess_ns else \
                    "function families: " + ", ".join(f"{n}.*" for n in NAMESPACES)
                raise ExpressionError(f"unknown function {qualified!r}", start.column, hint)
            pool = [q for q in FUNCTIONS if (q.split(".")[0] == namespace if namespace else "." not in q)]
            guess = _did_you_mean(name, [q.split(".")[-1] for q in pool])
            if guess is None and namespace is None:
                guess = _did_you_mean(name, [q.split(".")[-1] for q in FUNCTIONS])
                guess = next((q for q in FUNCTIONS if q.endswith("." + guess)), guess) if guess else None
            elif guess is not None and namespace is not None:
                guess = f"{namespace}.{guess}"
            raise ExpressionError(
                f"unknown function {qualified!r}", start.column,
                f"did you mean {guess}? (names are case-sensitive)" if guess else "see Okta's expression functions",
            )
        opened = self.take()  # "("
        args: list[Expr] = []
        if not self.at_op(")"):
            while True:
                if self.at_op(",", ")"):
                    raise ExpressionError(f"missing argument in {qualified}(...)", self.peek().column)
                if self.peek().kind == "end":
                    raise ExpressionError(f"unclosed '(' of {qualified}: missing ')'", opened.column)
                args.append(self.expr())
                if self.at_op(","):
                    self.take()
                    continue
                break
        if self.peek().kind == "end":
            raise ExpressionError(f"unclosed '(' of {qualified}: missing ')'", opened.column)
        self.expect(")", opened, f" or ',' in {qualified}(...)")
        n = len(args)
        if n < spec.min_args or (spec.max_args is not None and n > spec.max_args):
            raise ExpressionError(
                f"{qualified} takes {spec.arity_text()} argument{'s' if spec.max_args != 1 else ''}, got {n}",
                start.column, f"usage: {spec.signature()}",
            )
        return Call(namespace, name, args, start.column)


def _describe(tok: _Tok) -> str:
    if tok.kind == "end":
        return "end of expression"
    if tok.kind == "string":
        return f"string {tok.text}"
    return repr(tok.text)


def _col(expr: Expr) -> int:
    return expr.column


def parse(text: str) -> Expr:
    """Parse an Okta expression. Raises ExpressionError(message, column, hint)."""
    if not isinstance(text, str):
        raise ExpressionError("expression must be a string", 1)
    return _Parser(text).top()


# ---------------------------------------------------------------------------------------------- format

_PREC = {"||": 2, "&&": 3, "==": 4, "!=": 4, "<": 5, ">": 5, "<=": 5, ">=": 5, "+": 6}


def _prec(expr: Expr) -> int:
    if isinstance(expr, Conditional | Elvis):
        return 1
    if isinstance(expr, Binary):
        return _PREC[expr.op]
    if isinstance(expr, Unary):
        return 7
    return 8


def _wrap(expr: Expr, minimum: int) -> str:
    text = format(expr)
    return f"({text})" if _prec(expr) < minimum else text


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def format(expr: Expr) -> str:
    """Canonical text: double-quoted strings, spaced operators, parentheses only where needed."""
    if isinstance(expr, Literal):
        v = expr.value
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return _quote(v)
        text = repr(v)
        return f"{v:f}".rstrip("0").rstrip(".") if "e" in text else text  # the grammar has no exponents
    if isinstance(expr, Path):
        return f"{expr.root}.{expr.name}"
    if isinstance(expr, Call):
        return f"{expr.qualified}({', '.join(format(a) for a in expr.args)})"
    if isinstance(expr, Member):
        return f"{_wrap(expr.obj, 8)}.{expr.name}"
    if isinstance(expr, ArrayLit):
        return "{" + ", ".join(format(a) for a in expr.items) + "}"
    if isinstance(expr, Unary):
        return f"!{_wrap(expr.operand, 7)}"
    if isinstance(expr, Binary):
        p = _PREC[expr.op]
        return f"{_wrap(expr.left, p)} {expr.op} {_wrap(expr.right, p + 1)}"
    if isinstance(expr, Elvis):
        return f"{_wrap(expr.left, 2)} ?: {_wrap(expr.right, 1)}"
    return f"{_wrap(expr.cond, 2)} ? {_wrap(expr.then, 1)} : {_wrap(expr.other, 1)}"


def _children(expr: Expr) -> list[Expr]:
    if isinstance(expr, Call):
        return list(expr.args)
    if isinstance(expr, Member):
        return [expr.obj]
    if isinstance(expr, ArrayLit):
        return list(expr.items)
    if isinstance(expr, Unary):
        return [expr.operand]
    if isinstance(expr, Binary | Elvis):
        return [expr.left, expr.right]
    if isinstance(expr, Conditional):
        return [expr.cond, expr.then, expr.other]
    return []


def _walk(expr: Expr) -> list[Expr]:
    """Every node, parent before children, in source order (a loop: see _depth)."""
    out: list[Expr] = []
    todo = [expr]
    while todo:
        node = todo.pop()
        out.append(node)
        todo.extend(reversed(_children(node)))
    return out


def _depth(expr: Expr) -> int:
    """The tree's depth, counted without recursion (the tree may be deeper than Python's stack)."""
    deepest, todo = 0, [(expr, 1)]
    while todo:
        node, d = todo.pop()
        deepest = max(deepest, d)
        todo.extend((child, d + 1) for child in _children(node))
    return deepest


def attributes(expr: Expr) -> list[Path]:
    """Every object.attribute reference, in order."""
    return [e for e in _walk(expr) if isinstance(e, Path)]


def calls(expr: Expr) -> list[Call]:
    return [e for e in _walk(expr) if isinstance(e, Call)]


# -------------------------------------------------------------------------------------------- evaluation


@dataclass
class _Env:
    objects: dict[str, dict[str, Any]]
    groups: list[str]
    group_ids: list[str]


def _text(value: Any) -> str | None:
    """Java's String.valueOf for the values profiles hold."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join(_text(v) or "" for v in value)
    return str(value)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def _int(value: Any, what: str, column: int) -> int:
    try:
        return int(value) if not isinstance(value, str) else int(float(value))
    except (TypeError, ValueError) as cause:
        raise ExpressionError(f"{what} must be a number, got {value!r}", column) from cause


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool | None):
        return float(a) == float(b)
    return bool(a == b)


def _order(op: str, a: Any, b: Any) -> bool:
    if a is None or b is None:
        return False
    x: Any = a
    y: Any = b
    if not (isinstance(a, str) and isinstance(b, str)):
        try:
            x, y = float(a), float(b)
        except (TypeError, ValueError):
            return False
    return bool({"<": x < y, ">": x > y, "<=": x <= y, ">=": x >= y}[op])


def _plus(a: Any, b: Any) -> Any:
    if a is None and b is None:
        return None
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return a + b
    return (_text(a) or "") + (_text(b) or "")


def _substring(s: Any, start: Any, end: Any, column: int) -> Any:
    text = _text(s)
    if text is None:
        return None
    i = _int(start, "substring start", column)
    j = len(text) if end is None else _int(end, "substring end", column)
    if i < 0 or j > len(text) or i > j:
        raise ExpressionError(f"substring({i}, {j}) is out of range for a string of length {len(text)}", column)
    return text[i:j]


def _before(s: Any, sep: Any) -> Any:
    text = _text(s)
    if text is None or sep is None:
        return text
    idx = text.find(str(sep))
    return text if idx < 0 else text[:idx]


def _after(s: Any, sep: Any) -> Any:
    text = _text(s)
    if text is None:
        return None
    if sep is None:
        return ""
    idx = text.find(str(sep))
    return "" if idx < 0 else text[idx + len(str(sep)):]


def _string_switch(args: list[Any]) -> Any:
    text = _text(args[0]) or ""
    for i in range(2, len(args) - 1, 2):
        key = _text(args[i])
        if key is not None and key in text:
            return args[i + 1]
    return args[1]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _flatten(args: list[Any]) -> list[Any]:
    out: list[Any] = []
    for a in args:
        out.extend(_as_list(a))
    return out


def _to_int(value: Any, column: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError) as cause:
        raise ExpressionError(f"Convert.toInt: not a number: {value!r}", column) from cause
    return int(number + 0.5) if number >= 0 else -int(-number + 0.5)


def _time_now(args: list[Any]) -> str:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _not_offline(name: str, column: int) -> ExpressionError:
    return ExpressionError(f"{name} cannot be evaluated offline", column, "it depends on Okta tenant data")


def _group_regex(env: _Env, pattern: Any) -> bool:
    try:
        rx = re.compile(str(pattern).lstrip("/"))
    except re.error:
        return False
    return any(rx.fullmatch(g) for g in env.groups)


_EVAL: dict[str, Callable[[list[Any], _Env, int], Any]] = {
    "String.append": lambda a, e, c: _plus(a[0], a[1]),
    "String.join": lambda a, e, c: (_text(a[0]) or "").join(t for t in (_text(x) for x in _flatten(a[1:])) if t
                                                             is not None),
    "String.len": lambda a, e, c: len(_text(a[0]) or ""),
    "String.removeSpaces": lambda a, e, c: None if a[0] is None else (_text(a[0]) or "").replace(" ", ""),
    "String.replace": lambda a, e, c: None if a[0] is None else (_text(a[0]) or "").replace(
        _text(a[1]) or "", _text(a[2]) or "") if a[1] else _text(a[0]),
    "String.replaceFirst": lambda a, e, c: None if a[0] is None else (_text(a[0]) or "").replace(
        _text(a[1]) or "", _text(a[2]) or "", 1) if a[1] else _text(a[0]),
    "String.stringContains": lambda a, e, c: a[0] is not None and a[1] is not None and
    (_text(a[1]) or "") in (_text(a[0]) or ""),
    "String.stringSwitch": lambda a, e, c: _string_switch(a),
    "String.substring": lambda a, e, c: _substring(a[0], a[1], a[2] if len(a) > 2 else None, c),
    "String.substringAfter": lambda a, e, c: _after(a[0], a[1]),
    "String.substringBefore": lambda a, e, c: _before(a[0], a[1]),
    "String.toUpperCase": lambda a, e, c: None if a[0] is None else (_text(a[0]) or "").upper(),
    "String.toLowerCase": lambda a, e, c: None if a[0] is None else (_text(a[0]) or "").lower(),
    "Arrays.add": lambda a, e, c: _as_list(a[0]) + [a[1]],
    "Arrays.remove": lambda a, e, c: [x for x in _as_list(a[0]) if not _equal(x, a[1])],
    "Arrays.clear": lambda a, e, c: [],
    "Arrays.get": lambda a, e, c: (lambda items, i: items[i] if 0 <= i < len(items) else None)(
        _as_list(a[0]), _int(a[1], "Arrays.get position", c)),
    "Arrays.flatten": lambda a, e, c: _flatten(a),
    "Arrays.contains": lambda a, e, c: any(_equal(x, a[1]) for x in _as_list(a[0])),
    "Arrays.size": lambda a, e, c: len(_as_list(a[0])),
    "Arrays.isEmpty": lambda a, e, c: not _as_list(a[0]),
    "Arrays.toCsvString": lambda a, e, c: ",".join(_text(x) or "" for x in _as_list(a[0])),
    "Convert.toInt": lambda a, e, c: _to_int(a[0], c),
    "Convert.toNum": lambda a, e, c: float(_text(a[0]) or "nan"),
    "Time.now": lambda a, e, c: _time_now(a),
    "isMemberOfGroupName": lambda a, e, c: _text(a[0]) in e.groups,
    "isMemberOfGroup": lambda a, e, c: _text(a[0]) in e.group_ids,
    "isMemberOfAnyGroup": lambda a, e, c: any(_text(x) in e.group_ids for x in _flatten(a)),
    "isMemberOfGroupNameStartsWith": lambda a, e, c: any(g.startswith(_text(a[0]) or "") for g in e.groups),
    "isMemberOfGroupNameContains": lambda a, e, c: any((_text(a[0]) or "") in g for g in e.groups),
    "isMemberOfGroupNameRegex": lambda a, e, c: _group_regex(e, a[0]),
    "hasDirectoryUser": lambda a, e, c: False,
    "hasWorkdayUser": lambda a, e, c: False,
    "findDirectoryUser": lambda a, e, c: None,
    "findWorkdayUser": lambda a, e, c: None,
    "getManagerUser": lambda a, e, c: None,
    "getManagerAppUser": lambda a, e, c: None,
    "getAssistantUser": lambda a, e, c: None,
    "getAssistantAppUser": lambda a, e, c: None,
    "user.getLinkedObject": lambda a, e, c: None,
    "user.getInternalProperty": lambda a, e, c: e.objects.get("user", {}).get("id"),
}
for _old, _spec in FUNCTIONS.items():
    if _spec.deprecated_for:
        _EVAL[_old] = _EVAL[_spec.deprecated_for]


def _eval(expr: Expr, env: _Env) -> Any:
    if isinstance(expr, Literal):
        return expr.value
    if isinstance(expr, Path):
        obj = env.objects.get(expr.root)
        return obj.get(expr.name) if obj else None
    if isinstance(expr, Member):
        obj = _eval(expr.obj, env)
        return obj.get(expr.name) if isinstance(obj, dict) else None
    if isinstance(expr, ArrayLit):
        return [_eval(i, env) for i in expr.items]
    if isinstance(expr, Unary):
        return not _truthy(_eval(expr.operand, env))
    if isinstance(expr, Conditional):
        return _eval(expr.then if _truthy(_eval(expr.cond, env)) else expr.other, env)
    if isinstance(expr, Elvis):
        left = _eval(expr.left, env)
        return left if left not in (None, "") else _eval(expr.right, env)
    if isinstance(expr, Binary):
        if expr.op == "&&":
            return _truthy(_eval(expr.left, env)) and _truthy(_eval(expr.right, env))
        if expr.op == "||":
            return _truthy(_eval(expr.left, env)) or _truthy(_eval(expr.right, env))
        a, b = _eval(expr.left, env), _eval(expr.right, env)
        if expr.op == "+":
            return _plus(a, b)
        if expr.op == "==":
            return _equal(a, b)
        if expr.op == "!=":
            return not _equal(a, b)
        return _order(expr.op, a, b)
    fn = _EVAL.get(expr.qualified)
    if fn is None:
        raise _not_offline(expr.qualified, expr.column)
    return fn([_eval(a, env) for a in expr.args], env, expr.column)


# Functions whose value comes from what an Okta user's and app user's profiles do not hold: the user's groups,
# linked, directory and Workday users, the internal id, the clock. Evaluated without it, they give a guess (no
# group, null, now), not what Okta computed.
_BEYOND_PROFILES = frozenset({
    "isMemberOfGroupName", "isMemberOfGroup", "isMemberOfAnyGroup", "isMemberOfGroupNameStartsWith",
    "isMemberOfGroupNameContains", "isMemberOfGroupNameRegex", "hasDirectoryUser", "hasWorkdayUser",
    "findDirectoryUser", "findWorkdayUser", "getManagerUser", "getManagerAppUser", "getAssistantUser",
    "getAssistantAppUser", "user.getLinkedObject", "user.getInternalProperty", "Time.now",
})


def profiles_suffice(expr: Expr) -> bool:
    """Does `evaluate(expr, user_profile, app_user_profile)` give what Okta computes? Not when the expression
    reads another object (group, app, org, another app's user) or calls a function of _BEYOND_PROFILES or one
    without an offline evaluation: the drift audit leaves such a target uncompared rather than judge it from a
    guess."""
    if any(p.root not in ("user", "appuser") for p in attributes(expr)):
        return False
    return not any(c.qualified in _BEYOND_PROFILES or c.qualified not in _EVAL for c in calls(expr))


def evaluate(
    expr: Expr,
    user: dict[str, Any],
    appuser: dict[str, Any] | None = None,
    group: dict[str, Any] | None = None,
    *,
    app: dict[str, Any] | None = None,
    org: dict[str, Any] | None = None,
    groups: Sequence[str] = (),
    group_ids: Sequence[str] = (),
) -> Any:
    """Evaluate against an Okta user profile (and optionally the app user profile, the group profile, the
    app's settings, the org, and the names/ids of the user's groups for isMemberOf*). Null-safe like Okta."""
    objects = {"user": user or {}, "appuser": appuser or {}, "group": group or {}, "app": app or {},
               "org": org or {}}
    return _eval(expr, _Env(objects, list(groups), list(group_ids)))
