"""Realtime across real processes, for eventlet and for gevent.

Two web servers (``python -m autocrm.server``) share the test Redis as their Socket.IO message
queue, under the run's key prefix so the channel is private; one Celery worker; the test
database. Clients are ``socketio.Client`` over WebSocket, each on a chosen process. Data is
committed for real (other processes must see it) and deleted afterwards
(``processes.committed_data``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from flask import Flask
from sqlalchemy import select

from autocrm.events.models import OutboxEvent
from autocrm.extensions import db
from autocrm.people.models import AssignmentPolicy, User
from autocrm.security import issue_token
from tests import processes
from tests.conftest import wait_until
from tests.e2e import servers
from tests.e2e.servers import LATE_PATCH_COMPLAINTS, WebServer
from tests.factories import Factory
from tests.processes import Desk

MODES = ("eventlet", "gevent")


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-logs")


@pytest.fixture(scope="module")
def child_env(database_url: str, redis_url: str, app: Flask) -> dict[str, str]:
    """The test app's settings (same database, Redis, key prefix and secret); ``app`` has
    migrated the database before any process starts."""
    return processes.test_env(database_url, redis_url)


@pytest.fixture(scope="module")
def worker(
    database_url: str, redis_url: str, log_dir: Path, child_env: dict[str, str]
) -> Iterator[processes.Process]:
    with redis.Redis.from_url(redis_url) as client:
        processes.drop_queued_messages(client)
    process = processes.start_worker("e2e-worker", database_url, redis_url, log_dir)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module", params=MODES)
def web(
    request: pytest.FixtureRequest, child_env: dict[str, str], log_dir: Path
) -> Iterator[list[WebServer]]:
    """Two web processes in one async mode."""
    with servers.running(request.param, child_env, log_dir, count=2) as started:
        yield started


@pytest.fixture
def ctx(app: Flask) -> Iterator[None]:
    with app.app_context(), processes.committed_data():
        yield


def token_for(user_id: int) -> str:
    def read() -> str:
        user = db.session.get_one(User, user_id)
        return issue_token(user.id, user.password_hash)

    return processes.snapshot(read)


def messages_after(server: WebServer, token: str, ticket_id: int, after: int) -> list[dict]:
    response = requests.get(
        f"{server.url}/api/tickets/{ticket_id}/messages",
        params={"after": after},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    page = response.json()
    assert not page["has_more"]
    return page["items"]


def desk_with_ticket(**team_options: Any) -> tuple[Desk, int]:
    desk = processes.staffed_team(agents=1, **team_options)
    return desk, processes.open_ticket(desk)


def test_servers_patch_before_importing_the_app(web: list[WebServer]) -> None:
    """The entry point monkey-patches before socket, ssl, threading or redis are imported:
    eventlet and gevent say so at start-up when it did not."""
    for server in web:
        complaints = [c for c in LATE_PATCH_COMPLAINTS if c in server.log_text()]
        assert not complaints, (
            f"{server.name} patched too late ({complaints}); `import autocrm` must not import "
            f"the application (autocrm/__init__.py):\n{server.log_text()}"
        )


def test_message_sent_on_one_process_reaches_a_client_on_another(
    web: list[WebServer], worker: processes.Process, ctx: None
) -> None:
    desk, ticket_id = desk_with_ticket(policy=AssignmentPolicy.MANUAL)
    agent_token = token_for(desk.agent_ids[0])
    customer_token = token_for(desk.customer_id)
    with (
        servers.connected(web[0], agent_token) as agent,
        servers.connected(web[1], customer_token) as customer,
    ):
        agent.call("join_ticket", {"ticket_id": ticket_id})
        customer.call("join_ticket", {"ticket_id": ticket_id})

        ack = agent.call("send_message", {"ticket_id": ticket_id, "body": "Across processes"})

        sent_id = ack["message"]["id"]
        received = customer.recorder.wait_for("message", lambda m: m["id"] == sent_id)
        assert received["body"] == "Across processes"
        assert received["author_id"] == desk.agent_ids[0]
        assert len(customer.recorder.received("message")) == 1


def test_assignment_by_the_worker_reaches_the_team_queue(
    web: list[WebServer], worker: processes.Process, ctx: None
) -> None:
    desk = processes.staffed_team(agents=1, policy=AssignmentPolicy.ROUND_ROBIN)
    with servers.connected(web[1], token_for(desk.lead_id)) as lead:
        lead.call("join_queue", {"team_id": desk.team_id})

        ticket_id = processes.open_ticket(desk)  # the worker assigns it after the commit

        update = lead.recorder.wait_for(
            "ticket_updated",
            lambda t: t["id"] == ticket_id and t["assignee_id"] is not None,
            timeout=30,
        )
        assert update["assignee_id"] == desk.agent_ids[0], worker.log_text()
        assert update["team_id"] == desk.team_id


def test_a_chat_message_sent_to_a_server_is_handled_by_the_worker(
    web: list[WebServer], worker: processes.Process, ctx: None
) -> None:
    """The socket handler returns after its commit; the server's relay (a green thread under
    eventlet and gevent) publishes the message's event, and the worker handles it well
    before the outbox sweep would (no beat runs here)."""
    desk, ticket_id = desk_with_ticket(policy=AssignmentPolicy.MANUAL)
    with servers.connected(web[0], token_for(desk.customer_id)) as customer:
        customer.call("join_ticket", {"ticket_id": ticket_id})
        customer.call("send_message", {"ticket_id": ticket_id, "body": "Handled?"})

    def handled() -> bool:
        return processes.snapshot(
            lambda: (
                db.session.scalar(
                    select(OutboxEvent.processed_at).where(
                        OutboxEvent.ticket_id == ticket_id, OutboxEvent.kind == "message.created"
                    )
                )
                is not None
            )
        )

    assert wait_until(handled, timeout=20), worker.log_text()


def test_reconnecting_client_catches_up_with_nothing_lost(
    web: list[WebServer], worker: processes.Process, ctx: None
) -> None:
    desk, ticket_id = desk_with_ticket(policy=AssignmentPolicy.MANUAL)
    customer_token = token_for(desk.customer_id)
    with servers.connected(web[0], token_for(desk.agent_ids[0])) as agent:
        agent.call("join_ticket", {"ticket_id": ticket_id})

        def send(body: str) -> int:
            return agent.call("send_message", {"ticket_id": ticket_id, "body": body})["message"][
                "id"
            ]

        seen: list[int] = []
        with servers.connected(web[1], customer_token) as customer:
            customer.call("join_ticket", {"ticket_id": ticket_id})
            first = send("before the drop")
            customer.recorder.wait_for("message", lambda m: m["id"] == first)
            seen += [m["id"] for m in customer.recorder.received("message")]
        last_seen = seen[-1]

        missed = [send(f"while away {n}") for n in range(3)]

        # Back, on the other process (as after a proxy picks another one): rejoin, then fetch.
        with servers.connected(web[0], customer_token) as customer:
            customer.call("join_ticket", {"ticket_id": ticket_id})
            fetched = messages_after(web[0], customer_token, ticket_id, last_seen)
            seen += [m["id"] for m in fetched]
            after = send("after the return")
            customer.recorder.wait_for("message", lambda m: m["id"] == after)
            seen += [m["id"] for m in customer.recorder.received("message")]

    assert [m["id"] for m in fetched] == missed
    assert seen == [first, *missed, after]


# -- losing access ----------------------------------------------------------------------------


def api(server: WebServer, token: str, method: str, path: str, body: dict) -> dict:
    response = requests.request(
        method, f"{server.url}/api{path}", json=body, timeout=10,
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert response.ok, response.text
    return response.json()


def second_team_agent() -> tuple[int, int]:
    """Another team (Support) with one agent; returns (team id, agent id)."""
    factory = Factory(db.session)
    team = factory.team()
    agent = factory.agent(team)
    ids = team.id, agent.id
    db.session.rollback()
    return ids


def about(ticket_id: int, events: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [
        (name, data)
        for name, data in events
        if ticket_id in (data.get("ticket_id"), data.get("id"))
    ]


def test_agent_moved_off_a_ticket_stops_receiving_it_in_every_process(
    web: list[WebServer], worker: processes.Process, ctx: None
) -> None:
    """Billing's agent watches a ticket on process A; an admin moves it to Support through
    process B. Nothing about the ticket reaches Billing's socket afterwards (notes, replies,
    updates, typing, presence), while Support's agent on process A gets it all."""
    desk, ticket_id = desk_with_ticket(policy=AssignmentPolicy.MANUAL)
    marker_ticket = processes.open_ticket(desk)  # stays in Billing
    support_team, support_agent = second_team_agent()
    admin = token_for(desk.admin_id)
    billing_token = token_for(desk.agent_ids[0])
    note = {"body": "Billing may read this", "internal": True}
    with (
        servers.connected(web[0], billing_token) as billing,
        servers.connected(web[0], token_for(support_agent)) as support,
        servers.connected(web[1], admin) as typist,
    ):
        billing.call("join_ticket", {"ticket_id": ticket_id})
        billing.call("join_ticket", {"ticket_id": marker_ticket})
        typist.call("join_ticket", {"ticket_id": ticket_id})
        before = api(web[1], admin, "POST", f"/tickets/{ticket_id}/messages", note)
        billing.recorder.wait_for("message", lambda m: m["id"] == before["id"])

        moved = api(web[1], admin, "PATCH", f"/tickets/{ticket_id}", {"team_id": support_team})
        seen_before_move = len(billing.recorder.events)
        response = requests.get(
            f"{web[0].url}/api/tickets/{ticket_id}", timeout=10,
            headers={"Authorization": f"Bearer {billing_token}"},
        )  # fmt: skip
        assert response.status_code == 404
        support.call("join_ticket", {"ticket_id": ticket_id})
        viewers = support.recorder.wait_for(
            "presence", lambda p: p["ticket_id"] == ticket_id and support_agent in p["viewer_ids"]
        )["viewer_ids"]
        assert desk.agent_ids[0] not in viewers  # nor is Billing's agent shown as viewing it
        typist.call("typing", {"ticket_id": ticket_id, "typing": True})
        for body in ({"body": "Support only", "internal": True}, {"body": "A public reply"}):
            api(web[1], admin, "POST", f"/tickets/{ticket_id}/messages", body)
        marker = api(web[1], admin, "POST", f"/tickets/{marker_ticket}/messages", note)

        # Support (same process as Billing) got the later reply; the marker, sent after it on
        # the same channel, reached Billing: anything about the ticket would have come first.
        support.recorder.wait_for("message", lambda m: m["body"] == "A public reply")
        support.recorder.wait_for("typing", lambda t: t["ticket_id"] == ticket_id)
        billing.recorder.wait_for("message", lambda m: m["id"] == marker["id"])

    after_move = about(ticket_id, billing.recorder.events[seen_before_move:])
    leaked = [
        (name, data)
        for name, data in after_move
        if not (name == "ticket_updated" and data["version"] <= moved["version"])
    ]
    assert leaked == []
