"""YAML with locations: every node of a document keeps its file, line and column, so that config and mapping
errors can point at `file:line:col`. Duplicate keys are reported instead of silently overwritten."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from connector.errors import ConfigError, Location

try:  # the C loader is several times faster; fall back when libyaml is absent
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

PathKey = tuple[str | int, ...]

# Bounds for what a config or mapping file may expand to. Aliases make YAML a compression format: a few lines of
# nested `*a` references ("billion laughs") expand to billions of nodes. Real files here have a few hundred nodes.
MAX_BYTES = 2 * 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 64


@dataclass
class Document:
    """A parsed YAML document: plain Python data plus a location for every path into it."""

    file: str
    data: Any
    locations: dict[PathKey, Location] = field(default_factory=dict)
    key_locations: dict[PathKey, Location] = field(default_factory=dict)
    duplicates: list[tuple[PathKey, Location]] = field(default_factory=list)

    def loc(self, path: PathKey = (), *, key: bool = False) -> Location:
        """The location of `path`'s value (or its key with key=True); falls back to the nearest parent."""
        table = self.key_locations if key else self.locations
        p = tuple(path)
        while p:
            if p in table:
                return table[p]
            if p in self.locations:
                return self.locations[p]
            p = p[:-1]
        return self.locations.get((), Location(self.file, 1, 1))


