"""Authentication: the token endpoint, and the bearer check every other endpoint passes."""

from __future__ import annotations

from flask import current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint

from api.errors import ErrorSchema
from api.schemas import TokenRequestSchema, TokenSchema
from autocrm import policies
from autocrm.database import SAFE_METHODS
from autocrm.errors import Forbidden, NotAuthenticated
from autocrm.people import twofactor, users
from autocrm.people.models import User
from autocrm.ratelimit import login_limits

blp = Blueprint("auth", __name__, url_prefix="/api/auth", description="Obtain a bearer token.")


def current_actor() -> User:
    return g.actor


def require_bearer() -> None:
    """``before_request`` of every protected blueprint: resolve the caller or answer 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Send Authorization: Bearer <token> (from POST /api/auth/token).")
    actor = users.user_for_token(token.strip())
    twofactor.check_bearer(actor)
    if request.method not in SAFE_METHODS and not policies.may_change(actor):
        raise Forbidden(
            "This token may only read; make one with the write scope to change things.",
            {"scope": ["read: GET requests only."]},
        )
    g.actor = actor


@blp.route("/token")
class Token(MethodView):
    @login_limits
    @blp.doc(security=[])
    @blp.arguments(TokenRequestSchema)
    @blp.response(200, TokenSchema)
    @blp.alt_response(
        401,
        schema=ErrorSchema,
        description="Wrong email or password, or a deactivated account; an agent or admin "
        "while staff password login is off (AUTOCRM_STAFF_PASSWORD_LOGIN: they use single "
        "sign-on); or, for an account with two-factor login, a missing or wrong `otp` (then "
        "`errors.otp` says which). Staff who must use two-factor login and have not set it up "
        "get `errors.otp` too: they set it up on the web pages first.",
    )
    @blp.alt_response(
        429, schema=ErrorSchema, description="Too many login attempts; wait and retry."
    )
    def post(self, credentials: dict[str, str]) -> dict[str, object]:
        """Exchange email and password (and, with two-factor login, a code) for a bearer
        token."""
        user, token = users.authenticate(credentials["email"], credentials["password"], via="api")
        twofactor.check_token_login(user, credentials.get("otp"))
        users.do_log_in_api(user)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": current_app.config["AUTOCRM_TOKEN_TTL"],
        }
