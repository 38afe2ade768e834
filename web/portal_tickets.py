"""The portal's "My tickets": open tickets first, then the rest, searchable and in pages.

A customer with 92 closed tickets used to get one endless page. Here each section (open work,
then solved and closed) is a page of ``PAGE_SIZE`` from the ticket service's own listing
(``list_tickets``: the same visibility rules, search and keyset cursors as the API and the
agent queue); "Older tickets" follows one section's cursor. Filters come from the query
string, so a search is a link that can be shared, reloaded and used without JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autocrm.errors import DomainError
from autocrm.listing import PageRequest
from autocrm.people.models import User
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Ticket
from workflows.definition import DONE_CATEGORIES

PAGE_SIZE = 25
# The status filter a customer sees, as workflow categories ("open" includes new tickets).
STATUS_CATEGORIES = {
    "open": ("new", "open"),
    "pending": ("pending",),
    "solved": ("solved",),
    "closed": ("closed",),
}
STATUS_LABELS = {
    "": "Any status",
    "open": "Open",
    "pending": "Waiting on you",
    "solved": "Solved",
    "closed": "Closed",
}
BROKEN_LINK = "That page link is broken; start from the first page."
# The page's two sections, open work first.
SECTIONS = (
    ("open", "Open", ("new", "open", "pending")),
    ("closed", "Solved and closed", DONE_CATEGORIES),
)


@dataclass
class Section:
    key: str
    title: str
    rows: list[Ticket]
    next_cursor: str | None


@dataclass
class MyTickets:
    q: str = ""
    status: str = ""
    paged: str = ""  # the section a cursor pages through ("" on the first page)
    cursor: str | None = None
    sections: list[Section] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def filtered(self) -> bool:
        return bool(self.q or self.status)

    @property
    def rows(self) -> list[Ticket]:
        return [t for s in self.sections for t in s.rows]


def _parse(args: Any) -> MyTickets:
    query = MyTickets(
        q=(args.get("q") or "").strip(),
        status=args.get("status") or "",
        paged=args.get("section") or "",
        cursor=args.get("cursor") or None,
    )
    if query.status not in STATUS_LABELS:
        query.errors["status"] = "Choose a status from the list."
    if (query.paged and query.paged not in {k for k, _, _ in SECTIONS}) or (
        query.cursor and not query.paged
    ):
        query.errors["cursor"] = BROKEN_LINK
    return query


def _load_section(user: User, query: MyTickets, key: str, title: str, categories: Any) -> None:
    wanted = STATUS_CATEGORIES.get(query.status, categories)
    shown = [c for c in categories if c in wanted]
    if not shown or (query.paged and query.paged != key):
        return
    filters = tickets.TicketFilters(category=shown, q=query.q or None)
    cursor = query.cursor if query.paged == key else None
    page = tickets.list_tickets(
        user, filters, PageRequest(limit=PAGE_SIZE, cursor=cursor, sort="-updated_at")
    )
    query.sections.append(Section(key, title, page.items, page.next_cursor))


def my_tickets(user: User, args: Any) -> MyTickets:
    """The dashboard's sections for the query string ``args`` (``errors`` says what to fix)."""
    query = _parse(args)
    if query.errors:
        return query
    try:
        for key, title, categories in SECTIONS:
            _load_section(user, query, key, title, categories)
    except DomainError as exc:  # a search too long, a forged or stale cursor
        query.sections = []
        errors = {name: str(messages[0]) for name, messages in exc.errors.items()}
        if "cursor" in errors or not errors:
            errors["cursor"] = BROKEN_LINK
        query.errors.update(errors)
    return query
