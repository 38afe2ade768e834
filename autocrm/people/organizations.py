"""Organizations: the companies customers belong to.

Admins create, change and delete organizations (name, email domains, notes, ``auto_join``) and
add or remove customers, marking some as managers; each change is recorded in the admin audit
log in the same transaction. A domain belongs to one organization at most (a unique constraint
on ``organization_domains.domain``). A new customer whose address is in the domain of an
organization with ``auto_join`` joins it as a plain member (``join_by_domain``, called by
``users.create_user``, the one path every customer is made by). What membership lets a customer
see is decided in ``autocrm.policies``: a manager sees every ticket of the organization's
customers, a plain member only their own. A manager who loses that view has their sockets
closed (they may sit in colleagues' ticket rooms), as a team member who leaves does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import func, select

from autocrm import policies
from autocrm.audit import services as audit
from autocrm.errors import Forbidden, InvalidInput, NotFound
from autocrm.extensions import db
from autocrm.people.models import Organization, OrganizationDomain, Role, User
from autocrm.realtime import publish as realtime
from autocrm.transaction import duplicates_refused, rolls_back_on_error

MAX_NAME_LENGTH = 120
MAX_NOTES_LENGTH = 5000
MAX_DOMAINS = 50
# A hostname: dot-separated labels of letters, digits and inner hyphens, at most 253 long.
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def require_admin(actor: User) -> None:
    if not policies.can_manage_organizations(actor):
        raise Forbidden("Only administrators may manage organizations.")


def access_organization_by_id(actor: User, organization_id: int) -> Organization:
    """Staff may look organizations up (the workspace shows them); customers may not."""
    organization = db.session.get(Organization, organization_id)
    if organization is None or not policies.can_view_organizations(actor):
        raise NotFound(f"Organization {organization_id} not found.")
    return organization


def list_organizations(actor: User) -> list[Organization]:
    """Every organization, by name (there are few: no paging)."""
    if not policies.can_view_organizations(actor):
        raise Forbidden("Only staff may list organizations.")
    return list(db.session.scalars(select(Organization).order_by(Organization.name)))


def member_counts() -> dict[int, int]:
    stmt = (
        select(User.organization_id, func.count())
        .where(User.organization_id.is_not(None))
        .group_by(User.organization_id)
    )
    return {org_id: count for org_id, count in db.session.execute(stmt) if org_id}


# -- checks ------------------------------------------------------------------------------------


def _name_in_use() -> InvalidInput:
    return InvalidInput(
        "Organization name in use.", {"name": ["An organization with this name exists."]}
    )


def _domain_taken() -> InvalidInput:
    return InvalidInput(
        "Domain in use.", {"domains": ["A domain may belong to one organization only."]}
    )


def check_name(name: str, except_id: int | None = None) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput("Organization name is blank.", {"name": ["Must not be blank."]})
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(
            "Organization name too long.",
            {"name": [f"Use at most {MAX_NAME_LENGTH} characters."]},
        )
    existing = db.session.scalar(select(Organization.id).where(Organization.name == name))
    if existing is not None and existing != except_id:
        raise _name_in_use()
    return name


def check_domains(domains: Sequence[str], except_id: int | None = None) -> list[str]:
    """Domains lower-cased, without a leading "@", each once; refused (naming ``domains``) if
    one is not a domain or belongs to another organization."""
    cleaned = list(dict.fromkeys(d.strip().lower().lstrip("@") for d in domains if d.strip()))
    bad = [d for d in cleaned if not _DOMAIN.match(d)]
    if bad:
        raise InvalidInput(
            "Not a domain.", {"domains": [f"Not a domain: {', '.join(bad)} (e.g. example.com)."]}
        )
    if len(cleaned) > MAX_DOMAINS:
        raise InvalidInput("Too many domains.", {"domains": [f"At most {MAX_DOMAINS}."]})
    taken = db.session.execute(
        select(OrganizationDomain.domain, Organization.name)
        .join(Organization)
        .where(OrganizationDomain.domain.in_(cleaned), Organization.id != (except_id or 0))
    ).all()
    if taken:
        owned = ", ".join(f"{domain} ({name})" for domain, name in taken)
        raise InvalidInput(
            "Domain in use.", {"domains": [f"Already in another organization: {owned}."]}
        )
    return cleaned


def check_notes(notes: str) -> str:
    if len(notes) > MAX_NOTES_LENGTH:
        raise InvalidInput(
            "Notes too long.", {"notes": [f"At most {MAX_NOTES_LENGTH} characters."]}
        )
    return notes


def _check_fields(fields: dict[str, Any], except_id: int | None = None) -> dict[str, Any]:
    """The fields given, checked, all errors at once."""
    errors: dict[str, list[str]] = {}
    checked = dict(fields)
    checks: dict[str, Callable[[Any], Any]] = {
        "name": lambda v: check_name(v, except_id),
        "domains": lambda v: check_domains(v, except_id),
        "notes": check_notes,
    }
    for field, check in checks.items():
        if field in fields:
            try:
                checked[field] = check(fields[field])
            except InvalidInput as exc:
                errors.update(exc.errors)
    if errors:
        raise InvalidInput("Please correct the organization.", errors)
    return checked


def _set_domains(organization: Organization, domains: list[str]) -> None:
    keep = [row for row in organization.domain_rows if row.domain in domains]
    have = {row.domain for row in keep}
    organization.domain_rows = keep + [
        OrganizationDomain(domain=d) for d in domains if d not in have
    ]


# -- admin changes -----------------------------------------------------------------------------


@rolls_back_on_error
def do_create_organization(
    actor: User,
    *,
    name: str,
    domains: Sequence[str] = (),
    notes: str = "",
    auto_join: bool = True,
) -> Organization:
    require_admin(actor)
    fields = _check_fields({"name": name, "domains": list(domains), "notes": notes})
    organization = Organization(name=fields["name"], notes=fields["notes"], auto_join=auto_join)
    _set_domains(organization, fields["domains"])
    db.session.add(organization)
    with (
        duplicates_refused(Organization.name, _name_in_use),
        duplicates_refused(OrganizationDomain.domain, _domain_taken),
    ):
        db.session.flush()
    created = {
        "name": organization.name,
        "domains": organization.domains or None,
        "notes": organization.notes or None,
        "auto_join": auto_join,
    }
    audit.record(actor, "organization.created", organization, audit.diff({}, created))
    db.session.commit()
    return organization


@rolls_back_on_error
def do_update_organization(
    actor: User, organization_id: int, changes: dict[str, Any]
) -> Organization:
    """Change an organization's name, domains, notes or auto-join flag. Customers already
    members stay members when a domain is removed; auto-join acts only on new customers."""
    require_admin(actor)
    organization = access_organization_by_id(actor, organization_id)
    changes = _check_fields(changes, except_id=organization.id)
    before = {field: getattr(organization, field) for field in changes}
    for field, value in changes.items():
        if field == "domains":
            _set_domains(organization, value)
        else:
            setattr(organization, field, value)
    changed = audit.diff(before, changes)
    if changed:
        audit.record(actor, "organization.updated", organization, changed)
    with (
        duplicates_refused(Organization.name, _name_in_use),
        duplicates_refused(OrganizationDomain.domain, _domain_taken),
    ):
        db.session.commit()
    return organization


@rolls_back_on_error
def do_delete_organization(actor: User, organization_id: int) -> None:
    """Delete an organization; its customers stay, in no organization."""
    require_admin(actor)
    organization = access_organization_by_id(actor, organization_id)
    members = [member.name for member in organization.members]
    for member in organization.members:
        if member.organization_manager:
            realtime.disconnect_user(member.id)  # its sockets may sit in colleagues' rooms
        member.organization_manager = False
    audit.record(
        actor,
        "organization.deleted",
        organization,
        {"name": [organization.name, None], "members": [members or None, None]},
    )
    db.session.delete(organization)
    db.session.commit()


def _customer(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise InvalidInput("Unknown user.", {"user_id": [f"No user {user_id}."]})
    if user.role is not Role.CUSTOMER:
        raise InvalidInput(
            "Only customers belong to organizations.", {"user_id": ["Must be a customer."]}
        )
    return user


@rolls_back_on_error
def do_add_member(
    actor: User, organization_id: int, user_id: int, *, manager: bool = False
) -> Organization:
    """Put a customer in the organization (moving them from another), or change whether a
    member is its manager."""
    require_admin(actor)
    organization = access_organization_by_id(actor, organization_id)
    user = _customer(user_id)
    previous = user.organization
    if user.organization_manager and (previous is not organization or not manager):
        realtime.disconnect_user(user.id)  # its sockets may sit in former colleagues' rooms
    if previous is not organization:
        user.organization = organization
        user.organization_manager = manager
        changes: dict[str, list[Any]] = {"member": [None, user.name]}
        if previous is not None:
            changes["moved_from"] = [previous.name, None]
        if manager:
            changes["manager"] = [None, user.name]
        audit.record(actor, "organization.member_added", organization, changes)
    elif user.organization_manager != manager:
        user.organization_manager = manager
        change = [None, user.name] if manager else [user.name, None]
        audit.record(actor, "organization.manager_changed", organization, {"manager": change})
    db.session.commit()
    db.session.refresh(organization)
    return organization


@rolls_back_on_error
def do_remove_member(actor: User, organization_id: int, user_id: int) -> Organization:
    require_admin(actor)
    organization = access_organization_by_id(actor, organization_id)
    user = db.session.get(User, user_id)
    if user is None or user.organization_id != organization.id:
        raise NotFound(f"User {user_id} is not a member of organization {organization_id}.")
    if user.organization_manager:
        realtime.disconnect_user(user.id)  # its sockets may sit in former colleagues' rooms
    user.organization = None
    user.organization_manager = False
    audit.record(actor, "organization.member_removed", organization, {"member": [user.name, None]})
    db.session.commit()
    db.session.refresh(organization)
    return organization


# -- joining by domain -------------------------------------------------------------------------


def join_by_domain(customer: User) -> Organization | None:
    """Put a new customer in the auto-join organization of their address's domain, if any
    (in the caller's transaction, recorded in the audit log with no actor)."""
    domain = customer.email.rsplit("@", 1)[-1].lower()
    organization = db.session.scalar(
        select(Organization)
        .join(OrganizationDomain)
        .where(OrganizationDomain.domain == domain, Organization.auto_join.is_(True))
    )
    if organization is None:
        return None
    customer.organization = organization
    audit.record(
        None,
        "organization.member_added",
        organization,
        {"member": [None, customer.name], "by_domain": [None, domain]},
    )
    return organization


def customer_by_email(email: str) -> User:
    """The customer with this address, for the admin form that adds members by email."""
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or user.role is not Role.CUSTOMER:
        raise InvalidInput("Unknown customer.", {"email": ["No customer has this email address."]})
    return user
