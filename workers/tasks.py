"""Celery tasks. Thin: take an id, call a service, done; each is idempotent."""

from __future__ import annotations

from celery import shared_task
from flask import current_app

from autocrm import kvstore
from autocrm.automation import sweep as automation_sweep
from autocrm.events import dispatch, outbox
from autocrm.fields import indexes as field_indexes
from autocrm.files import scanning
from autocrm.files import services as files
from autocrm.kb import votes
from autocrm.mail import polling
from autocrm.notifications import emails
from autocrm.webhooks import deliveries as webhooks


@shared_task(name="workers.tasks.handle_event")
def handle_event(event_id: str) -> bool:
    """Run the handlers of one outbox event (at most once, however often delivered)."""
    return dispatch.do_handle_event(event_id)


@shared_task(name="workers.tasks.relay_pending_outbox")
def relay_pending_outbox() -> int:
    """Beat: re-publish events nobody processed (broker was down, a process was killed)."""
    return outbox.relay_pending()


@shared_task(name="workers.tasks.sweep")
def sweep() -> dict[str, int]:
    """Beat: fire SLA warnings and breaches and time-based rules that fell due, and retry
    waiting assignments. One sweep at a time: a tick that finds one running leaves it be."""
    lock = current_app.extensions["autocrm.redis"].lock(
        kvstore.redis_key("sweep-lock"), timeout=120, blocking=False
    )
    if not lock.acquire():
        return {"skipped": 1}
    try:
        return automation_sweep.do_sweep()
    finally:
        lock.release()


@shared_task(name="workers.tasks.settle_kb_suggestions")
def settle_kb_suggestions() -> int:
    """Beat: settle suggested-article openings whose window has passed (did a ticket follow,
    or did the article deflect it?). Settled events are left alone, so a repeat is harmless."""
    return votes.do_settle_suggestions()


@shared_task(name="workers.tasks.request_due_emails")
def request_due_emails() -> int:
    """Beat: request the customer emails whose window has ended (each once)."""
    return emails.do_request_due_emails()


@shared_task(name="workers.tasks.scan_attachment")
def scan_attachment(attachment_id: int) -> str | None:
    """Scan an upload for malware and record the verdict (nothing when it has one already)."""
    status = scanning.do_scan(attachment_id)
    return status.value if status else None


@shared_task(name="workers.tasks.scan_due_attachments")
def scan_due_attachments() -> int:
    """Beat: send again the scans whose retry is due or whose task was lost."""
    return scanning.do_scan_due()


@shared_task(name="workers.tasks.remove_unsent_uploads")
def remove_unsent_uploads() -> int:
    """Beat: remove uploads nobody attached within a day (and their unused bytes)."""
    return files.do_remove_unsent_uploads()


@shared_task(name="workers.tasks.request_mailbox_polls")
def request_mailbox_polls() -> int:
    """Beat: ask a worker to poll each IMAP mailbox whose poll interval has passed."""
    due = polling.do_request_polls()
    for mailbox_id in due:
        poll_mailbox.delay(mailbox_id)
    return len(due)


@shared_task(name="workers.tasks.poll_mailbox")
def poll_mailbox(mailbox_id: int) -> int:
    """Receive what waits in one IMAP mailbox (a batch; the next poll takes the rest)."""
    return polling.poll_mailbox(mailbox_id)


@shared_task(name="workers.tasks.send_webhook")
def send_webhook(delivery_id: int) -> str | None:
    """POST one webhook delivery (nothing when it is settled, paused, or waits its turn)."""
    status = webhooks.do_send(delivery_id)
    return status.value if status else None


@shared_task(name="workers.tasks.send_due_webhooks")
def send_due_webhooks() -> int:
    """Beat: hand the webhook deliveries whose retry is due, or whose worker was lost, to
    the workers."""
    return len(webhooks.do_send_due())


@shared_task(name="workers.tasks.build_field_indexes")
def build_field_indexes() -> dict[str, int]:
    """After a dropdown field is added or deleted, and from beat: build the fields' missing
    expression indexes (CONCURRENTLY on PostgreSQL) and drop those of deleted fields."""
    return field_indexes.do_build_indexes()
