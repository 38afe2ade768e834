"""What every benchmark here shares: child processes with a log file, scratch databases, the
services a bench stack needs (a database, Redis, the migrated schema), figures, and a ``main``
that cleans up whatever happened (Ctrl-C, SIGTERM, a hard time limit, a failed setup step).

The bench scripts import it as ``common``: ``bench/`` is ``sys.path[0]`` when one is run as a
script.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import resource
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, make_url, text

if TYPE_CHECKING:
    import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
# This checkout's package first: a bench run from a git worktree whose virtualenv has another
# checkout installed must seed with the code its servers (started in REPO_ROOT) run.
if str(REPO_ROOT) not in sys.path[:2]:
    sys.path.insert(1, str(REPO_ROOT))

from autocrm import embedded_redis  # noqa: E402 (after the path above)

HOST = "127.0.0.1"
DEFAULT_PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
SETUP_TIMEOUT_S = 180.0


class BenchError(Exception):
    """A setup step failed; the message says which and why."""


class Interrupted(BaseException):
    """SIGTERM, SIGINT or the hard time limit: unwind so every cleanup step runs."""


def _raise_interrupted(signum: int, _frame: Any) -> None:
    signal.alarm(0)
    for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the cleanup short
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signal.Signals(signum).name)


def run_main(
    args: argparse.Namespace,
    bench: Callable[[argparse.Namespace, contextlib.ExitStack], int],
    *,
    hard_limit_s: float,
) -> None:
    """Run ``bench(args, stack)`` and exit with its status (2 if it did not finish); every
    cleanup callback on the stack runs, even on Ctrl-C or when ``hard_limit_s`` passes."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(sig, _raise_interrupted)
    signal.alarm(int(hard_limit_s))
    status = 2
    started = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            status = bench(args, stack)
            print("stopping ...", flush=True)
    except BenchError as exc:
        print(f"\nbench failed: {exc}")
    except Interrupted as exc:
        print(f"\ninterrupted ({exc}); cleaned up")
    finally:
        signal.alarm(0)
    print(f"total {time.monotonic() - started:.0f}s")
    sys.exit(status)


# -- figures -----------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (NaN when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(0, math.ceil(q / 100 * len(sorted_values)) - 1)
    return sorted_values[rank]


def stats(values: list[float], width: str = "7.2f") -> str:
    """p50 / p90 / p99 / max of seconds, printed in milliseconds."""
    ordered = sorted(values)
    if not ordered:
        return "no samples"
    cells = [f"p{q} {percentile(ordered, q) * 1000:{width}}" for q in (50, 90, 99)]
    return "  ".join(cells) + f"  max {ordered[-1] * 1000:{width}} ms  (n={len(ordered)})"


@dataclass
class Result:
    """One HTTP load scenario's outcome: the successful requests' latencies and the failures,
    counted by what went wrong."""

    name: str
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    errors: Counter[str] = field(default_factory=Counter)
    wall: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies) + sum(self.errors.values())

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall if self.wall else math.nan

    def p(self, q: float) -> float:
        """The q-th percentile latency in milliseconds."""
        return percentile(sorted(self.latencies), q) * 1000


def run_load(
    name: str,
    send: Callable[[requests.Session, int], requests.Response],
    expected: int,
    *,
    clients: int,
    total: int,
    headers: Mapping[str, str] | None = None,
    seconds: float | None = None,
    deadline: float = math.inf,
) -> Result:
    """``clients`` threads, each with its own ``requests.Session`` (``headers`` on it), share
    ``total`` requests (or send for ``seconds``, never past the ``time.monotonic()``
    ``deadline``): ``send(session, i)`` sends the i-th; each is timed, and counted failed
    unless it answers ``expected``."""
    import requests

    result = Result(name)
    lock = threading.Lock()
    issued = 0
    start = threading.Barrier(clients + 1)
    stop_at = deadline
    per_thread: list[list[float]] = [[] for _ in range(clients)]

    def client(k: int) -> None:
        nonlocal issued
        session = requests.Session()
        session.headers.update(headers or {})
        start.wait()
        while True:
            with lock:
                if (seconds is None and issued >= total) or time.monotonic() >= stop_at:
                    break
                issued += 1
                i = issued
            t0 = time.perf_counter()
            try:
                response = send(session, i)
                ok = response.status_code == expected
                problem = "" if ok else f"HTTP {response.status_code}: {response.text[:160]!r}"
            except requests.RequestException as exc:
                ok, problem = False, f"{type(exc).__name__}: {str(exc)[:160]}"
            elapsed = time.perf_counter() - t0
            if ok:
                per_thread[k].append(elapsed)
            else:
                with lock:
                    result.errors[problem] += 1
        session.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.monotonic()
    if seconds is not None:
        stop_at = min(deadline, began + seconds)
    for thread in threads:
        while thread.is_alive():  # join in slices so signals reach the main thread
            thread.join(0.5)
    result.wall = time.monotonic() - began
    result.latencies = [x for lat in per_thread for x in lat]
    return result


# -- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL the process group if it lingers (children use their own group)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(f"  pid {process.pid} did not stop in {STOP_TIMEOUT_S}s; killing it")
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


