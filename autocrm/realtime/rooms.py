"""Socket.IO rooms.

``ticket:<id>`` (requester and staff: public messages, status changes), ``ticket:<id>:staff``
(internal notes, typing, who is viewing), ``team:<id>`` (queue changes, with ``team:none`` for
the triage queue), ``user:<id>`` (personal notifications).
"""

from __future__ import annotations


def ticket_room(ticket_id: int) -> str:
    return f"ticket:{ticket_id}"


def staff_room(ticket_id: int) -> str:
    return f"ticket:{ticket_id}:staff"


def team_room(team_id: int | None) -> str:
    return f"team:{team_id}" if team_id is not None else "team:none"


def user_room(user_id: int) -> str:
    return f"user:{user_id}"
