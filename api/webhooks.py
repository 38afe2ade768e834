"""Outgoing webhook endpoints (admin): subscriptions (``autocrm.webhooks.subscriptions``),
their delivery log, redelivery and test events (``autocrm.webhooks.deliveries``). The
document a subscription receives is the ``WebhookEvent`` schema in the OpenAPI spec."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from api import schemas
from api.auth import current_actor, require_bearer
from api.errors import ErrorSchema
from autocrm.listing import PageRequest
from autocrm.webhooks import deliveries, subscriptions

blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/api/webhooks",
    description="Outgoing webhooks (admin): signed JSON documents POSTed on ticket events "
    "(the WebhookEvent schema).",
)
blp.before_request(require_bearer)


@blp.route("")
class WebhookCollection(MethodView):
    @blp.response(200, schemas.WebhookSubscriptionListSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def get(self) -> Any:
        """Every webhook subscription (admin)."""
        return {"items": subscriptions.list_subscriptions(current_actor())}

    @blp.arguments(schemas.WebhookSubscriptionCreateSchema)
    @blp.response(201, schemas.WebhookSubscriptionCreatedSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def post(self, body: dict[str, Any]) -> Any:
        """Subscribe an endpoint to event kinds (admin). The answer holds the signing secret,
        shown this once. A URL that is not https, or resolves to a loopback, private,
        link-local or reserved address (unless allow-listed), is refused: 422 naming `url`."""
        webhook, secret = subscriptions.do_create_subscription(current_actor(), body)
        return {"webhook": webhook, "secret": secret}


@blp.route("/<id:subscription_id>")
class WebhookItem(MethodView):
    @blp.response(200, schemas.WebhookSubscriptionSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such webhook.")
    def get(self, subscription_id: int) -> Any:
        """One webhook subscription (admin); its secret is never shown again."""
        return subscriptions.access_subscription_by_id(current_actor(), subscription_id)

    @blp.arguments(schemas.WebhookSubscriptionWriteSchema)
    @blp.response(200, schemas.WebhookSubscriptionSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def patch(self, body: dict[str, Any], subscription_id: int) -> Any:
        """Change a subscription (admin); `active: false` pauses it, `true` resumes it."""
        return subscriptions.do_update_subscription(current_actor(), subscription_id, body)

    @blp.response(200, schemas.DeletedSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def delete(self, subscription_id: int) -> Any:
        """Delete a subscription and its delivery log (admin); nothing pending is sent."""
        subscriptions.do_delete_subscription(current_actor(), subscription_id)
        return {"id": subscription_id, "deleted": True}


@blp.route("/<id:subscription_id>/secret")
class WebhookSecret(MethodView):
    @blp.response(200, schemas.WebhookSigningSecretSchema)
    def post(self, subscription_id: int) -> Any:
        """Make a new signing secret (admin), shown this once; the old one signs nothing more."""
        return {"secret": subscriptions.do_rotate_secret(current_actor(), subscription_id)}


@blp.route("/<id:subscription_id>/test")
class WebhookTest(MethodView):
    @blp.response(200, schemas.WebhookDeliverySchema)
    def post(self, subscription_id: int) -> Any:
        """Send a `webhook.test` event now (admin), also to a paused subscription, and log it;
        the answer is the delivery with the endpoint's response (tried once)."""
        return deliveries.do_send_test(current_actor(), subscription_id)


@blp.route("/<id:subscription_id>/deliveries")
class WebhookDeliveries(MethodView):
    @blp.arguments(schemas.WebhookDeliveryListArgsSchema, location="query")
    @blp.response(200, schemas.WebhookDeliveryPageSchema)
    def get(self, args: dict[str, Any], subscription_id: int) -> Any:
        """The subscription's delivery log, newest first (admin): status, attempts, the last
        response's code, time and first kilobyte."""
        page = PageRequest(limit=args["limit"], cursor=args.get("cursor"))
        return deliveries.list_deliveries(current_actor(), subscription_id, page)


@blp.route("/deliveries/<id:delivery_id>")
class WebhookDeliveryItem(MethodView):
    @blp.response(200, schemas.WebhookDeliveryDetailSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such delivery.")
    def get(self, delivery_id: int) -> Any:
        """One delivery with the document it sends (admin)."""
        return deliveries.access_delivery_by_id(current_actor(), delivery_id)


@blp.route("/deliveries/<id:delivery_id>/redeliver")
class WebhookRedeliver(MethodView):
    @blp.response(200, schemas.WebhookDeliverySchema)
    @blp.alt_response(422, schema=ErrorSchema, description="It is pending already.")
    def post(self, delivery_id: int) -> Any:
        """Send a delivered or failed delivery again (admin): the same document, a new series
        of attempts, by a worker after this answer."""
        return deliveries.do_redeliver(current_actor(), delivery_id)
