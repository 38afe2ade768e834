"""A user's notifications as the in-app page shows them: one entry per ticket, newest first.

Help-desk users read notifications per conversation (as in Zendesk or Zammad): five replies on
one ticket are one entry saying "5 unread", not five rows. A notification about no ticket is an
entry of its own.

The grouping is one aggregate query over the user's rows (served by the index on
``(user_id, ticket_id, id)``); nothing loads every notification. A page of entries is a keyset
range over each entry's newest notification id: ids only grow, so an entry can move up (a new
notification on its ticket) but never onto a later page, and ids are unique, so paging needs
no tie-breaker and shows no entry twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, CursorResult, Row, Select, case, func, select, update

from autocrm.columns import utcnow
from autocrm.errors import InvalidInput
from autocrm.extensions import db
from autocrm.listing import bad_cursor, decode_cursor, encode_cursor
from autocrm.notifications.models import Notification
from autocrm.people.models import User
from autocrm.transaction import rolls_back_on_error

PAGE_SIZE = 20
# An entry lists its newest notifications; a ticket with hundreds says how many more there are.
ITEMS_PER_ENTRY = 10
# Listing cursors carry the name of their ordering, so a cursor of another listing is refused.
CURSOR_SORT = "notification-entries"
# PostgreSQL integer columns end there; a larger number from a client must not reach SQL.
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class InboxItem:
    id: int
    kind: str
    title: str
    created_at: datetime
    read: bool


@dataclass
class InboxEntry:
    """One ticket's notifications (or a single one about no ticket)."""

    ticket_id: int | None
    newest: InboxItem
    total: int
    unread: int
    items: list[InboxItem] = field(default_factory=list)  # newest first, ITEMS_PER_ENTRY at most

    @property
    def key(self) -> str:
        """Unique on the page: an anchor and a test hook."""
        return f"ticket-{self.ticket_id}" if self.ticket_id else f"note-{self.newest.id}"

    @property
    def not_listed(self) -> int:
        return self.total - len(self.items)


@dataclass(frozen=True)
class InboxPage:
    entries: list[InboxEntry]
    next_cursor: str | None
    unread: int  # all of the user's unread notifications, on any page
    newest_id: int | None  # the newest notification: "mark all read" stops there


def _item(note: Notification) -> InboxItem:
    return InboxItem(note.id, note.kind, note.title, note.created_at, note.read_at is not None)


def check_cursor(cursor: str) -> int:
    """The newest id of the last entry a page showed; 422 for anything not made here."""
    _, last_id = decode_cursor(cursor, CURSOR_SORT)
    if not 1 <= last_id <= MAX_ID:
        raise bad_cursor()
    return last_id


def _unread() -> ColumnElement[int]:
    return func.sum(case((Notification.read_at.is_(None), 1), else_=0))


def _entries_stmt(actor: User) -> Select:
    """Per entry: its ticket, newest notification id, size and unread count. A notification
    without a ticket is grouped by its own id, so it stands alone."""
    return (
        select(
            Notification.ticket_id,
            func.max(Notification.id).label("newest_id"),
            func.count(Notification.id).label("total"),
            _unread().label("unread"),
        )
        .where(Notification.user_id == actor.id)
        .group_by(
            Notification.ticket_id,
            case((Notification.ticket_id.is_(None), Notification.id), else_=None),
        )
    )


def _items_of(actor: User, ticket_ids: Sequence[int]) -> dict[int, list[InboxItem]]:
    """The newest ITEMS_PER_ENTRY notifications of each of these tickets, in one query."""
    if not ticket_ids:
        return {}
    rank = (
        func.row_number()
        .over(partition_by=Notification.ticket_id, order_by=Notification.id.desc())
        .label("rank")
    )
    ranked = (
        select(Notification.id, rank)
        .where(Notification.user_id == actor.id, Notification.ticket_id.in_(ticket_ids))
        .subquery()
    )
    notes = db.session.scalars(
        select(Notification)
        .join(ranked, ranked.c.id == Notification.id)
        .where(ranked.c.rank <= ITEMS_PER_ENTRY)
        .order_by(Notification.id.desc())
    )
    items: dict[int, list[InboxItem]] = {}
    for note in notes:
        items.setdefault(note.ticket_id, []).append(_item(note))  # type: ignore[arg-type]
    return items


