"""The layout rules of docs/design.md section 4, checked on the source: no import cycles, no upward imports, pure
modules stay pure, only providers/ imports the IdP SDKs, the sandbox stands on mapping/support only, and nothing
but `python -m connector` imports the CLI.

Every module under connector/ is parsed with `ast` (nothing is imported, so a broken module cannot hide a rule).
All imports count: module level, inside functions, and `importlib.import_module("connector.x.")` by prefix (the
CLI loads its commands that way). Imports under `if TYPE_CHECKING:` never run, so they are left out of the cycle
check, but they still count as knowledge of another layer.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.xdist_group("layout")  # one worker parses connector/ once for every check
PACKAGE = ROOT / "connector"

# Lowest first; a module may import its own layer and those below it. A module belongs to its longest matching
# prefix ("connector" itself matches only the package's __init__, which carries __version__).
LAYERS: list[tuple[str, ...]] = [
    ("connector", "connector.errors", "connector.output", "connector.support"),  # leaves every layer may use
    ("connector.mapping",),
    ("connector.config",),  # config.schemas describes mapping files too
    ("connector.plan", "connector.views", "connector.audit.views"),  # value objects passed between layers
    ("connector.render", "connector.access"),  # access.model; access.provider sits higher, below
    ("connector.astro",),
    # access.provider is the Astro-side provider (Team roles): it sits with its model for cohesion, and in the
    # providers' layer, since the registry builds it beside the IdP providers
    ("connector.providers", "connector.access.provider"),
    ("connector.audit",),
    ("connector.sandbox",),  # beside the product, not under it: see SANDBOX_MAY_IMPORT
    ("connector.demo",),
    ("connector.commands",),
    ("connector.cli",),
    ("connector.__main__",),
]

# Pure logic does no network and no process I/O. What counts as I/O, by module prefix (connector or foreign).
PURE = ("connector.mapping", "connector.plan.model", "connector.audit.reconcile", "connector.access.model")
IO_MODULES = (
    "connector.support.http", "connector.astro", "connector.providers", "connector.access.provider",
    "connector.audit.remedies", "connector.sandbox", "connector.demo", "connector.commands", "connector.cli",
    "httpx", "aiohttp", "requests", "urllib3", "scim2_client", "werkzeug", "wsgiref", "socket", "ssl", "subprocess",
    "http.client", "http.server", "urllib.request",
)
SDKS = ("okta", "msgraph", "msgraph_core", "azure", "kiota_abstractions", "kiota_http", "kiota_authentication_azure",
        "kiota_serialization_json", "kiota_serialization_text", "kiota_serialization_form",
        "kiota_serialization_multipart")
SDK_HOME = "connector.providers"
SANDBOX = "connector.sandbox"
SANDBOX_MAY_IMPORT = ("connector", "connector.errors", "connector.mapping", "connector.support", SANDBOX)
CLI, MAIN = "connector.cli", "connector.__main__"

# Known violations on the day this test was written (layout step 1, commit 46fe438). Each is an import edge
# (importer, imported) excused from every rule below. The `providers` work removes them; then delete the entry:
# test_allowlist_is_not_stale fails as soon as an entry no longer matches any import, so it cannot rot.
ALLOWLIST: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str  # a connector module, or a foreign module's dotted name
    line: int
    type_only: bool  # under `if TYPE_CHECKING:`: never runs
    implicit: bool = False  # a package __init__ run on the way to the module named: a cycle edge, not a dependency

    @property
    def edge(self) -> tuple[str, str]:
        return self.importer, self.imported

    def where(self) -> str:
        path = _modules()[self.importer].relative_to(ROOT)
        return f"{path}:{self.line}: {self.importer} -> {self.imported}" + (" (TYPE_CHECKING)" if self.type_only
                                                                            else "")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _dynamic_prefix(call: ast.Call) -> str | None:
    """The literal start of the name given to importlib.import_module(...), e.g. "connector.commands."."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if name != "import_module" or not call.args:
        return None
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
        return str(arg.values[0].value)
    return None


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(name: str) -> list[str]:
    """A dotted import of a connector module also runs every package __init__ on the way down."""
    modules = _modules()
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in modules]


def _walk(node: ast.AST, type_only: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for sub in child.body:
                yield sub, True
                yield from _walk(sub, True)
            for sub in child.orelse:
                yield sub, type_only
                yield from _walk(sub, type_only)
            continue
        yield child, type_only
        yield from _walk(child, type_only)


def _imports_of(module: str, source: str, is_package: bool = False) -> list[Import]:
    modules = _modules()
    found: list[Import] = []

    def add(name: str, line: int, type_only: bool) -> None:
        if name == "connector" or name.startswith("connector."):
            # `from connector.x import y` names module connector.x.y when y is a submodule, else a name in x
            *parents, target = _targets(name) or [name]
            for parent in parents:
                if not _under(module, parent):
                    found.append(Import(module, parent, line, type_only, implicit=True))
            if target != module:
                found.append(Import(module, target, line, type_only))
        else:
            found.append(Import(module, name, line, type_only))

    for node, type_only in _walk(ast.parse(source, module)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno, type_only)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, is_package, node)
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                add(sub if sub in modules else source, node.lineno, type_only)
        elif isinstance(node, ast.Call):
            prefix = _dynamic_prefix(node)
            if prefix and prefix.startswith("connector"):
                for name in [m for m in modules if m.startswith(prefix)]:
                    add(name, node.lineno, type_only)
    return list(dict.fromkeys(found))  # `from x import a, b` is one import of x


