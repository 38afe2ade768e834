"""Delivering webhooks: recorded with the event, sent by a worker, retried by the sweep.

1. ``record_deliveries`` is an outbox handler (``events.handlers.HANDLERS``): in the event's
   transaction it writes one ``WebhookDelivery`` per matching active subscription (its kinds,
   its team filter; internal notes only where ``include_internal``), with the document to
   send, and after commit hands each to a worker on the ``webhooks`` queue.
2. ``do_send`` (the worker task) claims the delivery in a short transaction (a lease on
   ``next_attempt_at``), makes the request holding no transaction (a slow endpoint must not
   hold SQLite's write lock), then records the answer in another.
3. A non-2xx answer, or none, is retried with exponential backoff and jitter
   (``retry_delay``) for ``RETRY_FOR``; the beat's ``do_send_due`` claims the due rows
   (SKIP LOCKED on PostgreSQL) and hands them to workers, and also picks up any delivery
   whose worker died mid-request once its lease ends: delivery is at least once, and a
   receiver tells repeats apart by ``X-AutoCRM-Delivery`` (or the document's ``id``).
4. In order per ticket: a delivery is not sent while an older one of the same subscription
   and ticket is pending; when that one settles, the next is handed to a worker.
5. ``PAUSE_AFTER`` failures in a row pause the subscription (it records nothing while paused;
   what is pending waits), recorded in the audit log and emailed to every admin; an admin
   resumes it.

A workflow rule's ``call_webhook`` action records a delivery of kind ``workflow.rule`` to the
subscription it names (``record_rule_delivery``), sent and retried like the others.

The document: ``{"id", "type", "created_at", "schema_version", "data": {"ticket", "event",
"message"?}}``, the ticket as the REST API shows it to staff. Signed with the subscription's
secret: ``X-AutoCRM-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import aliased

from autocrm import aftercommit
from autocrm.audit import services as audit
from autocrm.columns import utcnow
from autocrm.errors import InvalidInput, NotFound
from autocrm.events import relay
from autocrm.events.kinds import MessageCreated, TicketChange
from autocrm.events.models import OutboxEvent
from autocrm.extensions import db
from autocrm.listing import Page, PageRequest, keyset_page
from autocrm.notifications import emails
from autocrm.people.models import Role, User
from autocrm.tickets.models import Message, Ticket
from autocrm.tickets.representation import render_message, render_ticket
from autocrm.transaction import rolls_back_on_error
from autocrm.webhooks import destinations, subscriptions
from autocrm.webhooks.models import (
    RULE_EVENT_KIND,
    TEST_EVENT_KIND,
    DeliveryStatus,
    WebhookDelivery,
    WebhookSubscription,
)
from celeryconfig import WEBHOOKS_QUEUE

log = logging.getLogger(__name__)

SEND_TASK = "workers.tasks.send_webhook"
SCHEMA_VERSION = 1
# A claimed delivery whose answer is not recorded within this long is taken as lost (the
# worker died) and sent again by the sweep; well above the request's timeouts.
LEASE = timedelta(minutes=2)
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=2)
RETRY_FOR = timedelta(hours=24)
JITTER = 0.25  # each delay is its nominal value +/- a quarter, so retries do not stampede
PAUSE_AFTER = 15
USER_AGENT = "AutoCRM-Webhooks/1"


def nominal_delay(attempts: int) -> timedelta:
    """How long after its ``attempts``-th failure a delivery is tried again (before jitter)."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_RETRY)


def retry_delay(attempts: int) -> timedelta:
    # Jitter spreads retries out; nothing secret depends on it.
    return nominal_delay(attempts) * random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311


def retries_exhausted(attempts: int) -> bool:
    """Whether ``attempts`` tries used up the retry window (counted in nominal delays, so a
    redelivery, which starts again from no attempts, gets a window of its own)."""
    spent = sum((nominal_delay(n) for n in range(1, attempts + 1)), timedelta())
    return spent >= RETRY_FOR


# -- recording (the outbox handler) ------------------------------------------------------------


def record_deliveries(event: TicketChange) -> None:
    """Outbox handler: a delivery per active subscription that wants ``event``."""
    wanted = [
        s
        for s in db.session.scalars(
            select(WebhookSubscription).where(WebhookSubscription.active.is_(True))
        )
        if event.kind in s.event_kinds
    ]
    if not wanted:
        return
    ticket = db.session.get(Ticket, event.ticket_id)
    if ticket is None:
        return
    internal = isinstance(event, MessageCreated) and event.internal
    chosen = [
        s
        for s in wanted
        if (s.team_id is None or s.team_id == ticket.team_id)
        and (s.include_internal or not internal)
    ]
    if not chosen:
        return
    document = _document(event, ticket)
    for subscription in chosen:
        _add_delivery(subscription, event.id, event.kind, ticket.id, document)


