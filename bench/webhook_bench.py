"""Webhook deliveries per second with one Celery worker, next to the bare HTTP requests of the
same run as the baseline.

A benchmark that prints figures, not a test. It migrates a fresh database (``--pg``: a uniquely
named PostgreSQL database, dropped at the end; otherwise SQLite in a temp dir), starts a local
HTTP receiver (``tests/webhook_receiver.py``, answering 200 at once) allow-listed for delivery,
and subscribes it to ``ticket.created``. One ticket is created through the services and its
delivery recorded by the real handler; ``--deliveries`` copies of that delivery (each its own
event id and ticket id, so none waits behind another for ordering) are inserted as pending.

1. **Worker**: one ``celery -A workers worker --queues webhooks`` (``--pool``,
   ``--concurrency``). The beat's sweep call (``deliveries.do_send_due``) leases every delivery
   and hands each to the worker as a task; the clock runs from that call until the last one is
   recorded as delivered. Each delivery is a claim transaction, a signed POST, and a record
   transaction.
2. **Baseline**: the same number of POSTs of the same document with the same HTTP client code
   (``destinations.post`` after ``destinations.check_destination``), from ``--concurrency``
   threads of this process, with no database and no queue.

It prints both rates and the ratio worker / baseline (**compare the ratio**; the absolute
figures depend on the machine, and the receiver, the worker and the bench share its CPUs), and
exits 1 if a delivery was not delivered or the worker logged a traceback.

    .venv/bin/python bench/webhook_bench.py --pg     # PostgreSQL
    .venv/bin/python bench/webhook_bench.py          # SQLite in a temp dir, embedded Redis
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import (
    DEFAULT_PG_ADMIN_URL,
    BenchError,
    LoggedProcess,
    enter_app,
    machine_note,
    run_main,
    service_env,
)

KEY_PREFIX = f"autocrm-webhook-bench-{os.getpid()}:"
ALLOWED = "127.0.0.1"
POLL_S = 0.05


def make_app(env: dict[str, str]) -> Any:
    os.environ.update({k: v for k, v in env.items() if k.startswith("AUTOCRM_")})
    from autocrm import create_app  # this checkout's package: the repository root comes first

    return create_app()


def seed_deliveries(url: str, count: int) -> list[int]:
    """A subscription to ``url``, one real ticket.created delivery, and ``count`` pending
    copies of it; their ids."""
    from sqlalchemy import insert, select

    from autocrm.extensions import db
    from autocrm.people import users
    from autocrm.people.models import Role
    from autocrm.tickets import services as tickets
    from autocrm.webhooks import subscriptions
    from autocrm.webhooks.models import DeliveryStatus, WebhookDelivery
    from tests.factories import drain

    admin = users.create_user("bench-admin@example.com", "violet harbor 7 engine", Role.ADMIN)
    customer = users.create_user(
        "bench-customer@example.com", "quartz lantern 9 orbit", Role.CUSTOMER
    )
    db.session.commit()
    hook, _ = subscriptions.do_create_subscription(
        admin, {"url": url, "event_kinds": ["ticket.created"]}
    )
    tickets.do_create_ticket(customer, subject="Webhook bench", description="One delivery.")
    drain(db.session)  # the event's handlers, the webhook's included, in this process
    model = db.session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.subscription_id == hook.id)
    ).one()
    rows = [
        {
            "subscription_id": hook.id,
            "event_id": str(uuid.uuid4()),
            "event_kind": model.event_kind,
            "ticket_id": 1_000_000 + i,
            "payload": model.payload,
            "next_attempt_at": model.created_at,
        }
        for i in range(count)
    ]
    # Settled, so the task its handler queued sends nothing when the worker starts.
    model.status = DeliveryStatus.DELIVERED
    db.session.execute(insert(WebhookDelivery), rows)
    db.session.commit()
    return list(
        db.session.scalars(
            select(WebhookDelivery.id).where(
                WebhookDelivery.subscription_id == hook.id, WebhookDelivery.id != model.id
            )
        )
    )


def delivered_count(ids: list[int]) -> int:
    from sqlalchemy import func, select

    from autocrm.extensions import db
    from autocrm.webhooks.models import DeliveryStatus, WebhookDelivery

    count = db.session.scalar(
        select(func.count()).where(
            WebhookDelivery.id.in_(ids), WebhookDelivery.status == DeliveryStatus.DELIVERED
        )
    )
    db.session.rollback()
    return count or 0


def bench_worker(ids: list[int], max_wait_s: float) -> float:
    """Seconds from the sweep's hand-over to the last delivery recorded."""
    from autocrm.webhooks import deliveries

    started = time.monotonic()
    handed = deliveries.do_send_due(limit=len(ids))
    if sorted(handed) != sorted(ids):
        missing = sorted(set(ids) - set(handed))[:5]
        raise BenchError(f"the sweep handed over {len(handed)} of {len(ids)}; not {missing}")
    while (done := delivered_count(ids)) < len(ids):
        if time.monotonic() - started > max_wait_s:
            raise BenchError(f"only {done} of {len(ids)} delivered within {max_wait_s:.0f}s")
        time.sleep(POLL_S)
    return time.monotonic() - started


