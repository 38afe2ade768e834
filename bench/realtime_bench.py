"""Realtime (Socket.IO) delivery latency next to raw Redis pub/sub, and idle connection capacity.

A benchmark that prints figures, not a test. It starts what it needs on free loopback ports and
stops it all at the end, including on Ctrl-C:

- an embedded Redis (``autocrm.embedded_redis``) unless ``--redis-url`` is given;
- a fresh database (SQLite in a temp dir, or ``--pg``), migrated with ``flask db upgrade`` and
  seeded in this process: a team with agents, a customer, and one ticket of the customer's in
  that team (tokens come from ``autocrm.security.issue_token``, as ``POST /api/auth/token``);
- per mode in ``--async-modes`` (default eventlet), ONE Socket.IO server process
  (``AUTOCRM_ASYNC_MODE``, the message queue on that Redis): ``python -m autocrm.server``, or
  for eventlet with ``--server inline`` a small launcher that monkey-patches first and serves
  ``wsgi:app`` with ``eventlet.wsgi.server`` (gunicorn 27 has no eventlet worker);
- ``--client-processes`` (default 4) spawned client processes that hold the receivers, so the
  clients' decoding does not share one GIL with the sender: the server is what is measured.
  Every fan-out prints the CPU of the server (or redis-server), of the client processes and
  of the sender; ``time.perf_counter`` is CLOCK_MONOTONIC, one clock for all processes.

Then, per mode, it measures:

1. delivery latency: 100 python-socketio clients (websocket transport, bearer token in
   ``auth``) ``join_ticket`` the same ticket; a sender (an agent, in this process) emits
   ``send_message`` N times; each message body carries its send time, and every receiving
   client notes when the ``message`` event arrives. p50/p99 over all (message, client) pairs,
   and the server's CPU per message.
2. the same fan-out over raw Redis, same process layout: this process PUBLISHes N timestamped
   messages of the same size to a channel that 100 subscriber threads (one connection each,
   in the same client processes) listen on. The ratio Socket.IO/Redis is the figure to
   compare.
3. capacity: idle authenticated connections (a minimal asyncio Engine.IO v4 client, which
   answers pings, in each client process) opened in steps up to 10,000; per step how many are
   connected, the server's RSS and open file descriptors; then a hold past one ping interval,
   and broadcasts to the room they all share (the median of the rounds' p50).

    .venv/bin/python bench/realtime_bench.py          # SQLite in a temp dir, embedded Redis
    .venv/bin/python bench/realtime_bench.py --pg     # a fresh PostgreSQL database, dropped after
    .venv/bin/python bench/realtime_bench.py --async-modes eventlet,gevent
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib.metadata
import json
import multiprocessing
import os
import re
import secrets
import shlex
import shutil
import struct
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import requests
from common import (  # bench/ is sys.path[0] when this file is run as a script
    DEFAULT_PG_ADMIN_URL,
    HOST,
    REPO_ROOT,
    STARTUP_TIMEOUT_S,
    BenchError,
    LoggedProcess,
    cpu_seconds,
    enter_app,
    free_port,
    machine_note,
    open_fds,
    percentile,
    proc_status,
    raise_nofile,
    run_main,
    service_env,
    stats,
)

PASSWORD = "bench-password-" + secrets.token_hex(4)
KEY_PREFIX = f"rtbench-{os.getpid()}:"
BODY_TAG = "rtbench"
# What a plain eventlet server allows: eventlet.wsgi.server(max_size=1024) and
# eventlet.listen(backlog=50), which Flask-SocketIO's socketio.run() uses as they are.
EVENTLET_DEFAULT_MAX_SIZE = 1024

# The fallback server: monkey-patch before anything imports socket, threading or redis.
INLINE_SERVER = """
import eventlet
eventlet.monkey_patch()
import sys
import eventlet.wsgi
from wsgi import app
port, max_size, backlog = (int(a) for a in sys.argv[1:4])
listener = eventlet.listen(("127.0.0.1", port), backlog=backlog)
print(f"eventlet.wsgi.server on 127.0.0.1:{port} max_size={max_size} backlog={backlog}", flush=True)
eventlet.wsgi.server(listener, app, max_size=max_size, log_output=False)
"""


def versions() -> str:
    names = ("eventlet", "python-socketio", "python-engineio", "flask-socketio", "redis")
    found = []
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found.append(f"{name} {importlib.metadata.version(name)}")
    return ", ".join(found)


# -- the server --------------------------------------------------------------------------------


class SocketServer(LoggedProcess):
    """One eventlet Socket.IO server process, in its own process group, logging to a file."""

    def __init__(
        self, env: dict[str, str], log_dir: Path, args: argparse.Namespace, mode: str
    ) -> None:
        super().__init__(log_dir / f"server-{mode}.log")
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.env = {**env, "AUTOCRM_ASYNC_MODE": mode}
        self.uses_module = (
            mode != "eventlet"
            or args.server == "module"
            or (args.server == "auto" and (REPO_ROOT / "autocrm" / "server.py").exists())
        )
        if self.uses_module:
            self.argv = [sys.executable, "-m", "autocrm.server", "--host", HOST,
                         "--port", str(self.port),
                         "--max-connections", str(args.max_size)]  # fmt: skip
            self.describe = f"python -m autocrm.server --max-connections {args.max_size}"
        else:
            self.argv = [sys.executable, "-c", INLINE_SERVER, str(self.port),
                         str(args.max_size), str(args.backlog)]  # fmt: skip
            self.describe = (
                f"inline launcher: eventlet.monkey_patch(); eventlet.wsgi.server(wsgi:app, "
                f"max_size={args.max_size}, listen backlog={args.backlog})"
            )

    def start(self) -> None:
        self.launch(self.argv, self.env)  # inherits this process's raised RLIMIT_NOFILE

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        probe = f"{self.url}/socket.io/?EIO=4&transport=polling"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"server exited ({self.process.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(probe, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise BenchError(f"server did not answer within {STARTUP_TIMEOUT_S}s:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_problems(self) -> tuple[Counter[str], Counter[str]]:
        """Counts of error-looking log lines, and of each distinct exception line."""
        counts: Counter[str] = Counter()
        exceptions: Counter[str] = Counter()
        for line in self.log_text().splitlines():
            for pattern in ("Traceback", "handler error", "database is locked"):
                if pattern in line:
                    counts[pattern] += 1
            if re.match(r"^\w+(\.\w+)*(Error|Exception)\b", line):
                exceptions[line[:160]] += 1
        return counts, exceptions


# -- setup, in this process --------------------------------------------------------------------


def make_app(env: dict[str, str]) -> Any:
    """The app in this process: threading mode, a write-only emitter on the same Redis."""
    os.environ.update({k: v for k, v in env.items() if k.startswith("AUTOCRM_")})
    os.environ["AUTOCRM_ASYNC_MODE"] = "threading"
    from autocrm import create_app

    return create_app({"AUTOCRM_SOCKET_SERVER": False})


def seed(agents: int) -> dict[str, Any]:
    """A team of agents, a customer, and one open ticket of the customer's in that team."""
    from autocrm.extensions import db
    from autocrm.people import teams, users
    from autocrm.people.models import Role
    from autocrm.security import issue_token
    from autocrm.tickets import services as tickets

    customer = users.create_user("rt-customer@example.com", PASSWORD, Role.CUSTOMER)
    team = teams.create_team("Realtime bench")
    staff = [
        users.create_user(f"rt-agent{i}@example.com", PASSWORD, Role.AGENT) for i in range(agents)
    ]
    db.session.flush()
    for agent in staff:
        teams.add_member(team, agent)
        db.session.flush()  # Team.member_ids sorts user ids, None for an unflushed membership
    db.session.commit()
    ticket = tickets.do_create_ticket(
        staff[0],
        subject="Realtime bench ticket",
        description="Messages from bench/realtime_bench.py",
        requester_id=customer.id,
        team_id=team.id,
    )
    return {
        "ticket": ticket.id,
        "customer": customer.id,
        "customer_token": issue_token(customer.id, customer.password_hash),
        "agent_tokens": [issue_token(a.id, a.password_hash) for a in staff],
    }


