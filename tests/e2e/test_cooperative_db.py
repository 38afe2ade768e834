"""A slow PostgreSQL query does not block an eventlet server's event loop.

psycopg 3 waits for the server in C unless told otherwise, and only detects gevent's patching:
under eventlet one ``SELECT pg_sleep(2)`` would freeze every socket of the process for two
seconds. ``autocrm.server`` makes psycopg wait through the patched ``select``; this test runs
the production entry (wrapped by ``tests.e2e.slow_db_app`` for one test-only route) and checks
that a Socket.IO round trip completes while the query sleeps.

It always runs on PostgreSQL: the suite's server when ``AUTOCRM_TEST_DATABASE_URL`` is one, the
machine's otherwise, in a database of its own that is dropped afterwards, pass or fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests import databases, processes
from tests.e2e import servers

MACHINE_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SLEEP_S = 2.0
EMAIL = "coop-customer@example.test"
PASSWORD = "cooperative-db-pass"


def postgres_server_url() -> str:
    configured = os.environ.get("AUTOCRM_TEST_DATABASE_URL", "")
    return configured if configured.startswith("postgresql") else MACHINE_POSTGRES


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    with databases.postgres_database(
        postgres_server_url(), f"autocrm_coop_{uuid.uuid4().hex[:10]}"
    ) as url:
        yield url


def flask_cli(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(  # noqa: S603 (fixed argv)
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=servers.REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def eventlet_server(
    postgres_database: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[servers.WebServer]:
    env = processes.test_env(postgres_database, redis_url)
    env["AUTOCRM_INSTANCE_PATH"] = str(tmp_path_factory.mktemp("coop-instance"))
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "create-user", "--email", EMAIL, "--password", PASSWORD, "--role", "customer")
    log_dir = tmp_path_factory.mktemp("coop-logs")
    with servers.running("eventlet", env, log_dir, module="tests.e2e.slow_db_app") as started:
        yield started[0]


def customer_token_and_ticket(server: servers.WebServer) -> tuple[str, int]:
    response = requests.post(
        f"{server.url}/api/auth/token", json={"email": EMAIL, "password": PASSWORD}, timeout=10
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    response = requests.post(
        f"{server.url}/api/tickets",
        json={"subject": "Is the loop free?", "description": "Checking."},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return token, response.json()["id"]


def test_socket_round_trip_completes_while_postgres_sleeps(
    eventlet_server: servers.WebServer, tmp_path: Path
) -> None:
    token, ticket_id = customer_token_and_ticket(eventlet_server)
    slow: dict[str, object] = {}

    def sleep_in_postgres() -> None:
        started = time.monotonic()
        response = requests.get(
            f"{eventlet_server.url}/_test/pg-sleep",
            params={"seconds": SLEEP_S},
            timeout=SLEEP_S + 10,
        )
        slow["status"] = response.status_code
        slow["elapsed"] = time.monotonic() - started

    sleeper = threading.Thread(target=sleep_in_postgres)
    sleeper.start()
    try:
        time.sleep(0.3)  # the query is running on the server by now
        started = time.monotonic()
        with servers.connected(eventlet_server, token) as client:
            client.call("join_ticket", {"ticket_id": ticket_id}, timeout=SLEEP_S + 5)
        round_trip = time.monotonic() - started
        query_still_running = sleeper.is_alive()
    finally:
        sleeper.join(timeout=SLEEP_S + 15)

    assert slow == {"status": 200, "elapsed": pytest.approx(SLEEP_S, abs=1.5)}, slow
    assert round_trip < 1.0, (
        f"connect + join_ticket took {round_trip:.2f}s while PostgreSQL slept: "
        f"the event loop was blocked\n{eventlet_server.log_text()}"
    )
    assert query_still_running, "the query ended before the round trip: nothing was proven"