def bench_baseline(url: str, body: bytes, count: int, threads: int) -> float:
    """Seconds for ``count`` POSTs of ``body`` with the deliveries' HTTP client code."""
    from flask import current_app

    from autocrm.webhooks import destinations

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    headers = {"Content-Type": "application/json", "User-Agent": "AutoCRM-Webhooks/1"}

    def one(_: int) -> int:
        with app.app_context():  # the allow-list is the app's setting
            return destinations.post(destinations.check_destination(url), body, headers).status

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        statuses = list(pool.map(one, range(count)))
    elapsed = time.monotonic() - started
    if any(status != 200 for status in statuses):
        raise BenchError("the receiver did not answer 200 to every baseline request")
    return elapsed


def bench(args: argparse.Namespace, stack: contextlib.ExitStack) -> int:
    print("command:  " + shlex.join(sys.orig_argv), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="whb-"))  # short: the redis unix socket lives here
    stack.callback(shutil.rmtree, tmp, ignore_errors=True)
    env = service_env(args, stack, tmp, KEY_PREFIX)
    env["AUTOCRM_WEBHOOK_ALLOWED_HOSTS"] = ALLOWED
    app = make_app(env)
    enter_app(stack, app, env["AUTOCRM_REDIS_URL"], (f"{KEY_PREFIX}*",))

    import json

    from autocrm.extensions import db
    from tests.webhook_receiver import WebhookReceiver

    machine_note(db.engine)
    print(
        f"worker:   celery worker --pool {args.pool} --concurrency {args.concurrency} "
        f"--queues webhooks; {args.deliveries} deliveries; baseline {args.concurrency} threads"
    )
    receiver = WebhookReceiver()
    receiver.start()
    stack.callback(receiver.stop)
    ids = seed_deliveries(receiver.url, args.deliveries)
    body = json.dumps(receiver_document(ids[0]), separators=(",", ":")).encode()

    worker = LoggedProcess(tmp / "worker.log")
    worker.launch(
        [sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool", args.pool,
         "--concurrency", str(args.concurrency), "--queues", "webhooks", "--loglevel", "INFO",
         "--without-heartbeat", "--without-gossip", "--without-mingle"],
        env,
    )  # fmt: skip
    stack.callback(worker.stop)
    deadline = time.monotonic() + 60
    while "ready." not in worker.log_text():
        if time.monotonic() > deadline:
            raise BenchError("the worker did not start:\n" + worker.log_tail())
        time.sleep(0.2)

    worker_s = bench_worker(ids, args.max_wait)
    received = len(receiver.requests)
    baseline_s = bench_baseline(receiver.url, body, args.deliveries, args.concurrency)

    worker_rate = args.deliveries / worker_s
    baseline_rate = args.deliveries / baseline_s
    print(f"\nworker:   {args.deliveries} delivered in {worker_s:.2f}s = {worker_rate:.1f}/s")
    print(f"baseline: {args.deliveries} POSTs in {baseline_s:.2f}s = {baseline_rate:.1f}/s")
    print(f"ratio worker / baseline: {worker_rate / baseline_rate:.2f}")
    problems = worker.log_text().count("Traceback")
    print(f"receiver saw {received} worker requests; worker log tracebacks: {problems}")
    return 1 if problems or received < args.deliveries else 0


def receiver_document(delivery_id: int) -> dict[str, Any]:
    from autocrm.extensions import db
    from autocrm.webhooks.models import WebhookDelivery

    payload = dict(db.session.get_one(WebhookDelivery, delivery_id).payload)
    db.session.rollback()
    return payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", action="store_true", help="a fresh PostgreSQL database")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--database-url", help="a throwaway database of your own")
    parser.add_argument("--redis-url", help="default: an embedded Redis in a temp dir")
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--pool", default="threads", choices=["threads", "prefork", "solo"])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-wait", type=float, default=600, help="seconds for the worker")
    parser.add_argument("--max-seconds", type=float, default=1200, help="hard stop")
    args = parser.parse_args()
    run_main(args, bench, hard_limit_s=args.max_seconds)


if __name__ == "__main__":
    main()
