"""What one request costs the database: statements, connection checkouts, BEGINs.

A benchmark that prints figures, not a test (the ceilings live in
tests/integration/test_query_counts.py). It builds the app in this process on a fresh
database (SQLite in a temp dir, or ``--pg``: a uniquely named PostgreSQL database, dropped at
the end), with a real Redis for the after-commit publishes, and sends through Flask's test
client, as the API's clients would, the requests of the write path:

- ``POST /api/tickets`` as a customer (create),
- ``POST /api/tickets/<id>/transitions`` as an agent (transition),
- ``POST /api/tickets/<id>/messages`` as the customer (reply) and as the agent (internal note),

and of the read path, on the demo's data (``seed_demo``, plus three custom fields with values,
tags, a follower and a link on the workspace's ticket):

- ``GET /api/tickets?limit=50`` as the agent (list),
- ``GET /agent/`` (the queue page) and ``GET /agent/tickets/<id>`` (the workspace) as the
  demo agent, logged in with a session cookie.

Each is repeated (the first, warming the process's caches, is not counted) and every SQL
statement the engine sends (``before_cursor_execute``) and every pool checkout is recorded; it
prints the median per request, and with ``-v`` the statements of the last one.

    PYTHONPATH=. .venv/bin/python bench/request_statements.py            # SQLite
    PYTHONPATH=. .venv/bin/python bench/request_statements.py --pg -v    # PostgreSQL, listed
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from common import add_scratch_options, enter_app, in_process_app, scratch_database_and_redis
from flask import g
from sqlalchemy import event, select

from autocrm.demo.logins import DEMO_LOGINS
from autocrm.demo.seed import seed_demo
from autocrm.extensions import db
from autocrm.fields import definitions
from autocrm.people import users
from autocrm.people.models import Role, User
from autocrm.security import issue_token
from autocrm.tickets import followers, links
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Message

REPEATS = 15


@contextlib.contextmanager
def recorded() -> Iterator[dict[str, list[str]]]:
    """The statements sent and the connection checkouts made inside the block."""
    seen: dict[str, list[str]] = {"statements": [], "checkouts": [], "commits": []}

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen["statements"].append(" ".join(sql.split())[:110])

    def checkout(*_args: Any) -> None:
        seen["checkouts"].append("checkout")

    def commit(_conn: Any) -> None:
        seen["commits"].append("COMMIT")
        seen["statements"].append("(COMMIT)")

    engine = db.engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine.pool, "checkout", checkout)
    event.listen(engine, "commit", commit)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine.pool, "checkout", checkout)
        event.remove(engine, "commit", commit)


def measure(name: str, send: Callable[[], Any], verbose: bool) -> tuple[float, float, float, float]:
    counts = []
    for n in range(REPEATS + 1):
        db.session.remove()  # a new request starts from an empty session
        for key in list(g):  # and an empty ``g`` (the bench's app context outlives requests)
            g.pop(key)
        with recorded() as seen:
            began = time.perf_counter()
            response = send()
            seen["ms"] = [f"{(time.perf_counter() - began) * 1000}"]
        if response.status_code not in (200, 201):
            raise SystemExit(f"{name}: HTTP {response.status_code} {response.get_data()[:300]!r}")
        if n:
            statements = [s for s in seen["statements"] if s != "(COMMIT)"]
            begins = sum(s.upper().startswith("BEGIN") for s in statements)
            counts.append((len(statements), len(seen["checkouts"]), begins, float(seen["ms"][0])))
    if verbose:
        print(f"-- {name}: the last request's statements")
        for sql in seen["statements"]:
            print(f"   {sql}")
    return tuple(statistics.median(c[i] for c in counts) for i in range(4))  # type: ignore[return-value]


CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def demo_workspace_ticket() -> int:
    """The demo's data, and the ticket the workspace shows: the first demo ticket with an
    agent's reply and note, given field values, tags, a follower and a link."""
    seed_demo()
    people = {u.email: u for u in db.session.scalars(select(User).where(User.role != Role.AGENT))}
    admin, customer2 = people["admin@example.com"], people["customer2@example.com"]
    for key, kind, more in (
        ("plan", "dropdown", {"options": ["free", "pro"], "visibility": "customer_visible"}),
        ("order_ref", "text", {}),
        ("seats", "number", {"visibility": "customer_editable"}),
    ):
        definitions.do_create_field(admin, {"key": key, "label": key, "type": kind, **more})
    replied = select(Message.ticket_id).where(Message.internal).distinct()
    ticket_id, other_id = sorted(db.session.scalars(replied))[:2]
    values = {"plan": "pro", "order_ref": "A-17", "seats": 12}
    tickets.do_update_ticket(admin, ticket_id, {"fields": values, "tags": ["vip", "billing"]})
    followers.do_add_follower(admin, ticket_id, user_id=customer2.id)
    links.do_link(admin, ticket_id, other_id)
    return ticket_id


