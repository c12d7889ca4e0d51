"""Docs whose tables are generated from a test's own table: the doc must match, UPDATE_DOCS=1 rewrites it."""

from __future__ import annotations

import os
from pathlib import Path


def assert_section_current(doc: Path, generated: str, begin: str, end: str, source: str) -> None:
    """The part of `doc` between the `begin` and `end` markers equals `generated` (which holds both)."""
    text = doc.read_text() if doc.exists() else ""
    if os.environ.get("UPDATE_DOCS"):
        if begin in text and end in text:
            text = text[: text.index(begin)] + generated + text[text.index(end) + len(end):]
        else:
            text = text + "\n" + generated + "\n"
        doc.write_text(text)
    assert begin in text and end in text, f"{doc} has no generated section from {source}; run with UPDATE_DOCS=1"
    assert text[text.index(begin): text.index(end) + len(end)] == generated, (
        f"{doc} is out of date with the table in {source}; run with UPDATE_DOCS=1")
