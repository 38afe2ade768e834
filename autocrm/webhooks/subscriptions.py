"""Webhook subscriptions, as admins manage them: create, change, rotate the secret, delete.

Every change is recorded in the admin audit log in the same transaction (the secret never).
The secret is shown once, when made or rotated, and stored encrypted
(``security.encrypt_secret``) because every delivery is signed with it. The URL is checked
here (``destinations.check_destination``: https, no private addresses unless allow-listed)
and again before every delivery.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from autocrm import policies
from autocrm.audit import services as audit
from autocrm.errors import Forbidden, InvalidInput, NotFound
from autocrm.extensions import db
from autocrm.people.models import Team, User
from autocrm.security import decrypt_secret, encrypt_secret
from autocrm.transaction import rolls_back_on_error
from autocrm.webhooks import destinations
from autocrm.webhooks.models import EVENT_KINDS, WebhookSubscription

FIELDS = ("url", "description", "event_kinds", "team_id", "include_internal", "active")
MAX_DESCRIPTION = 200
SECRET_PREFIX = "whsec_"  # noqa: S105 (a label that says what the secret is, not one)


def require_admin(actor: User) -> None:
    if not policies.can_manage_webhooks(actor):
        raise Forbidden("Only administrators may manage webhooks.")


def audit_target(subscription: WebhookSubscription) -> audit.Target:
    return audit.Target("webhook", subscription.id, subscription.url)


def list_subscriptions(actor: User) -> list[WebhookSubscription]:
    require_admin(actor)
    return list(db.session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id)))


def access_subscription_by_id(actor: User, subscription_id: int) -> WebhookSubscription:
    require_admin(actor)
    subscription = db.session.get(WebhookSubscription, subscription_id)
    if subscription is None:
        raise NotFound(f"Webhook {subscription_id} not found.")
    return subscription


def secret_of(subscription: WebhookSubscription) -> str | None:
    """The signing secret, or None if it cannot be read (SECRET_KEY changed: rotate it)."""
    return decrypt_secret(subscription.secret_encrypted)


# -- checks ------------------------------------------------------------------------------------


def _check_kinds(value: Any, errors: dict[str, list[str]]) -> list[str]:
    if not isinstance(value, list | tuple) or not value:
        errors["event_kinds"] = [f"Choose one or more of: {', '.join(EVENT_KINDS)}."]
        return []
    unknown = [k for k in value if k not in EVENT_KINDS]
    if unknown:
        errors["event_kinds"] = [f"Unknown kind {unknown[0]!r}; one of: {', '.join(EVENT_KINDS)}."]
    return list(dict.fromkeys(value))


def check_subscription(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields an admin sent, cleaned (only those sent); InvalidInput naming each wrong one."""
    unknown = set(fields) - set(FIELDS)
    errors: dict[str, list[str]] = {name: ["Unknown field."] for name in sorted(unknown)}
    clean: dict[str, Any] = {}
    if "url" in fields:
        url = fields["url"].strip() if isinstance(fields["url"], str) else ""
        try:
            destinations.check_destination(url)
        except destinations.Refused as exc:
            errors["url"] = [str(exc)]
        clean["url"] = url
    if "description" in fields:
        description = (fields["description"] or "").strip()
        if len(description) > MAX_DESCRIPTION:
            errors["description"] = [f"At most {MAX_DESCRIPTION} characters."]
        clean["description"] = description
    if "event_kinds" in fields:
        clean["event_kinds"] = _check_kinds(fields["event_kinds"], errors)
    if "team_id" in fields:
        team_id = fields["team_id"]
        if team_id is not None and db.session.get(Team, team_id) is None:
            errors["team_id"] = [f"No team {team_id}."]
        clean["team_id"] = team_id
    for flag in ("include_internal", "active"):
        if flag in fields:
            clean[flag] = bool(fields[flag])
    if errors:
        raise InvalidInput("Please correct the marked fields.", errors)
    return clean


def _apply(subscription: WebhookSubscription, clean: dict[str, Any]) -> dict[str, list[Any]]:
    """Set what changed; the audit's ``{field: [before, after]}``."""
    changes = audit.diff({name: getattr(subscription, name) for name in clean}, clean)
    for name in changes:
        setattr(subscription, name, clean[name])
    if clean.get("active"):  # resumed by an admin: a fresh start
        subscription.consecutive_failures = 0
        subscription.paused_reason = None
    elif "active" in changes:
        subscription.paused_reason = "Paused by an administrator."
    return changes


def _new_secret(subscription: WebhookSubscription) -> str:
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    subscription.secret_encrypted = encrypt_secret(secret)
    return secret


# -- writing -----------------------------------------------------------------------------------


@rolls_back_on_error
def do_create_subscription(
    actor: User, fields: Mapping[str, Any]
) -> tuple[WebhookSubscription, str]:
    """A new subscription and its signing secret (shown this once)."""
    require_admin(actor)
    missing = {name: ["Required."] for name in ("url", "event_kinds") if name not in fields}
    if missing:
        raise InvalidInput("Please correct the marked fields.", missing)
    subscription = WebhookSubscription(include_internal=False, active=True, description="")
    changes = _apply(subscription, check_subscription(fields))
    secret = _new_secret(subscription)
    db.session.add(subscription)
    db.session.flush()
    audit.record(actor, "webhook.created", audit_target(subscription), changes)
    db.session.commit()
    return subscription, secret


@rolls_back_on_error
def do_update_subscription(
    actor: User, subscription_id: int, fields: Mapping[str, Any]
) -> WebhookSubscription:
    subscription = access_subscription_by_id(actor, subscription_id)
    changes = _apply(subscription, check_subscription(fields))
    if changes:
        audit.record(actor, "webhook.updated", audit_target(subscription), changes)
    db.session.commit()
    return subscription


@rolls_back_on_error
def do_rotate_secret(actor: User, subscription_id: int) -> str:
    """A new signing secret; the old one signs nothing from now on."""
    subscription = access_subscription_by_id(actor, subscription_id)
    secret = _new_secret(subscription)
    audit.record(actor, "webhook.secret_rotated", audit_target(subscription))
    db.session.commit()
    return secret


@rolls_back_on_error
def do_delete_subscription(actor: User, subscription_id: int) -> None:
    """Gone, with its delivery log; what was pending is never sent."""
    subscription = access_subscription_by_id(actor, subscription_id)
    audit.record(
        actor, "webhook.deleted", audit_target(subscription), {"url": [subscription.url, None]}
    )
    db.session.delete(subscription)
    db.session.commit()