def bench(url: str, redis_url: str, verbose: bool, stack: contextlib.ExitStack) -> None:
    app = in_process_app(url, redis_url, "acstatements")
    enter_app(stack, app, redis_url, ("acstatements-*",))
    workspace_id = demo_workspace_ticket()
    customer = users.create_user("customer@example.test", "bench-password-1", Role.CUSTOMER)
    agent = users.create_user("agent@example.test", "bench-password-1", Role.AGENT)
    db.session.commit()
    client = app.test_client()

    def bearer(user: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(user.id, user.password_hash)}"}

    as_customer, as_agent = bearer(customer), bearer(agent)
    body = {"subject": "Counted", "description": "How many statements does this cost?"}
    ticket_ids: list[int] = []

    def create() -> Any:
        response = client.post("/api/tickets", json=body, headers=as_customer)
        ticket_ids.append(response.get_json()["id"])
        return response

    transitions = iter(["start"] + ["wait_on_customer", "resume"] * REPEATS)

    def transition() -> Any:
        tid = ticket_ids[0]
        return client.post(
            f"/api/tickets/{tid}/transitions", json={"name": next(transitions)}, headers=as_agent
        )

    def reply() -> Any:
        tid = ticket_ids[1]
        return client.post(f"/api/tickets/{tid}/messages", json={"body": "hi"}, headers=as_customer)

    def note() -> Any:
        tid = ticket_ids[2]
        return client.post(
            f"/api/tickets/{tid}/messages",
            json={"body": "internal", "internal": True},
            headers=as_agent,
        )

    browser = app.test_client()
    token = CSRF_FIELD.search(browser.get("/login").get_data(as_text=True))
    assert token is not None
    password = next(login.password for login in DEMO_LOGINS if login.email == "agent@example.com")
    login = {"email": "agent@example.com", "password": password, "csrf_token": token.group(1)}
    assert browser.post("/login", data=login).status_code == 302

    rows = [
        ("create (customer)", create),
        ("transition (agent)", transition),
        ("reply (customer)", reply),
        ("internal note (agent)", note),
        ("list (agent, 50)", lambda: client.get("/api/tickets?limit=50", headers=as_agent)),
        ("/agent/ (queue page)", lambda: browser.get("/agent/")),
        ("workspace page", lambda: browser.get(f"/agent/tickets/{workspace_id}")),
    ]
    figures = [(name, measure(name, send, verbose)) for name, send in rows]
    print(f"\n{'request':<24} {'statements':>10} {'checkouts':>10} {'BEGINs':>7} {'ms':>7}")
    for name, (statements, checkouts, begins, ms) in figures:
        print(f"{name:<24} {statements:>10g} {checkouts:>10g} {begins:>7g} {ms:>7.1f}")
    print(
        f"(medians of {REPEATS} requests each after one warm-up, sent one at a time; ms: the "
        "whole request in this process; COMMIT is not a statement here)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_scratch_options(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="list the statements")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url, redis_url = scratch_database_and_redis(stack, args, "acstatements")
        bench(url, redis_url, args.verbose, stack)
    sys.exit(0)


if __name__ == "__main__":
    main()
