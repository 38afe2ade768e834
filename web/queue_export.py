"""The queue as CSV (``/agent/tickets.csv``): the tickets of the view narrowed by the form's
filters, every page, with the custom fields the agent sees as columns (by their labels).

Streamed a keyset page at a time, so a large view costs one page of memory and the same few
queries per page; cells that a spreadsheet would run as a formula are kept as text. The first
page is read before the response starts, so a bad filter or cursor is still a 4xx.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from flask import Response, stream_with_context

from autocrm.columns import utcnow
from autocrm.fields import values as field_values
from autocrm.fields.models import TicketField
from autocrm.listing import Page, PageRequest
from autocrm.people.models import User
from autocrm.tickets import queue
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Ticket
from web.csv_cells import BOM, cell

EXPORT_PAGE = 200
COLUMNS = (
    "Ticket",
    "Subject",
    "Requester",
    "Organization",
    "Status",
    "Priority",
    "Assignee",
    "Team",
    "Tags",
    "Created (UTC)",
    "Updated (UTC)",
)


def _iso(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _rows(
    items: list[Ticket], team_names: dict[int, str], fields: list[TicketField]
) -> list[list[str]]:
    people = queue.people_of(items)
    names, requesters = people.names, people.requesters
    rows = []
    for t in items:
        who = requesters.get(t.id)
        values = t.custom_fields or {}
        row = [
            t.id,
            t.subject,
            who.name if who else None,
            who.organization if who else None,
            queue.status_label(t),
            t.priority.label,
            names.get(t.assignee_id) if t.assignee_id else None,
            team_names.get(t.team_id) if t.team_id else None,
            " ".join(t.tags),
            _iso(t.created_at),
            _iso(t.updated_at),
            *(field_values.display(f, values.get(f.key)) for f in fields),
        ]
        rows.append([cell(v) for v in row])
    return rows


def _matching_sla(items: list[Ticket], sla: str | None) -> list[Ticket]:
    if sla is None:
        return items
    due, now = queue.sla_due(t.id for t in items), utcnow()
    return [t for t in items if queue.sla_state(due.get(t.id), now) == sla]


def csv_response(
    user: User,
    filters: tickets.TicketFilters,
    sort: str,
    sla: str | None,
    team_names: dict[int, str],
    filename: str,
) -> Response:
    fields = field_values.fields_for(user)

    def page(cursor: str | None) -> Page[Ticket]:
        return tickets.list_tickets(
            user, filters, PageRequest(limit=EXPORT_PAGE, cursor=cursor, sort=sort)
        )

    first = page(None)

    def lines() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([*COLUMNS, *(cell(f.label) for f in fields)])
        yield BOM + out.getvalue()
        found: Page[Ticket] | None = first
        while found is not None:
            out.seek(0)
            out.truncate()
            writer.writerows(_rows(_matching_sla(found.items, sla), team_names, fields))
            yield out.getvalue()
            found = page(found.next_cursor) if found.next_cursor else None

    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )
