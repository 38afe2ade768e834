"""The login rate limit: one budget per account and one per client address, shared by the
login page (``/login``) and the API's token endpoint, and how it behaves when its Redis is away.

- ``login_limits`` decorates both doors with the same two shared limits
  (``AUTOCRM_LOGIN_RATE_LIMIT`` each): guessing one account's password from many addresses, or
  many accounts' from one address, spends one budget whichever door it knocks on.
- The second step of a web login (``/login/verify``, the code) names no email: it spends the
  budget of the account whose password step it continues (``twofactor.PENDING_LOGIN_KEY`` in
  the signed session), so guessing codes costs the same as guessing passwords.
- The client address is ``request.remote_addr``. Behind a reverse proxy that is the proxy's
  address, for everyone: ``AUTOCRM_TRUSTED_PROXIES`` (werkzeug's ``ProxyFix``, set up by the app
  factory) takes it from ``X-Forwarded-For`` instead, trusting as many hops as proxies named.
- The counters live in Redis under ``AUTOCRM_REDIS_KEY_PREFIX`` (``<prefix>autocrm:limits``).
- When that Redis cannot be reached, login goes on (a 500 there locked everyone out): each
  process counts in its own memory, with the same limits, until Redis answers again
  (Flask-Limiter's in-memory fallback, which re-checks Redis with back-off), and the log says so.
  An outage at worst multiplies an attacker's budget by the number of web processes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, request, session
from flask_limiter.util import get_remote_address

from autocrm.extensions import limiter
from autocrm.people.twofactor import PENDING_LOGIN_KEY
from autocrm.people.users import normalize_email

log = logging.getLogger(__name__)
# Short: a login waits at most this long for a Redis that stopped answering.
REDIS_TIMEOUT_S = 1.0


def _login_limit() -> str:
    return current_app.config["AUTOCRM_LOGIN_RATE_LIMIT"]


def _named_account() -> str | None:
    """The email a login attempt names (form or JSON body), normalized as login compares it."""
    if request.is_json:
        body = request.get_json(silent=True)
        email = body.get("email") if isinstance(body, dict) else None
    else:
        email = request.form.get("email") or _pending_login_email()
    return normalize_email(email) if isinstance(email, str) and email.strip() else None


def _pending_login_email() -> str | None:
    pending = session.get(PENDING_LOGIN_KEY)
    return pending.get("email") if isinstance(pending, dict) else None


_by_address = limiter.shared_limit(
    _login_limit, scope="login-address", key_func=get_remote_address, methods=["POST"]
)
_by_account = limiter.shared_limit(
    _login_limit,
    scope="login-account",
    key_func=lambda: _named_account() or "",
    exempt_when=lambda: _named_account() is None,  # nothing to log in to: the address budget
    methods=["POST"],
)


def login_limits(view: Callable[..., Any]) -> Callable[..., Any]:
    """Both login budgets on a view (``/login``, ``POST /api/auth/token``)."""
    return _by_address(_by_account(view))


def init_app(app: Flask) -> None:
    """Bind the limiter, its Redis options derived from the final config (tests override the
    storage), and the log line of a fallback."""
    storage_uri = app.config["RATELIMIT_STORAGE_URI"]
    if storage_uri.startswith(("redis", "rediss")):
        app.config.setdefault(
            "RATELIMIT_STORAGE_OPTIONS",
            {
                "key_prefix": f"{app.config['AUTOCRM_REDIS_KEY_PREFIX']}autocrm:limits",
                "socket_connect_timeout": REDIS_TIMEOUT_S,
                "socket_timeout": REDIS_TIMEOUT_S,
            },
        )
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    limiter.init_app(app)
    limiter.logger.setLevel(logging.INFO)  # its "storage unreachable" and "recovered" lines
