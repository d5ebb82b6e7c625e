"""Microsoft Entra attribute-mapping expressions: parse, check, evaluate, and convert to Graph source trees.

The language (entra-docs `functions-for-customizing-application-data.md`): attributes in `[brackets]`, string
constants in double quotes with backslash escapes, function calls `Name(arg, ...)` whose names are
case-sensitive, omitted optional arguments left blank (`Switch([IsSoftDeleted], , "False", "True")`), and the
comparison operators `= <> > >= < <=` inside conditions (IIF, CBool). Numbers (`Mid([x], 1, 3)`), VBA hex
numbers (`&HF`) and the enum names `vbTextCompare`/`vbBinaryCompare` also appear in Microsoft's examples.

Pure and stdlib-only: the validator, the renderer and the Graph emulator's provisioning engine all use it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector.errors import ExpressionError
from connector.support.suggest import closest

__all__ = [
    "FUNCTIONS",
    "Attribute",
    "Comparison",
    "Constant",
    "ExpressionError",
    "Expr",
    "Function",
    "FunctionSpec",
    "attributes",
    "evaluate",
    "format",
    "from_source_tree",
    "functions",
    "graph_property",
    "parse",
    "to_source_tree",
]


# ---------------------------------------------------------------------------------------------------- AST


@dataclass
class Attribute:
    """`[name]`: a source attribute of the Entra object."""

    name: str
    column: int = 1


@dataclass
class Constant:
    """A literal. `kind` keeps how it was written so that `format` gives it back unchanged:
    string `"x"`, number `3` / `&HF`, name `vbTextCompare`, or omitted (an optional argument left blank)."""

    value: str
    column: int = 1
    kind: str = "string"  # string | number | name | omitted

    @property
    def omitted(self) -> bool:
        return self.kind == "omitted"


@dataclass
class Function:
    name: str
    args: list[Expr] = field(default_factory=list)
    column: int = 1


@dataclass
class Comparison:
    """`left op right` with op in = <> > >= < <=; only valid as an argument (IIF's condition, CBool)."""

    op: str
    left: Expr
    right: Expr
    column: int = 1


Expr = Attribute | Constant | Function | Comparison

COMPARISON_OPS = ("=", "<>", ">=", "<=", ">", "<")
ENUM_NAMES = ("vbTextCompare", "vbBinaryCompare")


# ------------------------------------------------------------------------------------------ function table


@dataclass(frozen=True)
class FunctionSpec:
    """Arity and parameter names of one documented function.

    `params` name the fixed leading parameters; `repeat` names the parameters that repeat after them (Join's
    sources, Switch's key/value pairs); `blank` holds the positions that may be left empty. Keys in Graph
    source trees use these names (Replace follows what parseExpression returns: Find, Replacement)."""

    name: str
    params: tuple[str, ...]
    min_args: int
    max_args: int | None  # None = variadic
    repeat: tuple[str, ...] = ()
    blank: frozenset[int] = frozenset()
    pairs: bool = False  # total argument count must be even (Switch)
    note: str = ""

    def signature(self) -> str:
        names = list(self.params)
        if self.repeat:
            names.append(", ".join(self.repeat) + ", ...")
        return f"{self.name}({', '.join(names)})"

    def arity_text(self) -> str:
        if self.max_args is None:
            return f"at least {self.min_args}"
        if self.min_args == self.max_args:
            return str(self.min_args)
        return f"{self.min_args} to {self.max_args}"

    def key(self, position: int) -> str:
        if position < len(self.params):
            return self.params[position]
        if self.repeat:
            return self.repeat[(position - len(self.params)) % len(self.repeat)]
        return f"arg{position + 1}"


def _spec(name: str, params: Sequence[str], lo: int, hi: int | None, **kw: Any) -> FunctionSpec:
    return FunctionSpec(name, tuple(params), lo, hi, **kw)


# Microsoft's documented list, with min/max arity. Names are case-sensitive in Entra.
FUNCTIONS: dict[str, FunctionSpec] = {
    s.name: s
    for s in (
        _spec("Append", ["source", "suffix"], 2, 2),
        _spec("AppRoleAssignmentsComplex", ["appRoleAssignments"], 1, 1),
        _spec("AssertiveAppRoleAssignmentsComplex", ["appRoleAssignments"], 1, 1),
        _spec("BitAnd", ["value1", "value2"], 2, 2),
        _spec("CBool", ["expression"], 1, 1),
        _spec("CDate", ["expression"], 1, 1),
        _spec("Coalesce", [], 1, None, repeat=("source",)),
        _spec("ConvertToBase64", ["source"], 1, 1),
        _spec("ConvertToUTF8Hex", ["source"], 1, 1),
        _spec("Count", ["attribute"], 1, 1),
        _spec("CStr", ["value"], 1, 1),
        _spec("DateAdd", ["interval", "value", "dateTime"], 3, 3),
        _spec("DateDiff", ["interval", "date1", "date2"], 3, 3),
        _spec("DateFromNum", ["value"], 1, 1),
        _spec("FormatDateTime", ["source", "dateTimeStyles", "inputFormat", "outputFormat"], 3, 4,
              blank=frozenset({1})),
        _spec("Guid", [], 0, 0),
        _spec("IgnoreFlowIfNullOrEmpty", ["expression"], 1, 1),
        _spec("IIF", ["condition", "valueIfTrue", "valueIfFalse"], 3, 3),
        _spec("InStr", ["value1", "value2", "start", "compareType"], 2, 4, blank=frozenset({2, 3})),
        _spec("IsNull", ["expression"], 1, 1),
        _spec("IsNullOrEmpty", ["expression"], 1, 1),
        _spec("IsPresent", ["expression"], 1, 1),
        _spec("IsString", ["expression"], 1, 1),
        _spec("Item", ["attribute", "index"], 2, 2),
        _spec("Join", ["separator"], 2, None, repeat=("source",)),
        _spec("Left", ["source", "numChars"], 2, 2),
        _spec("Mid", ["source", "start", "length"], 3, 3),
        _spec("NormalizeDiacritics", ["source"], 1, 1),
        _spec("Not", ["source"], 1, 1),
        _spec("Now", [], 0, 0),
        _spec("NumFromDate", ["value"], 1, 1),
        _spec("PCase", ["source", "wordSeparators"], 1, 2),
        _spec("RandomString", ["length", "minimumNumbers", "minimumSpecialCharacters", "minimumCapital",
                               "minimumLowerCase", "charactersToAvoid"], 5, 6),
        _spec("Redact", ["source"], 1, 1),
        _spec("RemoveDuplicates", ["attribute"], 1, 1),
        _spec("Replace", ["source", "Find", "regexPattern", "regexGroupName", "Replacement",
                          "replacementAttributeName", "template"], 3, 7, blank=frozenset({1, 2, 3, 4, 5, 6})),
        _spec("SelectUniqueValue", [], 2, None, repeat=("uniqueValueRule",),
              note="only supported for Workday/SuccessFactors/API-driven provisioning to Active Directory"),
        _spec("SingleAppRoleAssignment", ["appRoleAssignments"], 1, 1),
        _spec("Split", ["source", "delimiter"], 2, 2),
        _spec("StripSpaces", ["source"], 1, 1),
        _spec("Switch", ["source", "defaultValue"], 4, None, repeat=("key", "value"), blank=frozenset({1}),
              pairs=True),
        _spec("ToLower", ["source", "culture"], 1, 2),
        _spec("ToUpper", ["source", "culture"], 1, 2),
        _spec("Word", ["source", "wordNumber", "delimiters"], 3, 3),
    )
}


def functions() -> list[str]:
    return sorted(FUNCTIONS)


def _did_you_mean(name: str, choices: Sequence[str]) -> str | None:
    lowered = {c.lower(): c for c in choices}
    if name.lower() in lowered:
        return lowered[name.lower()]
    import difflib

    # Function names are case-sensitive: a neighbour in the same spelling first, then ignoring case.
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return close[0] if close else closest(name, choices)


# ----------------------------------------------------------------------------------------------- lexer


@dataclass
class _Tok:
    kind: str  # attr string number ident ( ) , op end
    text: str
    column: int


def _lex(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        col = i + 1
        if c.isspace():
            i += 1
        elif c == "[":
            end = i + 1
            while end < n and text[end] not in "]\n[":
                end += 1
            if end >= n or text[end] != "]":
                raise ExpressionError("unclosed '[': attribute names end with ']'", col,
                                      "write attributes as [attributeName]")
            name = text[i + 1:end].strip()
            if not name:
                raise ExpressionError("empty attribute name '[]'", col, "write attributes as [attributeName]")
            toks.append(_Tok("attr", name, col))
            i = end + 1
        elif c == "]":
            raise ExpressionError("unexpected ']' without a matching '['", col)
        elif c == '"':
            out: list[str] = []
            j = i + 1
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    out.append(text[j + 1])
                    j += 2
                else:
                    out.append(text[j])
                    j += 1
            if j >= n:
                raise ExpressionError("unterminated string: missing closing '\"'", col,
                                      'escape a quote inside a string as \\"')
            toks.append(_Tok("string", "".join(out), col))
            i = j + 1
        elif c == "'":
            raise ExpressionError("strings use double quotes in Entra expressions", col,
                                  "write \"text\" instead of 'text'")
        elif c.isdigit() or (c == "-" and i + 1 < n and text[i + 1].isdigit()):
            m = re.compile(r"-?\d+(\.\d+)?").match(text, i)
            assert m is not None
            toks.append(_Tok("number", m.group(0), col))
            i = m.end()
        elif c == "&" and text[i:i + 2].upper() == "&H":
            m = re.compile(r"&[Hh][0-9A-Fa-f]+").match(text, i)
            if not m:
                raise ExpressionError("bad hexadecimal number after '&H'", col)
            toks.append(_Tok("number", m.group(0), col))
            i = m.end()
        elif c.isalpha() or c == "_":
            m = re.compile(r"[^\W\d]\w*").match(text, i)
            assert m is not None  # c is a letter or "_", so the pattern matches at least one character
            toks.append(_Tok("ident", m.group(0), col))
            i = m.end()
        elif c in "(),":
            toks.append(_Tok(c, c, col))
            i += 1
        elif c in "=<>":
            two = text[i:i + 2]
            op = two if two in ("<>", ">=", "<=") else c
            toks.append(_Tok("op", op, col))
            i += len(op)
        elif c == "!" and text[i:i + 2] == "!=":
            raise ExpressionError("'!=' is not an Entra operator", col, "use <> for 'not equal'")
        else:
            hint = None
            if c in "+&":
                hint = "join strings with Join(\"\", a, b) or Append(a, b)"
            raise ExpressionError(f"unexpected character {c!r}", col, hint)
    toks.append(_Tok("end", "", n + 1))
    return toks


# ---------------------------------------------------------------------------------------------- parser


_ESCAPE_HINT = 'Entra escapes a quote inside a string with a backslash: "say \\"hi\\"", not ""'


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _lex(text)
        self.pos = 0
        self.depth = 0

    def peek(self) -> _Tok:
        return self.toks[self.pos]

    def take(self) -> _Tok:
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def doubled_quote(self, tok: _Tok) -> bool:
        """Is `tok` a string straight after another ("a""b"): a quote doubled as Okta and VB escape it?"""
        i = next((k for k, t in enumerate(self.toks) if t is tok), -1)
        if i < 1 or tok.kind != "string" or self.toks[i - 1].kind != "string":
            return False
        return tok.column >= 2 and self.text[tok.column - 2] == '"'  # the previous string's closing quote

    def top(self) -> Expr:
        if self.peek().kind == "end":
            raise ExpressionError("empty expression", 1, 'use [attribute], "constant" or Function(...)')
        expr = self.operand(allow_comparison=False)
        tok = self.peek()
        if tok.kind == "op":
            raise ExpressionError(
                f"a comparison ('{tok.text}') is only allowed inside a function such as IIF or CBool", tok.column,
                'e.g. IIF([country]="US", "USA", [country])',
            )
        if tok.kind == ")":
            raise ExpressionError("unbalanced ')': no matching '('", tok.column)
        if tok.kind != "end":
            raise ExpressionError(f"unexpected {_describe(tok)} after the end of the expression", tok.column,
                                  _ESCAPE_HINT if self.doubled_quote(tok) else
                                  "combine values with a function such as Join or Append")
        return expr

    def operand(self, allow_comparison: bool) -> Expr:
        left = self.primary()
        tok = self.peek()
        if allow_comparison and tok.kind == "op":
            self.take()
            right = self.primary()
            if self.peek().kind == "op":
                raise ExpressionError("comparisons cannot be chained", self.peek().column,
                                      "nest IIF functions to combine conditions")
            return Comparison(tok.text, left, right, left.column)
        return left

    def primary(self) -> Expr:
        tok = self.take()
        if tok.kind == "attr":
            return Attribute(tok.text, tok.column)
        if tok.kind == "string":
            return Constant(tok.text, tok.column, "string")
        if tok.kind == "number":
            return Constant(tok.text, tok.column, "number")
        if tok.kind == "ident":
            if self.peek().kind == "(":
                return self.call(tok)
            if tok.text in ENUM_NAMES:
                return Constant(tok.text, tok.column, "name")
            if tok.text.lower() in ("true", "false"):
                raise ExpressionError(f"bare {tok.text} is not a value", tok.column,
                                      f'write the string "{tok.text.capitalize()}"')
            if tok.text in FUNCTIONS or _did_you_mean(tok.text, list(FUNCTIONS)):
                raise ExpressionError(f"missing '(' after function name {tok.text}", tok.column + len(tok.text))
            raise ExpressionError(f"unknown name {tok.text!r}", tok.column,
                                  f'attributes go in brackets: [{tok.text}]; strings in quotes: "{tok.text}"')
        if tok.kind == "end":
            raise ExpressionError("unexpected end of expression", tok.column, "an argument or ')' is missing")
        if tok.kind == ")":
            raise ExpressionError("unbalanced ')': no matching '('", tok.column)
        raise ExpressionError(f"unexpected {_describe(tok)}", tok.column)

    def call(self, name_tok: _Tok) -> Function:
        name = name_tok.text
        spec = FUNCTIONS.get(name)
        if spec is None:
            guess = _did_you_mean(name, list(FUNCTIONS))
            raise ExpressionError(
                f"unknown function {name!r}", name_tok.column,
                f"did you mean {guess}? (function names are case-sensitive)" if guess
                else "see Microsoft's list of functions for attribute mappings",
            )
        open_tok = self.take()  # "("
        self.depth += 1
        if self.depth > 64:
            raise ExpressionError("expression nested too deeply", name_tok.column)
        args: list[Expr] = []
        if self.peek().kind == ")":
            self.take()
        else:
            while True:
                tok = self.peek()
                if tok.kind in (",", ")"):
                    args.append(Constant("", tok.column, "omitted"))
                elif tok.kind == "end":
                    raise ExpressionError(f"unclosed '(' of {name}: missing ')'", open_tok.column)
                else:
                    args.append(self.operand(allow_comparison=True))
                tok = self.take()
                if tok.kind == ",":
                    continue
                if tok.kind == ")":
                    break
                if tok.kind == "end":
                    raise ExpressionError(f"unclosed '(' of {name}: missing ')'", open_tok.column)
                raise ExpressionError(f"expected ',' or ')' in {name}(...), found {_describe(tok)}", tok.column,
                                      _ESCAPE_HINT if self.doubled_quote(tok) else None)
        self.depth -= 1
        fn = Function(name, args, name_tok.column)
        _check_call(fn, spec)
        return fn


def _describe(tok: _Tok) -> str:
    if tok.kind == "attr":
        return f"attribute [{tok.text}]"
    if tok.kind == "string":
        return f'string "{tok.text}"'
    if tok.kind == "end":
        return "end of expression"
    return f"{tok.text!r}"


def _check_call(fn: Function, spec: FunctionSpec) -> None:
    n = len(fn.args)
    if n < spec.min_args or (spec.max_args is not None and n > spec.max_args):
        raise ExpressionError(
            f"{spec.name} takes {spec.arity_text()} argument{'s' if spec.max_args != 1 else ''}, got {n}",
            fn.column, f"usage: {spec.signature()}",
        )
    if spec.pairs and n % 2:
        raise ExpressionError(
            f"{spec.name} needs source, default, then key/value pairs (an even number of arguments), got {n}",
            fn.column, f"usage: {spec.signature()}; leave the default blank as in Switch([a], , \"k\", \"v\")",
        )
    for i, arg in enumerate(fn.args):
        if isinstance(arg, Constant) and arg.omitted and i not in spec.blank:
            raise ExpressionError(
                f"argument {i + 1} ({spec.key(i)}) of {spec.name} is required and cannot be left blank",
                arg.column, f"usage: {spec.signature()}",
            )
        if isinstance(arg, Comparison) and not (spec.name in ("IIF", "CBool", "Not") and i == 0):
            raise ExpressionError(
                f"a comparison is not allowed as argument {i + 1} of {spec.name}", arg.column,
                "comparisons belong in IIF's condition or CBool",
            )


def parse(text: str) -> Expr:
    """Parse an Entra mapping expression. Raises ExpressionError(message, column, hint)."""
    if not isinstance(text, str):
        raise ExpressionError("expression must be a string", 1)
    return _Parser(text).top()


# ---------------------------------------------------------------------------------------------- format


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format(expr: Expr) -> str:
    """The canonical text of an expression (what Entra itself shows: `Name(a, b)`, blanks as `, ,`)."""
    if isinstance(expr, Attribute):
        return f"[{expr.name}]"
    if isinstance(expr, Constant):
        if expr.kind == "omitted":
            return ""
        if expr.kind in ("number", "name"):
            return expr.value
        return _quote(expr.value)
    if isinstance(expr, Comparison):
        return f"{format(expr.left)} {expr.op} {format(expr.right)}"
    return f"{expr.name}({', '.join(format(a) for a in expr.args)})"


def attributes(expr: Expr) -> list[Attribute]:
    """Every attribute reference in the expression, in order."""
    out: list[Attribute] = []

    def walk(e: Expr) -> None:
        if isinstance(e, Attribute):
            out.append(e)
        elif isinstance(e, Function):
            for a in e.args:
                walk(a)
        elif isinstance(e, Comparison):
            walk(e.left)
            walk(e.right)

    walk(expr)
    return out


def calls(expr: Expr) -> list[Function]:
    out: list[Function] = []

    def walk(e: Expr) -> None:
        if isinstance(e, Function):
            out.append(e)
            for a in e.args:
                walk(a)
        elif isinstance(e, Comparison):
            walk(e.left)
            walk(e.right)

    walk(expr)
    return out


# --------------------------------------------------------------------------------- Graph source trees


def to_source_tree(expr: Expr) -> dict[str, Any]:
    """The Graph `attributeMappingSource` JSON for an expression (as parseExpression returns it: blank
    arguments are left out of `parameters`, constants are named by their value)."""
    if isinstance(expr, Attribute):
        return {"expression": format(expr), "name": expr.name, "parameters": [], "type": "Attribute"}
    if isinstance(expr, Constant):
        return {"expression": format(expr), "name": expr.value, "parameters": [], "type": "Constant"}
    if isinstance(expr, Comparison):
        # Graph does not document how it models a condition; keep the text authoritative.
        return {
            "expression": format(expr), "name": expr.op, "type": "Function",
            "parameters": [{"key": "left", "value": to_source_tree(expr.left)},
                           {"key": "right", "value": to_source_tree(expr.right)}],
        }
    spec = FUNCTIONS.get(expr.name)
    params = []
    for i, arg in enumerate(expr.args):
        if isinstance(arg, Constant) and arg.omitted:
            continue
        params.append({"key": spec.key(i) if spec else f"arg{i + 1}", "value": to_source_tree(arg)})
    return {"expression": format(expr), "name": expr.name, "parameters": params, "type": "Function"}


def from_source_tree(tree: dict[str, Any]) -> Expr:
    """Rebuild an expression from an attributeMappingSource. The `expression` string wins when present."""
    return _from_tree(tree, nested=False)


def _from_tree(tree: dict[str, Any], nested: bool) -> Expr:
    if not isinstance(tree, dict):
        raise ExpressionError("attribute mapping source must be an object", 1)
    text = tree.get("expression")
    if isinstance(text, str) and text.strip():
        if not nested:
            return parse(text)
        parser = _Parser(text)  # a parameter may be a condition such as IIF's
        expr = parser.operand(allow_comparison=True)
        if parser.peek().kind != "end":
            raise ExpressionError(f"unexpected {_describe(parser.peek())}", parser.peek().column)
        return expr
    kind = str(tree.get("type") or "")
    name = tree.get("name")
    if kind == "Attribute":
        if not name:
            raise ExpressionError("Attribute source without a name", 1)
        return Attribute(str(name))
    if kind == "Constant":
        return Constant("" if name is None else str(name))
    if kind != "Function" or not name:
        raise ExpressionError(f"unknown attribute mapping source type {kind!r}", 1)
    if name in COMPARISON_OPS and nested:
        sides = {str(p.get("key")): p.get("value") or {} for p in tree.get("parameters") or [] if isinstance(p, dict)}
        if "left" not in sides or "right" not in sides:
            raise ExpressionError(f"comparison {name!r} needs left and right parameters", 1)
        return Comparison(str(name), _from_tree(sides["left"], True), _from_tree(sides["right"], True))
    spec = FUNCTIONS.get(str(name))
    if spec is None:
        raise ExpressionError(f"unknown function {name!r}", 1)
    positions: dict[str, int] = {p.lower(): i for i, p in enumerate(spec.params)}
    if spec.name == "Replace":  # the documented names next to the ones parseExpression returns
        positions.update({"oldvalue": 1, "replacementvalue": 4})
    fixed: dict[int, Expr] = {}
    tail: list[Expr] = []
    for p in tree.get("parameters") or []:
        value = _from_tree(p.get("value") or {}, nested=True) if isinstance(p, dict) else Constant("")
        key = str(p.get("key") or "").lower() if isinstance(p, dict) else ""
        if key in positions and positions[key] not in fixed:
            fixed[positions[key]] = value
        else:
            tail.append(value)
    omitted = Constant("", 1, "omitted")
    if tail or spec.repeat:
        width = len(spec.params)
    elif spec.name == "Replace":
        width = 7  # Entra writes every Replace with all seven positions
    else:
        width = max(fixed) + 1 if fixed else 0
    args: list[Expr] = [fixed.get(i, omitted) for i in range(width)] + tail
    while spec.name != "Replace" and len(args) > spec.min_args and isinstance(args[-1], Constant) \
            and args[-1].omitted:
        args.pop()
    fn = Function(spec.name, args)
    _check_call(fn, spec)
    return fn


# -------------------------------------------------------------------------------------------- evaluation


# Entra's provisioning source attributes keep Azure AD Graph's names where Microsoft Graph renamed the property
# ("Property differences between Azure AD Graph and Microsoft Graph": facsimileTelephoneNumber -> faxNumber,
# mobile -> mobilePhone, physicalDeliveryOfficeName -> officeLocation, telephoneNumber -> businessPhones (a
# collection that holds one number), the extensionAttribute1-15 -> onPremisesExtensionAttributes). The source
# attribute, lower-cased -> (the Microsoft Graph property, the key inside it or None, first item of a list).
GRAPH_PROPERTY_OF_SOURCE: dict[str, tuple[str, str | None, bool]] = {
    "telephonenumber": ("businessPhones", None, True),
    "mobile": ("mobilePhone", None, False),
    "facsimiletelephonenumber": ("faxNumber", None, False),
    "physicaldeliveryofficename": ("officeLocation", None, False),
    **{f"extensionattribute{i}": ("onPremisesExtensionAttributes", f"extensionAttribute{i}", False)
       for i in range(1, 16)},
}


def graph_property(source_attribute: str) -> str:
    """The Microsoft Graph user property a provisioning source attribute is read from (for `$select`): the
    renamed ones' Graph name, the head of a dotted one (employeeOrgData.costCenter -> employeeOrgData), else
    the name itself."""
    alias = GRAPH_PROPERTY_OF_SOURCE.get(source_attribute.lower())
    if alias is not None:
        return alias[0]
    return source_attribute.split(".", 1)[0]


def _lookup(profile: dict[str, Any], name: str) -> Any:
    if name in profile:
        return profile[name]
    lowered = name.lower()
    for k, v in profile.items():
        if isinstance(k, str) and k.lower() == lowered:
            return v
    alias = GRAPH_PROPERTY_OF_SOURCE.get(lowered)
    if alias is not None:  # Graph JSON has it under its Microsoft Graph name
        prop, key, first = alias
        value = _lookup(profile, prop)
        if key is not None:
            value = value.get(key) if isinstance(value, dict) else None
        if first:
            value = next((v for v in value if v), None) if isinstance(value, list) else value
        return value
    if "." in name:  # employeeOrgData.costCenter: a complex property's member
        head, rest = name.split(".", 1)
        outer = _lookup(profile, head)
        return _lookup(outer, rest) if isinstance(outer, dict) else None
    if lowered == "objectid":  # Graph JSON calls it id
        return _lookup(profile, "id")
    if lowered == "issoftdeleted":
        # Entra: true when soft-deleted, unassigned, out of scope or accountEnabled=false.
        enabled = _lookup(profile, "accountEnabled")
        return enabled is False or (isinstance(enabled, str) and enabled.lower() == "false")
    return None


def _s(value: Any) -> str | None:
    """A value as Entra's string form (booleans are "True"/"False" like .NET)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list):
        return ",".join(v for v in (_s(x) for x in value) if v is not None)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _num(value: Any, what: str, column: int) -> int:
    s = _s(value)
    if s is None:
        raise ExpressionError(f"{what} is null", column)
    try:
        if s[:2].upper() == "&H":
            return int(s[2:], 16)
        return int(float(s))
    except ValueError as cause:
        raise ExpressionError(f"{what} must be a number, got {s!r}", column) from cause


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    s = _s(value) or ""
    if s.lower() in ("true", "false"):
        return s.lower() == "true"
    try:
        return float(s) != 0
    except ValueError:
        return bool(s)


def _compare(op: str, left: Any, right: Any) -> bool:
    a, b = _s(left), _s(right)
    if a is None or b is None or a == "":
        return False  # Entra: a condition on a null or empty source fails
    x: Any = a
    y: Any = b
    try:
        x, y = float(a), float(b)
    except ValueError:
        pass
    if op == "=":
        return bool(x == y)
    if op == "<>":
        return bool(x != y)
    try:
        return bool({">": x > y, ">=": x >= y, "<": x < y, "<=": x <= y}[op])
    except TypeError:
        return False


_DIACRITIC_SPECIAL = str.maketrans({
    "æ": "ae", "Æ": "AE", "ǣ": "ae", "Ǣ": "AE", "ø": "oe", "Ø": "OE", "œ": "oe", "Œ": "OE", "ß": "ss",
    "ł": "l", "Ł": "L", "ı": "i", "đ": "d", "Đ": "D",
})


def _normalize_diacritics(value: str) -> str:
    value = value.translate(_DIACRITIC_SPECIAL)
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _pcase(value: str, separators: str | None) -> str:
    out: list[str] = []
    start = True
    for c in value:
        is_sep = (c in separators) if separators is not None else not c.isalnum()
        if is_sep:
            out.append(c)
            start = True
        else:
            out.append(c.upper() if start else c.lower())
            start = False
    return "".join(out)


def _net_regex(pattern: str) -> str:
    """.NET named groups `(?<name>...)` -> Python `(?P<name>...)`."""
    return re.sub(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", pattern)


def _net_replacement(repl: str) -> str:
    repl = repl.replace("\\", "\\\\")
    repl = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", r"\\g<\1>", repl)
    return re.sub(r"\$(\d+)", r"\\g<\1>", repl)


def _replace(args: list[Any], column: int) -> Any:
    source, old, pattern, group, repl, repl_attr, template = (args + [None] * 7)[:7]
    src = _s(source)
    try:
        if pattern is not None:
            rx = re.compile(_net_regex(str(pattern)))
            if group is not None and repl_attr is not None and repl is None:
                if src:
                    return src
                m = rx.search(_s(repl_attr) or "")
                return m.group(str(group)) if m else None
            if src is None:
                return None
            if group is not None:
                def sub(m: re.Match[str]) -> str:
                    whole = m.group(0)
                    start, end = m.start(str(group)) - m.start(), m.end(str(group)) - m.start()
                    if start < 0:
                        return whole
                    return whole[:start] + (_s(repl) or "") + whole[end:]
                return rx.sub(sub, src)
            return rx.sub(_net_replacement(_s(repl) or ""), src)
    except (re.error, IndexError) as exc:
        raise ExpressionError(f"Replace: bad regular expression: {exc}", column) from exc
    if old is not None and template is not None:
        return (_s(template) or "").replace(str(old), src or "")
    if src is None:
        return None
    if old is not None and str(old) != "":
        return src.replace(str(old), _s(repl) or "")
    return src


def _join(args: list[Any]) -> Any:
    sep = _s(args[0]) or ""
    parts: list[str] = []
    for a in args[1:]:
        values = a if isinstance(a, list) else [a]
        parts.extend(s for s in (_s(v) for v in values) if s)
    return sep.join(parts)


def _word(value: Any, number: Any, delims: Any, column: int) -> str:
    s = _s(value)
    n = _num(number, "Word's wordNumber", column)
    if s is None or n < 1:
        return ""
    d = _s(delims) or " "
    words = [w for w in re.split("[" + re.escape(d) + "]", s) if w]
    return words[n - 1] if n <= len(words) else ""


def _single_app_role(value: Any) -> Any:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, dict):
            for key in ("value", "displayName", "appRoleValue", "appRoleDisplayName"):
                if item.get(key):
                    return str(item[key])
        elif item is not None:
            return _s(item)
    return None


def _switch(args: list[Any]) -> Any:
    source = _s(args[0])
    key_source = "" if source is None else source
    for i in range(2, len(args) - 1, 2):
        key = _s(args[i])
        if key is not None and key == key_source:
            return args[i + 1]
    return args[1]


def _left(value: Any, count: Any, column: int) -> str:
    s = _s(value)
    n = _num(count, "Left's numChars", column)
    if s is None:
        return ""
    if n < 0:
        return s
    return s[:n]


def _mid(value: Any, start: Any, length: Any, column: int) -> Any:
    s = _s(value)
    if s is None:
        return None
    i = _num(start, "Mid's start", column)
    n = _num(length, "Mid's length", column)
    if i < 1 or n < 0:
        return ""
    return s[i - 1:i - 1 + n]


def _item(value: Any, index: Any, column: int) -> Any:
    i = _num(index, "Item's index", column)
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    return items[i - 1] if 1 <= i <= len(items) else None


def _instr(args: list[Any], column: int) -> int:
    hay, needle = _s(args[0]), _s(args[1])
    start = _num(args[2], "InStr's start", column) if len(args) > 2 and args[2] is not None else 1
    compare = _s(args[3]) if len(args) > 3 else None
    if hay is None or needle is None:
        return 0
    if compare == "vbTextCompare":
        hay, needle = hay.lower(), needle.lower()
    return hay.find(needle, max(start - 1, 0)) + 1


def _random_string(args: list[Any], column: int) -> str:
    import random
    import string
    length = _num(args[0], "RandomString's length", column)
    mins = [_num(a, "RandomString's minimum", column) for a in args[1:5]]
    avoid = _s(args[5]) if len(args) > 5 else ""
    rng = random.SystemRandom()
    pools = [string.digits, "!@#$%^&*()-_=+", string.ascii_uppercase, string.ascii_lowercase]
    pools = ["".join(c for c in p if c not in (avoid or "")) for p in pools]
    chars = [rng.choice(p) for p, k in zip(pools, mins, strict=True) for _ in range(k) if p]
    everything = "".join(pools) or string.ascii_letters
    chars += [rng.choice(everything) for _ in range(max(length - len(chars), 0))]
    rng.shuffle(chars)
    return "".join(chars[:max(length, 0)])


def _now() -> str:
    from datetime import UTC, datetime

    t = datetime.now(UTC)
    hour = t.hour % 12 or 12
    return f"{t.month}/{t.day}/{t.year} {hour}:{t.minute:02d}:{t.second:02d} {'AM' if t.hour < 12 else 'PM'}"


def _not_offline(name: str, column: int) -> ExpressionError:
    return ExpressionError(f"{name} cannot be evaluated offline (dates are evaluated by Entra itself)", column,
                           "use the Graph parseExpression API to test date functions")


def _unary(fn: Callable[[str], Any]) -> Callable[[list[Any], int], Any]:
    def run(args: list[Any], column: int) -> Any:
        s = _s(args[0])
        return None if s is None else fn(s)
    return run


_EVAL: dict[str, Callable[[list[Any], int], Any]] = {
    "Append": lambda a, c: None if a[0] is None and a[1] is None else (_s(a[0]) or "") + (_s(a[1]) or ""),
    "Join": lambda a, c: _join(a),
    "Coalesce": lambda a, c: next((v for v in a if v is not None), None),
    "ToLower": _unary(str.lower),
    "ToUpper": _unary(str.upper),
    "PCase": lambda a, c: None if a[0] is None else _pcase(_s(a[0]) or "", _s(a[1]) if len(a) > 1 else None),
    "Left": lambda a, c: _left(a[0], a[1], c),
    "Mid": lambda a, c: _mid(a[0], a[1], a[2], c),
    "Not": lambda a, c: not _truthy(a[0]),
    "IsNull": lambda a, c: a[0] is None,
    "IsNullOrEmpty": lambda a, c: a[0] is None or a[0] == "" or a[0] == [],
    "IsPresent": lambda a, c: not (a[0] is None or a[0] == "" or a[0] == []),
    "IsString": lambda a, c: isinstance(a[0], str),
    "Replace": lambda a, c: _replace(a, c),
    "Word": lambda a, c: _word(a[0], a[1], a[2], c),
    "StripSpaces": _unary(lambda s: s.replace(" ", "")),
    "NormalizeDiacritics": _unary(_normalize_diacritics),
    "CStr": lambda a, c: _s(a[0]),
    "CBool": lambda a, c: _truthy(a[0]),
    "Split": lambda a, c: None if a[0] is None else (_s(a[0]) or "").split(_s(a[1]) or ","),
    "Item": lambda a, c: _item(a[0], a[1], c),
    "Count": lambda a, c: 0 if a[0] is None else (len(a[0]) if isinstance(a[0], list) else 1),
    "RemoveDuplicates": lambda a, c: a[0] if not isinstance(a[0], list) else list(dict.fromkeys(a[0])),
    "SingleAppRoleAssignment": lambda a, c: _single_app_role(a[0]),
    "IgnoreFlowIfNullOrEmpty": lambda a, c: None if a[0] in (None, "", []) else a[0],
    "Redact": lambda a, c: a[0],
    "ConvertToBase64": _unary(lambda s: __import__("base64").b64encode(s.encode("utf-16-le")).decode("ascii")),
    "ConvertToUTF8Hex": _unary(lambda s: s.encode("utf-8").hex().upper()),
    "Guid": lambda a, c: str(__import__("uuid").uuid4()),
    "Now": lambda a, c: _now(),
    "BitAnd": lambda a, c: _num(a[0], "BitAnd's value1", c) & _num(a[1], "BitAnd's value2", c),
    "InStr": lambda a, c: _instr(a, c),
    "RandomString": lambda a, c: _random_string(a, c),
    "Switch": lambda a, c: _switch(a),
}


def evaluate(expr: Expr, profile: dict[str, Any]) -> Any:
    """Evaluate against an Entra object (Graph user/group JSON; attribute names match case-insensitively).

    Returns str, bool, int, list or None (None = Entra would not flow a value). Date functions and
    tenant-only functions raise ExpressionError."""
    if isinstance(expr, Attribute):
        return _lookup(profile, expr.name)
    if isinstance(expr, Constant):
        if expr.kind == "omitted":
            return None
        if expr.kind == "number":
            return _num(expr.value, "number", expr.column)
        return expr.value
    if isinstance(expr, Comparison):
        return _compare(expr.op, evaluate(expr.left, profile), evaluate(expr.right, profile))
    if expr.name == "IIF":  # lazy: only the chosen branch is evaluated
        cond = evaluate(expr.args[0], profile)
        return evaluate(expr.args[1] if _truthy(cond) else expr.args[2], profile)
    fn = _EVAL.get(expr.name)
    if fn is None:
        raise _not_offline(expr.name, expr.column)
    return fn([evaluate(a, profile) for a in expr.args], expr.column)
