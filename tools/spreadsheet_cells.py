"""CSV cells a spreadsheet shows as text: a photo's name is data, never a formula to run on the reader's machine."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what Excel, LibreOffice and Google Sheets take as a formula's start


def safe_cell(value: object) -> object:
    """A text cell that begins like a formula gets a leading apostrophe, which the spreadsheet shows as text."""
    return "'" + value if isinstance(value, str) and value[:1] in FORMULA_STARTS else value
