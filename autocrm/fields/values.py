"""Custom field values: checking what people send, what each audience may read, SQL filters.

Values live in ``tickets.custom_fields`` by field key, typed as JSON can hold them: text and
dates (ISO) and decimals (their exact text, "12.50") as strings, numbers as integers,
checkboxes as booleans, a dropdown as its option's value, a multi-select as a list of option
values. An empty value is no key at all, so "is it filled" is "is the key there".

Errors name ``fields.<key>``. A customer may set only customer-editable fields; a field a
customer may not see is, to them, unknown (so probing the API reveals nothing of it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Numeric,
    Text,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    null,
    or_,
    select,
    true,
)

from autocrm import policies
from autocrm.errors import Conflict, InvalidInput
from autocrm.extensions import db
from autocrm.fields.models import FieldType, FieldVisibility, TicketField
from autocrm.people.models import User
from autocrm.tickets.models import Ticket
from autocrm.transaction import read_once

KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
KEY_RULE = "a lowercase letter, then lowercase letters, digits and _ (at most 40)"
MAX_TEXT = 1000
MAX_LONG_TEXT = 20_000
# JSON numbers beyond 2^53 lose digits in JavaScript clients; a value beyond is refused.
MAX_NUMBER = 2**53 - 1
MAX_DECIMAL_DIGITS = 30


def defined_fields(*, active_only: bool = True) -> dict[str, TicketField]:
    """Every field definition by key, in their order (one query per transaction: a request
    checks, renders and lists them in several places)."""
    every = read_once(("defined_fields",), TicketField, _read_definitions)
    return {key: f for key, f in every.items() if f.active or not active_only}


def _read_definitions() -> dict[str, TicketField]:
    stmt = select(TicketField).order_by(TicketField.position, TicketField.id)
    return {f.key: f for f in db.session.scalars(stmt)}


def sees(actor: User | None, definition: TicketField) -> bool:
    """Whether ``actor`` may read the field (None: the system)."""
    return actor is None or policies.is_staff(actor) or definition.visibility.customer_sees


def may_set(actor: User | None, definition: TicketField) -> bool:
    return (
        actor is None
        or policies.is_staff(actor)
        or definition.visibility is FieldVisibility.CUSTOMER_EDITABLE
    )


def fields_for(actor: User | None) -> list[TicketField]:
    """The active fields ``actor`` may read, in order."""
    return [f for f in defined_fields().values() if sees(actor, f)]


# -- checking values ----------------------------------------------------------------------------


class _Wrong(ValueError):
    pass


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        raise _Wrong("Must be text.")
    value = value.strip().replace("\x00", "")
    if len(value) > limit:
        raise _Wrong(f"At most {limit} characters.")
    return value or None


def _number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise _Wrong("Must be a whole number.")
    if abs(value) > MAX_NUMBER:
        raise _Wrong(f"Must be between -{MAX_NUMBER} and {MAX_NUMBER}.")
    return value


def _decimal(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Wrong("Must be a number, such as 12.50.")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _Wrong("Must be a number, such as 12.50.") from None
    if not number.is_finite() or len(number.as_tuple().digits) > MAX_DECIMAL_DIGITS:
        raise _Wrong(f"Must be a number of at most {MAX_DECIMAL_DIGITS} digits.")
    return str(number)


def _date(value: Any) -> str:
    try:
        if not isinstance(value, str):
            raise ValueError
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise _Wrong("Must be a date, YYYY-MM-DD.") from None


def _option(definition: TicketField, value: Any, held: Iterable[Any]) -> str:
    """An option's value: an offered one, or a retired one the ticket holds already."""
    if not isinstance(value, str):
        raise _Wrong("Must be one of the options' values.")
    offered = {o["value"] for o in definition.offered_options()}
    if value in offered or (value in held and value in definition.option_labels()):
        return value
    if value in definition.option_labels():
        raise _Wrong(f"The option {value!r} is retired.")
    raise _Wrong(f"Unknown option {value!r}; one of: {', '.join(sorted(offered))}.")


def check_value(definition: TicketField, value: Any, held: Any = None) -> Any:
    """The value to store (None: empty), or ``_Wrong`` saying what is wrong. ``held`` is what
    the ticket has now (a retired option it holds may stay)."""
    if value is None or value == "" or value == []:
        return None
    kind = definition.type
    if kind is FieldType.TEXT:
        return _text(value, MAX_TEXT)
    if kind is FieldType.LONG_TEXT:
        return _text(value, MAX_LONG_TEXT)
    if kind is FieldType.NUMBER:
        return _number(value)
    if kind is FieldType.DECIMAL:
        return _decimal(value)
    if kind is FieldType.DATE:
        return _date(value)
    if kind is FieldType.CHECKBOX:
        if not isinstance(value, bool):
            raise _Wrong("Must be true or false.")
        return value
    if kind is FieldType.DROPDOWN:
        return _option(definition, value, [held])
    if not isinstance(value, list):  # multi-select
        raise _Wrong("Must be a list of the options' values.")
    held_list = held if isinstance(held, list) else []
    chosen = [_option(definition, v, held_list) for v in value]
    return list(dict.fromkeys(chosen)) or None