def record_rule_delivery(
    ticket: Ticket, subscription_id: int, cause: dict[str, Any], dedupe: str
) -> None:
    """A workflow rule's ``call_webhook`` action: one delivery to the subscription it names
    (if active: a paused one records nothing), the ticket and the rule that fired. ``dedupe``
    (the rule's firing) makes its id, so a redelivered event records it once."""
    subscription = db.session.get(WebhookSubscription, subscription_id)
    if subscription is None:
        raise NotFound(f"Webhook {subscription_id} not found (the rule's call_webhook).")
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"autocrm:{dedupe}"))
    if not subscription.active or db.session.scalar(
        select(WebhookDelivery.id).where(
            WebhookDelivery.subscription_id == subscription.id,
            WebhookDelivery.event_id == event_id,
        )
    ):
        return
    data = {
        "ticket": render_ticket(ticket, "staff"),
        "event": {"rule": cause.get("rule"), "workflow_version": cause.get("workflow_version")},
    }
    document = {
        "id": event_id,
        "type": RULE_EVENT_KIND,
        "created_at": utcnow().isoformat(),
        "schema_version": SCHEMA_VERSION,
        "data": data,
    }
    _add_delivery(subscription, event_id, RULE_EVENT_KIND, ticket.id, document)


def _add_delivery(
    subscription: WebhookSubscription,
    event_id: str,
    kind: str,
    ticket_id: int,
    document: dict[str, Any],
) -> None:
    """A pending delivery, handed to a worker after commit."""
    delivery = WebhookDelivery(
        subscription_id=subscription.id,
        event_id=event_id,
        event_kind=kind,
        ticket_id=ticket_id,
        payload=document,
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=utcnow() + LEASE,
    )
    db.session.add(delivery)
    db.session.flush()
    aftercommit.add("webhooks.send", delivery.id)


def _document(event: TicketChange, ticket: Ticket) -> dict[str, Any]:
    row = db.session.get(OutboxEvent, event.id)
    happened = row.created_at if row is not None else utcnow()
    data: dict[str, Any] = {"ticket": render_ticket(ticket, "staff"), "event": event.payload()}
    if isinstance(event, MessageCreated):
        message = db.session.get(Message, event.message_id)
        data["message"] = render_message(message) if message is not None else None
    return {
        "id": event.id,
        "type": event.kind,
        "created_at": happened.isoformat(),
        "schema_version": SCHEMA_VERSION,
        "data": data,
    }


# -- sending -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Outcome:
    status_code: int | None = None
    elapsed_ms: int | None = None
    body: bytes = b""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-AutoCRM-Signature`` header's value for ``body`` sent at ``timestamp``."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def do_send(delivery_id: int, now: datetime | None = None) -> DeliveryStatus | None:
    """Send one delivery if it is due to be sent; its status afterwards (None: not sent now,
    because it was settled, its subscription is paused or gone, or an older one of its
    ticket waits)."""
    moment = now or utcnow()
    request = _claim(delivery_id, moment)
    if request is None:
        return None
    return _record(delivery_id, _post(request), moment)


def _post(request: Request) -> Outcome:
    try:
        destination = destinations.check_destination(request.url)
        answer = destinations.post(destination, request.body, request.headers)
    except destinations.Refused as exc:
        return Outcome(error=f"Refused: {exc}")
    except Exception as exc:  # connection refused, timeouts, TLS: all mean "no answer"
        return Outcome(error=f"{type(exc).__name__}: {exc}"[:1000])
    return Outcome(answer.status, answer.elapsed_ms, answer.body)


@rolls_back_on_error
def _claim(delivery_id: int, moment: datetime) -> Request | None:
    delivery = db.session.get(
        WebhookDelivery, delivery_id, with_for_update=True, populate_existing=True
    )
    request = None
    if delivery is not None and _sendable(delivery):
        secret = subscriptions.secret_of(delivery.subscription) or ""
        delivery.next_attempt_at = moment + LEASE
        body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-AutoCRM-Event": delivery.event_kind,
            "X-AutoCRM-Delivery": str(delivery.id),
            "X-AutoCRM-Signature": signature(secret, int(moment.timestamp()), body),
        }
        request = Request(delivery.subscription.url, body, headers)
    db.session.commit()
    return request


def _sendable(delivery: WebhookDelivery) -> bool:
    if delivery.status is not DeliveryStatus.PENDING:
        return False
    if delivery.event_kind == TEST_EVENT_KIND:
        return True  # a test goes to a paused subscription too: that is how one checks it
    return delivery.subscription.active and _older_pending(delivery) is None


