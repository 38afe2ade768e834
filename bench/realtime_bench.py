"""Realtime (Socket.IO) delivery latency next to raw Redis pub/sub, and idle connection capacity.

A benchmark that prints figures, not a test. It starts what it needs on free loopback ports and
stops it all at the end, including on Ctrl-C:

- an embedded Redis (``autocrm.embedded_redis``) unless ``--redis-url`` is given;
- a fresh database (SQLite in a temp dir, or ``--pg``), migrated with ``flask db upgrade`` and
  seeded in this process: a team with agents, a customer, and one ticket of the customer's in
  that team (tokens come from ``autocrm.security.issue_token``, as ``POST /api/auth/token``);
- ONE eventlet Socket.IO server process (``AUTOCRM_ASYNC_MODE=eventlet``, the message queue on
  that Redis): ``python -m autocrm.server`` if that module exists, else a small launcher that
  monkey-patches first and serves ``wsgi:app`` with ``eventlet.wsgi.server``. gunicorn 27 has
  no eventlet worker any more, so ``gunicorn -k eventlet`` is not an option.

Then it measures:

1. delivery latency: 100 python-socketio clients (websocket transport, bearer token in
   ``auth``) ``join_ticket`` the same ticket; a sender (an agent) emits ``send_message`` N times;
   each message body carries its send time, and every receiving client notes when the
   ``message`` event arrives. p50/p99 over all (message, client) pairs.
2. the same fan-out over raw Redis: a publisher PUBLISHes N timestamped messages of the same
   size to a channel that 100 subscriber threads (one connection each) listen on. The ratio
   Socket.IO/Redis is the figure to compare.
3. capacity: idle authenticated connections (a minimal asyncio Engine.IO v4 client, which
   answers pings) opened in steps up to 5,000; per step how many are connected, the server's
   RSS and open file descriptors; then a hold past one ping interval, and a broadcast to the
   room they all share to prove they are alive.

    .venv/bin/python bench/realtime_bench.py          # SQLite in a temp dir, embedded Redis
    .venv/bin/python bench/realtime_bench.py --pg     # a fresh PostgreSQL database, dropped after
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib.metadata
import json
import os
import re
import resource
import secrets
import shlex
import shutil
import struct
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
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
    enter_app,
    free_port,
    machine_note,
    percentile,
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


def raise_nofile() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard limit (this process, and children that call it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def proc_status(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` field in kB (VmRSS, VmHWM); 0 when the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    with contextlib.suppress(OSError):
        return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
    return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with contextlib.suppress(OSError):
        fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


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

    def __init__(self, env: dict[str, str], log_dir: Path, args: argparse.Namespace) -> None:
        super().__init__(log_dir / "server.log")
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.env = {**env, "AUTOCRM_ASYNC_MODE": "eventlet"}
        self.uses_module = args.server == "module" or (
            args.server == "auto" and (REPO_ROOT / "autocrm" / "server.py").exists()
        )
        if self.uses_module:
            self.argv = [sys.executable, "-m", "autocrm.server", "--host", HOST,
                         "--port", str(self.port),
                         "--max-connections", str(args.max_size)]  # fmt: skip
            self.describe = (
                f"python -m autocrm.server --max-connections {args.max_size} (socketio.run: "
                "eventlet.wsgi.server, listen backlog 50)"
            )
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


def _connect_client(url: str, token: str, received: list[tuple[str, float]]) -> Any:
    import socketio

    client = socketio.Client(reconnection=False)

    def on_message(data: Any) -> None:
        received.append(
            (data.get("body", "") if isinstance(data, dict) else "", time.perf_counter())
        )

    client.on("message", on_message)
    client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    return client


def bench_socketio(
    url: str, ids: dict[str, Any], receivers: int, messages: int, interval: float
) -> Fanout:
    from concurrent.futures import ThreadPoolExecutor

    result = Fanout("Socket.IO send_message -> 'message' event")
    inboxes: list[list[tuple[str, float]]] = [[] for _ in range(receivers)]
    # Receivers: the requester (the customer) and the team's agents, round-robin; the sender
    # is agent 0 on a connection of its own that joins no room.
    tokens = [ids["customer_token"], *ids["agent_tokens"]]
    clients: list[Any] = []
    began = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=10) as pool:
            futures = [
                pool.submit(_connect_client, url, tokens[i % len(tokens)], inboxes[i])
                for i in range(receivers)
            ]
            for future in futures:
                clients.append(future.result())
        joins = [c.call("join_ticket", {"ticket_id": ids["ticket"]}, timeout=10) for c in clients]
        refused = [j for j in joins if not (j or {}).get("ok")]
        if refused:
            raise BenchError(f"join_ticket refused: {refused[:3]}")
        print(
            f"  {receivers} receivers connected and joined ticket {ids['ticket']} in "
            f"{time.monotonic() - began:.1f}s",
            flush=True,
        )
        sender = _connect_client(url, ids["agent_tokens"][0], [])
        clients.append(sender)

        acks: list[float] = []
        ack_errors: Counter[str] = Counter()

        def send(seq: int) -> None:
            t0 = time.perf_counter()

            def on_ack(reply: Any) -> None:
                if isinstance(reply, dict) and reply.get("ok"):
                    acks.append(time.perf_counter() - t0)
                else:
                    ack_errors[str(reply)[:120]] += 1

            body = f"{BODY_TAG} {seq} {t0:.9f} " + "x" * 64
            sender.emit("send_message", {"ticket_id": ids["ticket"], "body": body}, callback=on_ack)

        warmup = 10
        for seq in range(-warmup, 0):  # not counted
            send(seq)
            time.sleep(interval)
        began = time.perf_counter()
        for seq in range(messages):
            time.sleep(max(0.0, began + seq * interval - time.perf_counter()))
            send(seq)
        deadline = time.monotonic() + 15
        expected = messages + warmup
        while time.monotonic() < deadline and (
            any(len(box) < expected for box in inboxes) or len(acks) + ack_errors.total() < expected
        ):
            time.sleep(0.1)
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                client.disconnect()

    per_message: dict[int, list[float]] = {}
    for box in inboxes:
        for body, arrived in box:
            parts = body.split(" ")
            if len(parts) < 3 or parts[0] != BODY_TAG or int(parts[1]) < 0:
                continue
            per_message.setdefault(int(parts[1]), []).append(arrived - float(parts[2]))
    for lat in per_message.values():
        result.latencies.extend(lat)
        result.last_arrival.append(max(lat))
    result.missing = messages * receivers - len(result.latencies)
    result.extra.append(f"send_message ack (commit + emit): {stats(acks[warmup:])}")
    if ack_errors:
        result.extra.append(f"send_message errors: {dict(ack_errors)}")
    return result


# -- 2. raw Redis PUBLISH -> SUBSCRIBE ---------------------------------------------------------


def bench_redis(redis_url: str, receivers: int, messages: int, interval: float) -> Fanout:
    import redis

    result = Fanout("raw Redis PUBLISH -> SUBSCRIBE")
    channel = f"{KEY_PREFIX}raw-fanout"
    inboxes: list[list[tuple[bytes, float]]] = [[] for _ in range(receivers)]
    stop = threading.Event()
    ready = threading.Barrier(receivers + 1)

    def subscriber(i: int) -> None:
        client = redis.Redis.from_url(redis_url)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(channel)
        pubsub.get_message(timeout=1.0)  # the subscribe confirmation
        ready.wait()
        box = inboxes[i]
        try:
            while not stop.is_set():
                message = pubsub.get_message(timeout=0.5)
                if message is not None:
                    box.append((message["data"], time.perf_counter()))
        finally:
            pubsub.close()
            client.close()

    threads = [
        threading.Thread(target=subscriber, args=(i,), daemon=True) for i in range(receivers)
    ]
    for thread in threads:
        thread.start()
    publisher = redis.Redis.from_url(redis_url)
    try:
        ready.wait(timeout=30)
        subscribed = publisher.pubsub_numsub(channel)[0][1]
        if subscribed != receivers:
            raise BenchError(f"only {subscribed}/{receivers} subscribers on {channel}")
        # The same shape and size as the Socket.IO 'message' event's data.
        template = {"id": 0, "ticket_id": 1, "author_id": 2, "internal": False,
                    "created_at": "2026-01-01T00:00:00.000000"}  # fmt: skip

        def publish(seq: int) -> None:
            t0 = time.perf_counter()
            body = f"{BODY_TAG} {seq} {t0:.9f} " + "x" * 64
            publisher.publish(channel, json.dumps({**template, "body": body}))

        for seq in range(-10, 0):
            publish(seq)
            time.sleep(interval)
        began = time.perf_counter()
        for seq in range(messages):
            time.sleep(max(0.0, began + seq * interval - time.perf_counter()))
            publish(seq)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(len(b) < messages + 10 for b in inboxes):
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(2)
        publisher.close()

    per_message: dict[int, list[float]] = {}
    for box in inboxes:
        for data, arrived in box:
            parts = json.loads(data)["body"].split(" ")
            if int(parts[1]) >= 0:
                per_message.setdefault(int(parts[1]), []).append(arrived - float(parts[2]))
    for lat in per_message.values():
        result.latencies.extend(lat)
        result.last_arrival.append(max(lat))
    result.missing = messages * receivers - len(result.latencies)
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
        self.broadcast_at: float | None = None
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
                    self.broadcast_at = time.perf_counter() - json.loads(packet[2:])[1]["t0"]
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


async def capacity(
    server: SocketServer, token: str, steps: list[int], args: argparse.Namespace, app: Any,
    room: str,
) -> None:  # fmt: skip
    conns: list[WsConn] = []
    failures: Counter[str] = Counter()
    bench_pid = os.getpid()
    print(
        f"{'step':>6} {'opened':>7} {'failed':>6} {'open/s':>7} {'connected':>9} "
        f"{'server RSS MB':>13} {'KB/conn':>8} {'server fds':>10} {'bench RSS MB':>12}"
    )
    base_rss = proc_status(server.pid, "VmRSS")
    bench_rss = proc_status(bench_pid, "VmRSS") / 1024
    print(
        f"{'0':>6} {'':>7} {'':>6} {'':>7} {0:>9} {base_rss / 1024:>13.1f} {'':>8} "
        f"{open_fds(server.pid):>10} {bench_rss:>12.1f}"
    )
    reached = 0
    for target in steps:
        step_failures: Counter[str] = Counter()
        semaphore = asyncio.Semaphore(args.open_concurrency)
        give_up = asyncio.Event()

        async def open_one(
            semaphore: asyncio.Semaphore, give_up: asyncio.Event, step_failures: Counter[str]
        ) -> None:
            async with semaphore:
                if give_up.is_set():
                    step_failures["not tried (step abandoned)"] += 1
                    return
                conn = WsConn()
                try:
                    await asyncio.wait_for(conn.open(server.port, token), args.open_timeout)
                except TimeoutError:
                    conn.close()
                    step_failures[f"no answer in {args.open_timeout:g}s"] += 1
                except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
                    conn.close()
                    step_failures[f"{type(exc).__name__}: {str(exc)[:60]}"] += 1
                else:
                    conn.task = asyncio.create_task(conn.idle())
                    conns.append(conn)
                    return
                real = step_failures.total() - step_failures["not tried (step abandoned)"]
                if real >= args.max_step_failures:
                    give_up.set()

        began = time.perf_counter()
        need = target - len(conns)
        await asyncio.gather(*(open_one(semaphore, give_up, step_failures) for _ in range(need)))
        took = time.perf_counter() - began
        await asyncio.sleep(2)  # let the server settle before reading its memory
        connected = sum(c.connected for c in conns)
        rss = proc_status(server.pid, "VmRSS")
        per_conn = (rss - base_rss) / connected if connected else 0
        opened = need - step_failures.total()
        print(
            f"{target:>6} {opened:>7} {step_failures.total():>6} {opened / took:>7.0f} "
            f"{connected:>9} {rss / 1024:>13.1f} {per_conn:>8.1f} {open_fds(server.pid):>10} "
            f"{proc_status(bench_pid, 'VmRSS') / 1024:>12.1f}",
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
        return
    hold = min(args.hold, max(0.0, args.deadline - time.monotonic()))
    print(f"holding {reached} idle connections for {hold:.0f}s (ping interval "
          f"{conns[0].ping_interval if conns else 0:g}s) ...", flush=True)  # fmt: skip
    cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
    await asyncio.sleep(hold)
    cpu = (cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0) * 100
    still = [c for c in conns if c.connected]
    pinged = sum(c.pings > 0 for c in still)
    rss, peak = proc_status(server.pid, "VmRSS") / 1024, proc_status(server.pid, "VmHWM") / 1024
    print(
        f"after the hold: {len(still)} connected ({pinged} answered at least one server ping), "
        f"{len(conns) - len(still)} dropped; server RSS {rss:.1f} MB (peak {peak:.1f} MB), "
        "server CPU while idle "
        f"{cpu:.1f}% of one core"
    )
    drops = Counter(c.closed_reason for c in conns if not c.connected)
    for reason, count in drops.most_common(4):
        print(f"  dropped: {count} x {reason}")

    # Liveness: one emit through the message queue to the room they are all in.
    t_emit = time.perf_counter()
    await asyncio.to_thread(
        app.extensions["socketio"].emit, "bench_broadcast", {"t0": t_emit}, to=room
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(c.broadcast_at is None for c in still):
        await asyncio.sleep(0.05)
    got = [c.broadcast_at for c in still if c.broadcast_at is not None]
    print(
        f"broadcast to {room} (emitted via Redis from this process): reached {len(got)}/"
        f"{len(still)}; {stats(got)}"
    )
    for conn in conns:
        conn.close()
    await asyncio.sleep(0.5)


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
    parser.add_argument(
        "--steps", default="1000,2000,3000,4000,5000", help="idle connection targets"
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
    from autocrm.realtime.rooms import user_room

    machine_note(db.engine)
    print(f"redis:    {redis_client.info('server')['redis_version']} ({redis_url})")
    print(f"packages: {versions()}")
    print(f"ulimit -n: {nofile[0]} (soft raised to the hard limit; the server inherits it)")

    ids = seed(agents=4)
    db.session.remove()
    server = SocketServer(env, tmp, args)
    print(f"server:   {server.describe}; AUTOCRM_ASYNC_MODE=eventlet, message queue {redis_url}")
    server.start()
    stack.callback(server.stop)
    server.wait_ready()
    print(f"          pid {server.pid}, {server.url}, RSS at start "
          f"{proc_status(server.pid, 'VmRSS') / 1024:.1f} MB", flush=True)  # fmt: skip

    if not args.skip_latency:
        print(
            f"\n== delivery latency: {args.receivers} clients in one ticket room, "
            f"{args.messages} messages {args.interval * 1000:g} ms apart (+10 warm-up) ==",
            flush=True,
        )
        sio = bench_socketio(server.url, ids, args.receivers, args.messages, args.interval)
        print(f"  raw Redis: {args.receivers} subscriber threads ...", flush=True)
        raw = bench_redis(redis_url, args.receivers, args.messages, args.interval)
        print()
        print_fanout([sio, raw])
        p50 = percentile(sorted(sio.latencies), 50) / percentile(sorted(raw.latencies), 50)
        p99 = percentile(sorted(sio.latencies), 99) / percentile(sorted(raw.latencies), 99)
        print(f"Socket.IO / raw Redis:   p50 {p50:.1f}x   p99 {p99:.1f}x")
        print(
            "(Socket.IO path: client -> server handler -> SQL commit -> PUBLISH on the message "
            f"queue -> the server's listener -> {args.receivers} websocket writes -> client "
            "decode; latency "
            "in this process's clock, clients and server share the machine's CPUs)"
        )

    if not args.skip_capacity and time.monotonic() < args.deadline:
        steps = [int(s) for s in args.steps.split(",")]
        print(
            f"\n== capacity: idle authenticated connections to one eventlet process "
            f"(steps {args.steps}; {args.open_concurrency} handshakes in flight) ==",
            flush=True,
        )
        asyncio.run(
            capacity(server, ids["customer_token"], steps, args, app, user_room(ids["customer"]))
        )

    print()
    counts, exceptions = server.log_problems()
    if counts or exceptions:
        print("server log: " + ", ".join(f"{k!r} x{v}" for k, v in counts.items()))
        for line, count in exceptions.most_common(6):
            print(f"  {count:>5} x {line}")
    else:
        print("server log: no errors")
    return 0


def main() -> None:
    args = parse_args()
    args.deadline = time.monotonic() + args.max_seconds
    run_main(args, bench, hard_limit_s=args.max_seconds + 60)  # hard stop if something hangs


if __name__ == "__main__":
    main()
