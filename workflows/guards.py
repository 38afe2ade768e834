"""Guard conditions a transition may name. Each takes the ticket being moved and the actor.

The ticket is duck-typed (anything with the attributes a guard reads) so the engine depends on
no database model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Guard = Callable[[Any, Any], bool]


def has_assignee(ticket: Any, actor: Any) -> bool:
    return ticket.assignee_id is not None


def has_team(ticket: Any, actor: Any) -> bool:
    return ticket.team_id is not None


def actor_is_assignee(ticket: Any, actor: Any) -> bool:
    return actor is not None and ticket.assignee_id == actor.id


GUARDS: dict[str, Guard] = {
    "has_assignee": has_assignee,
    "has_team": has_team,
    "actor_is_assignee": actor_is_assignee,
}

# Guards that depend on who fires the transition, not only on the ticket: a page that is sent
# one ticket for many viewers applies these itself (``autocrm.tickets.representation``).
ACTOR_GUARDS = frozenset({"actor_is_assignee"})
