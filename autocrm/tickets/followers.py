"""Ticket followers (CC): people kept informed of a ticket besides its requester and assignee.

A customer who follows a ticket sees it and hears of it as its requester does (public replies
and status changes, never internal notes: ``policies.can_view_ticket``/``visible_tickets``);
a staff follower hears of every update the assignee would. Who may add whom:
- staff add staff (who can see the ticket) or customers, by id or by email;
- a customer who sees the ticket (its requester, a follower) adds colleagues by email, made
  customers through ``people.intake.find_or_create_customer`` if new; never staff;
- staff remove anyone; anyone removes themselves (unfollows).

``add_followers`` is the core the email channel calls with a message's Cc addresses, inside
its own transaction; ``do_add_follower``/``do_remove_follower`` are the services the API and
pages call, and own their transaction. Someone added by another person is emailed why (a new
customer with a link to set a password, as the anonymous form does).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from autocrm import aftercommit, policies
from autocrm.errors import Forbidden, InvalidInput, NotFound
from autocrm.events.emit import by, emit
from autocrm.events.kinds import FollowerAdded, FollowerRemoved
from autocrm.extensions import db
from autocrm.notifications.emails import queue_email
from autocrm.people import intake
from autocrm.people.models import User
from autocrm.realtime import access as realtime_access
from autocrm.security import issue_password_reset_token
from autocrm.tickets.models import Ticket, TicketFollower
from autocrm.tickets.services import access_ticket_by_id
from autocrm.transaction import rolls_back_on_error

SOURCE = "follower"  # what made a customer added by email, in the audit log


# -- reading -----------------------------------------------------------------------------------


def followers_of(ticket_id: int) -> list[User]:
    """Everyone following the ticket, in the order they were added (no permission check)."""
    stmt = (
        select(User)
        .join(TicketFollower, TicketFollower.user_id == User.id)
        .where(TicketFollower.ticket_id == ticket_id)
        .order_by(TicketFollower.id)
    )
    return list(db.session.scalars(stmt))


def list_followers(actor: User, ticket_id: int) -> list[User]:
    """The followers of a ticket the actor may see (anyone who sees the ticket sees them)."""
    return followers_of(access_ticket_by_id(actor, ticket_id).id)


# -- the core, in the caller's transaction -----------------------------------------------------


def add_followers(ticket: Ticket, users: Iterable[User], *, actor: User | None) -> list[User]:
    """Make ``users`` follow ``ticket`` (the caller decided they may), in the caller's
    transaction, without committing: the requester, people already following and deactivated
    accounts are skipped. Each added user is a ``FollowerAdded`` event in the ticket's trail.
    Returns those newly added, in order."""
    following = {user.id for user in followers_of(ticket.id)}
    added: list[User] = []
    for user in dict.fromkeys(users):
        if user.id == ticket.requester_id or user.id in following or not user.active:
            continue
        try:
            with aftercommit.savepoint():
                db.session.add(
                    TicketFollower(
                        ticket_id=ticket.id,
                        user_id=user.id,
                        added_by_id=actor.id if actor else None,
                    )
                )
        except IntegrityError:  # a concurrent add of the same person won
            continue
        following.add(user.id)
        emit(FollowerAdded(ticket_id=ticket.id, **by(actor), user_id=user.id))
        added.append(user)
    return added


# -- checks ------------------------------------------------------------------------------------


def _refused(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, {field: [message]})


def check_new_follower(actor: User, ticket: Ticket, user: User, *, field: str) -> None:
    """``user`` may become a follower of ``ticket`` by ``actor``'s hand: InvalidInput naming
    ``field`` (what the actor typed: ``user_id`` or ``email``) otherwise."""
    if not user.active:
        raise _refused(field, "This account is deactivated.")
    if not policies.may_add_as_follower(actor, user):
        raise _refused(field, "Only support staff may add support staff as followers.")
    if policies.is_staff(user) and not policies.can_view_ticket(user, ticket):
        raise _refused(field, f"{user.name} cannot see this ticket (not in its team).")
    if user.id == ticket.requester_id:
        raise _refused(field, "This is the ticket's requester, who hears of it anyway.")
    if db.session.scalar(
        select(TicketFollower.id).where(
            TicketFollower.ticket_id == ticket.id, TicketFollower.user_id == user.id
        )
    ):
        raise _refused(field, f"{user.name} already follows this ticket.")


def _person(actor: User, user_id: int | None, email: str | None, name: str) -> tuple[User, str]:
    """Who is to follow, and the field that named them: a user by id (staff only), or by
    email (a customer found or created)."""
    if (user_id is None) == (email is None or not email.strip()):
        raise _refused("email", "Give the new follower's email address (or, staff, a user).")
    if user_id is not None:
        user = db.session.get(User, user_id) if policies.is_staff(actor) else None
        if user is None:
            raise _refused("user_id", f"No user {user_id}.")
        return user, "user_id"
    assert email is not None
    return intake.find_or_create_customer(email, name, SOURCE), "email"


# -- services ----------------------------------------------------------------------------------


@rolls_back_on_error
def do_add_follower(
    actor: User,
    ticket_id: int,
    *,
    user_id: int | None = None,
    email: str | None = None,
    name: str = "",
) -> User:
    """Add one follower: by ``user_id`` (staff picking a user) or by ``email`` (a customer
    found or made through the one path, named ``name`` if new). Returns the follower."""
    ticket = access_ticket_by_id(actor, ticket_id)
    if not policies.can_add_followers(actor, ticket):
        raise Forbidden("You may not add followers to this ticket.")
    user, field = _person(actor, user_id, email, name)
    check_new_follower(actor, ticket, user, field=field)
    if not add_followers(ticket, [user], actor=actor):
        raise _refused(field, f"{user.name} already follows this ticket.")
    _tell_new_follower(actor, ticket, user)
    db.session.commit()
    return user


def _tell_new_follower(actor: User, ticket: Ticket, user: User) -> None:
    """Email the new follower why they will hear of this ticket, and how to see it: a customer
    made just now (no password yet) gets a link to set one, like a request sent without an
    account."""
    base = current_app.config["AUTOCRM_BASE_URL"].rstrip("/")
    if user.role.is_staff:
        see = f"See it here: {base}/agent/tickets/{ticket.id}"
    elif user.email_verified_at is None:
        token = issue_password_reset_token(user.id, user.password_hash)
        see = f"Set a password to see it online and answer there:\n\n{base}/password/reset/{token}"
    else:
        see = f"See it here: {base}/portal/tickets/{ticket.id}"
    queue_email(
        user.email,
        f"You now follow [#{ticket.id}] {ticket.subject}",
        f"Hello {user.name},\n\n{actor.name} added you as a follower of ticket #{ticket.id} "
        f'"{ticket.subject}": you will get its replies and status changes by email.\n\n'
        f"{see}\n\nTo stop, unfollow the ticket on its page.",
        dedupe_key=f"follower-added:{ticket.id}:{user.id}:{secrets.token_hex(8)}",
        ticket_id=ticket.id,
    )


@rolls_back_on_error
def do_remove_follower(actor: User, ticket_id: int, user_id: int) -> None:
    """Staff remove a follower; anyone removes themselves (unfollows). Someone who no longer
    may see the ticket then loses its live events too."""
    ticket = access_ticket_by_id(actor, ticket_id)
    if not policies.can_remove_follower(actor, user_id):
        raise Forbidden("Only staff remove other followers; you may unfollow yourself.")
    removed = db.session.execute(
        delete(TicketFollower).where(
            TicketFollower.ticket_id == ticket.id, TicketFollower.user_id == user_id
        )
    )
    if not removed.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"User {user_id} does not follow ticket {ticket.id}.")
    emit(FollowerRemoved(ticket_id=ticket.id, **by(actor), user_id=user_id))
    user = db.session.get(User, user_id)
    if user is not None:
        realtime_access.drop_viewer(ticket, user)
    db.session.commit()


def follower_view(user: User, *, for_staff: bool) -> dict[str, object]:
    """A follower as a page or the API shows them: customers see the addresses of customer
    followers (the colleagues they added), never the support team's."""
    email = user.email if for_staff or not policies.is_staff(user) else None
    return {"id": user.id, "name": user.name, "role": user.role.value, "email": email}


def follower_views(actor: User, ticket_id: int) -> list[dict[str, object]]:
    """The followers of a ticket the actor may see, as ``follower_view`` shows them to them."""
    staff = policies.is_staff(actor)
    return [follower_view(u, for_staff=staff) for u in list_followers(actor, ticket_id)]
