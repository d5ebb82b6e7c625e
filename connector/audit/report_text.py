"""The text report's lines and findings table as rich prints them, at a small fraction of rich's cost.

rich lays out a Table cell by cell: ~0.5 ms a finding (a Padding, a Text, a wrap, segments, per cell), 9 s for
20,000 findings, and a Console.print a line costs ~0.2 ms. A large drift (a group unassigned: 20,000 users missing)
is when admins run the report. `Lines` writes the same characters itself for what the report prints: a line of
text (one style, or a plain part then a styled one) and the findings table (rich's HEAVY_HEAD box, fixed id, kind
and subject columns, the detail taking what rich would give it). A cell or line that fits is padded; one that must
wrap is wrapped by rich's own rule (rich/_wrap.py: words with their trailing spaces, a word longer than the line
folded, measured in cells), by string length where every character is one cell; a tab, a newline or a zero-width
joiner sends that cell or line alone to rich. Styles are rich's own escape codes,
asked of the console once per style, so colour, NO_COLOR and the colour system are the console's.

`via_rich=True` prints everything through rich, as the report did before: the reference the fast path is tested
against (tests/test_report_text_fast.py), and the fallback for a layout this module does not reproduce.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

Piece = tuple[str, str]  # text and its rich style ("": none)
Row = tuple[str, str, str, str, str]  # id, kind, the kind's style, subject, detail (printable already)

_WORD = re.compile(r"\s*\S+\s*")  # rich's word (rich/_wrap.py): a word with the spaces around it
_TRAILING = re.compile(r"\s+$")  # rich's Text.rstrip_end
_FRAME_BORDERS = 5  # a 4-column table's edges and dividers
_PAD = 2  # a cell's padding: one space either side


class _NotHere(Exception):
    """The table needs a layout this module does not reproduce: rich draws it."""


def _simple(text: str) -> bool:
    """True when rich prints `text` character for character: no tab to expand, no line to split, no zero-width
    joiner or variation selector (which make rich's cell width of a line differ from the sum of its parts)."""
    return "\t" not in text and "\n" not in text and "\u200d" not in text and "\ufe0f" not in text


def _one_cell(text: str) -> bool:
    """Every character one cell wide in rich's table (so no tab, newline or zero-width character either): rich
    then measures, folds and crops `text` as a Python string, by its length."""
    if text.isascii():
        return text.isprintable()
    chars = set(text)
    if chars <= _ONE_CELL:  # letters seen before (é, ñ, ø in most names): a set operation, no call per character
        return True
    from rich.cells import get_character_cell_size

    if all(get_character_cell_size(c) == 1 for c in chars):
        _ONE_CELL.update(chars)
        return True
    return False


_ONE_CELL: set[str] = set()  # non-ASCII characters rich gives one cell, as _one_cell met them


def _ranges(text: str, width: int) -> list[tuple[int, int]]:
    """Where rich's word wrap (rich/_wrap.divide_line, then Text.divide, as _divide) splits one-cell `text` into
    lines of `width`: (start, end) of each line, each cut to `width` (Text.rstrip_end and truncate: rich drops the
    trailing spaces past it), without a call per word (a report of 20,000 findings wraps some 30,000 cells)."""
    ranges: list[tuple[int, int]] = []
    begin = pos = offset = 0  # where the line being filled starts, where the word starts, the line's cells so far
    for word in _WORD.findall(text):
        size = len(word)
        length = len(word.rstrip())
        if width - offset >= length:
            offset += size
        elif length > width:  # folded: a line from each `width` characters of it, the last one continued
            if pos:
                ranges.append((begin, min(pos, begin + width)))
            folds = range(pos, pos + size, width)
            ranges += [(i, i + width) for i in folds[:-1]]
            begin, offset = folds[-1], pos + size - folds[-1]
        elif offset and pos:
            ranges.append((begin, min(pos, begin + width)))
            begin, offset = pos, size
        pos += size
    ranges.append((begin, min(len(text), begin + width)))
    return ranges


def _divide(text: str, width: int, measure: Callable[[str], int],
            chop: Callable[[str, int], list[str]]) -> list[tuple[int, int]]:
    """rich/_wrap.divide_line then Text.divide: the (start, end) of each line of `text` wrapped at `width` cells,
    words with their trailing spaces (which may run past `width`), a word longer than a line folded by `chop`."""
    breaks: list[int] = []
    offset = 0
    for match in _WORD.finditer(text):
        start, word = match.start(), match.group()
        length = measure(word.rstrip())
        if width - offset >= length:
            offset += measure(word)
        elif length > width:
            folded = chop(word, width)
            for i, line in enumerate(folded, 1):
                if start:
                    breaks.append(start)
                if i == len(folded):
                    offset = measure(line)
                else:
                    start += len(line)
        elif offset and start:
            breaks.append(start)
            offset = measure(word)
    edges = [0, *breaks, len(text)]
    return list(zip(edges, edges[1:], strict=False))


def _one_cell_lines(text: str, width: int) -> list[str]:
    """The lines of one-cell `text` wrapped as rich wraps it at `width` (see _ranges)."""
    return [text[a:b] for a, b in _ranges(text, width)]


def _wrapped(text: str, width: int) -> list[str] | None:
    """The lines of rich's Text.wrap of `text` at `width` (overflow fold, not padded), or None for text rich must
    wrap itself (a tab, a newline, a zero-width joiner: see _simple)."""
    if not _simple(text):
        return None
    if _one_cell(text):
        return _one_cell_lines(text, width)
    from rich.cells import cell_len, chop_cells, set_cell_size

    lines = []
    for a, b in [(0, len(text))] if cell_len(text) <= width else _divide(text, width, cell_len, chop_cells):
        line = text[a:b]
        if len(line) > width:  # Text.rstrip_end: trailing whitespace past the width, counted in characters (so
            trailing = _TRAILING.search(line)  # a line that fits in cells may still lose its last wide space)
            if trailing:
                line = line[:len(line) - min(len(trailing.group()), len(line) - width)]
        if cell_len(line) > width:  # Text.truncate, overflow fold
            line = set_cell_size(line, width)
        lines.append(line)
    return lines


class Lines:
    """Text as `console.print` would write it to `console` (created with the report's width, colour and soft
    wrap), collected in memory."""

    def __init__(self, console: Console, *, via_rich: bool = False) -> None:
        from rich.cells import cell_len

        self.console = console
        self.width = console.width
        self.wrap = not console.soft_wrap
        self.via_rich = via_rich
        self._cell_len = cell_len
        self._parts: list[str] = []
        self._codes: dict[str, tuple[str, str]] = {}
        # What was handed to rich (tests check the fast path ran): tables, table cells, lines
        self.by_rich = {"tables": 0, "cells": 0, "lines": 0}

    def getvalue(self) -> str:
        return "".join(self._parts)

    # -- plain lines ----------------------------------------------------------------------------------------

    def print(self, *pieces: Piece) -> None:
        """What console.print writes for `Text(text, style=style)` (one piece) or `Text.assemble(*pieces)`."""
        text = "".join(t for t, _ in pieces)
        if self.via_rich or not text or not _simple(text):
            self._parts.append(self._rich_line(pieces))
        elif not self.wrap or (len(text) <= self.width and _one_cell(text)):
            self._parts.append(self._styled(pieces, 0, len(text)) + "\n")
        elif len(pieces) == 1:
            lines = _wrapped(text, self.width)
            assert lines is not None  # _simple(text)
            begin, close = self.codes(pieces[0][1])
            self._parts.append("".join(f"{begin}{line}{close}\n" for line in lines))
        elif _one_cell(text):  # a plain part and a styled one, wrapped together
            self._parts.append("\n".join(self._styled(pieces, a, b) for a, b in _ranges(text, self.width)) + "\n")
        else:
            self._parts.append(self._rich_line(pieces))

    def _styled(self, pieces: Sequence[Piece], start: int, end: int) -> str:
        """Characters `start` to `end` of the pieces' text, each piece's part in its style's codes."""
        out, at = [], 0
        for text, style in pieces:
            a, b = max(at, start), min(at + len(text), end)
            if a < b:
                part = text[a - at:b - at]
                if style:
                    begin, close = self.codes(style)
                    part = begin + part + close
                out.append(part)
            at += len(text)
        return "".join(out)

    def codes(self, style: str) -> tuple[str, str]:
        """The escape codes rich writes before and after a segment in `style` on this console (none without
        colour; NO_COLOR keeps bold and dim and drops colours, as rich does)."""
        if not style:
            return "", ""
        if style not in self._codes:
            from rich.text import Text

            with self.console.capture() as captured:
                self.console.print(Text("X", style=style), end="")
            begin, _, close = captured.get().partition("X")
            self._codes[style] = (begin, close)
        return self._codes[style]

    def _rich_line(self, pieces: Sequence[Piece]) -> str:
        from rich.text import Text

        self.by_rich["lines"] += 1
        text = Text(pieces[0][0], style=pieces[0][1]) if len(pieces) == 1 else Text.assemble(*pieces)
        with self.console.capture() as captured:
            self.console.print(text)
        return captured.get()

    # -- the findings table ---------------------------------------------------------------------------------

    def table(self, rows: Sequence[Row], id_w: int, kind_w: int, subject_w: int) -> None:
        """The findings table: columns id (never wrapped), kind, subject (folded past their widths) and detail
        (wrapped in what is left), headings in bold, rich's HEAVY_HEAD box; `console.print(table)` of it."""
        if not self.via_rich:
            try:
                self._parts.append(self._table(rows, id_w, kind_w, subject_w))
                return
            except _NotHere:
                pass
        self._parts.append(self._rich_table(rows, id_w, kind_w, subject_w))

    def _rich_table(self, rows: Sequence[Row], id_w: int, kind_w: int, subject_w: int) -> str:
        from rich.table import Table
        from rich.text import Text

        self.by_rich["tables"] += 1
        table = Table(show_header=True, header_style="bold", expand=False)
        table.add_column("id", no_wrap=True, width=id_w)
        table.add_column("kind", overflow="fold", width=kind_w)
        table.add_column("subject", overflow="fold", width=subject_w)
        table.add_column("detail", overflow="fold")
        for fid, kind, style, subject, detail in rows:
            # Text, not str: a str cell is rich markup, and a userName such as "a[/b]" stopped the report (exit 70)
            table.add_row(fid, Text(kind, style=style), Text(subject), Text(detail))
        with self.console.capture() as captured:
            self.console.print(table, soft_wrap=False)  # a table is always laid out in `width`
        return captured.get()

    def _detail_width(self, rows: Sequence[Row], fixed: int) -> int:
        """The detail column's width (padding included) as rich's Table sets it: its longest line (or heading),
        at most what the table's width leaves it (rich narrows its only wrappable column first)."""
        cell_len = self._cell_len
        room = self.width - _FRAME_BORDERS
        longest = len("detail")
        for row in rows:
            detail = row[4]
            if detail.isascii() and detail.isprintable():  # one line, a cell a character
                longest = max(longest, len(detail))
            else:  # rich measures a cell by its lines (str.splitlines) in cells
                longest = max([longest, *(cell_len(line) for line in detail.splitlines())])
        width = min(longest + _PAD, room)
        if fixed + width > room:
            width = room - fixed
        if width < len("detail") + _PAD:  # rich would fold the heading or squeeze every column
            raise _NotHere
        return width

    def _cell(self, text: str, width: int) -> list[str]:
        """A fold column's cell: its lines, each padded to `width` cells (rich: justify left, overflow fold)."""
        if _one_cell(text):
            if len(text) <= width:
                return [text.ljust(width)]
            return [line.ljust(width) for line in _one_cell_lines(text, width)]
        lines = _wrapped(text, width)
        if lines is None:
            from rich.text import Text

            self.by_rich["cells"] += 1
            lines = [line.plain for line in
                     Text(text).wrap(self.console, width, justify="left", overflow="fold", tab_size=8)]
        # padded by cells: a line cut short of a wide character is padded too, as rich pads it
        cell_len = self._cell_len
        return [line + " " * (width - cell_len(line)) for line in lines]

    def _table(self, rows: Sequence[Row], id_w: int, kind_w: int, subject_w: int) -> str:
        from rich import box

        if not rows:
            raise _NotHere
        frame = box.HEAVY_HEAD.substitute(self.console.options, safe=self.console.safe_box)
        room = self.width - _FRAME_BORDERS
        widths = [min(w + _PAD, room) for w in (id_w, kind_w, subject_w)]
        if any(w - _PAD < len(h) for w, h in zip(widths, ("id", "kind", "subject"), strict=True)):
            raise _NotHere
        widths.append(self._detail_width(rows, sum(widths)))
        inner = [w - _PAD for w in widths]
        id_in, kind_in, subject_in, detail_in = inner

        bold_in, bold_out = self.codes("bold")
        heads = (f"{bold_in} {bold_out}{bold_in}{h.ljust(w)}{bold_out}{bold_in} {bold_out}"
                 for h, w in zip(("id", "kind", "subject", "detail"), inner, strict=True))
        out = [frame.get_top(widths), frame.head_left + frame.head_vertical.join(heads) + frame.head_right,
               frame.get_row(widths, "head", edge=True)]
        cell = self._cell
        kinds: dict[tuple[str, str], list[str]] = {}  # a dozen kinds in 20,000 rows: each kind's cell made once
        subjects: dict[str, list[str]] = {}  # they repeat: a Team's name, "active in Astro, unknown to okta"
        details: dict[str, list[str]] = {}
        mid = (frame.mid_left + " ", f" {frame.mid_vertical} ", " " + frame.mid_right)
        foot = (frame.foot_left + " ", f" {frame.foot_vertical} ", " " + frame.foot_right)
        blank: list[list[str]] = [[] for _ in inner]  # blank lines of each column, as many as a row needs
        for n, (fid, kind, style, subject, detail) in enumerate(rows, 1):
            if not (fid.isascii() and fid.isalnum()) or len(fid) > id_in:  # a str cell is markup; hex is not
                raise _NotHere
            kind_lines = kinds.get((kind, style))
            if kind_lines is None:
                begin, close = self.codes(style)
                kind_lines = kinds[(kind, style)] = [f"{begin}{line}{close}" for line in cell(kind, kind_in)]
            subject_lines = subjects.get(subject)
            if subject_lines is None:
                subject_lines = subjects[subject] = cell(subject, subject_in)
            detail_lines = details.get(detail)
            if detail_lines is None:
                detail_lines = details[detail] = cell(detail, detail_in)
            left, divider, right = foot if n == len(rows) else mid
            height = max(len(kind_lines), len(subject_lines), len(detail_lines))
            if height == 1:
                out.append(f"{left}{fid.ljust(id_in)}{divider}{kind_lines[0]}{divider}{subject_lines[0]}{divider}"
                           f"{detail_lines[0]}{right}")
                continue
            # top-aligned: a shorter cell is blank below its lines
            if height > len(blank[0]):
                blank = [[" " * w] * height for w in inner]
            ids = [fid.ljust(id_in), *blank[0][:height - 1]]
            kind_lines = kind_lines + blank[1][:height - len(kind_lines)]
            subject_lines = subject_lines + blank[2][:height - len(subject_lines)]
            detail_lines = detail_lines + blank[3][:height - len(detail_lines)]
            out += [f"{left}{a}{divider}{b}{divider}{c}{divider}{d}{right}"
                    for a, b, c, d in zip(ids, kind_lines, subject_lines, detail_lines, strict=True)]
        out.append(frame.get_bottom(widths))
        return "\n".join(out) + "\n"
