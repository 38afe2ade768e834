"""Fixtures of the integration tests: for the realtime ones a Socket.IO server emitting
in-process and test clients; for the webhook ones a local HTTP receiver.

Flask-SocketIO's test client refuses a server with a message queue, and the session app has
one (the test Redis), so these tests use a second app built from the same config without it.
Both apps share ``db``, so the ``db_session`` fixture's rolled-back transaction holds here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_socketio import SocketIO, SocketIOTestClient

from autocrm import create_app
from autocrm.extensions import db
from autocrm.people.models import User
from autocrm.security import issue_token
from tests.conftest import key_prefix
from tests.webhook_receiver import WebhookReceiver


@pytest.fixture(scope="module")
def rt_app(app: Flask) -> Iterator[Flask]:
    """The session app's config with no Socket.IO message queue (emits stay in-process)."""
    application = create_app(
        {
            **app.config,
            "AUTOCRM_SOCKETIO_MESSAGE_QUEUE": None,
            "AUTOCRM_REDIS_KEY_PREFIX": key_prefix(),
        }
    )
    yield application
    app.extensions["celery"].set_default()  # building an app made its own Celery the default
    application.extensions["celery"].close()
    application.extensions["autocrm.redis"].close()
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def rt(rt_app: Flask, db_session: Any) -> Iterator[Flask]:
    """``rt_app`` is the current app, so after-commit emits go through its Socket.IO server."""
    with rt_app.app_context():
        yield rt_app


@pytest.fixture
def http(rt: Flask) -> FlaskClient:
    return rt.test_client()


@pytest.fixture
def sio(rt: Flask) -> SocketIO:
    return rt.extensions["socketio"]


class Sock:
    """One Socket.IO test client; keeps every event it received, for looking at by name."""

    def __init__(self, client: SocketIOTestClient, server: SocketIO, user: User | None) -> None:
        self.client = client
        self.server = server
        self.user = user
        self.log: list[dict[str, Any]] = []

    @property
    def connected(self) -> bool:
        return self.client.is_connected()

    @property
    def sid(self) -> str:
        return self.server.server.manager.sid_from_eio_sid(self.client.eio_sid, "/")

    def rooms(self) -> set[str]:
        return set(self.server.server.rooms(self.sid))

    def emit(self, event: str, payload: Any = None) -> dict[str, Any]:
        """Send a client event and return its acknowledgement."""
        return self.client.emit(event, payload, callback=True)

    def received(self, name: str) -> list[Any]:
        """The payloads of every ``name`` event received so far."""
        if self.connected:
            self.log.extend(self.client.get_received())
        # The test client files a "message" event's payload as its args, not in a list.
        unwrap = (lambda args: args) if name in {"message", "json"} else (lambda args: args[0])
        return [unwrap(e["args"]) for e in self.log if e["name"] == name]

    def names(self) -> list[str]:
        if self.connected:
            self.log.extend(self.client.get_received())
        return [e["name"] for e in self.log]


@pytest.fixture
def connect(sio: SocketIO, rt: Flask, http: FlaskClient) -> Iterator[Callable[..., Sock]]:
    """``connect(user)`` opens a socket with the user's bearer token (``auth=`` overrides)."""
    opened: list[Sock] = []

    def _connect(user: User | None = None, **kw: Any) -> Sock:
        if "auth" not in kw and user is not None:
            kw["auth"] = {"token": issue_token(user.id, user.password_hash)}
        client = sio.test_client(rt, flask_test_client=http, **kw)
        sock = Sock(client, sio, user)
        opened.append(sock)
        return sock

    yield _connect
    for sock in opened:
        if sock.connected:
            sock.client.disconnect()
        SocketIOTestClient.clients.pop(sock.client.eio_sid, None)
        sio.server.environ.pop(sock.client.eio_sid, None)


@pytest.fixture
def receiver(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    """A local HTTP receiver for webhook deliveries (tests/webhook_receiver.py), its host
    allow-listed: it listens on loopback, over plain http."""
    monkeypatch.setitem(app.config, "AUTOCRM_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1")
    server = WebhookReceiver()
    server.start()
    yield server
    server.stop()