# -- 1. Socket.IO delivery latency -------------------------------------------------------------


@dataclass
class Fanout:
    name: str
    latencies: list[float] = field(default_factory=list)  # every (message, receiver) pair
    last_arrival: list[float] = field(default_factory=list)  # per message: the slowest receiver
    missing: int = 0
    extra: list[str] = field(default_factory=list)
    server_cpu: float = 0.0  # CPU seconds of the server process over the measurement

    def add_arrivals(self, arrivals: list[tuple[int, float]], expected: int) -> None:
        """``(seq, latency)`` of every delivery; warm-up messages (seq < 0) are not counted."""
        per_message: dict[int, list[float]] = {}
        for seq, latency in arrivals:
            if seq >= 0:
                per_message.setdefault(seq, []).append(latency)
        for lat in per_message.values():
            self.latencies.extend(lat)
            self.last_arrival.append(max(lat))
        self.missing = expected - len(self.latencies)


def _parse_body(body: str, arrived: float) -> tuple[int, float] | None:
    parts = body.split(" ")
    if len(parts) < 3 or parts[0] != BODY_TAG:
        return None
    return int(parts[1]), arrived - float(parts[2])


def _body(seq: int, sent: float) -> str:
    return f"{BODY_TAG} {seq} {sent:.9f} " + "x" * 64


# The receivers live in client processes (``--client-processes``), several clients each, so that
# the clients' decoding does not queue behind one GIL: the server is what is measured.
# ``time.perf_counter`` is CLOCK_MONOTONIC on Linux, one clock for every process, so a
# timestamp taken by the sender is compared with one taken in a client process.


def _sio_receivers(url: str, tokens: list[str], ticket_id: int, conn: Connection) -> None:
    """A client process: python-socketio clients, one thread pool each, in the ticket room."""
    import socketio

    arrivals: list[tuple[str, float]] = []  # list.append is atomic: one list for all clients
    clients: list[Any] = []

    def connect(token: str) -> Any:
        client = socketio.Client(reconnection=False)
        client.on("message", lambda data: arrivals.append((data["body"], time.perf_counter())))
        client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=20)
        return client

    try:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=5) as pool:
            clients.extend(pool.map(connect, tokens))
        joins = [c.call("join_ticket", {"ticket_id": ticket_id}, timeout=20) for c in clients]
        refused = [j for j in joins if not (j or {}).get("ok")]
        conn.send(("ready", [str(r)[:120] for r in refused]))
        _collect(conn, arrivals)
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                client.disconnect()


