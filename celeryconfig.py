"""Celery settings shared by the web processes (which only publish) and the workers.

The broker URL is filled in from ``AUTOCRM_REDIS_URL`` by ``autocrm.config``. The reliability
settings follow the pitfalls listed in ARCHITECTURE.md: late acks plus reject-on-worker-lost so
a killed worker's task runs again, prefetch of one, and deadlines kept in the database (the beat
sweep re-publishes outbox rows), never in long ETA messages.
"""

from datetime import timedelta

settings = {
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
        # Knowledge-base deflection: an opened suggestion is settled a day after it was opened
        # (kb.DEFLECTION_WINDOW); this period only delays the figures a little more.
        "settle-kb-suggestions": {
            "task": "workers.tasks.settle_kb_suggestions",
            "schedule": timedelta(minutes=10),
            "options": {"expires": 600},
        },
    },
}
