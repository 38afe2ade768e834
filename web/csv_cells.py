"""CSV cells people open in spreadsheets: text that would run as a formula (CSV injection) is
kept as text by a leading apostrophe; None is an empty cell."""

from __future__ import annotations

from typing import Any

# Spreadsheets run a cell starting with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A byte-order mark first, so spreadsheets read the file as UTF-8.
BOM = "\ufeff"


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return f"'{value}" if value.startswith(FORMULA_START) else value
    return str(value)
