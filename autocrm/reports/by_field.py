"""Team reports grouped by a dropdown field (``group_by=field.<key>``): per team and option,
the tickets created and solved in the period and open now, and the tickets with no value.

Three GROUP BY queries over the same index ranges as the team figures (``services``), grouped
also by the field's value (``fields.values.value_sql``); the options come in their order,
retired ones included while tickets hold them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import ColumnElement, Result, func, select

from autocrm.errors import InvalidInput
from autocrm.extensions import db
from autocrm.fields import values
from autocrm.fields.models import FieldType, TicketField
from autocrm.people.models import User
from autocrm.tickets.models import Ticket

PREFIX = "field."
MEASURES = ("created", "solved", "backlog_now")
NO_VALUE = "No value"


def check_group_by(actor: User, group_by: str) -> TicketField:
    """The dropdown field ``group_by`` names; InvalidInput at ``group_by`` otherwise."""
    key = group_by.removeprefix(PREFIX)
    definition = values.defined_fields(active_only=False).get(key)
    if not group_by.startswith(PREFIX) or definition is None or not values.sees(actor, definition):
        raise InvalidInput(
            "Please correct the grouping.", {"group_by": [f"Unknown field {key!r}."]}
        )
    if definition.type is not FieldType.DROPDOWN:
        raise InvalidInput(
            "Please correct the grouping.",
            {"group_by": [f"{definition.label} is not a dropdown: only dropdowns group reports."]},
        )
    return definition


def field_groups(
    ids: list[int], since: Any, until: Any, open_categories: tuple[str, ...], field: TicketField
) -> dict[int, list[dict[str, Any]]]:
    """Per team id: one entry per option (and one for no value, if any ticket has none)."""
    value = values.value_sql(field.key)
    in_teams = Ticket.team_id.in_(ids)
    where: dict[str, tuple[ColumnElement[bool], ...]] = {
        "created": (Ticket.created_at >= since, Ticket.created_at < until),
        "solved": (Ticket.solved_at >= since, Ticket.solved_at < until),
        "backlog_now": (Ticket.category.in_(open_categories),),
    }
    counts: dict[int, dict[str | None, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: dict.fromkeys(MEASURES, 0))
    )
    for measure, conditions in where.items():
        stmt = (
            select(Ticket.team_id, value, func.count())
            .where(in_teams, *conditions)
            .group_by(Ticket.team_id, value)
        )
        rows: Result[int, Any, int] = db.session.execute(stmt)
        for team_id, option, n in rows:
            counts[team_id][None if option is None else str(option)][measure] = n
    labels = field.option_labels()
    return {team_id: _entries(counts.get(team_id, {}), labels) for team_id in ids}


def _entries(
    by_value: dict[str | None, dict[str, int]], labels: dict[str, str]
) -> list[dict[str, Any]]:
    zero = dict.fromkeys(MEASURES, 0)
    held = [v for v in by_value if v is not None and v not in labels]
    entries = [
        {"value": v, "label": labels.get(v, v), **by_value.get(v, zero)} for v in [*labels, *held]
    ]
    if None in by_value:
        entries.append({"value": None, "label": NO_VALUE, **by_value[None]})
    return entries