def _older_pending(delivery: WebhookDelivery) -> int | None:
    if delivery.ticket_id is None:
        return None
    return db.session.scalar(
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.subscription_id == delivery.subscription_id,
            WebhookDelivery.ticket_id == delivery.ticket_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.id < delivery.id,
        )
        .limit(1)
    )


@rolls_back_on_error
def _record(delivery_id: int, outcome: Outcome, moment: datetime) -> DeliveryStatus | None:
    delivery = db.session.get(
        WebhookDelivery, delivery_id, with_for_update=True, populate_existing=True
    )
    if delivery is None:  # its subscription was deleted meanwhile
        db.session.commit()
        return None
    delivery.attempts += 1
    delivery.last_attempt_at = moment
    delivery.last_status_code = outcome.status_code
    delivery.last_response_ms = outcome.elapsed_ms
    delivery.last_response_body = outcome.body.decode("utf-8", "replace").replace("\x00", "")
    delivery.last_error = outcome.error
    if outcome.ok:
        _settle(delivery, DeliveryStatus.DELIVERED, moment)
    else:
        _failed(delivery, moment)
    status = delivery.status
    db.session.commit()
    return status


def _settle(delivery: WebhookDelivery, status: DeliveryStatus, moment: datetime) -> None:
    delivery.status = status
    delivery.next_attempt_at = None
    if status is DeliveryStatus.DELIVERED:
        delivery.delivered_at = moment
    if delivery.event_kind == TEST_EVENT_KIND:
        return  # a test neither counts for the subscription nor holds up a ticket's order
    subscription = delivery.subscription
    if status is DeliveryStatus.DELIVERED:
        subscription.consecutive_failures = 0
    _release_next(delivery, moment)


def _failed(delivery: WebhookDelivery, moment: datetime) -> None:
    if delivery.event_kind == TEST_EVENT_KIND:
        _settle(delivery, DeliveryStatus.FAILED, moment)  # a test is tried once
        return
    subscription = db.session.get(
        WebhookSubscription, delivery.subscription_id, with_for_update=True
    )
    assert subscription is not None  # the delivery is locked, and goes with it
    subscription.consecutive_failures += 1
    if subscription.active and subscription.consecutive_failures >= PAUSE_AFTER:
        subscription.active = False
        subscription.paused_reason = (
            f"Paused after {subscription.consecutive_failures} failed deliveries in a row; "
            f"the last: {_said(delivery)}"
        )[:300]
        log.warning("webhook %s paused: %s", subscription.id, subscription.paused_reason)
        _tell_admins_of_pause(subscription)
    if retries_exhausted(delivery.attempts):
        _settle(delivery, DeliveryStatus.FAILED, moment)
    else:
        delivery.next_attempt_at = moment + retry_delay(delivery.attempts)


def _tell_admins_of_pause(subscription: WebhookSubscription) -> None:
    """The pause in the audit log (by nobody: the system), and an email to every active admin
    saying why and where to resume it."""
    audit.record(
        None,
        "webhook.paused",
        subscriptions.audit_target(subscription),
        {"active": [True, False]},
    )
    base = current_app.config["AUTOCRM_BASE_URL"].rstrip("/")
    body = (
        f"AutoCRM stopped sending events to {subscription.url}.\n\n"
        f"{subscription.paused_reason}\n\n"
        "Nothing is recorded for it while it is paused. Once the endpoint answers again, "
        f"resume it (tick Active and save): {base}/admin/webhooks/{subscription.id}\n"
    )
    pause = uuid.uuid4().hex[:12]  # one email per admin per pause
    admins = db.session.scalars(
        select(User).where(User.role == Role.ADMIN, User.active.is_(True)).order_by(User.id)
    )
    for admin in admins:
        emails.queue_email(
            admin.email,
            f"Webhook paused: {subscription.url}",
            body,
            dedupe_key=f"webhook-paused:{subscription.id}:{pause}:{admin.id}",
        )


def _said(delivery: WebhookDelivery) -> str:
    if delivery.last_status_code is not None:
        return f"HTTP {delivery.last_status_code}"
    return delivery.last_error or "no answer"


def _release_next(delivery: WebhookDelivery, moment: datetime) -> None:
    """The ticket's next pending delivery to this subscription may go now."""
    if delivery.ticket_id is None:
        return
    following = db.session.scalar(
        select(WebhookDelivery)
        .where(
            WebhookDelivery.subscription_id == delivery.subscription_id,
            WebhookDelivery.ticket_id == delivery.ticket_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.id > delivery.id,
        )
        .order_by(WebhookDelivery.id)
        .limit(1)
    )
    if following is not None and delivery.subscription.active:
        following.next_attempt_at = moment + LEASE
        aftercommit.add("webhooks.send", following.id)


