"""Celery settings shared by the web processes (which only publish) and the workers.

The broker URL is filled in from ``AUTOCRM_REDIS_URL`` by ``autocrm.config``. The reliability
settings follow the pitfalls listed in ARCHITECTURE.md: late acks plus reject-on-worker-lost so
a killed worker's task runs again, prefetch of one, and deadlines kept in the database (the beat
sweep re-publishes outbox rows), never in long ETA messages.

Four queues, so that one kind of work never waits behind another (every worker consumes all
four unless started with its own ``-Q``; ``WORKER_QUEUES`` is what to pass):
- ``celery`` (the default): the handlers of ticket events (``handle_event``), mail;
- ``webhooks``: webhook requests (``send_webhook``), which wait on other people's servers for
  up to 10 s each: a slow endpoint must not hold up the ticket events;
- ``escalations``: the handlers of ``sla.*`` events (``autocrm.events.outbox.queue_for``), so a
  burst of breaches escalates in parallel beside the ordinary events instead of behind them;
- ``beat``: beat's periodic ticks. A tick queued behind thousands of event tasks expired before
  a worker reached it (74 of 101 did in the SLA benchmark); on its own queue the next free
  worker process takes it.
"""

from datetime import timedelta
from typing import Any

DEFAULT_QUEUE = "celery"
ESCALATIONS_QUEUE = "escalations"
BEAT_QUEUE = "beat"
WEBHOOKS_QUEUE = "webhooks"
WORKER_QUEUES = ",".join(
    (DEFAULT_QUEUE, ESCALATIONS_QUEUE, BEAT_QUEUE, WEBHOOKS_QUEUE)
)  # celery worker -Q

settings: dict[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "task_ignore_result": True,
    "task_serializer": "json",
    "accept_content": ["json"],
    "timezone": "UTC",
    "broker_connection_retry_on_startup": True,
    # A publish from a web request must fail fast when Redis is down: the row stays in the
    # outbox and the beat sweep delivers it later.
    # max_retries=0: a publish fails at once instead of retrying for broker_connection_timeout.
    "broker_transport_options": {
        "visibility_timeout": 3600,
        "socket_connect_timeout": 2,
        "max_retries": 0,
    },
    "task_publish_retry": False,
    "task_default_queue": DEFAULT_QUEUE,
    # The periodic tasks, however they are sent (beat, or by hand from a shell).
    "task_routes": {
        **{
            task: {"queue": BEAT_QUEUE}
            for task in (
                "workers.tasks.relay_pending_outbox",
                "workers.tasks.sweep",
                "workers.tasks.settle_kb_suggestions",
                "workers.tasks.remove_unsent_uploads",
                "workers.tasks.scan_due_attachments",
                "workers.tasks.send_due_webhooks",
            )
        },
        "workers.tasks.send_webhook": {"queue": WEBHOOKS_QUEUE},
    },
    "beat_schedule": {
        "relay-pending-outbox": {
            "task": "workers.tasks.relay_pending_outbox",
            "schedule": timedelta(seconds=15),
        },
        # SLA warnings and breaches, time-based rules and waiting assignments: deadlines live
        # in the database, so their precision is this period.
        "automation-sweep": {
            "task": "workers.tasks.sweep",
            "schedule": timedelta(seconds=2),
            # A tick still queued when the next is due is dropped: no pile-up behind a backlog.
            "options": {"expires": 2},
        },
        # Customer emails wait out their ticket's window (AUTOCRM_CUSTOMER_EMAIL_WINDOW) in the
        # database; this period is how late after it one may go out.
        "request-due-emails": {
            "task": "workers.tasks.request_due_emails",
            "schedule": timedelta(seconds=5),
            "options": {"expires": 5},
        },
        # IMAP mailboxes are polled every AUTOCRM_MAIL_POLL_INTERVAL seconds (the due time is
        # in the database); this period is how late after it a poll may start.
        "request-mailbox-polls": {
            "task": "workers.tasks.request_mailbox_polls",
            "schedule": timedelta(seconds=5),
            "options": {"expires": 5},
        },
        # Knowledge-base deflection: an opened suggestion is settled a day after it was opened
        # (kb.DEFLECTION_WINDOW); this period only delays the figures a little more.
        "settle-kb-suggestions": {
            "task": "workers.tasks.settle_kb_suggestions",
            "schedule": timedelta(minutes=10),
            "options": {"expires": 600},
        },
        # Uploads never sent with a ticket or message are removed a day after upload.
        "remove-unsent-uploads": {
            "task": "workers.tasks.remove_unsent_uploads",
            "schedule": timedelta(hours=1),
            "options": {"expires": 3600},
        },
        # Webhook deliveries whose retry is due (backoff in the database) or whose worker was
        # lost; this period is how late after its due time a retry may go.
        "send-due-webhooks": {
            "task": "workers.tasks.send_due_webhooks",
            "schedule": timedelta(seconds=5),
            "options": {"expires": 5},
        },
        # A dropdown field's expression index, should its after-commit task be lost. On the
        # default queue, not ``beat``: a build can take minutes and must not hold up the ticks.
        "build-field-indexes": {
            "task": "workers.tasks.build_field_indexes",
            "schedule": timedelta(minutes=1),
            "options": {"expires": 60},
        },
        # Malware scans to retry (the scanner was down) or whose task was lost; nothing to do
        # unless AUTOCRM_CLAMD_URL is set.
        "scan-due-attachments": {
            "task": "workers.tasks.scan_due_attachments",
            "schedule": timedelta(seconds=15),
            "options": {"expires": 15},
        },
    },
}
