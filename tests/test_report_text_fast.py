"""The text report's fast path (connector/audit/report_text.Lines) writes what rich writes: the same characters and
escape codes as printing every line and the findings table through rich (`via_rich=True`, the report before), on
findings of every kind with long, wide, combining and hostile names, at every width, with and without colour and
wrapping. Speed is measured in benchmarks/report_scale.py, not here."""

from __future__ import annotations

import io
import random
import re

import pytest
from report_corpus import HOSTILE, findings, results
from rich.console import Console
from rich.text import Text

from connector.audit.reconcile import AuditResult, Kind
from connector.audit.report import to_text
from connector.audit.report_text import Lines, _one_cell_lines, _wrapped

CORPUS = results(240)
WIDTHS = (40, 49, 60, 80, 100, 120, 200)


def test_the_corpus_has_every_kind_and_hostile_names() -> None:
    kinds = {f.kind for f in CORPUS[0].findings}
    assert kinds == set(Kind)
    named = [f.subject + f.detail for f in CORPUS[0].findings]
    assert {h for h in HOSTILE if any(h in s for s in named)} == set(HOSTILE)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(("color", "wrap"), [(False, False), (True, True), (False, True), (True, False)])
def test_the_fast_path_writes_what_rich_writes(width: int, color: bool, wrap: bool) -> None:
    fast = to_text(CORPUS, color=color, width=width, wrap=wrap)
    assert fast == to_text(CORPUS, color=color, width=width, wrap=wrap, via_rich=True)
    assert ("\x1b[" in fast) is color


def test_the_fast_path_draws_the_table_itself_and_hands_rich_only_tabs_and_newlines() -> None:
    """Equality with rich is only worth something if the fast path ran: the table is not rich's, and the cells
    given to rich are the few it must expand (a tab) or split (a newline)."""
    console = Console(file=io.StringIO(), width=120, soft_wrap=True)
    out = Lines(console)
    rows = [(f.id, f.kind.value, "red", f.subject, f.detail) for f in CORPUS[0].findings]
    out.table(rows, 12, 27, 40)
    odd = sum(1 for row in rows for cell in row[3:] if "\t" in cell or "\n" in cell)
    assert out.by_rich == {"tables": 0, "cells": odd, "lines": 0} and odd


def test_a_table_of_thousands_is_the_same_as_richs() -> None:
    many = [AuditResult("okta", "https://api.astronomer.io/scim/v2/clorg", findings(1000, seed=11))]
    assert to_text(many, width=132) == to_text(many, width=132, via_rich=True)


def test_no_color_keeps_bold_and_drops_colours_on_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    for width in (40, 120):
        fast = to_text(CORPUS, color=True, width=width, wrap=True)
        assert fast == to_text(CORPUS, color=True, width=width, wrap=True, via_rich=True)
        assert "\x1b[1m" in fast and not re.search(r"\x1b\[[0-9;]*(3[0-9]|9[0-7])[0-9;]*m", fast)


@pytest.mark.parametrize("width", [40, 120])
def test_hostile_names_stay_escaped_on_the_fast_path(width: int) -> None:
    text = to_text(CORPUS, color=True, width=width, wrap=True)
    assert not re.search(r"[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f-\x9f\ud800-\udfff]", text)  # ESC only in colour codes
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert "\x1b" not in plain and "\t" not in plain  # a tab is expanded, as rich expands it
    squeezed = re.sub(r"[\s│┃]", "", plain)  # a name folded in its cell or wrapped on a narrow terminal is whole
    for shown in ("mark[/b]up@x.example", "[bold red]loud[/]@x.example", r"esc\x1b]8;;http://evil\x1b\link",
                  r"ctl\x01\x7f\x85@x.example", r"half\ud800@x.example", "[link=http://e]x[/link]"):
        assert shown.replace(" ", "") in squeezed, shown
    assert "[bold red]loud[/]@x.example" in plain  # not taken for markup: the brackets are printed


ALPHABETS = ["ab c  d-e.f@  ", "é ñ ø x\u00a0y  ", "田 中a b東京 ", "e\u0301 a b\u3000c"]


@pytest.mark.parametrize("alphabet", ALPHABETS)
def test_wrapping_is_richs_word_wrap(alphabet: str) -> None:
    """Random words, runs of spaces, long words to fold, wide (CJK) and combining characters, non-breaking and
    ideographic spaces: each line as rich's Text.wrap gives it (overflow fold)."""
    console = Console(file=io.StringIO(), width=200)
    rng = random.Random(alphabet)
    for _ in range(1500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 50)))
        width = rng.randint(2, 20)
        want = [line.plain for line in Text(text).wrap(console, width, overflow="fold")]
        assert _wrapped(text, width) == want, (text, width)
        if text.isascii():
            assert _one_cell_lines(text, width) == want, (text, width)