def _collect(conn: Connection, arrivals: list[tuple[Any, float]]) -> None:
    """Wait for ``go``, then for ``collect`` (how many arrivals, how long to wait for them);
    answer with every ``(seq, latency)`` and this process's CPU seconds since ``go``."""
    conn.recv()  # go
    cpu0 = time.process_time()
    _, expected, timeout = conn.recv()
    deadline = time.monotonic() + timeout
    while len(arrivals) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    cpu = time.process_time() - cpu0
    parsed = []
    for data, arrived in list(arrivals):
        body = data if isinstance(data, str) else json.loads(data)["body"]
        if (found := _parse_body(body, arrived)) is not None:
            parsed.append(found)
    conn.send((parsed, cpu))


def _redis_receivers(redis_url: str, channel: str, count: int, conn: Connection) -> None:
    """A client process: ``count`` subscriber threads, one Redis connection each."""
    import redis

    arrivals: list[tuple[bytes, float]] = []
    stop = threading.Event()
    ready = threading.Barrier(count + 1)

    def subscriber() -> None:
        client = redis.Redis.from_url(redis_url)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(channel)
        pubsub.get_message(timeout=1.0)  # the subscribe confirmation
        ready.wait()
        try:
            while not stop.is_set():
                message = pubsub.get_message(timeout=0.5)
                if message is not None:
                    arrivals.append((message["data"], time.perf_counter()))
        finally:
            pubsub.close()
            client.close()

    threads = [threading.Thread(target=subscriber, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        ready.wait(timeout=60)
        conn.send(("ready", []))
        _collect(conn, arrivals)
    finally:
        stop.set()
        for thread in threads:
            thread.join(2)


class ClientProcesses:
    """Receivers spread over ``n`` spawned processes (fresh interpreters: nothing of this
    process's app, database connections or threads), driven over pipes."""

    def __init__(self, target: Callable[..., None], shares: list[tuple[Any, ...]]) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[Any] = []
        for share in shares:
            mine, theirs = context.Pipe()
            process = context.Process(target=target, args=(*share, theirs), daemon=True)
            process.start()
            self.pipes.append(mine)
            self.processes.append(process)

    def wait_ready(self, timeout: float) -> None:
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise BenchError(f"a client process was not ready within {timeout:g}s")
            _, problems = pipe.recv()
            if problems:
                raise BenchError(f"a client process could not join: {problems[:3]}")

    def go(self) -> None:
        for pipe in self.pipes:
            pipe.send(("go",))

    def collect(self, expected_each: list[int], timeout: float) -> tuple[list, float]:
        """Every process's ``(seq, latency)`` arrivals, and their CPU seconds summed."""
        for pipe, expected in zip(self.pipes, expected_each, strict=True):
            pipe.send(("collect", expected, timeout))
        arrivals: list[tuple[int, float]] = []
        cpu = 0.0
        for pipe in self.pipes:
            if not pipe.poll(timeout + 30):
                raise BenchError("a client process did not report")
            found, used = pipe.recv()
            arrivals.extend(found)
            cpu += used
        return arrivals, cpu

    def stop(self) -> None:
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()


def _shares(items: list[Any], processes: int) -> list[list[Any]]:
    """``items`` dealt round-robin into at most ``processes`` non-empty lists."""
    return [items[i::processes] for i in range(min(processes, len(items)))]


@dataclass
class CpuWindow:
    """CPU use of the server, the client processes and this process over one measurement."""

    server_pid: int
    server_name: str
    began: float = 0.0
    server0: float = 0.0
    own0: float = 0.0
    wall: float = 0.0
    server: float = 0.0
    own: float = 0.0

    def start(self) -> None:
        self.began = time.monotonic()
        self.server0 = cpu_seconds(self.server_pid)
        self.own0 = time.process_time()

    def stop(self) -> None:
        self.wall = time.monotonic() - self.began
        self.server = cpu_seconds(self.server_pid) - self.server0
        self.own = time.process_time() - self.own0

    def line(self, clients_cpu: float, clients: int, sender: str) -> str:
        def pct(seconds: float) -> str:
            return f"{seconds / self.wall * 100:.0f}%"

        return (
            f"CPU over {self.wall:.1f}s (% of one core): {self.server_name} {pct(self.server)}, "
            f"{clients} client processes {pct(clients_cpu)} together, {sender} "
            f"{pct(self.own)}; load {os.getloadavg()[0]:.2f}"
        )


def _paced(messages: int, interval: float, send: Callable[[int], None]) -> None:
    """10 uncounted warm-up sends, then ``messages`` sends ``interval`` apart."""
    for seq in range(-10, 0):
        send(seq)
        time.sleep(interval)
    began = time.perf_counter()
    for seq in range(messages):
        time.sleep(max(0.0, began + seq * interval - time.perf_counter()))
        send(seq)


def bench_socketio(
    url: str, ids: dict[str, Any], args: argparse.Namespace, server_pid: int
) -> Fanout:
    """The whole path: an agent's ``send_message`` (handler, SQL commit, renders) to the
    ``message`` event on every receiver."""
    import socketio

    result = Fanout("Socket.IO send_message -> 'message' event")
    sender = socketio.Client(reconnection=False)
    acks: list[float] = []
    ack_errors: Counter[str] = Counter()

    def send(seq: int) -> None:
        t0 = time.perf_counter()

        def on_ack(reply: Any) -> None:
            if isinstance(reply, dict) and reply.get("ok"):
                if seq >= 0:
                    acks.append(time.perf_counter() - t0)
            else:
                ack_errors[str(reply)[:120]] += 1

        sender.emit("send_message", {"ticket_id": ids["ticket"], "body": _body(seq, t0)},
                    callback=on_ack)  # fmt: skip

    try:
        _fan_out(url, ids, args, server_pid, result, lambda: sender.connect(
            url, auth={"token": ids["agent_tokens"][0]}, transports=["websocket"]
        ), send, "the sender (this process)")  # fmt: skip
    finally:
        with contextlib.suppress(Exception):
            sender.disconnect()
    result.extra.insert(0, f"send_message ack (commit + emit): {stats(acks)}")
    if ack_errors:
        result.extra.append(f"send_message errors: {dict(ack_errors)}")
    per_message = result.server_cpu / (args.messages + 10) * 1000
    result.extra.append(
        f"server CPU per message: {per_message:.1f} ms (handler, SQL, renders and every write; "
        "the queue emit below is the fan-out alone)"
    )
    return result


def bench_queue_emit(
    url: str, redis_url: str, ids: dict[str, Any], args: argparse.Namespace, server_pid: int
) -> Fanout:
    """The fan-out alone: a ``message`` event emitted to the ticket room through the Socket.IO
    Redis message queue, as a Celery worker emits (a write-only manager), with no handler and
    no SQL: the server's listener, Socket.IO's encoding and the websocket writes. The figure
    to hold next to raw Redis."""
    import socketio

    from autocrm.realtime.rooms import ticket_room

    result = Fanout("Socket.IO queue emit -> 'message' event (fan-out only)")
    manager = socketio.RedisManager(
        redis_url, channel=f"{KEY_PREFIX}autocrm-socketio", write_only=True
    )
    template = {"id": 0, "ticket_id": ids["ticket"], "author_id": 0, "internal": False,
                "created_at": "2026-01-01T00:00:00.000000"}  # fmt: skip

    def send(seq: int) -> None:
        data = {**template, "body": _body(seq, time.perf_counter())}
        manager.emit("message", data, room=ticket_room(ids["ticket"]))

    _fan_out(url, ids, args, server_pid, result, lambda: None, send, "the emitter (this process)")
    per_message = result.server_cpu / (args.messages + 10) * 1000
    result.extra.append(f"server CPU per message: {per_message:.1f} ms (the fan-out alone)")
    return result


def _fan_out(
    url: str, ids: dict[str, Any], args: argparse.Namespace, server_pid: int, result: Fanout,
    connect_sender: Callable[[], None], send: Callable[[int], None], sender: str,
) -> None:  # fmt: skip
    """``--receivers`` clients in the ticket room, spread over the client processes: the
    requester (the customer) and the team's agents, round-robin; ``send`` paced as
    ``_paced`` does, from this process; arrivals and CPU into ``result``."""
    tokens = [ids["customer_token"], *ids["agent_tokens"]]
    receivers = [tokens[i % len(tokens)] for i in range(args.receivers)]
    shares = _shares(receivers, args.client_processes)
    began = time.monotonic()
    clients = ClientProcesses(_sio_receivers, [(url, s, ids["ticket"]) for s in shares])
    try:
        clients.wait_ready(120)
        print(
            f"  {args.receivers} receivers in {len(shares)} processes connected and joined "
            f"ticket {ids['ticket']} in {time.monotonic() - began:.1f}s",
            flush=True,
        )
        connect_sender()
        window = CpuWindow(server_pid, "the Socket.IO server")
        clients.go()
        window.start()
        _paced(args.messages, args.interval, send)
        total = args.messages + 10
        arrivals, clients_cpu = clients.collect([len(s) * total for s in shares], 15)
        window.stop()
    finally:
        clients.stop()
    result.add_arrivals(arrivals, args.messages * args.receivers)
    result.extra.append(window.line(clients_cpu, len(shares), sender))
    result.server_cpu = window.server


# -- 2. raw Redis PUBLISH -> SUBSCRIBE ---------------------------------------------------------


def bench_redis(redis_url: str, args: argparse.Namespace, redis_pid: int) -> Fanout:
    """The same fan-out over plain pub/sub, with the same process layout: the subscribers
    spread over the same number of client processes, the publisher in this process."""
    import redis

    result = Fanout("raw Redis PUBLISH -> SUBSCRIBE")
    channel = f"{KEY_PREFIX}raw-fanout"
    counts = [len(s) for s in _shares(list(range(args.receivers)), args.client_processes)]
    clients = ClientProcesses(_redis_receivers, [(redis_url, channel, n) for n in counts])
    publisher = redis.Redis.from_url(redis_url)
    try:
        clients.wait_ready(120)
        subscribed = publisher.pubsub_numsub(channel)[0][1]
        if subscribed != args.receivers:
            raise BenchError(f"only {subscribed}/{args.receivers} subscribers on {channel}")
        # The same shape and size as the Socket.IO 'message' event's data.
        template = {"id": 0, "ticket_id": 1, "author_id": 2, "internal": False,
                    "created_at": "2026-01-01T00:00:00.000000"}  # fmt: skip

        def publish(seq: int) -> None:
            body = _body(seq, time.perf_counter())
            publisher.publish(channel, json.dumps({**template, "body": body}))

        window = CpuWindow(redis_pid, "redis-server")
        clients.go()
        window.start()
        _paced(args.messages, args.interval, publish)
        total = args.messages + 10
        arrivals, clients_cpu = clients.collect([n * total for n in counts], 10)
        window.stop()
    finally:
        publisher.close()
        clients.stop()
    result.add_arrivals(arrivals, args.messages * args.receivers)
    result.extra.append(window.line(clients_cpu, len(counts), "the publisher (this process)"))
    return result


def print_fanout(results: list[Fanout]) -> None:
    for r in results:
        print(f"{r.name}:")
        print(f"  every (message, client): {stats(r.latencies)}")
        print(f"  slowest client per msg:  {stats(r.last_arrival)}")
        print(f"  missing deliveries:      {r.missing}")
        for line in r.extra:
            print(f"  {line}")


# -- 3. idle connection capacity ---------------------------------------------------------------


class WsConn:
    """One idle Socket.IO connection: websocket handshake, Engine.IO open, Socket.IO connect
    with a bearer token, then it only answers the server's pings."""

    def __init__(self) -> None:
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.connected = False
        self.closed_reason = ""
        self.pings = 0
        self.broadcasts: dict[int, float] = {}  # broadcast round -> its latency
        self.ping_interval = 25.0
        self.task: asyncio.Task[None] | None = None

    async def open(self, port: int, token: str) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, port)
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write(
            (
                f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError("upgrade refused: " + head.split(b"\r\n", 1)[0].decode())
        opened = await self.read_text()
        if not opened.startswith("0"):
            raise ConnectionError(f"no Engine.IO open packet: {opened[:80]!r}")
        self.ping_interval = json.loads(opened[1:]).get("pingInterval", 25000) / 1000
        self.send_text("40" + json.dumps({"token": token}))
        answer = await self.read_text()
        while answer == "2":  # a ping can come first on a slow server
            self.pings += 1
            self.send_text("3")
            answer = await self.read_text()
        if not answer.startswith("40"):
            raise ConnectionError(f"connect refused: {answer[:120]!r}")
        self.connected = True

    async def idle(self) -> None:
        try:
            while True:
                packet = await self.read_text()
                if packet == "2":
                    self.pings += 1
                    self.send_text("3")
                elif packet.startswith('42["bench_broadcast"'):
                    arrived = time.perf_counter()
                    data = json.loads(packet[2:])[1]
                    self.broadcasts[data["i"]] = arrived - data["t0"]
                elif packet.startswith(("1", "41")):
                    raise ConnectionError(f"server closed: {packet[:40]!r}")
        except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
            self.closed_reason = f"{type(exc).__name__}: {str(exc)[:80]}"
        finally:
            self.connected = False

    async def read_text(self) -> str:
        assert self.reader is not None
        while True:
            b0, b1 = await self.reader.readexactly(2)
            length = b1 & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            payload = await self.reader.readexactly(length)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError("websocket close frame")
            if opcode == 0x9:
                self.send_frame(0xA, payload)
                continue
            if opcode in (0x1, 0x0):
                return payload.decode()

    def send_text(self, text_: str) -> None:
        self.send_frame(0x1, text_.encode())

    def send_frame(self, opcode: int, payload: bytes) -> None:
        assert self.writer is not None and len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.writer is not None:
            self.writer.close()


def _idle_clients(port: int, token: str, conn: Connection) -> None:
    """A client process holding idle connections, driven over ``conn``."""
    raise_nofile()
    asyncio.run(_idle_clients_loop(port, token, conn))


async def _idle_clients_loop(port: int, token: str, conn: Connection) -> None:
    conns: list[WsConn] = []
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command[0] == "open":
            _, need, concurrency, timeout, max_failures = command
            failures = await _open_many(
                conns, port, token, need, concurrency, timeout, max_failures
            )
            conn.send(dict(failures))
        elif command[0] == "state":
            still = [c for c in conns if c.connected]
            drops = Counter(c.closed_reason for c in conns if not c.connected)
            cpu = time.process_time()
            conn.send((len(still), sum(c.pings > 0 for c in still), dict(drops), cpu))
        elif command[0] == "broadcast":
            _, round_, timeout = command
            deadline = time.monotonic() + timeout
            still = [c for c in conns if c.connected]
            while time.monotonic() < deadline and any(round_ not in c.broadcasts for c in still):
                await asyncio.sleep(0.02)
            conn.send([c.broadcasts[round_] for c in still if round_ in c.broadcasts])
        else:  # close
            for c in conns:
                c.close()
            await asyncio.sleep(0.5)
            conn.send(None)
            return


async def _open_many(
    conns: list[WsConn], port: int, token: str, need: int, concurrency: int, timeout: float,
    max_failures: int,
) -> Counter[str]:  # fmt: skip
    failures: Counter[str] = Counter()
    semaphore = asyncio.Semaphore(concurrency)
    give_up = asyncio.Event()

    async def open_one() -> None:
        async with semaphore:
            if give_up.is_set():
                failures["not tried (step abandoned)"] += 1
                return
            conn = WsConn()
            try:
                await asyncio.wait_for(conn.open(port, token), timeout)
            except TimeoutError:
                conn.close()
                failures[f"no answer in {timeout:g}s"] += 1
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
                conn.close()
                failures[f"{type(exc).__name__}: {str(exc)[:60]}"] += 1
            else:
                conn.task = asyncio.create_task(conn.idle())
                conns.append(conn)
                return
            if failures.total() - failures["not tried (step abandoned)"] >= max_failures:
                give_up.set()

    await asyncio.gather(*(open_one() for _ in range(need)))
    return failures


def capacity(
    server: SocketServer, token: str, steps: list[int], args: argparse.Namespace, app: Any,
    room: str,
) -> dict[str, str]:  # fmt: skip
    """Idle connections in steps, held, then broadcasts to them all; the key figures."""
    n = args.client_processes
    pool = ClientProcesses(_idle_clients, [(server.port, token)] * n)
    try:
        return _capacity(pool, server, steps, args, app, room)
    finally:
        for pipe in pool.pipes:
            with contextlib.suppress(OSError):
                pipe.send(("close",))
        for pipe in pool.pipes:
            with contextlib.suppress(OSError, EOFError):
                if pipe.poll(10):
                    pipe.recv()
        pool.stop()


def _ask(pool: ClientProcesses, commands: list[tuple[Any, ...]], timeout: float) -> list[Any]:
    for pipe, command in zip(pool.pipes, commands, strict=True):
        pipe.send(command)
    answers = []
    for pipe in pool.pipes:
        if not pipe.poll(timeout):
            raise BenchError(f"a client process did not answer {commands[0][0]!r} in {timeout}s")
        answers.append(pipe.recv())
    return answers


def _capacity(
    pool: ClientProcesses, server: SocketServer, steps: list[int], args: argparse.Namespace,
    app: Any, room: str,
) -> dict[str, str]:  # fmt: skip
    n = len(pool.pipes)
    failures: Counter[str] = Counter()
    client_pids = [p.pid for p in pool.processes]

    def clients_rss() -> float:
        return sum(proc_status(pid, "VmRSS") for pid in client_pids) / 1024

    print(
        f"{'step':>6} {'opened':>7} {'failed':>6} {'open/s':>7} {'connected':>9} "
        f"{'server RSS MB':>13} {'KB/conn':>8} {'server fds':>10} {'clients RSS MB':>14}"
    )
    time.sleep(1)  # the client processes start
    base_rss = proc_status(server.pid, "VmRSS")
    print(
        f"{'0':>6} {'':>7} {'':>6} {'':>7} {0:>9} {base_rss / 1024:>13.1f} {'':>8} "
        f"{open_fds(server.pid):>10} {clients_rss():>14.1f}"
    )
    opened_total = reached = 0
    per_process = max(1, args.open_concurrency // n)
    for target in steps:
        need = max(0, target - opened_total)
        shares = [need // n + (1 if i < need % n else 0) for i in range(n)]
        began = time.perf_counter()
        answers = _ask(
            pool,
            [("open", s, per_process, args.open_timeout, args.max_step_failures) for s in shares],
            args.open_timeout * (need / max(1, per_process * n) + 5) + 60,
        )
        took = time.perf_counter() - began
        step_failures: Counter[str] = Counter()
        for answer in answers:
            step_failures.update(answer)
        opened = need - step_failures.total()
        opened_total += opened
        time.sleep(2)  # let the server settle before reading its memory
        connected = sum(a[0] for a in _ask(pool, [("state",)] * n, 30))
        rss = proc_status(server.pid, "VmRSS")
        per_conn = (rss - base_rss) / connected if connected else 0
        print(
            f"{target:>6} {opened:>7} {step_failures.total():>6} {opened / took:>7.0f} "
            f"{connected:>9} {rss / 1024:>13.1f} {per_conn:>8.1f} {open_fds(server.pid):>10} "
            f"{clients_rss():>14.1f}",
            flush=True,
        )
        failures.update(step_failures)
        reached = connected
        if step_failures or not server.alive() or time.monotonic() > args.deadline:
            break

    for reason, count in failures.most_common(6):
        print(f"  open failures: {count} x {reason}")
    if not server.alive():
        print("  SERVER EXITED:\n" + server.log_tail())
        return {"idle sockets": "server exited"}
    hold = min(args.hold, max(0.0, args.deadline - time.monotonic()))
    print(f"holding {reached} idle connections for {hold:.0f}s (ping interval 25s) ...",
          flush=True)  # fmt: skip
    states = _ask(pool, [("state",)] * n, 30)
    cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
    time.sleep(hold)
    wall = time.monotonic() - t0
    cpu = (cpu_seconds(server.pid) - cpu0) / wall * 100
    after = _ask(pool, [("state",)] * n, 30)
    clients_cpu = sum(a[3] - b[3] for a, b in zip(after, states, strict=True)) / wall * 100
    still = sum(a[0] for a in after)
    pinged = sum(a[1] for a in after)
    drops: Counter[str] = Counter()
    for answer in after:
        drops.update(answer[2])
    rss, peak = proc_status(server.pid, "VmRSS") / 1024, proc_status(server.pid, "VmHWM") / 1024
    print(
        f"after the hold: {still} connected ({pinged} answered at least one server ping), "
        f"{drops.total()} dropped; server RSS {rss:.1f} MB (peak {peak:.1f} MB, "
        f"{(rss * 1024 - base_rss) / max(1, still):.1f} KB per connection over the start), "
        f"server CPU while idle {cpu:.1f}% of one core (the {n} client processes: "
        f"{clients_cpu:.1f}%)"
    )
    for reason, count in drops.most_common(4):
        print(f"  dropped: {count} x {reason}")

    # Liveness and fan-out: emits through the message queue to the room they are all in.
    # The first is a warm-up; the figure is the median over the others.
    rounds: list[list[float]] = []
    for i in range(args.broadcasts + 1):
        t_emit = time.perf_counter()
        app.extensions["socketio"].emit("bench_broadcast", {"t0": t_emit, "i": i}, to=room)
        got = [t for answer in _ask(pool, [("broadcast", i, 20)] * n, 60) for t in answer]
        if i:
            rounds.append(sorted(got))
        time.sleep(0.5)
    p50s = sorted(percentile(r, 50) for r in rounds)
    lasts = sorted(r[-1] for r in rounds if r)
    reached_each = [len(r) for r in rounds]
    print(
        f"broadcast to {room} (emitted via Redis from this process), {len(rounds)} rounds: "
        f"reached {min(reached_each, default=0)}-{max(reached_each, default=0)}/{still}; "
        f"per-round p50 median {percentile(p50s, 50) * 1000:.1f} ms "
        f"(rounds {', '.join(f'{p * 1000:.0f}' for p in p50s)}), last client median "
        f"{percentile(lasts, 50) * 1000:.1f} ms"
    )
    per_conn = (rss * 1024 - base_rss) / max(1, still)
    return {
        "idle sockets": f"{still} at {rss:.0f} MB ({per_conn:.1f} KB each)",
        "broadcast p50 ms": f"{percentile(p50s, 50) * 1000:.0f}",
    }


# -- main --------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    db = parser.add_mutually_exclusive_group()
    db.add_argument("--database-url", help="a throwaway database; default: SQLite in a temp dir")
    db.add_argument("--pg", action="store_true", help="a fresh PostgreSQL database, dropped after")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--redis-url", help="default: an embedded redis-server in the temp dir")
    parser.add_argument("--receivers", type=int, default=100, help="clients in the ticket room")
    parser.add_argument("--messages", type=int, default=200, help="messages per fan-out test")
    parser.add_argument(
        "--interval", type=float, default=0.05, help="seconds between messages (%(default)s)"
    )
    parser.add_argument("--steps", default="2500,5000,7500,10000", help="idle connection targets")
    parser.add_argument(
        "--client-processes",
        type=int,
        default=4,
        help="processes the clients are spread over, for both fan-outs and the idle sockets",
    )
    parser.add_argument(
        "--async-modes",
        default="eventlet",
        help="server modes to measure one after the other in this run, e.g. eventlet,gevent",
    )
    parser.add_argument(
        "--broadcasts", type=int, default=5, help="broadcasts to the idle sockets (+1 warm-up)"
    )
    parser.add_argument("--hold", type=float, default=30, help="seconds to hold the last step")
    parser.add_argument("--open-concurrency", type=int, default=50, help="handshakes in flight")
    parser.add_argument("--open-timeout", type=float, default=10)
    parser.add_argument(
        "--max-step-failures", type=int, default=50, help="abandon a step after this many"
    )
    parser.add_argument(
        "--server",
        choices=("auto", "module", "inline"),
        default="auto",
        help="module: python -m autocrm.server; inline: the bench's own eventlet launcher; "
        "auto: the module if autocrm/server.py exists",
    )
    parser.add_argument(
        "--max-size",
        type=int,
        default=10_000,
        help=f"inline server: eventlet.wsgi.server max_size (eventlet's default is "
        f"{EVENTLET_DEFAULT_MAX_SIZE}; default here %(default)s)",
    )
    parser.add_argument(
        "--backlog", type=int, default=1024, help="inline server: listen backlog (eventlet: 50)"
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the temp dir (server.log) at the end"
    )
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-capacity", action="store_true")
    parser.add_argument("--max-seconds", type=float, default=300, help="stop measuring after")
    return parser.parse_args()


def bench(args: argparse.Namespace, stack: contextlib.ExitStack) -> int:
    print("command:  " + shlex.join(sys.orig_argv), flush=True)
    nofile = raise_nofile()
    tmp = Path(tempfile.mkdtemp(prefix="rtb-"))  # short: the redis unix socket lives here
    if args.keep_logs:
        stack.callback(print, f"logs kept in {tmp}")
    else:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
    env = service_env(args, stack, tmp, KEY_PREFIX)
    redis_url = env["AUTOCRM_REDIS_URL"]
    app = make_app(env)
    redis_client = enter_app(stack, app, redis_url, (f"{KEY_PREFIX}*", "autocrm:presence:*"))

    from autocrm.extensions import db

    machine_note(db.engine)
    print(f"redis:    {redis_client.info('server')['redis_version']} ({redis_url})")
    print(f"packages: {versions()}")
    print(f"ulimit -n: {nofile[0]} (soft raised to the hard limit; the server inherits it)")

    ids = seed(agents=4)
    db.session.remove()
    summary: list[str] = []
    for mode in args.async_modes.split(","):
        figures = bench_mode(mode, env, tmp, args, ids, app, redis_client, stack)
        summary.append(f"{mode:>8}  " + "  ".join(f"{k} {v}" for k, v in figures.items()))
    print("\n== summary (medians; ratios against raw Redis measured right after, same run) ==")
    for line in summary:
        print(line)
    return 0


def bench_mode(
    mode: str, env: dict[str, str], tmp: Path, args: argparse.Namespace, ids: dict[str, Any],
    app: Any, redis_client: Any, stack: contextlib.ExitStack,
) -> dict[str, str]:  # fmt: skip
    """Latency and capacity against a fresh server process in ``mode``; its key figures."""
    from autocrm.realtime.rooms import user_room

    redis_url = env["AUTOCRM_REDIS_URL"]
    figures: dict[str, str] = {}
    server = SocketServer(env, tmp, args, mode)
    print(
        f"\n######## AUTOCRM_ASYNC_MODE={mode}\nserver:   {server.describe}; message queue "
        f"{redis_url}"
    )
    server.start()
    with contextlib.ExitStack() as local:
        local.callback(server.stop)
        server.wait_ready()
        print(f"          pid {server.pid}, {server.url}, RSS at start "
              f"{proc_status(server.pid, 'VmRSS') / 1024:.1f} MB", flush=True)  # fmt: skip

        if not args.skip_latency:
            print(
                f"\n== delivery latency: {args.receivers} clients in one ticket room, "
                f"{args.messages} messages {args.interval * 1000:g} ms apart (+10 warm-up) ==",
                flush=True,
            )
            sio = bench_socketio(server.url, ids, args, server.pid)
            print("  the fan-out alone: emits through the message queue ...", flush=True)
            queued = bench_queue_emit(server.url, redis_url, ids, args, server.pid)
            print(
                f"  raw Redis: {args.receivers} subscriber threads in the same "
                f"{args.client_processes} processes ...",
                flush=True,
            )
            raw = bench_redis(redis_url, args, redis_client.info("server")["process_id"])
            print()
            print_fanout([sio, queued, raw])
            sio_sorted, raw_sorted = sorted(sio.latencies), sorted(raw.latencies)
            queued_sorted = sorted(queued.latencies)
            p50 = percentile(sio_sorted, 50) / percentile(raw_sorted, 50)
            p99 = percentile(sio_sorted, 99) / percentile(raw_sorted, 99)
            q50 = percentile(queued_sorted, 50) / percentile(raw_sorted, 50)
            q99 = percentile(queued_sorted, 99) / percentile(raw_sorted, 99)
            print(f"Socket.IO / raw Redis:   p50 {p50:.1f}x   p99 {p99:.1f}x")
            print(f"fan-out only / raw Redis: p50 {q50:.1f}x   p99 {q99:.1f}x")
            print(
                "(Socket.IO path: client -> server handler -> SQL commit -> PUBLISH on the "
                f"message queue -> the server's listener -> {args.receivers} websocket writes "
                "-> client decode; one monotonic clock for all processes; clients and server "
                "share the machine's CPUs: compare the CPU lines)"
            )
            figures["delivery p50/p99 ms"] = (
                f"{percentile(sio_sorted, 50) * 1000:.1f}/{percentile(sio_sorted, 99) * 1000:.1f}"
            )
            figures["raw Redis p50/p99 ms"] = (
                f"{percentile(raw_sorted, 50) * 1000:.2f}/{percentile(raw_sorted, 99) * 1000:.2f}"
            )
            figures["ratio p50/p99"] = f"{p50:.1f}x/{p99:.1f}x"
            figures["fan-out only p50/p99 ms"] = (
                f"{percentile(queued_sorted, 50) * 1000:.1f}/"
                f"{percentile(queued_sorted, 99) * 1000:.1f}"
            )
            figures["fan-out ratio p50/p99"] = f"{q50:.1f}x/{q99:.1f}x"

        if not args.skip_capacity and time.monotonic() < args.deadline:
            steps = [int(s) for s in args.steps.split(",")]
            print(
                f"\n== capacity: idle authenticated connections to one {mode} process "
                f"(steps {args.steps}; {args.open_concurrency} handshakes in flight, over "
                f"{args.client_processes} client processes) ==",
                flush=True,
            )
            figures.update(
                capacity(
                    server, ids["customer_token"], steps, args, app, user_room(ids["customer"])
                )
            )

        print()
        counts, exceptions = server.log_problems()
        if counts or exceptions:
            print("server log: " + ", ".join(f"{k!r} x{v}" for k, v in counts.items()))
            for line, count in exceptions.most_common(6):
                print(f"  {count:>5} x {line}")
        else:
            print("server log: no errors")
    return figures


def main() -> None:
    args = parse_args()
    args.deadline = time.monotonic() + args.max_seconds
    run_main(args, bench, hard_limit_s=args.max_seconds + 60)  # hard stop if something hangs


if __name__ == "__main__":
    main()
