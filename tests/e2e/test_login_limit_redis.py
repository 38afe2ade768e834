"""The login limit against a Redis of its own, in a real web process: its keys sit under the
installation's prefix, a trusted proxy's ``X-Forwarded-For`` names the client, and while that
Redis is down login still answers (counting in the process's memory) instead of a 500.

The web process (``python -m autocrm.server``) uses the test database and Redis for everything
else; only the limiter's storage is the redis-server this test starts and stops.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from subprocess import Popen

import pytest
import redis
import requests
from flask import Flask

from autocrm import embedded_redis
from autocrm.config import limits_storage_url
from autocrm.extensions import db
from tests import processes
from tests.conftest import key_prefix
from tests.e2e import servers
from tests.e2e.servers import WebServer
from tests.factories import PASSWORD, Factory

LIMIT = 3
WRONG_PASSWORD = "guessing"


@dataclass
class Stack:
    web: WebServer
    limits_redis: Popen[bytes]
    limits_url: str
    email: str


@pytest.fixture
def stack(
    app: Flask, database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("limits-redis")
    limits_redis, limits_url = embedded_redis.start(directory)
    env = processes.test_env(
        database_url,
        redis_url,
        AUTOCRM_RATELIMIT_STORAGE_URL=limits_storage_url(limits_url),
        AUTOCRM_LOGIN_RATE_LIMIT=f"{LIMIT} per minute",
        AUTOCRM_TRUSTED_PROXIES="1",
    )
    try:
        with app.app_context(), processes.committed_data():
            email = Factory(db.session).customer().email
            db.session.rollback()
            with servers.running("eventlet", env, directory) as (web,):
                yield Stack(web, limits_redis, limits_url, email)
    finally:
        limits_redis.terminate()
        limits_redis.wait(timeout=10)


def login(stack: Stack, email: str, password: str = WRONG_PASSWORD, client: str = "203.0.113.9"):
    return requests.post(
        f"{stack.web.url}/api/auth/token",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": client},
        timeout=10,
    )


def test_limiter_keys_live_under_the_installations_prefix(stack: Stack) -> None:
    assert login(stack, stack.email).status_code == 401
    with redis.Redis.from_url(stack.limits_url) as store:
        keys = [key.decode() for key in store.keys("*")]
    assert keys
    assert all(key.startswith(f"{key_prefix()}autocrm:limits") for key in keys), keys


def test_a_trusted_proxy_forwards_the_clients_address(stack: Stack) -> None:
    for attempt in range(LIMIT):
        assert login(stack, f"a{attempt}@example.com", client="203.0.113.1").status_code == 401
    assert login(stack, "a@example.com", client="203.0.113.1").status_code == 429
    assert login(stack, "b@example.com", client="203.0.113.2").status_code == 401


def test_login_goes_on_while_the_limiters_redis_is_down(stack: Stack) -> None:
    stack.limits_redis.terminate()
    stack.limits_redis.wait(timeout=10)

    assert login(stack, stack.email).status_code == 401
    assert login(stack, stack.email, PASSWORD).status_code == 200
    assert "falling back to in-memory storage" in stack.web.log_text()
    # Still limited, by the process on its own.
    assert login(stack, stack.email).status_code == 401
    assert login(stack, stack.email).status_code == 429
