"""Single sign-on pages: ``/login/sso`` sends the browser to the OpenID Connect provider,
``/login/sso/callback`` takes its answer and logs the user in with a server-side session,
exactly as the password login does (``web.session.log_in``).

The sign-on in progress (state, nonce, PKCE verifier, where to go next) waits in the signed
session cookie between the two; the callback takes it out, so each can finish once. Whatever
goes wrong is shown on the login page with its status (400 a stale or forged answer, 403 a
refusal, 502 a provider that does not answer, 404 no single sign-on set up) and logged;
refusals of a verified identity are also in the admin audit log (``autocrm.people.sso``).
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, redirect, request, session, url_for
from werkzeug.wrappers import Response

from autocrm import database
from autocrm.errors import DomainError, NotFound
from autocrm.people import oidc, sso
from web.auth import render_login, safe_next
from web.session import home_for, log_in

bp = Blueprint("web_sso", __name__)
log = logging.getLogger(__name__)
FLOW_KEY = "sso_flow"


def _settings() -> sso.SsoSettings:
    settings = sso.sso_settings()
    if settings is None:
        raise NotFound("Single sign-on is not set up here: log in with your password.")
    return settings


def _client(settings: sso.SsoSettings) -> oidc.Client:
    # The address registered at the provider: the public one, not what this request came in by.
    base = current_app.config["AUTOCRM_BASE_URL"].rstrip("/")
    return oidc.Client(
        issuer=settings.issuer,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        redirect_uri=base + url_for("web_sso.callback"),
    )


@bp.errorhandler(DomainError)
def _failed(exc: DomainError) -> tuple[str, int]:
    """Whatever went wrong, on the login page with its status (and in the log)."""
    log.warning("single sign-on failed (%s): %s %s", exc.status_code, exc.message, exc.errors)
    return render_login(error=exc.message), exc.status_code


@bp.get("/login/sso")
def start() -> Response:
    url, flow = oidc.begin(_client(_settings()), safe_next(request.args.get("next")))
    session[FLOW_KEY] = flow.as_dict()
    return redirect(url)


@bp.get("/login/sso/callback")
def callback() -> Response:
    settings = _settings()
    flow = oidc.Flow.from_session(session.pop(FLOW_KEY, None))
    claims = oidc.finish(_client(settings), flow, request.args)
    with database.writing():  # a GET that logs in: the user, their identity, the session
        user = sso.do_sso_login(claims, settings)
        log_in(user, via="sso")
    return redirect((flow.next if flow else None) or home_for(user))
