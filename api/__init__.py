"""The REST API: Flask-Smorest blueprints over the domain services (thin handlers only)."""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

from api import (
    attachments,
    audit,
    auth,
    errors,
    followers,
    kb,
    macros,
    mailboxes,
    mentions,
    merge_links,
    notifications,
    organizations,
    reports,
    request_forms,
    schemas,
    tags,
    ticket_fields,
    tickets,
    tokens,
    users,
    views,
    webhooks,
    workflows,
)
from api.schemas import MAX_ID

BLUEPRINTS = (
    auth.blp,
    tokens.blp,
    tickets.blp,
    tags.blp,
    followers.blp,
    mentions.blp,
    merge_links.blp,
    macros.blp,
    macros.ticket_blp,
    attachments.blp,
    users.users_blp,
    users.teams_blp,
    organizations.blp,
    mailboxes.blp,
    mailboxes.inbound_blp,
    notifications.blp,
    workflows.blp,
    kb.blp,
    reports.blp,
    audit.blp,
    webhooks.blp,
    views.blp,
    ticket_fields.blp,
    request_forms.blp,
)


class IdConverter(IntegerConverter):
    """``<id:...>`` in routes: only ids that can exist match; anything else is a plain 404."""

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)


def init_app(app: Flask) -> errors.ApiWithErrors:
    """Mount the API on ``app`` (one Api object per app, so tests can build many apps)."""
    app.url_map.converters["id"] = IdConverter
    api = errors.ApiWithErrors()
    api.init_app(
        app,
        spec_kwargs={
            "security": [{"bearerAuth": []}],
            "info": {
                "description": "AutoCRM's REST API. Get a token from POST /api/auth/token "
                "(or make a personal API token: POST /api/tokens, or on your profile page) "
                "and send it as `Authorization: Bearer <token>`."
            },
        },
    )
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.register_converter(
        IdConverter, lambda _: {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    )
    # The document webhooks receive: no endpoint answers with it, so it is named here.
    api.spec.components.schema("WebhookEvent", schema=schemas.WebhookEventSchema)
    errors.register(app)
    for blp in BLUEPRINTS:
        api.register_blueprint(blp)
    return api
