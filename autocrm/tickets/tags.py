"""The tags in use, for autocomplete: those on tickets the person may see, the most used first,
matching what they have typed so far (a prefix). Tags are stored lower case (``normalize_tags``).
"""

from __future__ import annotations

import re

from sqlalchemy import func, select

from autocrm import policies
from autocrm.errors import InvalidInput
from autocrm.extensions import db
from autocrm.people.models import User
from autocrm.tickets.models import Ticket, TicketTag
from autocrm.tickets.services import MAX_TAG_LENGTH, TAG_RULE

MAX_SUGGESTIONS = 50
PREFIX = re.compile(rf"^[a-z0-9_\-]{{0,{MAX_TAG_LENGTH}}}$")


def check_prefix(q: str) -> str:
    """What was typed, lower case: InvalidInput naming ``q`` if no tag can start with it."""
    prefix = q.strip().lower()
    if not PREFIX.match(prefix):
        raise InvalidInput("No tag starts like that.", {"q": [f"A tag is {TAG_RULE}."]})
    return prefix


def tags_in_use(actor: User, q: str = "", limit: int = 20) -> list[dict[str, object]]:
    """Tags starting with ``q`` on tickets ``actor`` may see, with how many such tickets carry
    each, most used first (then by name)."""
    prefix = check_prefix(q)
    uses = func.count(TicketTag.ticket_id)
    stmt = (
        select(TicketTag.tag, uses)
        .join(Ticket, Ticket.id == TicketTag.ticket_id)
        .where(policies.visible_tickets(actor))
        .group_by(TicketTag.tag)
        .order_by(uses.desc(), TicketTag.tag)
        .limit(max(1, min(limit, MAX_SUGGESTIONS)))
    )
    if prefix:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(TicketTag.tag.like(f"{escaped}%", escape="\\"))
    return [{"tag": row[0], "tickets": row[1]} for row in db.session.execute(stmt)]
