"""A small OpenID Connect provider of the tests' own, run as a real process
(``python -m tests.oidc_provider --port N --client-id ID --client-secret SECRET``).

It is outside the system under test, so it is written for clarity, not completeness: one
client, the authorization code flow with PKCE (S256) and client_secret_basic, RS256 ID tokens
signed by a key made at start (published in its JWKS), discovery, and userinfo. Its authorize
page is a form that logs in whoever is typed in (email, name, whether the email is verified,
the subject), auto-approving, as a browser test fills it and integration tests post it.
Test-only switches on that form make the answers a relying party must refuse or cope with:
``forge`` signs the ID token with a key that is not in the JWKS, ``deny`` answers
``access_denied``, ``nonce`` and ``audience`` replace those claims, ``expired`` issues an ID
token that expired an hour ago, and ``userinfo_only`` keeps the email out of the ID token
(only the userinfo endpoint has it). Codes are one-time and expire in a minute.

``start(log_dir)`` runs it on a free port for a fixture; ``log_in_at(authorize_url, ...)``
plays the person at its form and returns the callback URL it redirects to.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
from flask import Flask, abort, jsonify, redirect, render_template_string, request
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

CODE_TTL_S = 60
TOKEN_TTL_S = 300
READY = "test OIDC provider ready"
SWITCHES = frozenset({"forge", "nonce", "audience", "expired", "userinfo_only"})

AUTHORIZE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test identity provider</title></head>
<body><main>
<h1>Test identity provider</h1>
<p>Logging in to {{ client_id }}.</p>
<form method="post">
  <label for="email">Email at the provider</label>
  <input id="email" name="email" type="email" required>
  <label for="name">Full name</label>
  <input id="name" name="name">
  <label><input type="checkbox" name="email_verified" value="true" checked> Email verified</label>
  <label for="subject">Subject (blank: from the email)</label>
  <input id="subject" name="subject">
  <button type="submit">Sign in at the provider</button>
</form>
</main></body></html>"""


def create_provider(issuer: str, client_id: str, client_secret: str) -> Flask:
    app = Flask(__name__)
    key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"})
    rogue = RSAKey.generate_key(2048, parameters={"kid": "test-key", "alg": "RS256"})
    codes: dict[str, dict[str, Any]] = {}
    access_tokens: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    @app.get("/.well-known/openid-configuration")
    def discovery() -> Any:
        return jsonify(
            issuer=issuer,
            authorization_endpoint=f"{issuer}/authorize",
            token_endpoint=f"{issuer}/token",
            userinfo_endpoint=f"{issuer}/userinfo",
            jwks_uri=f"{issuer}/jwks",
            response_types_supported=["code"],
            subject_types_supported=["public"],
            id_token_signing_alg_values_supported=["RS256"],
            code_challenge_methods_supported=["S256"],
            token_endpoint_auth_methods_supported=["client_secret_basic"],
        )

    @app.get("/jwks")
    def jwks() -> Any:
        return jsonify(keys=[key.as_dict(private=False)])

    def _check_authorization_request() -> dict[str, str]:
        params = request.args
        if params.get("client_id") != client_id or params.get("response_type") != "code":
            abort(400, "unknown client or response type")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            abort(400, "PKCE with S256 is required")
        if "openid" not in params.get("scope", "").split():
            abort(400, "the openid scope is required")
        return dict(params)

    @app.get("/authorize")
    def authorize_page() -> Any:
        _check_authorization_request()
        return render_template_string(AUTHORIZE_PAGE, client_id=client_id)

    @app.post("/authorize")
    def authorize() -> Any:
        params = _check_authorization_request()
        answer = {"state": params.get("state", "")}
        if request.form.get("deny"):
            answer["error"] = "access_denied"
            return redirect(f"{params['redirect_uri']}?{urlencode(answer)}")
        email = request.form["email"]
        code = secrets.token_urlsafe(24)
        with lock:
            codes[code] = {
                "params": params,
                "expires": time.time() + CODE_TTL_S,
                "switches": {k: v for k, v in request.form.items() if k in SWITCHES and v},
                "claims": {
                    "sub": request.form.get("subject") or f"sub-{email}",
                    "email": email,
                    "email_verified": request.form.get("email_verified") == "true",
                    "name": request.form.get("name") or "",
                },
            }
        answer["code"] = code
        return redirect(f"{params['redirect_uri']}?{urlencode(answer)}")

    def _client_authenticated() -> bool:
        auth = request.authorization
        return bool(
            auth
            and auth.username == client_id
            and hmac.compare_digest(auth.password or "", client_secret)
        )

    def _token_error(error: str, status: int = 400) -> Any:
        return jsonify(error=error), status

    @app.post("/token")
    def token() -> Any:
        if not _client_authenticated():
            return _token_error("invalid_client", 401)
        form = request.form
        if form.get("grant_type") != "authorization_code":
            return _token_error("unsupported_grant_type")
        with lock:
            grant = codes.pop(form.get("code", ""), None)
        if grant is None or grant["expires"] < time.time():
            return _token_error("invalid_grant")
        params = grant["params"]
        if form.get("redirect_uri") != params["redirect_uri"]:
            return _token_error("invalid_grant")
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if challenge != params["code_challenge"]:
            return _token_error("invalid_grant")
        switches = grant["switches"]
        now = int(time.time()) - (3600 if switches.get("expired") else 0)
        claims = {
            **grant["claims"],
            "iss": issuer,
            "aud": switches.get("audience") or client_id,
            "iat": now,
            "exp": now + TOKEN_TTL_S,
            "nonce": switches.get("nonce") or params.get("nonce"),
        }
        if switches.get("userinfo_only"):
            for name in ("email", "email_verified", "name"):
                claims.pop(name)
        signing_key = rogue if switches.get("forge") else key
        id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, signing_key)
        access_token = secrets.token_urlsafe(24)
        with lock:
            access_tokens[access_token] = grant["claims"]
        return jsonify(
            access_token=access_token,
            token_type="Bearer",
            expires_in=TOKEN_TTL_S,
            id_token=id_token,
            scope=params.get("scope"),
        )

    @app.get("/userinfo")
    def userinfo() -> Any:
        scheme, _, token_value = request.headers.get("Authorization", "").partition(" ")
        claims = access_tokens.get(token_value) if scheme.lower() == "bearer" else None
        if claims is None:
            return _token_error("invalid_token", 401)
        return jsonify(claims)

    return app


