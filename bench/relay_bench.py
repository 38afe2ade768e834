"""What the after-commit publish of outbox events costs a write request: on its thread, or not.

A benchmark that prints figures, not a test. It builds the app in this process on a fresh
database (SQLite in a temp dir, or ``--pg``) with a real Redis (embedded unless
``--redis-url``) and sends ``POST /api/tickets`` (create) and ``POST
/api/tickets/<id>/messages`` (reply) through Flask's test client, alternating request by
request between two ways of handing the committed events to the broker:

- ``inline`` (how it was before the relay): the after-commit consumer publishes them itself,
  ``outbox.publish``, one ``send_task`` per event on the request's thread;
- ``relay`` (now): the consumer queues them for this process's relay thread and returns.

Alternating in one process keeps the two under the same machine load. Each request's wall time
is measured, and the time its ``outbox`` after-commit consumer took on the request's thread.
The relay is flushed after each request, outside the timing, so that its send does not overlap
the next request (in a server it does, on another thread: its CPU is moved, not removed).

    PYTHONPATH=. .venv/bin/python bench/relay_bench.py          # SQLite
    PYTHONPATH=. .venv/bin/python bench/relay_bench.py --pg     # PostgreSQL
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from common import add_scratch_options, enter_app, in_process_app, scratch_database_and_redis

from autocrm import aftercommit
from autocrm.events import outbox, relay
from autocrm.extensions import db
from autocrm.people import users
from autocrm.people.models import Role
from autocrm.security import issue_token

MODES = ("inline", "relay")


def timed(
    consumer: Callable[[list[Any]], object], spent: list[float]
) -> Callable[[list[Any]], None]:
    def consume(events: list[Any]) -> None:
        began = time.perf_counter()
        consumer(events)
        spent.append(time.perf_counter() - began)

    return consume


def bench(url: str, redis_url: str, requests: int, stack: contextlib.ExitStack) -> None:
    app = in_process_app(url, redis_url, "acrelay")
    enter_app(stack, app, redis_url, ("acrelay-*",))
    customer = users.create_user("customer@example.test", "bench-password-1", Role.CUSTOMER)
    db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {issue_token(customer.id, customer.password_hash)}"}
    body = {"subject": "Relayed", "description": "Who waits for the broker?"}
    ticket_id = client.post("/api/tickets", json=body, headers=headers).get_json()["id"]
    sends = {
        "create": lambda: client.post("/api/tickets", json=body, headers=headers),
        "reply": lambda: client.post(
            f"/api/tickets/{ticket_id}/messages", json={"body": "hi"}, headers=headers
        ),
    }
    wall: dict[tuple[str, str], list[float]] = {}
    consumer: dict[tuple[str, str], list[float]] = {}
    for n in range(requests + 2):  # two warm-up rounds, not counted
        for name, send in sends.items():
            for mode in MODES if n % 2 else reversed(MODES):
                spent: list[float] = []
                inline = lambda events: outbox.publish(events)  # noqa: E731
                aftercommit.register(
                    "outbox", timed(inline if mode == "inline" else outbox._relay, spent)
                )
                db.session.remove()
                began = time.perf_counter()
                response = send()
                took = time.perf_counter() - began
                relay.flush()
                if response.status_code != 201:
                    raise SystemExit(f"{name}: HTTP {response.status_code} {response.get_data()!r}")
                if n >= 2:
                    wall.setdefault((name, mode), []).append(took)
                    consumer.setdefault((name, mode), []).extend(spent)
    outbox.install()
    print(f"\n{'request':<8} {'mode':<7} {'wall ms p50':>12} {'p90':>7} {'publish ms p50':>15}")
    for name in sends:
        for mode in MODES:
            w = sorted(wall[(name, mode)])
            c = statistics.median(consumer[(name, mode)])
            print(
                f"{name:<8} {mode:<7} {statistics.median(w) * 1000:>12.2f} "
                f"{w[int(len(w) * 0.9)] * 1000:>7.2f} {c * 1000:>15.3f}"
            )
        ratio = statistics.median(wall[(name, "relay")]) / statistics.median(wall[(name, "inline")])
        print(f"{name:<8} relay/inline wall p50: {ratio:.2f}")
    print(
        f"({requests} requests per mode, alternated; publish: the outbox consumer's time on the "
        "request's thread)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_scratch_options(parser)
    parser.add_argument("--requests", type=int, default=60, help="per request kind and mode")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url, redis_url = scratch_database_and_redis(stack, args, "acrelay")
        bench(url, redis_url, args.requests, stack)
    sys.exit(0)


if __name__ == "__main__":
    main()
