"""Mailbox endpoints: admins connect support mailboxes and handle failed mail
(``autocrm.mail.mailboxes``); a provider's inbound webhook delivers raw mail
(``autocrm.mail.receive``), authenticated by the mailbox's own secret."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from api import schemas
from api.auth import current_actor, require_bearer
from api.errors import ErrorSchema
from autocrm.errors import InvalidInput, NotAuthenticated
from autocrm.listing import PageRequest
from autocrm.mail import mailboxes, receive, serving
from autocrm.mail.models import InboundStatus

blp = Blueprint(
    "mailboxes", __name__, url_prefix="/api/mailboxes", description="Support mailboxes (admin)."
)
blp.before_request(require_bearer)

inbound_blp = Blueprint(
    "inbound",
    __name__,
    url_prefix="/api/inbound",
    description="Mail delivered by an email provider's inbound webhook.",
)


@blp.route("")
class MailboxCollection(MethodView):
    @blp.response(200, schemas.MailboxListSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def get(self) -> Any:
        """Every mailbox, by name (admin)."""
        return {"items": mailboxes.list_mailboxes(current_actor())}

    @blp.arguments(schemas.MailboxCreateSchema)
    @blp.response(201, schemas.MailboxCreatedSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def post(self, body: dict[str, Any]) -> Any:
        """Connect a mailbox (admin). The answer holds its webhook secret, shown this once.
        A name or address in use is refused (422 naming the field)."""
        mailbox, secret = mailboxes.do_create_mailbox(current_actor(), body)
        return {"mailbox": mailbox, "webhook_secret": secret}


@blp.route("/<id:mailbox_id>")
class MailboxItem(MethodView):
    @blp.response(200, schemas.MailboxSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such mailbox.")
    def get(self, mailbox_id: int) -> Any:
        """One mailbox (admin); its IMAP password is never shown."""
        return mailboxes.access_mailbox_by_id(current_actor(), mailbox_id)

    @blp.arguments(schemas.MailboxWriteSchema)
    @blp.response(200, schemas.MailboxSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def patch(self, body: dict[str, Any], mailbox_id: int) -> Any:
        """Change a mailbox (admin); omit `imap_password` to keep it."""
        return mailboxes.do_update_mailbox(current_actor(), mailbox_id, body)

    @blp.response(200, schemas.DeletedSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def delete(self, mailbox_id: int) -> Any:
        """Delete a mailbox and its record of received mail (admin); its tickets stay."""
        mailboxes.do_delete_mailbox(current_actor(), mailbox_id)
        return {"id": mailbox_id, "deleted": True}


@blp.route("/<id:mailbox_id>/test")
class MailboxTest(MethodView):
    @blp.response(200, schemas.MailboxTestSchema)
    @blp.alt_response(422, schema=ErrorSchema, description="No IMAP server set up.")
    def post(self, mailbox_id: int) -> Any:
        """Log in to the mailbox's IMAP server and open its folder (admin): `ok`, and what
        the server answered."""
        ok, message = mailboxes.test_connection(
            current_actor(), mailbox_id, current_app.config.get("AUTOCRM_MAIL_CA_FILE")
        )
        return {"ok": ok, "message": message}


@blp.route("/<id:mailbox_id>/webhook-secret")
class MailboxWebhookSecret(MethodView):
    @blp.response(200, schemas.WebhookSecretSchema)
    def post(self, mailbox_id: int) -> Any:
        """Make a new webhook secret (admin); the old one stops working at once."""
        return {"webhook_secret": mailboxes.do_rotate_webhook_secret(current_actor(), mailbox_id)}


@blp.route("/inbound")
class InboundCollection(MethodView):
    @blp.arguments(schemas.InboundEmailListArgsSchema, location="query")
    @blp.response(200, schemas.InboundEmailPageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """Received emails, newest first; by default the failed ones waiting for an admin."""
        status = None if args["status"] == "all" else InboundStatus(args["status"])
        page = PageRequest(limit=args["limit"], cursor=args.get("cursor"))
        return mailboxes.list_inbound(current_actor(), page, status=status)


@blp.route("/inbound/<id:inbound_id>")
class InboundItem(MethodView):
    @blp.response(200, schemas.InboundEmailSchema)
    def get(self, inbound_id: int) -> Any:
        """One received email (admin)."""
        return mailboxes.access_inbound_by_id(current_actor(), inbound_id)


@blp.route("/inbound/<id:inbound_id>/raw")
class InboundRaw(MethodView):
    @blp.response(200, {"format": "binary", "type": "string"}, content_type="message/rfc822")
    def get(self, inbound_id: int) -> Any:
        """The email exactly as it arrived (admin), as a download."""
        return serving.send_original(mailboxes.access_inbound_by_id(current_actor(), inbound_id))


@blp.route("/inbound/<id:inbound_id>/retry")
class InboundRetry(MethodView):
    @blp.response(200, schemas.InboundEmailSchema)
    @blp.alt_response(422, schema=ErrorSchema, description="Not a failed email.")
    def post(self, inbound_id: int) -> Any:
        """Run a failed email again (admin): the answer is what it became now."""
        return mailboxes.do_retry_inbound(current_actor(), inbound_id)


@blp.route("/inbound/<id:inbound_id>/discard")
class InboundDiscard(MethodView):
    @blp.response(200, schemas.InboundEmailSchema)
    @blp.alt_response(422, schema=ErrorSchema, description="Not a failed email.")
    def post(self, inbound_id: int) -> Any:
        """Drop a failed email from the list (admin); its record stays, marked discarded."""
        return mailboxes.do_discard_inbound(current_actor(), inbound_id)


# -- the provider's webhook ------------------------------------------------------------------------


def _offered_secret() -> str:
    """The secret in ``Authorization: Bearer <secret>`` or HTTP Basic (any user name; what
    providers that only take a URL can send: https://mail:<secret>@host/...)."""
    if request.authorization is not None:
        return request.authorization.password or request.authorization.token or ""
    return ""


def _raw_from_request() -> bytes:
    """The raw MIME: the body itself, or a form field or file named ``email`` (the shape of
    providers that post forms, e.g. SendGrid's raw mode)."""
    request.max_content_length = current_app.config["AUTOCRM_MAIL_MAX_BYTES"] + 2**20
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        if upload := request.files.get("email"):
            return upload.read()
        if text := request.form.get("email"):
            return text.encode("utf-8", "surrogateescape")
        raise InvalidInput("No email in the form.", {"email": ["Send the raw MIME as `email`."]})
    raw = request.get_data()
    if not raw:
        raise InvalidInput("Empty body.", {"body": ["Send the raw MIME message as the body."]})
    return raw


@inbound_blp.route("/email/<string:name>")
class InboundWebhook(MethodView):
    @inbound_blp.doc(
        security=[{"bearerAuth": []}],
        requestBody={
            "content": {
                "message/rfc822": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"email": {"type": "string", "format": "binary"}},
                    }
                },
            }
        },
    )
    @inbound_blp.response(202, schemas.InboundEmailSchema)
    @inbound_blp.alt_response(
        401, schema=ErrorSchema, description="No active mailbox of that name with that secret."
    )
    def post(self, name: str) -> Any:
        """Deliver one raw email to the mailbox `name`, authenticated by the mailbox's webhook
        secret (`Authorization: Bearer <secret>`, or HTTP Basic with it as the password).
        202 once it is stored, as a ticket change or as failed mail admins see; the same
        message delivered again gives the first record. 503 when it could not be stored:
        deliver it again later."""
        mailbox = mailboxes.mailbox_named(name)
        # An unknown name answers as a wrong secret does: names are not told to strangers.
        if mailbox is None or not mailboxes.webhook_secret_matches(mailbox, _offered_secret()):
            raise NotAuthenticated("Send the webhook secret of an active mailbox.")
        return receive.do_receive_email(mailbox, _raw_from_request(), via="webhook")
