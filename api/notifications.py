"""Notification endpoints: your own notifications and your email preferences per kind."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from api.auth import current_actor, require_bearer
from api.errors import ErrorSchema
from api.schemas import Id, StrictSchema
from autocrm.notifications import preferences as notification_settings
from autocrm.notifications.models import NOTIFICATION_KINDS

blp = Blueprint(
    "notifications", __name__, url_prefix="/api", description="Your notifications and preferences."
)
blp.before_request(require_bearer)

NOT_FOUND = "No such notification, or not yours."


class NotificationSchema(ma.Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"enum": list(NOTIFICATION_KINDS)})
    title = fields.String()
    body = fields.String()
    ticket_id = fields.Integer(allow_none=True)
    message_id = fields.Integer(
        allow_none=True,
        metadata={"description": "The note it is about (a mention): open the ticket there."},
    )
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True)


class NotificationListArgsSchema(StrictSchema):
    unread = fields.Boolean(load_default=False, metadata={"description": "Only unread ones."})
    before = Id(strict=False, metadata={"description": "Only older ones: the next page."})
    after = Id(
        strict=False, minimum=0, metadata={"description": "Only newer ones: what you missed."}
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class NotificationPageSchema(ma.Schema):
    items = fields.List(fields.Nested(NotificationSchema))
    has_more = fields.Boolean(
        metadata={"description": "More (older) ones follow: pass the last id as `before`."}
    )
    unread_count = fields.Integer(metadata={"description": "All your unread notifications."})


class ReadAllRequestSchema(StrictSchema):
    up_to = Id(
        metadata={"description": "Only ids up to this one (the newest you showed the user)."}
    )


class ReadAllResultSchema(ma.Schema):
    marked = fields.Integer(metadata={"description": "How many were unread and now are read."})
    unread_count = fields.Integer()


class StrictBoolean(fields.Boolean):
    """JSON true or false only (marshmallow's Boolean also takes "yes", 1, 0...)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _kind_field() -> fields.Boolean:
    return StrictBoolean(metadata={"description": "Email on."})


# One boolean per kind. Unknown keys pass through to the service, whose 422 names them.
PreferencesSchema = ma.Schema.from_dict(
    {kind: _kind_field() for kind in NOTIFICATION_KINDS}, name="NotificationPreferencesSchema"
)


class NotificationPreferencesUpdateSchema(PreferencesSchema):  # type: ignore[misc, valid-type]
    class Meta:
        unknown = ma.INCLUDE


@blp.route("/notifications")
class NotificationCollection(MethodView):
    @blp.arguments(NotificationListArgsSchema, location="query", unknown=ma.RAISE)
    @blp.response(200, NotificationPageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """Your notifications, newest first, with your unread count."""
        actor = current_actor()
        items, more = notification_settings.list_notifications(actor, **args)
        return {
            "items": items,
            "has_more": more,
            "unread_count": notification_settings.unread_count(actor),
        }


@blp.route("/notifications/<id:notification_id>/read")
class NotificationRead(MethodView):
    @blp.response(200, NotificationSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    def post(self, notification_id: int) -> Any:
        """Mark one notification read."""
        return notification_settings.do_mark_read(current_actor(), notification_id)


@blp.route("/notifications/read-all")
class NotificationReadAll(MethodView):
    @blp.arguments(ReadAllRequestSchema, required=False)
    @blp.response(200, ReadAllResultSchema)
    def post(self, body: dict[str, Any]) -> Any:
        """Mark all your notifications read (or those up to ``up_to``)."""
        actor = current_actor()
        marked = notification_settings.do_mark_all_read(actor, body.get("up_to"))
        return {"marked": marked, "unread_count": notification_settings.unread_count(actor)}


@blp.route("/users/me/notification-preferences")
class NotificationPreferences(MethodView):
    @blp.response(200, PreferencesSchema)
    def get(self) -> Any:
        """Email on or off for every notification kind (on by default)."""
        return notification_settings.email_preferences(current_actor())

    @blp.arguments(NotificationPreferencesUpdateSchema)
    @blp.response(200, PreferencesSchema)
    @blp.alt_response(422, schema=ErrorSchema, description="An unknown kind, or not a boolean.")
    def put(self, body: dict[str, Any]) -> Any:
        """Switch email on or off per kind; kinds you leave out keep their setting."""
        return notification_settings.do_set_email_preferences(current_actor(), body)