def check_values(
    actor: User | None, values: Mapping[str, Any], current: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The values ``actor`` sent (by key), checked and typed: ``{key: value or None}``;
    InvalidInput naming ``fields.<key>`` of each wrong one, nothing of the others applied."""
    if not isinstance(values, Mapping):
        raise InvalidInput("Fields must be an object.", {"fields": ["Must be an object."]})
    current = current or {}
    definitions = defined_fields()
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for key, value in values.items():
        definition = definitions.get(key)
        if definition is None or not sees(actor, definition):
            errors[f"fields.{key}"] = ["Unknown field."]
        elif not may_set(actor, definition):
            errors[f"fields.{key}"] = ["Only staff may set this field."]
        else:
            try:
                clean[key] = check_value(definition, value, current.get(key))
            except _Wrong as exc:
                errors[f"fields.{key}"] = [str(exc)]
    if errors:
        raise InvalidInput("Please correct the marked fields.", errors)
    return clean


def merged(current: Mapping[str, Any], clean: Mapping[str, Any]) -> dict[str, Any]:
    """The ticket's new values: ``clean`` over ``current``, the emptied ones removed."""
    result = {**current, **clean}
    return {key: value for key, value in result.items() if value is not None}


def from_form(definition: TicketField, raw: list[str]) -> Any:
    """What a page's form sent for one field (strings) as the API would send it."""
    if definition.type is FieldType.MULTI_SELECT:
        return [v for v in raw if v]
    text = raw[-1].strip() if raw else ""
    if definition.type is FieldType.CHECKBOX:
        return text in ("on", "true", "1")
    if definition.type is FieldType.NUMBER and text:
        try:
            return int(text)
        except ValueError:
            return text  # refused as "Must be a whole number."
    return text


def from_rule(key: str, text: str) -> dict[str, Any]:
    """A ``set_field`` action's ``key=value`` as the ``fields`` of a change: the value typed
    by the field (a multi-select's options separated by commas; nothing empties it). An
    unknown key stays as it is, for ``check_values`` to refuse by name."""
    definition = defined_fields().get(key)
    text = text.strip()
    if definition is None or not text:
        return {key: text or None}
    if definition.type is FieldType.MULTI_SELECT:
        return {key: [v.strip() for v in text.split(",") if v.strip()]}
    if definition.type is FieldType.CHECKBOX:
        return {key: text.lower() in ("true", "yes", "1", "on")}
    return {key: from_form(definition, [text])}


# -- reading ------------------------------------------------------------------------------------


def visible_values(
    values: Mapping[str, Any] | None, audience: str, definitions: Mapping[str, TicketField]
) -> dict[str, Any]:
    """The values an audience (``staff``/``customer``) may read, of the defined fields."""
    values = values or {}
    return {
        key: values[key]
        for key, definition in definitions.items()
        if key in values and (audience == "staff" or definition.visibility.customer_sees)
    }


def display(definition: TicketField, value: Any) -> str:
    """A value as people read it (options by their labels)."""
    if value is None:
        return ""
    if definition.type is FieldType.CHECKBOX:
        return "Yes" if value else "No"
    labels = definition.option_labels()
    if definition.type is FieldType.DROPDOWN:
        return labels.get(value, str(value))
    if definition.type is FieldType.MULTI_SELECT:
        return ", ".join(labels.get(v, str(v)) for v in value)
    return str(value)


def missing_to_solve(
    ticket: Ticket, definitions: Mapping[str, TicketField] | None = None
) -> list[str]:
    """The labels of the required-to-solve fields the ticket has no value for."""
    definitions = defined_fields() if definitions is None else definitions
    values = ticket.custom_fields or {}
    return [d.label for d in definitions.values() if d.required_to_solve and d.key not in values]


def check_solvable(ticket: Ticket) -> None:
    """Conflict (409) naming, in words, the required fields a solved ticket would lack. Reads
    the definitions without flushing the ticket's pending move, so the change that solves it
    stays one write (one version)."""
    with db.session.no_autoflush:
        missing = missing_to_solve(ticket)
    if missing:
        names = ", ".join(missing)
        raise Conflict(
            f"Fill in {names} before solving this ticket.",
            {"fields": [f"Required to solve: {names}."]},
            missing_fields=[d.key for d in defined_fields().values() if d.label in missing],
        )


# -- filtering in SQL ---------------------------------------------------------------------------


def _is_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def value_sql(key: str) -> ColumnElement[Any]:
    """The field's stored value as SQL, the key written literally (it matches ``KEY``) so an
    expression index on it (``index_sql``) serves the query: ``custom_fields ->> 'key'`` (text)
    on PostgreSQL, ``json_extract(custom_fields, '$."key"')`` (typed) on SQLite."""
    if not KEY.match(key):
        raise ValueError(f"not a field key: {key!r}")
    if _is_postgresql():
        return Ticket.custom_fields.op("->>", return_type=Text())(literal_column(f"'{key}'"))
    return func.json_extract(Ticket.custom_fields, literal_column(f"'$.\"{key}\"'"))


def index_sql(key: str, dialect: str, *, concurrently: bool = False) -> str:
    """The expression index on a field, newest first within a value (as the fixed filters'
    ``(column, created_at, id)`` indexes); built by ``autocrm.fields.indexes``, outside any
    request (``concurrently`` on PostgreSQL, which must then run outside a transaction)."""
    if not KEY.match(key):
        raise ValueError(f"not a field key: {key!r}")
    expression = (
        f"(custom_fields ->> '{key}')"
        if dialect == "postgresql"
        else f"json_extract(custom_fields, '$.\"{key}\"')"
    )
    how = " CONCURRENTLY" if concurrently else ""
    name = index_name(key)
    return f"CREATE INDEX{how} IF NOT EXISTS {name} ON tickets ({expression}, created_at, id)"


INDEX_MARK = "ix_tickets_cf_"


def index_name(key: str) -> str:
    return f"{INDEX_MARK}{key}"


def _sql_literal(definition: TicketField, value: Any) -> Any:
    """A stored value as the dialect's JSON extraction returns it."""
    if _is_postgresql():
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    if isinstance(value, bool):
        return 1 if value else 0
    return value


def holds(definition: TicketField, value: Any) -> ColumnElement[bool]:
    """Tickets whose field equals ``value`` (a multi-select: contains it)."""
    if definition.type is FieldType.MULTI_SELECT:
        if _is_postgresql():
            return Ticket.custom_fields.op("@>")(
                func.jsonb_build_object(definition.key, func.jsonb_build_array(value))
            )
        each = func.json_each(Ticket.custom_fields, literal_column(f"'$.\"{definition.key}\"'"))
        return exists(
            select(literal_column("1"))
            .select_from(each.table_valued("value"))
            .where(literal_column("value") == value)
        )
    return value_sql(definition.key) == _sql_literal(definition, value)


def filled(definition: TicketField) -> ColumnElement[bool]:
    return value_sql(definition.key).is_not(None)


def parse_filter(definition: TicketField, text: str) -> Any:
    """A ``field.<key>=<text>`` query value as the stored value (_Wrong if it cannot be)."""
    text = text.strip()
    kind = definition.type
    if kind is FieldType.NUMBER:
        try:
            return _number(int(text))
        except ValueError:
            raise _Wrong("Must be a whole number.") from None
    if kind is FieldType.CHECKBOX:
        if text.lower() not in ("true", "false"):
            raise _Wrong("Must be true or false.")
        return text.lower() == "true"
    if kind is FieldType.DECIMAL:
        return _decimal(text)
    if kind is FieldType.DATE:
        return _date(text)
    if not text or len(text) > MAX_LONG_TEXT:
        raise _Wrong("Must not be blank.")
    if kind.has_options and text not in definition.option_labels():
        known = ", ".join(definition.option_labels())
        raise _Wrong(f"Unknown option {text!r}; one of: {known}.")
    return text


# Sorting and ranges compare values by their type: numbers as numbers, dates as ISO text; a
# dropdown by its options' order, a checkbox no before yes; text by its first characters.
RANGED = (FieldType.NUMBER, FieldType.DECIMAL, FieldType.DATE)
UNSORTABLE = (FieldType.LONG_TEXT, FieldType.MULTI_SELECT)
TEXT_SORT_PREFIX = 64
RANGE_BOUNDS = {"min": "__ge__", "max": "__le__"}


def typed_sql(definition: TicketField) -> ColumnElement[Any]:
    """The field's value as SQL of its type (NULL when empty), for ``ORDER BY`` and ranges;
    the same on both databases (``sort_value`` is its Python twin)."""
    value = value_sql(definition.key)
    kind = definition.type
    if kind is FieldType.NUMBER:
        return cast(value, BigInteger)
    if kind is FieldType.DECIMAL:
        return cast(value, Numeric)
    if kind is FieldType.CHECKBOX:
        return case(
            (value == _sql_literal(definition, True), 1),
            (value == _sql_literal(definition, False), 0),
            else_=null(),
        )
    if kind is FieldType.DROPDOWN:
        positions = [(value == o["value"], i) for i, o in enumerate(definition.options)]
        filled_other = (value.is_not(None), len(definition.options))
        return case(*positions, filled_other, else_=null()) if positions else value
    if kind is FieldType.TEXT:
        return func.substr(value, 1, TEXT_SORT_PREFIX)
    return value  # a date: ISO text sorts as dates do


def typed_literal(definition: TicketField, value: Any) -> ColumnElement[Any]:
    """A ``sort_value`` as SQL comparable with ``typed_sql``."""
    if definition.type is FieldType.NUMBER:
        return literal(value, BigInteger)
    if definition.type is FieldType.DECIMAL:
        return cast(literal(value, Text), Numeric)
    if definition.type in (FieldType.CHECKBOX, FieldType.DROPDOWN):
        return literal(value, BigInteger)
    return literal(value, Text)


def sort_value(definition: TicketField, stored: Any) -> Any:
    """What ``typed_sql`` gives for a stored value, in Python (for a page's cursor)."""
    if stored is None:
        return None
    if definition.type is FieldType.CHECKBOX:
        return 1 if stored else 0
    if definition.type is FieldType.DROPDOWN:
        order = [o["value"] for o in definition.options]
        return order.index(stored) if stored in order else len(order)
    if definition.type is FieldType.TEXT:
        return str(stored)[:TEXT_SORT_PREFIX]
    return stored


def _range_clause(definition: TicketField, bound: str, text: str) -> ColumnElement[bool]:
    """``field.<key>.min`` / ``.max``: at least / at most the value (a number, decimal or
    date field), inclusive; empty values never match."""
    if definition.type not in RANGED:
        raise _Wrong("Only number, decimal and date fields have ranges.")
    value = parse_filter(definition, text)
    compare = getattr(typed_sql(definition), RANGE_BOUNDS[bound])
    clause: ColumnElement[bool] = compare(typed_literal(definition, value))
    return clause


def filter_clauses(actor: User, wanted: Mapping[str, str]) -> list[ColumnElement[bool]]:
    """``field.<key>=<value>`` filters (and ``field.<key>.min``/``.max`` ranges) as SQL;
    InvalidInput naming ``field.<key>`` for a field the actor does not know or a value of the
    wrong type."""
    definitions = defined_fields(active_only=False)
    errors: dict[str, list[str]] = {}
    clauses: list[ColumnElement[bool]] = []
    for name, text in wanted.items():
        key, _, bound = name.partition(".")
        definition = definitions.get(key)
        if definition is None or not sees(actor, definition):
            errors[f"field.{key}"] = ["Unknown field."]
            continue
        if bound and bound not in RANGE_BOUNDS:
            errors[f"field.{name}"] = ["Only .min and .max follow a field's key."]
            continue
        try:
            if bound:
                clauses.append(_range_clause(definition, bound, text))
            else:
                clauses.append(holds(definition, parse_filter(definition, text)))
        except _Wrong as exc:
            errors[f"field.{name}"] = [str(exc)]
    if errors:
        raise InvalidInput("Please correct the filters.", errors)
    return clauses


def in_use(definition: TicketField, option: str | None = None) -> bool:
    """Whether any ticket holds a value of the field (of one of its options)."""
    clause = filled(definition) if option is None else holds(definition, option)
    return bool(db.session.scalar(select(exists().where(clause))))


def condition_sql(key: str, op: str, value: Any) -> ColumnElement[bool]:
    """A time rule's condition on ``fields.<key>`` as SQL (the sweep's pre-filter)."""
    definition = defined_fields(active_only=False).get(key)
    if definition is None:
        return true() if op in ("is_null", "ne", "not_in") else false()
    if op == "is_null":
        return not_(filled(definition))
    if op == "not_null":
        return filled(definition)
    if op in ("eq", "contains"):
        return holds(definition, value)
    if op == "ne":
        return not_(holds(definition, value)) | not_(filled(definition))
    if op == "in":
        return false() if not value else _any(holds(definition, v) for v in value)
    if op == "not_in":
        return (
            true()
            if not value
            else not_(_any(holds(definition, v) for v in value)) | not_(filled(definition))
        )
    return true()  # gte/lte: checked on each ticket by the rule itself


def _any(clauses: Iterable[ColumnElement[bool]]) -> ColumnElement[bool]:
    return or_(*clauses)
