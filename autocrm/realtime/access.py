"""Taking a ticket's live events away from the people who may no longer see it.

A socket joins a ticket's rooms (``ticket:<id>``, ``ticket:<id>:staff``) after the same
policy check as the REST API (``join_ticket``); emits to a room are not checked again. So
when a change takes away someone's view of a ticket (its team or its requester changes),
their sockets must leave its rooms, in whichever web process holds them.

Why the rooms, and not a check at emit time: a room is the server's own fan-out (one message
on the Redis channel, delivered by each process to its local members). Checking every
recipient at every emit would put a database read per socket per event into every process,
and the emits that are never stored (typing, presence) would need the same check again.
Keeping room membership equal to "may see it" makes every later emit right by construction,
whichever process or worker sends it.

How: in the change's transaction, ``drop_lost_viewers`` finds who could see the ticket before
(the old team's agents, or every agent for the triage queue; the old requester) and can't now
(``policies.can_view_ticket``, the rule ``join_ticket`` applies). After commit, each of their
sockets (their ids are kept in Redis per user, see ``publish.user_sockets_key``) leaves the
rooms through python-socketio's ``leave_room``: done at once when the socket is in this
process, otherwise published on the Socket.IO Redis channel for the process that holds it.
The emits travel on that channel too, in order, so nothing sent after the change reaches
those sockets. Workers (a write-only emitter) publish the same request.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from autocrm import aftercommit, policies
from autocrm.extensions import db
from autocrm.people.models import Role, TeamMembership, User
from autocrm.realtime.publish import emit_presence, presence_key, user_sockets_key
from autocrm.realtime.rooms import staff_room, ticket_room
from autocrm.tickets.models import Ticket

_KIND = "socketio_leave_ticket"


def drop_lost_viewers(ticket: Ticket, diff: dict[str, list[Any]]) -> None:
    """After commit, take the ticket's rooms from whoever ``diff`` (``{field: [old, new]}``
    of the change just applied) took the ticket from."""
    lost = [user.id for user in _former_viewers(diff) if not policies.can_view_ticket(user, ticket)]
    if lost:
        aftercommit.add(_KIND, (ticket.id, lost))


def drop_viewer(ticket: Ticket, user: User) -> None:
    """After commit, take the ticket's rooms from ``user`` if the change just applied (say,
    they stopped following it) took the ticket from them."""
    if not policies.can_view_ticket(user, ticket):
        aftercommit.add(_KIND, (ticket.id, [user.id]))


def _former_viewers(diff: dict[str, list[Any]]) -> list[User]:
    """Everyone whose view of the ticket depended on the fields that changed (admins see
    every ticket, so they are never among them)."""
    users: list[User] = []
    if "team_id" in diff:
        old_team_id = diff["team_id"][0]
        agents = (
            select(User)
            .where(User.role == Role.AGENT, User.active.is_(True))
            .options(selectinload(User.memberships))  # the policy reads every agent's teams
        )
        if old_team_id is not None:  # otherwise the triage queue: every agent saw it
            agents = agents.join(TeamMembership).where(TeamMembership.team_id == old_team_id)
        users += db.session.scalars(agents)
    if "requester_id" in diff and diff["requester_id"][0] is not None:
        requester = db.session.get(User, diff["requester_id"][0])
        users += [requester] if requester is not None else []
    return users


def _leave_queued(items: list[tuple[int, list[int]]]) -> None:
    server = current_app.extensions.get("socketio")
    if server is None:
        return
    store = current_app.extensions["autocrm.redis"]
    for ticket_id, user_ids in items:
        for user_id in user_ids:
            for sid in store.smembers(user_sockets_key(user_id)):
                for room in (ticket_room(ticket_id), staff_room(ticket_id)):
                    server.server.leave_room(sid.decode(), room, namespace="/")
                # Nor are they among its viewers any more.
                store.srem(presence_key(ticket_id), f"{user_id}:{sid.decode()}")
        emit_presence(ticket_id)


def install() -> None:
    aftercommit.register(_KIND, _leave_queued)
