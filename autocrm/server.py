"""The production web server: ``python -m autocrm.server`` (one process; run N of them).

``AUTOCRM_ASYNC_MODE`` picks the server: ``eventlet`` (the default here, the design card's
choice) or ``gevent``, each with its own WSGI server (Socket.IO over WebSocket and polling).
For ``threading`` there is no server here: run ``gunicorn -k gthread --threads 8 wsgi:app``.
gunicorn can serve this module too with gevent (``gunicorn -k gevent -w 1
autocrm.server:app``); gunicorn 26 dropped its eventlet worker, so eventlet runs only this way.

Order matters, and is why this module exists: the event loop's monkey-patching comes first,
before anything imports socket, ssl, threading or redis; then psycopg 3 is told to wait for the
database through the patched ``select`` (its C wait function blocks the whole loop under
eventlet: psycopg detects only gevent); only then is the application imported and built.

Settings besides the application's own: ``AUTOCRM_HOST`` (default 127.0.0.1),
``AUTOCRM_PORT`` (5000), ``AUTOCRM_MAX_CONNECTIONS`` (10000: eventlet's WSGI server otherwise
caps simultaneous connections at 1024), ``AUTOCRM_ACCESS_LOG`` (on). Every Socket.IO
connection is also a file descriptor: the process raises its soft ``ulimit -n`` to the hard
limit, which must itself be above the connection count (``ulimit -Hn``; docker's ``ulimits``).
"""

from __future__ import annotations

import os
import sys
import warnings

DEFAULT_ASYNC_MODE = "eventlet"
GREEN_MODES = ("eventlet", "gevent")


def _patched_by() -> str | None:
    """The loop that already patched this process (gunicorn's gevent worker does)."""
    gevent_monkey = sys.modules.get("gevent.monkey")
    if gevent_monkey is not None and gevent_monkey.is_module_patched("socket"):
        return "gevent"
    eventlet_patcher = sys.modules.get("eventlet.patcher")
    if eventlet_patcher is not None and eventlet_patcher.is_monkey_patched("socket"):
        return "eventlet"
    return None


def _choose_async_mode() -> str:
    patched = _patched_by()
    mode = os.environ.get("AUTOCRM_ASYNC_MODE") or patched or DEFAULT_ASYNC_MODE
    if patched is not None and mode != patched:
        raise RuntimeError(
            f"AUTOCRM_ASYNC_MODE is {mode!r} but this process was patched by {patched}: "
            f"set AUTOCRM_ASYNC_MODE={patched} (or use a matching gunicorn worker class)"
        )
    os.environ["AUTOCRM_ASYNC_MODE"] = mode  # what the application's settings will read
    return mode


def _monkey_patch(mode: str) -> None:
    if mode == "eventlet":
        # Said once here, not by every process at every start: eventlet is in bug-fix-only
        # maintenance (ARCHITECTURE.md), gevent is the tested alternative.
        warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
        import eventlet

        eventlet.monkey_patch()
    elif mode == "gevent":
        from gevent import monkey

        monkey.patch_all()


def _make_psycopg_cooperative(mode: str) -> None:
    """psycopg 3 waits for the server in C unless told otherwise; under a green loop it must
    wait through ``select``, which the patch has made a yield to the loop."""
    if mode not in GREEN_MODES:
        return
    from psycopg import waiting

    waiting.wait = waiting.wait_select


ASYNC_MODE = _choose_async_mode()
_monkey_patch(ASYNC_MODE)
_make_psycopg_cooperative(ASYNC_MODE)

# Everything below may import the world: the patching above has been done.
import argparse  # noqa: E402
import contextlib  # noqa: E402
import gc  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
from typing import Any  # noqa: E402

from flask import Flask  # noqa: E402

from autocrm.app import create_app  # noqa: E402

log = logging.getLogger("autocrm.server")

app = create_app()


def _flag(name: str, default: str) -> bool:
    return os.environ.get(name, default).strip().lower() in {"on", "1", "true", "yes"}