def _summary(actor: User) -> tuple[int, int | None]:
    """(unread notifications, newest notification id) of the actor."""
    row = db.session.execute(
        select(_unread(), func.max(Notification.id)).where(Notification.user_id == actor.id)
    ).one()
    return int(row[0] or 0), row[1]


def _entry(row: Row, first: InboxItem, items: list[InboxItem] | None) -> InboxEntry:
    # Each query sees its own snapshot on PostgreSQL: leave out what arrived after the count.
    listed = [item for item in items or [first] if item.id <= first.id]
    return InboxEntry(row.ticket_id, first, row.total, int(row.unread or 0), listed)


def list_inbox(actor: User, cursor: str | None = None, limit: int = PAGE_SIZE) -> InboxPage:
    """A page of the actor's entries, newest first, after ``cursor`` (the previous page's
    ``next_cursor``); InvalidInput (422) for a cursor that is not one."""
    grouped = _entries_stmt(actor)
    if cursor:
        grouped = grouped.having(func.max(Notification.id) < check_cursor(cursor))
    limit = max(1, min(limit, PAGE_SIZE * 5))
    rows = db.session.execute(
        grouped.order_by(func.max(Notification.id).desc()).limit(limit + 1)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    newest = {
        note.id: note
        for note in db.session.scalars(
            select(Notification).where(Notification.id.in_([row.newest_id for row in rows]))
        )
    }
    items = _items_of(actor, [row.ticket_id for row in rows if row.ticket_id and row.total > 1])
    entries = [
        _entry(row, _item(newest[row.newest_id]), items.get(row.ticket_id))
        for row in rows
        if row.newest_id in newest  # gone meanwhile (its ticket deleted)
    ]
    unread, newest_id = _summary(actor)
    next_cursor = encode_cursor(CURSOR_SORT, None, rows[-1].newest_id) if more else None
    return InboxPage(entries, next_cursor, unread, newest_id)


@rolls_back_on_error
def do_mark_ticket_read(actor: User, ticket_id: int, up_to: int | None = None) -> int:
    """Mark the actor's unread notifications about one ticket read, or those with ids up to
    ``up_to`` (what the page showed, so one that arrived meanwhile stays unread). Returns how
    many; a ticket the actor has no notifications about marks none (and reveals nothing)."""
    stmt = (
        update(Notification)
        .where(
            Notification.user_id == actor.id,
            Notification.ticket_id == ticket_id,
            Notification.read_at.is_(None),
        )
        .values(read_at=utcnow())
    )
    if up_to is not None:
        stmt = stmt.where(Notification.id <= up_to)
    result = db.session.execute(stmt, execution_options={"synchronize_session": False})
    db.session.commit()
    return cast(CursorResult, result).rowcount


def message_of(actor: User, ticket_id: int, notification_id: int | None) -> int | None:
    """The note the actor's notification about the ticket is about (a mention), where its
    entry opens the ticket; None for anything else, or someone else's notification."""
    if notification_id is None:
        return None
    return db.session.scalar(
        select(Notification.message_id).where(
            Notification.id == notification_id,
            Notification.user_id == actor.id,
            Notification.ticket_id == ticket_id,
        )
    )


def check_up_to(raw: str | None) -> int | None:
    """The ``up_to`` a page's form sends: absent is "all", anything but an id is a 422."""
    raw = (raw or "").strip()
    if not raw:
        return None
    if not raw.isdecimal() or not 1 <= int(raw) <= MAX_ID:
        raise InvalidInput(
            "The form is out of date; reload the page.", {"up_to": ["Not a notification id."]}
        )
    return int(raw)
