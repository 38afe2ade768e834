"""What one chat message costs the web server in the ``send_message`` handler, in-process.

A benchmark that prints figures, not a test. It migrates a fresh database (SQLite in a temp dir,
or ``--pg``), seeds a team of agents, a customer and a ticket, connects an agent and the customer
with Flask-SocketIO's test client (no message queue: the emits stay in this process), has both
join the ticket, then the agent sends ``--messages`` chat messages after 20 uncounted ones. It
prints the SQL statements of one message and the handler's CPU per message (``process_time``:
median, p10, p90); ``--profile`` adds a cProfile listing of the autocrm functions.

``--code DIR`` runs the code of another checkout (an ``git archive`` of an older commit, say)
with this script, so two versions compare on the same machine minutes apart:

    .venv/bin/python bench/socket_handler_bench.py
    .venv/bin/python bench/socket_handler_bench.py --code /tmp/base --messages 200
"""

from __future__ import annotations

import sys

if "--code" in sys.argv:  # before ``common`` imports autocrm
    sys.path.insert(0, sys.argv[sys.argv.index("--code") + 1])

import argparse
import contextlib
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from common import (
    DEFAULT_PG_ADMIN_URL,
    enter_app,
    fds_to,
    fresh_pg_database,
    in_process_app,
    percentile,
    stop_process,
)

import autocrm
from autocrm import embedded_redis

PASSWORD = "bench-password-" + secrets.token_hex(4)
BODY = "hello **{}**, see `this` and [the guide](https://example.com/guide)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--pg", action="store_true")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--redis-url", help="default: an embedded Redis in a temp dir")
    parser.add_argument("--code", help="a checkout whose autocrm to run (default: this one)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sql", action="store_true", help="print one message's statements")
    args = parser.parse_args()
    print(f"code:     {Path(autocrm.__file__).parents[1]}")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if args.pg:
            url = stack.enter_context(fresh_pg_database(args.pg_admin_url))
        else:
            url = f"sqlite:///{tmp / 'bench.db'}"
        redis_url = args.redis_url
        if not redis_url:
            with fds_to(tmp / "redis.log"):
                redis_process, redis_url = embedded_redis.start(tmp)
            stack.callback(stop_process, redis_process)
        run(args, stack, url, redis_url)


def run(args: argparse.Namespace, stack: contextlib.ExitStack, url: str, redis_url: str) -> None:
    from sqlalchemy import event

    from autocrm import create_app
    from autocrm.extensions import db
    from autocrm.people import teams, users
    from autocrm.people.models import Role
    from autocrm.security import issue_token
    from autocrm.tickets import services as tickets

    migrated = in_process_app(url, redis_url, "socket-handler")
    prefix = f"socket-handler-{os.getpid()}:"
    app = create_app(
        {
            **migrated.config,
            "AUTOCRM_SOCKETIO_MESSAGE_QUEUE": None,  # the test client needs in-process emits
            "AUTOCRM_REDIS_KEY_PREFIX": prefix,
        }
    )
    enter_app(stack, app, redis_url, (f"{prefix}*", f"socket-handler-{os.getpid()}:*"))
    customer = users.create_user("customer@example.com", PASSWORD, Role.CUSTOMER)
    team = teams.create_team("Socket handler bench")
    agents = [users.create_user(f"a{i}@example.com", PASSWORD, Role.AGENT) for i in range(3)]
    db.session.flush()
    for agent in agents:
        teams.add_member(team, agent)
        db.session.flush()
    db.session.commit()
    ticket_id = tickets.do_create_ticket(
        agents[0], subject="Chat", description="Bench", requester_id=customer.id, team_id=team.id
    ).id
    tokens = [issue_token(u.id, u.password_hash) for u in (agents[0], customer)]
    db.session.remove()
    sio, http = app.extensions["socketio"], app.test_client()
    sender, receiver = (
        sio.test_client(app, flask_test_client=http, auth={"token": t}) for t in tokens
    )
    for client in (sender, receiver):
        assert client.emit("join_ticket", {"ticket_id": ticket_id}, callback=True)["ok"]

    def send(n: int) -> None:
        payload = {"ticket_id": ticket_id, "body": BODY.format(n)}
        ack = sender.emit("send_message", payload, callback=True)
        assert ack["ok"], ack

    for n in range(20):
        send(-n)
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    send(0)
    event.remove(db.engine, "before_cursor_execute", record)
    print(f"statements per message: {len(statements)}")
    for statement in statements if args.sql else []:
        print("   " + " ".join(statement.split())[:150])
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    cpu: list[float] = []
    for n in range(args.messages):
        started = time.process_time()
        send(n)
        cpu.append((time.process_time() - started) * 1000)
        if n % 20 == 0:
            receiver.get_received()
            sender.get_received()
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats("autocrm|workflows", 50)
    cpu.sort()
    print(
        f"handler CPU per message: median {statistics.median(cpu):.2f} ms, "
        f"p10 {percentile(cpu, 10):.2f}, p90 {percentile(cpu, 90):.2f} "
        f"({args.messages} messages)"
    )


if __name__ == "__main__":
    main()
