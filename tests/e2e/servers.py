"""Web server processes and Socket.IO clients for the end-to-end tests.

A server is the production entry (``python -m autocrm.server``, or a test-only module that
wraps it) in a given async mode on a free loopback port, in its own process group, its output
in a log file. Start servers with ``running``: it starts them side by side (each takes seconds
to import the app) and stops every one of them afterwards, pass or fail.

The test process itself never imports eventlet or gevent: only these children do.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import socketio

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 40.0
STOP_TIMEOUT_S = 10.0
EVENT_TIMEOUT_S = 15.0

# What eventlet and gevent print when something imported socket, ssl or threading before
# they could patch it: the server entry point must patch first.
LATE_PATCH_COMPLAINTS = (
    "monkey_patch() before importing",
    "were not greened",
    "MonkeyPatchWarning",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class WebServer:
    name: str
    mode: str
    port: int
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def answers(self) -> bool:
        assert self.popen.poll() is None, f"{self.name} exited:\n{self.log_text()}"
        try:
            return requests.get(f"{self.url}/api/openapi.json", timeout=2).ok
        except requests.RequestException:
            return False

    def stop(self) -> None:
        """SIGTERM, then SIGKILL the whole group if it lingers."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=STOP_TIMEOUT_S)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=STOP_TIMEOUT_S)


def launch(
    name: str, mode: str, env: dict[str, str], log_dir: Path, module: str = "autocrm.server"
) -> WebServer:
    """Start ``python -m <module>`` (not waiting for it: see ``running``)."""
    port = free_port()
    child_env = {
        **env,
        "AUTOCRM_ASYNC_MODE": mode,
        "AUTOCRM_HOST": "127.0.0.1",
        "AUTOCRM_PORT": str(port),
        "AUTOCRM_ACCESS_LOG": "off",
        "PYTHONUNBUFFERED": "1",
    }
    log = log_dir / f"{name}.log"
    with log.open("wb") as output:
        popen = subprocess.Popen(  # noqa: S603 (fixed argv)
            [sys.executable, "-m", module],
            cwd=REPO,
            env=child_env,
            stdout=output,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
    return WebServer(name, mode, port, popen, log)


def wait_until_answering(servers: list[WebServer]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    pending = list(servers)
    while pending and time.monotonic() < deadline:
        pending = [server for server in pending if not server.answers()]
        if pending:
            time.sleep(0.2)
    for server in pending:
        raise AssertionError(
            f"{server.name} not answering within {STARTUP_TIMEOUT_S}s:\n{server.log_text()}"
        )


@contextlib.contextmanager
def running(
    mode: str,
    env: dict[str, str],
    log_dir: Path,
    count: int = 1,
    module: str = "autocrm.server",
) -> Iterator[list[WebServer]]:
    """``count`` servers in ``mode``, answering HTTP; all stopped afterwards."""
    servers: list[WebServer] = []
    try:
        for n in range(1, count + 1):
            servers.append(launch(f"web{n}-{mode}", mode, env, log_dir, module))
        wait_until_answering(servers)
        yield servers
    finally:
        for server in servers:
            server.stop()


# -- Socket.IO clients ------------------------------------------------------------------------


@dataclass
class Recorder:
    """The events a client received, in order, with a way to wait for one."""

    events: list[tuple[str, Any]] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def record(self, event: str, data: Any) -> None:
        with self._changed:
            self.events.append((event, data))
            self._changed.notify_all()

    def received(self, event: str) -> list[Any]:
        with self._changed:
            return [data for name, data in self.events if name == event]

    def wait_for(
        self, event: str, predicate: Callable[[Any], bool], timeout: float = EVENT_TIMEOUT_S
    ) -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for name, data in self.events:
                    if name == event and predicate(data):
                        return data
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no matching {event!r} within {timeout}s; received {self.events!r}"
                    )
                self._changed.wait(remaining)


class Client:
    """A ``socketio.Client`` over WebSocket, authenticated by a bearer token, recording
    the server's events."""

    EVENTS = ("message", "ticket_updated", "notification", "presence", "typing")

    def __init__(self, server: WebServer, token: str) -> None:
        self.server = server
        self.recorder = Recorder()
        self.sio = socketio.Client(reconnection=False, handle_sigint=False)
        for event in self.EVENTS:
            self.sio.on(event, self._recorder_for(event))
        self.sio.connect(
            server.url, auth={"token": token}, transports=["websocket"], wait_timeout=10
        )

    def _recorder_for(self, event: str) -> Callable[[Any], None]:
        return lambda data: self.recorder.record(event, data)

    def call(self, event: str, data: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """Emit and return the acknowledgement, which must say ok."""
        ack = self.sio.call(event, data, timeout=timeout)
        assert isinstance(ack, dict), ack
        assert ack.get("ok"), f"{event} {data}: {ack}"
        return ack

    def disconnect(self) -> None:
        if self.sio.connected:
            self.sio.disconnect()


@contextlib.contextmanager
def connected(server: WebServer, token: str) -> Iterator[Client]:
    client = Client(server, token)
    try:
        yield client
    finally:
        client.disconnect()
