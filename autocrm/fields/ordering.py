"""Sorting tickets by a custom field: ``sort=field.<key>`` (``-field.<key>``: descending).

Values order by their type (``values.typed_sql``), empty ones last whichever the direction,
then by id. Pages are keyset pages like the fixed sorts' (``autocrm.listing``), but the
"after the cursor" test is spelled out, since a row value comparison cannot place NULLs last:
after a filled (v, id) come the rows with a value beyond v, those with v and a later id, and
every empty one; after an empty (None, id), the empty ones with a later id.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_

from autocrm.errors import InvalidInput
from autocrm.fields import values
from autocrm.fields.models import FieldType, TicketField
from autocrm.listing import (
    Page,
    PageRequest,
    bad_cursor,
    decode_cursor,
    encode_cursor,
    fetch_page,
)
from autocrm.people.models import User
from autocrm.tickets.models import Ticket

PREFIX = "field."
# A text field's cursor holds up to TEXT_SORT_PREFIX characters, each up to 12 once escaped.
MAX_FIELD_CURSOR = 1200


def is_field_sort(sort: str) -> bool:
    return sort.removeprefix("-").startswith(PREFIX)


def sort_field(actor: User, sort: str) -> TicketField:
    """The field ``sort`` names; InvalidInput at ``sort`` for an unknown or unsortable one."""
    key = sort.removeprefix("-").removeprefix(PREFIX)
    definition = values.defined_fields(active_only=False).get(key)
    if definition is None or not values.sees(actor, definition):
        raise InvalidInput("Please correct the sort.", {"sort": [f"Unknown field {key!r}."]})
    if definition.type in values.UNSORTABLE:
        raise InvalidInput(
            "Please correct the sort.",
            {"sort": [f"{definition.label}: long text and multi-select fields cannot be sorted."]},
        )
    return definition


def _cursor_value_ok(definition: TicketField, value: Any) -> bool:
    """A forged cursor must fail as a 422, not as a database error."""
    if value is None:
        return True
    kind = definition.type
    if kind in (FieldType.NUMBER, FieldType.CHECKBOX, FieldType.DROPDOWN):
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63
    if not isinstance(value, str):
        return False
    try:
        if kind is FieldType.DECIMAL:
            return Decimal(value).is_finite()
        if kind is FieldType.DATE:
            return bool(date.fromisoformat(value))
    except (InvalidOperation, ValueError):
        return False
    return len(value) <= values.TEXT_SORT_PREFIX


def _after(
    definition: TicketField, key: ColumnElement[Any], value: Any, last_id: int, descending: bool
) -> ColumnElement[bool]:
    later_id = Ticket.id < last_id if descending else Ticket.id > last_id
    if value is None:
        return and_(key.is_(None), later_id)
    bound = values.typed_literal(definition, value)
    beyond = key < bound if descending else key > bound
    return or_(beyond, and_(key == bound, later_id), key.is_(None))


def keyset_page(actor: User, stmt: Select[Any], page: PageRequest) -> Page[Ticket]:
    """One page of ``stmt`` (tickets) ordered by the custom field ``page.sort`` names."""
    definition = sort_field(actor, page.sort)
    key = values.typed_sql(definition)
    if page.cursor:
        value, last_id = decode_cursor(page.cursor, page.sort, MAX_FIELD_CURSOR)
        if not _cursor_value_ok(definition, value):
            raise bad_cursor()
        stmt = stmt.where(_after(definition, key, value, last_id, page.descending))
    if page.descending:
        order = [key.desc().nulls_last(), Ticket.id.desc()]
    else:
        order = [key.asc().nulls_last(), Ticket.id.asc()]

    def cursor_after(last: Ticket) -> str:
        stored = (last.custom_fields or {}).get(definition.key)
        return encode_cursor(page.sort, values.sort_value(definition, stored), last.id)

    return fetch_page(stmt.order_by(*order), page.limit, cursor_after)