@rolls_back_on_error
def do_send_due(now: datetime | None = None, limit: int = 200) -> list[int]:
    """Beat: hand the deliveries whose retry is due (or whose worker was lost) to workers,
    each under a new lease. Returns their ids."""
    moment = now or utcnow()
    older = aliased(WebhookDelivery)
    waits_its_turn = (
        select(older.id)
        .where(
            older.subscription_id == WebhookDelivery.subscription_id,
            older.ticket_id == WebhookDelivery.ticket_id,
            older.status == DeliveryStatus.PENDING,
            older.id < WebhookDelivery.id,
        )
        .exists()
    )
    due = list(
        db.session.scalars(
            select(WebhookDelivery)
            .join(WebhookSubscription)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= moment,
                WebhookSubscription.active.is_(True),
                ~waits_its_turn,  # sent when the older one settles (``_release_next``)
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
            # PostgreSQL; SQLite holds the write lock already
            .with_for_update(skip_locked=True, of=WebhookDelivery)
        )
    )
    for delivery in due:
        delivery.next_attempt_at = moment + LEASE
    ids = [delivery.id for delivery in due]
    db.session.commit()
    _send_tasks(ids, sweeping=True)
    return ids


def _send_tasks(ids: list[int], *, sweeping: bool = False) -> None:
    """After commit: one task per delivery, sent by the relay. A broker that is down loses
    nothing: the sweep (``do_send_due``, which tries during the relay's back-off too) sends
    them once their lease is over."""
    relay.after_commit(
        [relay.Message(SEND_TASK, (delivery_id,), WEBHOOKS_QUEUE) for delivery_id in ids],
        sweeping=sweeping,
    )


def install() -> None:
    aftercommit.register("webhooks.send", _send_tasks)


# -- the log, redelivery, tests (admins) -------------------------------------------------------


def list_deliveries(actor: User, subscription_id: int, page: PageRequest) -> Page[WebhookDelivery]:
    """A subscription's deliveries, newest first."""
    subscriptions.access_subscription_by_id(actor, subscription_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    newest_first = PageRequest(limit=page.limit, cursor=page.cursor, sort="-id")
    return keyset_page(stmt, newest_first, {"id": WebhookDelivery.id}, WebhookDelivery.id)


def access_delivery_by_id(actor: User, delivery_id: int) -> WebhookDelivery:
    subscriptions.require_admin(actor)
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound(f"Webhook delivery {delivery_id} not found.")
    return delivery


@rolls_back_on_error
def do_redeliver(actor: User, delivery_id: int) -> WebhookDelivery:
    """Send a delivered or failed delivery again, the same document, with a new series of
    attempts (a worker sends it after commit; in order behind its ticket's older ones)."""
    delivery = access_delivery_by_id(actor, delivery_id)
    if delivery.status is DeliveryStatus.PENDING:
        raise InvalidInput(
            "This delivery is waiting to be sent already.",
            {"status": ["Only delivered or failed deliveries can be redelivered."]},
        )
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.delivered_at = None
    delivery.next_attempt_at = utcnow() + LEASE
    aftercommit.add("webhooks.send", delivery.id)
    audit.record(
        actor,
        "webhook.redelivered",
        subscriptions.audit_target(delivery.subscription),
        {"delivery": [None, delivery.id]},
    )
    db.session.commit()
    return delivery


@rolls_back_on_error
def _record_test(actor: User, subscription_id: int) -> int:
    subscription = subscriptions.access_subscription_by_id(actor, subscription_id)
    event_id = str(uuid.uuid4())
    moment = utcnow()
    delivery = WebhookDelivery(
        subscription_id=subscription.id,
        event_id=event_id,
        event_kind=TEST_EVENT_KIND,
        ticket_id=None,
        payload={
            "id": event_id,
            "type": TEST_EVENT_KIND,
            "created_at": moment.isoformat(),
            "schema_version": SCHEMA_VERSION,
            "data": {"ticket": None, "message": "A test event from AutoCRM."},
        },
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=None,  # sent now, once; never by the sweep
    )
    db.session.add(delivery)
    db.session.flush()
    audit.record(actor, "webhook.tested", subscriptions.audit_target(subscription))
    db.session.commit()
    return delivery.id


def do_send_test(actor: User, subscription_id: int) -> WebhookDelivery:
    """Send a test event to the subscription now (also when paused) and log it; the answer
    is in the returned delivery. It holds up the caller for up to the request's timeouts."""
    delivery_id = _record_test(actor, subscription_id)
    do_send(delivery_id)
    delivery = db.session.get(WebhookDelivery, delivery_id, populate_existing=True)
    assert delivery is not None
    return delivery
