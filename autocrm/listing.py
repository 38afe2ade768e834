"""Keyset (cursor) pagination, text matching and set membership for list endpoints.

A page is "rows after the last one you saw" in (sort key, id) order, which an index on
(sort key, id) answers with a range scan whatever the table size; OFFSET would read and discard
every earlier row. The cursor is opaque to clients: base64 of the last row's sort value and id.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import BigInteger, ColumnElement, Select, any_, func, literal, tuple_
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.types import TypeDecorator

from autocrm.columns import MAX_INT32, MIN_INT32
from autocrm.errors import InvalidInput
from autocrm.extensions import db

MAX_PAGE_SIZE = 200
# Ours are under 100 characters; a longer one is forged, and is refused before decoding.
MAX_CURSOR_LENGTH = 256
T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    limit: int = 50
    cursor: str | None = None
    sort: str = "-id"  # a sort key, "-" for descending

    @property
    def key(self) -> str:
        return self.sort.removeprefix("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(sort: str, value: Any, row_id: int) -> str:
    """The cursor after a row: its sort value (a number or a datetime) and id, under the name
    of the ordering, so a cursor of one listing or order is refused by another."""
    if isinstance(value, datetime):
        value = {"dt": value.isoformat()}
    elif value is not None and not isinstance(value, float | str):
        value = int(value)
    raw = json.dumps([sort, value, row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def bad_cursor() -> InvalidInput:
    return InvalidInput("Invalid cursor.", {"cursor": ["Not a cursor from this listing."]})


def decode_cursor(cursor: str, sort: str, max_length: int = MAX_CURSOR_LENGTH) -> tuple[Any, int]:
    """The (sort value, id) a cursor of ordering ``sort`` holds; 422 for anything else, also
    for an id no row can have. The value's type is for the caller to check against its
    column."""
    if len(cursor) > max_length:
        raise bad_cursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, value, row_id = json.loads(raw)
        if isinstance(value, dict):
            value = datetime.fromisoformat(value["dt"])
    except (binascii.Error, ValueError, TypeError, KeyError, RecursionError) as exc:
        raise bad_cursor() from exc
    if cursor_sort != sort or not _is_int(row_id) or not 1 <= row_id <= MAX_INT32:
        raise bad_cursor()
    return value, row_id


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_cursor_value(column: InstrumentedAttribute[Any], value: Any) -> None:
    """A forged cursor must fail as a 422, not as a database error."""
    column_type = column.type
    ok = isinstance(value, column_type.python_type) and not isinstance(value, bool)
    if ok and _is_int(value) and not isinstance(column_type, BigInteger):
        ok = MIN_INT32 <= value <= MAX_INT32
    if ok and isinstance(column_type, TypeDecorator):
        try:
            column_type.process_bind_param(value, db.session.get_bind().dialect)
        except (TypeError, ValueError):
            ok = False
    if not ok:
        raise bad_cursor()


def keyset_page(
    stmt: Select[T],
    page: PageRequest,
    sort_columns: dict[str, InstrumentedAttribute[Any]],
    id_column: InstrumentedAttribute[int],
) -> Page[T]:
    """One page of ``stmt`` ordered by ``page.sort`` then id, after ``page.cursor``; a
    ``stmt`` of several columns (which must include the sort column and the id) pages rows."""
    column = sort_columns[page.key]
    keys = (column, id_column) if column is not id_column else (id_column,)
    if page.cursor:
        value, last_id = decode_cursor(page.cursor, page.sort)
        _check_cursor_value(column, value)
        _check_cursor_value(id_column, last_id)
        lhs = tuple_(column, id_column) if len(keys) == 2 else id_column
        # Typed literals, so the column types' bind processing (UTC timestamps) applies.
        typed_id = literal(last_id, id_column.type)
        rhs = tuple_(literal(value, column.type), typed_id) if len(keys) == 2 else typed_id
        stmt = stmt.where(lhs < rhs if page.descending else lhs > rhs)
    order = [k.desc() if page.descending else k.asc() for k in keys]
    return fetch_page(
        stmt.order_by(*order),
        page.limit,
        lambda last: encode_cursor(page.sort, getattr(last, column.key), last.id),
    )


def fetch_page(stmt: Select[T], limit: int, cursor_after: Callable[[Any], str]) -> Page[T]:
    """The first ``limit`` rows of ``stmt`` (ordered, narrowed to after the cursor), and
    ``cursor_after(last row)`` when more follow. One entity (``select(Ticket)``): the objects;
    columns: the rows, read by column name."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    result = db.session.execute(stmt.limit(limit + 1))
    entities = len(stmt.column_descriptions) == 1  # unique(): a joined collection repeats them
    rows: list[Any] = list(result.unique().scalars() if entities else result)
    next_cursor = cursor_after(rows[limit - 1]) if len(rows) > limit else None
    return Page(items=rows[:limit], next_cursor=next_cursor)


def contains(column: Any, text: str) -> ColumnElement[bool]:
    """Case-insensitive substring match with LIKE wildcards in ``text`` taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(column).like(f"%{escaped}%", escape="\\")


def among(column: Any, subquery: Select[Any]) -> ColumnElement[bool]:
    """``column IN (subquery)`` as each database plans it well beside other conditions.

    PostgreSQL: ``column = ANY(ARRAY(subquery))``. The subquery runs once, first, and the
    array is then an index condition: an OR of such terms becomes a BitmapOr of index scans.
    ``IN (subquery)`` inside an OR is a hashed SubPlan instead, tested row by row over the
    whole table, and the planner guesses it true for half the rows. SQLite turns
    ``IN (subquery)`` into index look-ups itself, in an OR too (one index per OR term)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(func.array(subquery.scalar_subquery()))
    return column.in_(subquery)