def raise_open_files_limit() -> int:
    """Soft ``RLIMIT_NOFILE`` up to the hard limit; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open files limit: %s", exc)
    return soft


# Each connection's buffered reader and writer live as long as the connection: for a
# websocket that is hours, though after the upgrade neither is used again (eventlet's
# websocket reads and writes the raw socket). eventlet's defaults are 8 KB and 16 KB; the
# page of each that the handshake touches is ~8 KB of every idle socket's memory.
HTTP_READ_BUFFER = 1024
HTTP_WRITE_BUFFER = 1024


def _lean_http_protocol() -> type:
    """eventlet's ``HttpProtocol`` with small buffers and Nagle off.

    With a write buffer smaller than a response body, eventlet sends the head and the body
    as two writes; with Nagle on, the body would wait for the client's delayed ACK (~40 ms).
    ``TCP_NODELAY`` sends each write at once (eventlet already sets ``TCP_QUICKACK``)."""
    import socket

    from eventlet import wsgi

    class LeanHttpProtocol(wsgi.HttpProtocol):
        rbufsize = HTTP_READ_BUFFER
        wbufsize = HTTP_WRITE_BUFFER

        def setup(self) -> None:
            with contextlib.suppress(OSError, AttributeError):  # not TCP (a unix socket)
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().setup()

    return LeanHttpProtocol


# The cyclic GC's thresholds for a server holding thousands of idle sockets (CPython's
# defaults: 700, 10, 10). A full collection walks every object of every connection (about
# 150 each: 1.5 million at 10,000 sockets) and stops the whole process while it does: 1-3 s
# on the bench machine, so pings are missed, Redis calls time out and broadcasts wait. With
# the defaults one ran every 8-16 s during broadcasts to 10,000 sockets. These make a full
# collection 100 times rarer (it is considered every 7,000 x 10 x 100 allocations instead
# of 700 x 10 x 10), and young collections 10 times rarer. Cyclic garbage that reached the
# oldest generation (a closed connection's, ~60 objects) waits longer to be freed.
GC_THRESHOLDS = (7000, 10, 100)


def _tune_gc() -> None:
    """Everything imported and built before serving lives as long as the process: frozen,
    out of every collection's walk; then the thresholds above."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def serve(flask_app: Flask, host: str, port: int, max_connections: int) -> None:
    """Run ``flask_app`` with the async mode's own WSGI server until stopped."""
    if ASYNC_MODE not in GREEN_MODES:
        raise SystemExit(
            f"AUTOCRM_ASYNC_MODE={ASYNC_MODE}: this server is for eventlet or gevent; "
            "for threading run: gunicorn -k gthread --threads 8 wsgi:app"
        )
    open_files = raise_open_files_limit()
    if open_files < max_connections + 100:
        log.warning(
            "open files limit %s is below AUTOCRM_MAX_CONNECTIONS=%s: raise `ulimit -n`",
            open_files,
            max_connections,
        )
    options: dict[str, Any] = {"log_output": _flag("AUTOCRM_ACCESS_LOG", "on")}
    if ASYNC_MODE == "eventlet":
        options["max_size"] = max_connections  # eventlet.wsgi's default is 1024
        options["protocol"] = _lean_http_protocol()
    else:
        options["spawn"] = max_connections  # a gevent pool of this size
    log.info("AutoCRM %s server listening on http://%s:%s", ASYNC_MODE, host, port)
    _tune_gc()
    flask_app.extensions["socketio"].run(flask_app, host=host, port=port, **options)


def main(argv: list[str] | None = None, flask_app: Flask | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("AUTOCRM_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("AUTOCRM_PORT", "5000")))
    parser.add_argument(
        "--max-connections",
        type=int,
        default=int(os.environ.get("AUTOCRM_MAX_CONNECTIONS", "10000")),
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(message)s")
    try:
        serve(flask_app or app, args.host, args.port, args.max_connections)
    except KeyboardInterrupt:
        log.info("stopped")


if __name__ == "__main__":
    main()