def _mark(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


class _Budget:
    """Counts the nodes built; aliases are expanded by _construct, so the count includes every expansion."""

    def __init__(self, file: str) -> None:
        self.file, self.nodes = file, 0

    def spend(self, node: yaml.Node, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ConfigError(
                f"the document expands to more than {MAX_NODES:,} values", location=_mark(self.file, node),
                hint="YAML aliases (*name) multiply what they point at; write the values out instead",
            )
        if depth > MAX_DEPTH:
            raise ConfigError(f"the document nests deeper than {MAX_DEPTH} levels", location=_mark(self.file, node),
                              hint="an alias inside what its anchor names (&x [*x]) repeats forever; else flatten "
                                   "the nesting")


class _AliasMarking(yaml.SafeLoader):
    """The pure-Python loader, for documents with aliases: each use of an alias is a copy of the node it names,
    marked where the alias is written, so that a finding inside a repeated entry points at the repeat (the C
    loader hands out the anchored node itself, with the anchor's place)."""

    alias_uses: set[int]  # id() of the copies (the tree holds them, so the ids stay theirs)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if not self.check_event(yaml.AliasEvent):
            return super().compose_node(parent, index)
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        named = super().compose_node(parent, index)
        if named is None:
            return None
        use = copy.copy(named)
        use.start_mark = event.start_mark
        if not hasattr(self, "alias_uses"):
            self.alias_uses = set()
        self.alias_uses.add(id(use))
        return use


def _construct(doc: Document, node: yaml.Node, path: PathKey, loader: Any, budget: _Budget,
               at: Location | None = None) -> Any:
    """Python data for `node`, recording each path's place; `at` is the alias use every place under it is."""
    budget.spend(node, len(path))
    if at is None and id(node) in getattr(loader, "alias_uses", ()):
        at = _mark(doc.file, node)
    doc.locations[path] = at or _mark(doc.file, node)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        # Merge keys first (`<<: *defaults`, YAML 1.1 as PyYAML reads it): the mapping's own keys then override
        # them, and a key both merged and written is no duplicate.
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                _merge(doc, value_node, path, loader, budget, out, at)
        own: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                raise ConfigError("a mapping key must be a plain value", location=_mark(doc.file, key_node))
            child = (*path, key if isinstance(key, str | int) else str(key))
            if key in own:
                doc.duplicates.append((child, _mark(doc.file, key_node)))
            own.add(key)
            doc.key_locations[child] = at or _mark(doc.file, key_node)
            out[key] = _construct(doc, value_node, child, loader, budget, at)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(doc, item, (*path, i), loader, budget, at) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


_MERGE = "tag:yaml.org,2002:merge"


def _merge(doc: Document, node: yaml.Node, path: PathKey, loader: Any, budget: _Budget, out: dict[Any, Any],
           at: Location | None) -> None:
    """`<<: *a` or `<<: [*a, *b]`: the keys of the mapping(s), the first one named winning."""
    sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
    for src in reversed(sources):  # later ones first, so that the first named overwrites them
        if not isinstance(src, yaml.MappingNode):
            raise ConfigError("'<<' merges a mapping (or a list of mappings) into this one",
                              location=_mark(doc.file, src), hint="write '<<: *name' with an anchor on a mapping")
        where = doc.locations.get(path)
        merged = _construct(doc, src, path, loader, budget, at)
        if where is not None:
            doc.locations[path] = where
        out.update(merged)


def _yaml_error(file: str, exc: yaml.YAMLError, text: str) -> ConfigError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    hint = None
    lines = text.splitlines()
    if mark is not None and mark.line < len(lines) and "\t" in lines[mark.line]:
        hint = "YAML does not allow tabs for indentation; use spaces"
    elif "could not determine a constructor for the tag" in str(problem):
        hint = "remove the !tag: these files hold plain YAML values (quote a value that starts with !)"
    elif "found another document" in str(problem):
        hint = "one mapping per file: remove the '---' and what follows, or move it to a file of its own"
    elif "mapping values are not allowed" in str(problem):
        # An unquoted value holding ': ', as Okta's elvis (a ?: b) and ternary (c ? a : b) do.
        hint = "quote a value that contains ': ', e.g. source: 'user.nickName ?: user.firstName'"
    loc = Location(file, mark.line + 1, mark.column + 1) if mark is not None else Location(file)
    # Say where an unfinished construct began (an unclosed quote or bracket is reported at the end of the file).
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark is not None and mark is not None and context_mark.line != mark.line:
        problem = f"{problem} ({context} that starts at line {context_mark.line + 1}, column {context_mark.column + 1})"
    return ConfigError(f"invalid YAML: {problem}", location=loc, hint=hint)


def _compose(text: str) -> tuple[Any, yaml.Node | None]:
    """The loader for `text` and its document's root node: the C loader's, unless the document uses an alias.

    Only the pure-Python _AliasMarking loader marks each use of an alias where it is written, and it takes ~7x
    the C loader's time (3.5 vs 0.5 ms for a sandbox's config). Most files hold a "*" that is no alias (a comment
    naming *.token files, a quoted glob), so the document is composed in C first: an alias there is the anchored
    node met a second time (PyYAML hands out the same node object), found by a walk that visits each node once
    (no expansion, so an alias bomb costs no more than its text). A document with an alias, or one the C loader
    refuses, is composed again by the pure loader, whose error messages the findings have always quoted. The
    caller disposes of the loader; one that fails here is disposed of before the error goes on."""
    loader: Any = _Loader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError:
            if "*" not in text:
                raise
            root = None
            aliased = True
        else:
            aliased = root is not None and "*" in text and _has_alias(root)
        if aliased:
            loader.dispose()
            loader = _AliasMarking(text)
            root = loader.get_single_node()
    except BaseException:
        loader.dispose()
        raise
    return loader, root


def _has_alias(root: yaml.Node) -> bool:
    seen: set[int] = set()
    todo = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            return True
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                todo += (key, value)
        elif isinstance(node, yaml.SequenceNode):
            todo.extend(node.value)
    return False


def parse(text: str, file: str) -> Document:
    """Parse one YAML document. Raises ConfigError with a location for syntax errors."""
    doc = Document(file=file, data=None)
    if "\x00" in text:
        raise ConfigError("file is binary, not YAML", location=Location(file), hint="point at a .yaml text file")
    if len(text) > MAX_BYTES:
        raise ConfigError(f"file is larger than {MAX_BYTES // (1024 * 1024)} MB", location=Location(file),
                          hint="a config or mapping file is a few kB; is this the right file?")
    loader: Any = None
    try:
        loader, node = _compose(text)
        if node is None:
            doc.locations[()] = Location(file, 1, 1)
            return doc
        doc.data = _construct(doc, node, (), loader, _Budget(file))
    except yaml.YAMLError as exc:
        raise _yaml_error(file, exc, text) from exc
    except RecursionError as exc:  # deeply nested flow collections overflow the parser before our depth check
        raise ConfigError(f"the document nests too deeply (more than {MAX_DEPTH} levels)",
                          location=Location(file)) from exc
    finally:
        if loader is not None:
            loader.dispose()
    return doc


def read_bytes(path: str | Path) -> bytes:
    """A config or mapping file's bytes; a missing, unreadable or directory path becomes ConfigError."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as cause:
        raise ConfigError("file not found", location=Location(str(path))) from cause
    except IsADirectoryError as cause:
        raise ConfigError("is a directory, expected a YAML file", location=Location(str(path))) from cause
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", location=Location(str(path))) from exc


def load(path: str | Path) -> Document:
    """Read and parse a YAML file; unreadable or undecodable files become ConfigError."""
    return decode(read_bytes(path), path)


def decode(raw: bytes, path: str | Path) -> Document:
    """Parse a YAML file's bytes (read_bytes); not UTF-8 becomes ConfigError, as does what parse refuses."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"file is not UTF-8 text (byte {exc.start})",
            location=Location(str(path)),
            hint="save the file as UTF-8 YAML",
        ) from exc
    return parse(text, str(path))