@cache
def _all_imports() -> tuple[Import, ...]:
    return tuple(imp for name, path in _modules().items()
                 for imp in _imports_of(name, path.read_text(encoding="utf-8"), path.name == "__init__.py"))


def _internal(implicit: bool = False) -> list[Import]:
    """Imports of connector modules; with `implicit`, also the package __init__s they run."""
    return [i for i in _all_imports() if i.imported in _modules() and (implicit or not i.implicit)]


def _under(module: str, prefixes: tuple[str, ...] | str) -> bool:
    for prefix in (prefixes,) if isinstance(prefixes, str) else prefixes:
        if module == prefix or (prefix != "connector" and module.startswith(prefix + ".")):
            return True
    return False


def _layer(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if _under(module, prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), rank)
    return None if best is None else best[1]


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; the components with more than one module (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _cycles(imports: list[Import]) -> list[str]:
    graph: dict[str, set[str]] = {m: set() for m in _modules()}
    for imp in imports:
        if not imp.type_only and imp.edge not in ALLOWLIST:
            graph[imp.importer].add(imp.imported)
    reports = []
    for component in _strongly_connected(graph):
        members = set(component)
        inside = sorted({i.where() for i in imports
                         if i.importer in members and i.imported in members and not i.type_only
                         and i.edge not in ALLOWLIST})
        reports.append(f"cycle between {', '.join(component)}:\n    " + "\n    ".join(inside))
    return reports


# -- the checks ---------------------------------------------------------------------------------------------------


SAMPLE = """
import importlib
from typing import TYPE_CHECKING

import httpx
from connector import errors
from connector.support.http import retry_async
from . import packaged
from .. import output

if TYPE_CHECKING:
    from connector.plan.model import Plan
else:
    import connector.mapping.model

def load(name: str) -> None:
    from connector.config.load import load_config
    importlib.import_module(f"connector.commands.{name}")
"""


def test_the_import_parser_sees_every_kind_of_import() -> None:
    # The checks below are only as good as the parser: module level, relative, TYPE_CHECKING (and its else),
    # inside a function, importlib by prefix, and the package __init__s a dotted import runs on the way.
    found = {(i.imported, i.type_only) for i in _imports_of("connector.support.sample", SAMPLE)}
    assert ("connector.support", False) not in found  # its own package is already running
    assert {("httpx", False), ("connector.errors", False), ("connector.support.http", False),
            ("connector.support.packaged", False), ("connector.output", False), ("connector.plan.model", True),
            ("connector.mapping.model", False), ("connector.config.load", False),
            ("connector.commands.validate", False), ("connector", False), ("connector.plan", True),
            ("connector.commands", False)} <= found
    assert len(_modules()) > 50 and ("connector.__main__", "connector.cli") in {i.edge for i in _internal()}


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}, "e": {"a"}}
    assert _strongly_connected(graph) == [["a", "b", "c"], ["d"]]


def test_every_module_has_a_layer() -> None:
    missing = [m for m in _modules() if _layer(m) is None]
    assert not missing, f"place these modules in a layer of LAYERS (docs/design.md section 4): {missing}"


def test_no_import_cycles() -> None:
    cycles = _cycles(_internal(implicit=True))
    assert not cycles, "import cycles (break them; TYPE_CHECKING imports do not count):\n" + "\n".join(cycles)


def test_no_upward_imports() -> None:
    upward = []
    for imp in _internal():
        low, high = _layer(imp.importer), _layer(imp.imported)
        if low is not None and high is not None and high > low and imp.edge not in ALLOWLIST:
            upward.append(f"{imp.where()}  (layer {low} imports layer {high})")
    assert not upward, "upward imports (see LAYERS and docs/design.md section 4):\n" + "\n".join(sorted(upward))


def test_pure_modules_import_no_io() -> None:
    bad = [imp.where() for imp in _all_imports()
           if _under(imp.importer, PURE) and _under(imp.imported, IO_MODULES) and imp.edge not in ALLOWLIST]
    assert not bad, "pure modules (mapping, plan, audit.reconcile, access.model) import I/O:\n" + "\n".join(bad)


def test_only_providers_import_the_idp_sdks() -> None:
    bad = [imp.where() for imp in _all_imports()
           if imp.imported.split(".")[0] in SDKS and not _under(imp.importer, SDK_HOME)]
    assert not bad, "only connector.providers may import the IdP SDKs:\n" + "\n".join(bad)


def test_the_sandbox_stands_on_mapping_and_support_only() -> None:
    bad = [imp.where() for imp in _internal()
           if _under(imp.importer, SANDBOX) and not _under(imp.imported, SANDBOX_MAY_IMPORT)
           and imp.edge not in ALLOWLIST]
    assert not bad, "the sandbox may import connector.mapping and connector.support only:\n" + "\n".join(bad)


def test_nothing_but_main_imports_the_cli() -> None:
    bad = [imp.where() for imp in _internal()
           if imp.imported == CLI and imp.importer != MAIN and imp.edge not in ALLOWLIST]
    assert not bad, "only connector/__main__.py imports connector.cli:\n" + "\n".join(bad)


def test_nothing_imports_main() -> None:
    assert [imp.where() for imp in _internal() if imp.imported == MAIN] == []


def test_allowlist_is_not_stale() -> None:
    # An excused import that is gone must leave the allowlist too, or it would excuse its return. (Empty today:
    # every violation the layout move found is fixed; an entry needs a reason and a plan to remove it.)
    present = {i.edge for i in _internal()}
    stale = [f"{a} -> {b}" for a, b in sorted(ALLOWLIST) if (a, b) not in present]
    assert not stale, "no longer occur, delete them from ALLOWLIST: " + ", ".join(stale)