class LoggedProcess:
    """A child process in its own process group, its output in ``log_path``."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self, argv: list[str], env: dict[str, str]) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 (fixed argv)
                argv,
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,  # inherits this process's resource limits
            )

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def log_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


@contextlib.contextmanager
def fds_to(path: Path) -> Iterator[None]:
    """Point stdout and stderr (the file descriptors, which children inherit) at ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def run_step(name: str, argv: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(  # noqa: S603 (fixed argv)
        argv,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=SETUP_TIMEOUT_S,
    )
    if result.returncode != 0:
        raise BenchError(f"{name} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


# -- process figures (Linux /proc) --------------------------------------------------------------


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


# -- databases and services --------------------------------------------------------------------


def add_scratch_options(parser: argparse.ArgumentParser) -> None:
    """``--pg``, ``--pg-admin-url`` and ``--redis-url``, as ``scratch_database_and_redis``
    reads them."""
    parser.add_argument("--pg", action="store_true", help="a fresh PostgreSQL database")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--redis-url", help="default: an embedded redis-server")


def scratch_database_and_redis(
    stack: contextlib.ExitStack, args: argparse.Namespace, name: str
) -> tuple[str, str]:
    """For a bench that builds the app in its own process: a database (``--pg``: a fresh
    PostgreSQL one, dropped after; else SQLite in a temp dir) and a Redis (``--redis-url``, else
    an embedded one), both cleaned up by ``stack``; the options from ``add_scratch_options``."""
    import tempfile

    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"{name}-")))
    redis_url = args.redis_url
    if not redis_url:
        process, redis_url = embedded_redis.start(tmp)
        stack.callback(process.wait, 10)
        stack.callback(process.terminate)
    if args.pg:
        return stack.enter_context(fresh_pg_database(args.pg_admin_url, name)), redis_url
    return f"sqlite:///{tmp / f'{name}.db'}", redis_url


@contextlib.contextmanager
def fresh_pg_database(
    admin_url: str, prefix: str = "autocrm_bench", keep: bool = False
) -> Iterator[str]:
    """A new uniquely named database; dropped on the way out, whatever happened (``keep``:
    only when the bench fails; kept, for a later run to reuse, when it finishes)."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        print(f"created PostgreSQL database {name}")
        finished = False
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
            finished = True
        finally:
            if keep and finished:
                print(f"kept PostgreSQL database {name} (drop it when done)")
            else:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                print(f"dropped PostgreSQL database {name}")
    finally:
        admin.dispose()


def service_env(
    args: argparse.Namespace, stack: contextlib.ExitStack, tmp: Path, key_prefix: str
) -> dict[str, str]:
    """The environment of a migrated AutoCRM stack: ``--pg`` (a fresh PostgreSQL database),
    ``--database-url``, or SQLite in ``tmp``; ``--redis-url`` or an embedded Redis in ``tmp``.
    What it starts or creates is undone by ``stack``."""
    if args.pg:
        database_url = stack.enter_context(fresh_pg_database(args.pg_admin_url))
    else:
        database_url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    redis_url = args.redis_url
    if not redis_url:
        with fds_to(tmp / "redis.log"):
            redis_process, redis_url = embedded_redis.start(tmp)
        stack.callback(stop_process, redis_process)
    env = dict(
        os.environ,
        AUTOCRM_DATABASE_URL=database_url,
        AUTOCRM_REDIS_URL=redis_url,
        AUTOCRM_REDIS_KEY_PREFIX=key_prefix,
        AUTOCRM_INSTANCE_PATH=str(tmp / "instance"),
        AUTOCRM_SECRET_KEY=secrets.token_urlsafe(32),
        PYTHONUNBUFFERED="1",
    )
    run_step(
        "flask db upgrade", [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], env
    )
    return env


def enter_app(
    stack: contextlib.ExitStack, app: Any, redis_url: str, key_patterns: tuple[str, ...]
) -> Any:
    """Push ``app``'s context for the rest of the bench, and return a Redis client; on the way
    out the keys matching ``key_patterns`` are deleted and every connection is closed."""
    import redis

    from autocrm.extensions import db

    context = app.app_context()
    context.push()
    stack.callback(context.pop)
    stack.callback(db.engine.dispose)
    client = redis.Redis.from_url(redis_url)
    stack.callback(client.close)

    def drop_keys() -> None:
        for pattern in key_patterns:
            keys = list(client.scan_iter(match=pattern, count=1000))
            if keys:
                client.delete(*keys)

    stack.callback(drop_keys)
    return client


def in_process_app(url: str, redis_url: str, name: str) -> Any:
    """The app, migrated, for a bench that calls the services in its own process: ``url``'s
    database, ``redis_url`` for events and sockets (keys under ``<name>-<pid>:``), fast
    password hashing. Use it inside ``app.app_context()``; prints the database's version."""
    from flask_migrate import upgrade

    from autocrm import create_app
    from autocrm.config import celery_config
    from autocrm.extensions import db

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "AUTOCRM_REDIS_URL": redis_url,
            "AUTOCRM_SOCKETIO_MESSAGE_QUEUE": redis_url,
            "SECRET_KEY": secrets.token_urlsafe(16),
            "AUTOCRM_FAST_PASSWORD_HASHING": True,
            "CELERY": celery_config(redis_url, f"{name}-{os.getpid()}:"),
        }
    )
    with app.app_context():
        upgrade()
        print("database: " + database_version(db.engine)[:60])
    return app


def database_version(engine: Engine) -> str:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return "SQLite " + conn.execute(text("SELECT sqlite_version()")).scalar_one()
        return conn.execute(text("SELECT version()")).scalar_one().split(" on ")[0]


def machine_note(engine: Engine) -> None:
    print(
        f"machine:  nproc={len(os.sched_getaffinity(0))} cpu_count={os.cpu_count()} "
        f"load={' '.join(f'{x:.2f}' for x in os.getloadavg())} {platform.platform()}"
    )
    print(f"python:   {platform.python_version()} ({sys.executable})")
    print(f"database: {database_version(engine)} ({engine.url.render_as_string()})")
