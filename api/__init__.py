"""The REST API: Flask-Smorest blueprints over ``autocrm.services`` (thin handlers only)."""

from __future__ import annotations

from flask import Flask

from api import auth, errors, tickets, users

BLUEPRINTS = (auth.blp, tickets.blp, users.users_blp, users.teams_blp)


def init_app(app: Flask) -> errors.ApiWithErrors:
    """Mount the API on ``app`` (one Api object per app, so tests can build many apps)."""
    api = errors.ApiWithErrors()
    api.init_app(
        app,
        spec_kwargs={
            "security": [{"bearerAuth": []}],
            "info": {
                "description": "AutoCRM's REST API. Get a token from POST /api/auth/token and "
                "send it as `Authorization: Bearer <token>`."
            },
        },
    )
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    errors.register(app)
    for blp in BLUEPRINTS:
        api.register_blueprint(blp)
    return api
