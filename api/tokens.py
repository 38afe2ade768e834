"""Personal API tokens: make (shown once), list and revoke one's own (``autocrm.people.tokens``).

Managed with a password-issued token or on the web; a personal token cannot manage tokens."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from api import schemas
from api.auth import current_actor, require_bearer
from api.errors import ErrorSchema
from autocrm import policies
from autocrm.errors import Forbidden
from autocrm.people import tokens
from autocrm.people.models import User

blp = Blueprint(
    "tokens",
    __name__,
    url_prefix="/api/tokens",
    description="Personal API tokens: named, scoped, expiring, revocable.",
)
blp.before_request(require_bearer)


def _token_manager() -> User:
    actor = current_actor()
    if not policies.can_manage_tokens(actor):
        raise Forbidden("A personal API token cannot manage tokens; use your password's token.")
    return actor


@blp.route("")
class TokenCollection(MethodView):
    @blp.response(200, schemas.ApiTokenSchema(many=True))
    @blp.alt_response(403, schema=ErrorSchema, description="Called with a personal token.")
    def get(self) -> Any:
        """Your personal API tokens, newest first (the tokens themselves are never shown)."""
        return tokens.list_tokens(_token_manager())

    @blp.arguments(schemas.ApiTokenCreateSchema)
    @blp.response(201, schemas.ApiTokenCreatedSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Called with a personal token.")
    def post(self, body: dict[str, Any]) -> Any:
        """Make a token; the answer's ``token`` is shown this once. Send it as
        ``Authorization: Bearer <token>``."""
        made = tokens.do_create_token(_token_manager(), **body)
        listed = {name: getattr(made.entry, name) for name in schemas.ApiTokenSchema().fields}
        return {**listed, "token": made.token}


@blp.route("/<id:token_id>")
class TokenItem(MethodView):
    @blp.response(200, schemas.ApiTokenRevokedSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such token of yours.")
    @blp.alt_response(403, schema=ErrorSchema, description="Called with a personal token.")
    def delete(self, token_id: int) -> Any:
        """Revoke a token: the next request with it is refused."""
        tokens.do_revoke_token(_token_manager(), token_id)
        return {"id": token_id, "revoked": True}
