"""A ticket entering a workflow state: the one place that keeps what a state change implies.

Transitions (``tickets.services.fire_transition``) and the publish-time migration onto a new
workflow version (``engine.publishing``) both move tickets between states; both call
``enter_state`` so that the category timestamps reports read (``solved_at``, ``closed_at``,
the resolution time) and the SLA clocks change the same way, at the change's time, in the
caller's transaction. No worker has to catch up later.
"""

from __future__ import annotations

from datetime import datetime

from autocrm.sla import clocks as sla
from autocrm.tickets.models import Ticket
from workflows.calendar import business_seconds_between
from workflows.definition import DONE_CATEGORIES


def enter_state(
    ticket: Ticket, *, from_category: str, to_state: str, to_category: str, now: datetime
) -> None:
    """Put ``ticket`` (leaving a state of ``from_category``) in ``to_state`` at ``now``.
    The category's timestamps and the SLA clocks change only when the category does: a
    ticket moved between two solved states was not solved again."""
    ticket.status = to_state
    ticket.category = to_category
    ticket.status_changed_at = now
    if to_category == from_category:
        return
    if to_category == "solved":
        mark_solved(ticket, now)
    elif to_category == "closed":
        ticket.closed_at = now
    elif from_category in DONE_CATEGORIES:
        mark_reopened(ticket)
    sla.on_category_change(ticket, from_category, now)


def business_seconds_since_created(ticket: Ticket, moment: datetime) -> float:
    """Business seconds from the ticket's creation to ``moment``, in the ticket's calendar."""
    return business_seconds_between(ticket.created_at, moment, sla.calendar_for_ticket(ticket))


def mark_solved(ticket: Ticket, now: datetime) -> None:
    """Solved at ``now``: its resolution time is known (anew, if it had been reopened), and a
    ticket solved again out of a closed state is no longer closed."""
    ticket.solved_at = now
    ticket.closed_at = None
    ticket.resolution_business_seconds = business_seconds_since_created(ticket, now)


def mark_reopened(ticket: Ticket) -> None:
    """Out of solved/closed again: neither moment, nor the resolution time, holds any more."""
    ticket.solved_at = ticket.closed_at = None
    ticket.resolution_business_seconds = None
