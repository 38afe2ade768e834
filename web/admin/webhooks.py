"""Admin console: outgoing webhooks (list, subscribe, edit, pause and resume, new secret, send a
test event, delete) and each subscription's delivery log (read a delivery, redeliver). Forms
redirect on success or re-render with the input kept and each error at its field; the
services in ``autocrm.webhooks`` check admin rights and audit."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from autocrm.errors import DomainError, NotFound
from autocrm.listing import PageRequest
from autocrm.people import teams
from autocrm.people.models import User
from autocrm.webhooks import deliveries, subscriptions
from autocrm.webhooks.models import EVENT_KINDS, DeliveryStatus, WebhookSubscription
from web.forms import form_errors
from web.session import admin_required

bp = Blueprint("admin_webhooks", __name__, url_prefix="/admin/webhooks")

EMPTY_FORM: dict[str, Any] = {
    "url": "",
    "description": "",
    "event_kinds": [],
    "team_id": "",
    "include_internal": "",
    "active": "on",
}


def _form() -> dict[str, Any]:
    return {
        "url": request.form.get("url", "").strip(),
        "description": request.form.get("description", "").strip(),
        "event_kinds": request.form.getlist("event_kinds"),
        "team_id": request.form.get("team_id", "").strip(),
        "include_internal": request.form.get("include_internal", ""),
        "active": request.form.get("active", ""),
    }


def _fields(form: dict[str, Any]) -> dict[str, Any]:
    team = form["team_id"]
    if team and (not team.isdigit() or len(team) > 9):
        raise DomainError("Please correct the marked fields.", {"team_id": ["Choose a team."]})
    return {
        **form,
        "team_id": int(team) if team else None,
        "include_internal": bool(form["include_internal"]),
        "active": bool(form["active"]),
    }


def _current(subscription: WebhookSubscription) -> dict[str, Any]:
    return {
        "url": subscription.url,
        "description": subscription.description,
        "event_kinds": list(subscription.event_kinds),
        "team_id": str(subscription.team_id or ""),
        "include_internal": "on" if subscription.include_internal else "",
        "active": "on" if subscription.active else "",
    }


def _render(template: str, user: User, status: int = 200, **context: Any) -> tuple[str, int]:
    html = render_template(
        template,
        user=user,
        teams=sorted(
            teams.list_teams(user, PageRequest(limit=200)).items, key=lambda t: t.name.lower()
        ),
        event_kinds=EVENT_KINDS,
        **context,
    )
    return html, status


@bp.route("", methods=["GET", "POST"], endpoint="index")
@admin_required
def index(user: User) -> Any:
    form, errors = dict(EMPTY_FORM), {}
    if request.method == "POST":
        form = _form()
        try:
            created, secret = subscriptions.do_create_subscription(user, _fields(form))
        except DomainError as exc:
            errors = form_errors(exc)
        else:
            return _detail_page(user, created.id, secret=secret, status=201)
    return _render(
        "admin/webhooks.html",
        user,
        422 if errors else 200,
        items=subscriptions.list_subscriptions(user),
        form=form,
        errors=errors,
    )


def _detail_page(
    user: User,
    subscription_id: int,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, Any] | None = None,
    secret: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    subscription = subscriptions.access_subscription_by_id(user, subscription_id)
    log = deliveries.list_deliveries(
        user, subscription_id, PageRequest(limit=25, cursor=request.args.get("cursor"))
    )
    return _render(
        "admin/webhooks_detail.html",
        user,
        status,
        webhook=subscription,
        form=form or _current(subscription),
        errors=errors or {},
        secret=secret,
        log=log,
    )


@bp.get("/<int:subscription_id>")
@admin_required
def detail(user: User, subscription_id: int) -> tuple[str, int]:
    return _detail_page(user, subscription_id)


@bp.post("/<int:subscription_id>")
@admin_required
def update(user: User, subscription_id: int) -> Any:
    form = _form()
    try:
        subscriptions.do_update_subscription(user, subscription_id, _fields(form))
    except DomainError as exc:
        if isinstance(exc, NotFound) and not exc.errors:
            raise
        return _detail_page(
            user, subscription_id, form=form, errors=form_errors(exc), status=exc.status_code
        )
    flash("Webhook saved.", "success")
    return redirect(url_for(".detail", subscription_id=subscription_id))


@bp.post("/<int:subscription_id>/secret")
@admin_required
def rotate_secret(user: User, subscription_id: int) -> tuple[str, int]:
    secret = subscriptions.do_rotate_secret(user, subscription_id)
    return _detail_page(user, subscription_id, secret=secret)


@bp.post("/<int:subscription_id>/test")
@admin_required
def send_test(user: User, subscription_id: int) -> Any:
    delivery = deliveries.do_send_test(user, subscription_id)
    if delivery.status is DeliveryStatus.DELIVERED:
        flash(f"Test event delivered: HTTP {delivery.last_status_code}.", "success")
    else:
        said = delivery.last_error or f"HTTP {delivery.last_status_code}"
        flash(f"Test event not delivered: {said}.", "error")
    return redirect(url_for(".delivery", delivery_id=delivery.id))


@bp.post("/<int:subscription_id>/delete")
@admin_required
def delete(user: User, subscription_id: int) -> Any:
    subscriptions.do_delete_subscription(user, subscription_id)
    flash("Webhook deleted with its delivery log.", "success")
    return redirect(url_for(".index"))


@bp.get("/deliveries/<int:delivery_id>")
@admin_required
def delivery(user: User, delivery_id: int) -> tuple[str, int]:
    return _render(
        "admin/webhooks_delivery.html",
        user,
        delivery=deliveries.access_delivery_by_id(user, delivery_id),
    )


@bp.post("/deliveries/<int:delivery_id>/redeliver")
@admin_required
def redeliver(user: User, delivery_id: int) -> Any:
    try:
        deliveries.do_redeliver(user, delivery_id)
    except DomainError as exc:
        if isinstance(exc, NotFound) and not exc.errors:
            raise
        flash(exc.message, "error")
    else:
        flash("Queued to be sent again.", "success")
    return redirect(url_for(".delivery", delivery_id=delivery_id))
