"""Custom fields in the agent queue: field filters (``field.<key>=`` and ``.min``/``.max``
ranges, the list API's parameters), the fields shown as columns (``columns``), and the sorts by
a field, read from the queue form's query string; views save all three.

``columns`` given at all (the form always sends it, empty when none is ticked) replaces the
view's columns; a link without it shows the view's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from autocrm.errors import InvalidInput
from autocrm.fields import values as field_values
from autocrm.fields.models import FieldType, TicketField
from autocrm.people.models import User

FIELD_ARG = "field."
COLUMNS_ARG = "columns"
MAX_COLUMNS = 20
# The filter control each type gets: a list of options, yes/no, a range, or exact text.
CONTROLS = {
    FieldType.DROPDOWN: "options",
    FieldType.MULTI_SELECT: "options",
    FieldType.CHECKBOX: "yes_no",
    FieldType.NUMBER: "range",
    FieldType.DECIMAL: "range",
    FieldType.DATE: "range",
    FieldType.TEXT: "text",
}


@dataclass
class QueueFields:
    """What the queue form says about custom fields, and the definitions the user sees."""

    definitions: dict[str, TicketField]
    filters: dict[str, str] = field(default_factory=dict)  # {"severity": "high", "n.min": "2"}
    columns: list[str] = field(default_factory=list)
    columns_given: bool = False
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def column_fields(self) -> list[TicketField]:
        return [self.definitions[key] for key in self.columns if key in self.definitions]

    def query_pairs(self) -> list[tuple[str, str]]:
        """The form's field filters and columns as query parameters (to keep them in links)."""
        pairs = [(f"{FIELD_ARG}{name}", value) for name, value in self.filters.items()]
        if self.columns_given:
            pairs += [(COLUMNS_ARG, key) for key in self.columns] or [(COLUMNS_ARG, "")]
        return pairs

    def controls(self) -> list[tuple[TicketField, str]]:
        return [(d, CONTROLS[d.type]) for d in self.definitions.values() if d.type in CONTROLS]


def read(user: User, args: Mapping[str, Any], view_columns: Iterable[str]) -> QueueFields:
    """The form's field filters and columns; wrong ones become messages at ``field.<name>``
    (``columns``)."""
    found = QueueFields(definitions={d.key: d for d in field_values.fields_for(user)})
    for name, value in args.items():
        if name.startswith(FIELD_ARG) and str(value).strip():
            found.filters[name.removeprefix(FIELD_ARG)] = str(value).strip()
    multi = args if isinstance(args, MultiDict) else MultiDict(args)
    if COLUMNS_ARG in multi:
        found.columns_given = True
        wanted = [key for key in multi.getlist(COLUMNS_ARG) if key]
    else:
        wanted = list(view_columns)
    unknown = [key for key in wanted if key not in found.definitions]
    if unknown and found.columns_given:
        found.errors[COLUMNS_ARG] = f"Unknown field {unknown[0]!r} in the columns."
    found.columns = list(dict.fromkeys(k for k in wanted if k in found.definitions))
    found.columns = found.columns[:MAX_COLUMNS]
    return found


def check_filters(
    user: User, wanted: Mapping[str, str], definitions: Mapping[str, TicketField]
) -> dict[str, str]:
    """The field filters' messages by parameter name (``field.<name>``), each naming its
    field; none if all hold."""
    try:
        field_values.filter_clauses(user, wanted)
    except InvalidInput as exc:
        found = {}
        for name, messages in exc.errors.items():
            key = name.removeprefix(FIELD_ARG).partition(".")[0]
            known = definitions.get(key)
            found[name] = f"{known.label if known else key}: {messages[0]}"
        return found
    return {}


def sort_options(definitions: Mapping[str, TicketField]) -> dict[str, str]:
    """The sorts by a field the queue offers (the sortable fields, both ways)."""
    options: dict[str, str] = {}
    for definition in definitions.values():
        if definition.type in field_values.UNSORTABLE:
            continue
        options[f"field.{definition.key}"] = f"{definition.label} (ascending)"
        options[f"-field.{definition.key}"] = f"{definition.label} (descending)"
    return options


def cell(definition: TicketField, stored: Mapping[str, Any] | None) -> str:
    """A ticket's value of the field as the queue shows it ("" when empty)."""
    return field_values.display(definition, (stored or {}).get(definition.key))
