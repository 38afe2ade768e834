"""Sending a received email as it arrived (the admin's failed-mail list, the API, and the
original of an email message in the workspace): always a download, never rendered, with
``nosniff`` and the sandboxing CSP attachments get (``autocrm.files.serving``)."""

from __future__ import annotations

from flask import Response

from autocrm.files.serving import SANDBOX_CSP
from autocrm.mail.models import InboundEmail
from autocrm.mail.receive import read_raw


def send_original(inbound: InboundEmail) -> Response:
    response = Response(read_raw(inbound), mimetype="message/rfc822")
    response.headers["Content-Disposition"] = f'attachment; filename="email-{inbound.id}.eml"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = SANDBOX_CSP
    return response