# -- for fixtures and tests -------------------------------------------------------------------


@dataclass(frozen=True)
class Provider:
    issuer: str
    client_id: str
    client_secret: str


CLIENT_ID = "autocrm-test"
CLIENT_SECRET = "test-client-secret"


@contextmanager
def running(
    log_dir: Path, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET
) -> Iterator[Provider]:
    """The provider on a free port, as a process of its own, for the ``with`` block."""
    # Here, not at the top: the provider process itself needs none of the app's imports.
    from tests import processes

    port = processes.free_port()
    argv = [
        sys.executable, "-m", "tests.oidc_provider", "--port", str(port),
        "--client-id", client_id, "--client-secret", client_secret,
    ]  # fmt: skip
    process = processes.start("oidc-provider", argv, log_dir, dict(os.environ), READY)
    try:
        yield Provider(f"http://127.0.0.1:{port}", client_id, client_secret)
    finally:
        process.stop()


def log_in_at(
    authorize_url: str,
    email: str,
    *,
    name: str = "",
    verified: bool = True,
    subject: str = "",
    deny: bool = False,
    **switches: str | bool,
) -> str:
    """Fill in the provider's form as a person would (``switches``: see the module's
    docstring); returns where it redirects (our callback URL with the code and state)."""
    page = requests.get(authorize_url, timeout=10)
    assert page.status_code == 200, page.text
    assert set(switches) <= SWITCHES, switches
    form = {"email": email, "name": name, "subject": subject}
    form.update({k: "1" if v is True else str(v) for k, v in switches.items() if v})
    if verified:
        form["email_verified"] = "true"
    if deny:
        form["deny"] = "1"
    answer = requests.post(authorize_url, data=form, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    args = parser.parse_args()
    issuer = f"http://127.0.0.1:{args.port}"
    app = create_provider(issuer, args.client_id, args.client_secret)
    server = make_server("127.0.0.1", args.port, app, threaded=True)
    print(READY, issuer, flush=True)  # noqa: T201 (the fixture waits for this line)
    server.serve_forever()


if __name__ == "__main__":
    main()
