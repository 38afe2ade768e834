"""How high a customer may set a ticket's priority (the admin's choice; default: up to High).

Urgent starts a 60-minute SLA and alerts a lead, so it is the team's call, not every
requester's. The cap is checked where tickets are made (``services.do_create_ticket``), so the
API, the portal and any other door refuse the same way: a 422 naming ``priority``. Staff are
never capped. The setting lives in the site settings table, next to the sign-up and two-factor
policies, and each change is in the audit log.
"""

from __future__ import annotations

from autocrm import policies
from autocrm.audit import services as audit
from autocrm.errors import Forbidden, InvalidInput
from autocrm.extensions import db
from autocrm.people.models import User
from autocrm.site import settings as site
from autocrm.tickets.models import Priority
from autocrm.transaction import rolls_back_on_error


def customer_max_priority() -> Priority:
    """The highest priority a customer may choose."""
    label = site.value(site.CUSTOMER_MAX_PRIORITY)
    try:
        return Priority.from_label(str(label))
    except KeyError:  # a value no release wrote: the safe default, not a 500
        return Priority.from_label(site.DEFAULTS[site.CUSTOMER_MAX_PRIORITY])


def allowed_priorities(actor: User) -> list[Priority]:
    """The priorities ``actor`` may give a ticket, lowest first."""
    if policies.is_staff(actor):
        return list(Priority)
    cap = customer_max_priority()
    return [p for p in Priority if p <= cap]


def check_priority_allowed(actor: User, priority: Priority) -> None:
    """InvalidInput (422, naming ``priority``) when ``actor`` may not choose ``priority``."""
    allowed = allowed_priorities(actor)
    if priority not in allowed:
        highest = allowed[-1].label.capitalize()
        raise InvalidInput(
            f"Customers may choose a priority up to {highest}.",
            {"priority": [f"Choose a priority up to {highest}; our team raises it if needed."]},
        )


def check_cap(label: str) -> Priority:
    try:
        return Priority.from_label(label.strip())
    except KeyError:
        choices = ", ".join(p.label for p in Priority)
        raise InvalidInput(
            "Unknown priority.", {"max_priority": [f"Choose one of {choices}."]}
        ) from None


@rolls_back_on_error
def do_set_customer_max_priority(actor: User, label: str) -> Priority:
    """Admins choose how high customers may set priority; recorded in the audit log."""
    if not policies.can_administer(actor):
        raise Forbidden("Only administrators choose the priorities customers may set.")
    cap = check_cap(label)
    before = site.stage(site.CUSTOMER_MAX_PRIORITY, cap.label)
    target = audit.Target("setting", None, "Customer priority cap")
    audit.record(
        actor,
        "settings.customer_max_priority",
        target,
        {"customer_max_priority": [before, cap.label]},
    )
    db.session.commit()
    return cap
