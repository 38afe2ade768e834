"""The customer page agents open from a ticket's requester: who the customer is, their
organization, their tickets (open first), and the name and notes agents keep up to date.

Notes are staff-only: no customer-facing page, API answer or email carries them. A change is
recorded in the admin audit log in its transaction, like every other change to a person.
"""

from __future__ import annotations

from sqlalchemy import case, select

from autocrm import policies
from autocrm.audit import services as audit
from autocrm.errors import Forbidden, InvalidInput, NotFound
from autocrm.extensions import db
from autocrm.people import users
from autocrm.people.models import Role, User
from autocrm.requestguard import UNSTORABLE_TEXT, is_storable
from autocrm.tickets.models import Ticket
from autocrm.transaction import rolls_back_on_error
from workflows.definition import DONE_CATEGORIES

MAX_NOTES_LENGTH = 10_000
TICKETS_SHOWN = 100


def access_customer_by_id(actor: User, user_id: int) -> User:
    """A customer, for staff; anyone else (and any staff account) is not found here."""
    customer = db.session.get(User, user_id)
    if customer is None or customer.role is not Role.CUSTOMER or not policies.is_staff(actor):
        raise NotFound(f"Customer {user_id} not found.")
    return customer


def tickets_of(actor: User, customer: User) -> list[Ticket]:
    """The customer's tickets ``actor`` may see: open ones first, then by latest change."""
    done_last = case((Ticket.category.in_(DONE_CATEGORIES), 1), else_=0)
    return list(
        db.session.scalars(
            select(Ticket)
            .where(policies.visible_tickets(actor), Ticket.requester_id == customer.id)
            .order_by(done_last, Ticket.updated_at.desc(), Ticket.id.desc())
            .limit(TICKETS_SHOWN)
        )
    )


def check_notes(notes: str) -> str:
    if len(notes) > MAX_NOTES_LENGTH:
        raise InvalidInput(
            "Notes are too long.", {"notes": [f"At most {MAX_NOTES_LENGTH} characters."]}
        )
    if not is_storable(notes):
        raise InvalidInput("Invalid text in notes.", {"notes": [UNSTORABLE_TEXT]})
    return notes.strip()


@rolls_back_on_error
def do_update_customer(actor: User, user_id: int, *, name: str, notes: str) -> User:
    customer = access_customer_by_id(actor, user_id)
    if not policies.can_edit_customer(actor, customer):
        raise Forbidden("This token may only read.")
    errors: dict[str, list[str]] = {}
    clean: dict[str, str] = {}
    for field, check in (("name", users.check_name), ("notes", check_notes)):
        try:
            clean[field] = check(name if field == "name" else notes)
        except InvalidInput as exc:
            errors.update(exc.errors)
    if errors:
        raise InvalidInput("Please correct the marked fields.", errors)
    changes = {
        field: [getattr(customer, field), value]
        for field, value in clean.items()
        if getattr(customer, field) != value
    }
    for field, (_, value) in changes.items():
        setattr(customer, field, value)
    if changes:
        audit.record(actor, "user.updated", customer, changes)
    db.session.commit()
    return customer
