"""A user's own notifications (list, mark read) and their per-kind email preferences.

Creating notifications is ``autocrm.notifications.services``; this module is what a user does
with theirs. Nobody sees or changes another user's notifications: they are simply not found.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update

from autocrm.columns import utcnow
from autocrm.errors import InvalidInput, NotFound
from autocrm.extensions import db
from autocrm.notifications.models import NOTIFICATION_KINDS, Notification, NotificationPreference
from autocrm.people.models import User
from autocrm.transaction import rolls_back_on_error

MAX_PAGE = 200


def list_notifications(
    actor: User,
    *,
    unread: bool = False,
    after: int | None = None,
    before: int | None = None,
    limit: int = 50,
) -> tuple[list[Notification], bool]:
    """The actor's notifications, newest first; and whether more follow (older ones).

    ``before``: only ids below it (the next page: pass the last id you got). ``after``: only
    ids above it (what arrived since the newest one you saw).
    """
    stmt = select(Notification).where(Notification.user_id == actor.id)
    if unread:
        stmt = stmt.where(Notification.read_at.is_(None))
    if after is not None:
        stmt = stmt.where(Notification.id > after)
    if before is not None:
        stmt = stmt.where(Notification.id < before)
    limit = max(1, min(limit, MAX_PAGE))
    rows = list(db.session.scalars(stmt.order_by(Notification.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def unread_count(actor: User) -> int:
    stmt = select(func.count(Notification.id)).where(
        Notification.user_id == actor.id, Notification.read_at.is_(None)
    )
    return db.session.scalar(stmt) or 0


def access_notification_by_id(actor: User, notification_id: int) -> Notification:
    note = db.session.get(Notification, notification_id)
    if note is None or note.user_id != actor.id:
        raise NotFound(f"Notification {notification_id} not found.")
    return note


@rolls_back_on_error
def do_mark_read(actor: User, notification_id: int) -> Notification:
    """Mark one notification read (again is fine: the first read time stays)."""
    note = access_notification_by_id(actor, notification_id)
    if note.read_at is None:
        note.read_at = utcnow()
        db.session.commit()
    return note


@rolls_back_on_error
def do_mark_all_read(actor: User, up_to: int | None = None) -> int:
    """Mark every unread notification read, or those with ids up to ``up_to`` (what the
    client has shown, so one that arrived meanwhile stays unread). Returns how many."""
    stmt = (
        update(Notification)
        .where(Notification.user_id == actor.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    if up_to is not None:
        stmt = stmt.where(Notification.id <= up_to)
    result = db.session.execute(stmt, execution_options={"synchronize_session": False})
    marked = cast(CursorResult[Any], result).rowcount  # an UPDATE's result is a CursorResult
    db.session.commit()
    return marked


def email_preferences(actor: User) -> dict[str, bool]:
    """Email on or off for every notification kind (on unless the user switched it off)."""
    off = set(
        db.session.scalars(
            select(NotificationPreference.kind).where(
                NotificationPreference.user_id == actor.id,
                NotificationPreference.email.is_(False),
            )
        )
    )
    return {kind: kind not in off for kind in NOTIFICATION_KINDS}


def check_kinds(kinds: Mapping[str, object]) -> None:
    unknown = sorted(set(kinds) - set(NOTIFICATION_KINDS))
    if unknown:
        raise InvalidInput(
            f"Unknown notification kind: {', '.join(unknown)}.",
            {kind: [f"Not one of: {', '.join(NOTIFICATION_KINDS)}."] for kind in unknown},
        )


@rolls_back_on_error
def do_set_email_preferences(actor: User, changes: Mapping[str, bool]) -> dict[str, bool]:
    """Switch email on or off per kind; kinds not named keep their setting."""
    check_kinds(changes)
    # One writer per user at a time, so two concurrent saves cannot both insert a row.
    db.session.execute(select(User.id).where(User.id == actor.id).with_for_update())
    stored = {
        pref.kind: pref
        for pref in db.session.scalars(
            select(NotificationPreference).where(NotificationPreference.user_id == actor.id)
        )
    }
    for kind, on in changes.items():
        pref = stored.get(kind)
        if on and pref is not None:
            db.session.delete(pref)  # only "off" is stored: no row is the default (on)
        elif not on and pref is None:
            db.session.add(NotificationPreference(user_id=actor.id, kind=kind, email=False))
        elif not on and pref is not None:
            pref.email = False
    db.session.commit()
    return email_preferences(actor)
