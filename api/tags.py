"""Tags in use, for autocomplete (on tickets the caller may see)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from api import schemas
from api.auth import current_actor, require_bearer
from api.errors import ErrorSchema
from autocrm.tickets import tags

blp = Blueprint("tags", __name__, url_prefix="/api/tags", description="Ticket tags.")
blp.before_request(require_bearer)


@blp.route("")
class TagCollection(MethodView):
    @blp.arguments(schemas.TagListArgsSchema, location="query", unknown=ma.RAISE)
    @blp.response(200, schemas.TagUseSchema(many=True))
    @blp.alt_response(422, schema=ErrorSchema, description="`q` can start no tag.")
    def get(self, args: dict[str, Any]) -> Any:
        """Tags starting with ``q`` on the tickets you may see, most used first."""
        return tags.tags_in_use(current_actor(), **args)
