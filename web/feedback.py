"""The password-less feedback page behind the link in a "How did we do?" email.

The signed token in the URL is the capability: it names one ticket and its requester, and
lets that requester rate that ticket, nothing else. The form carries its own CSRF token as
well (signed, bound to the link's token, expiring), and the pages allow no scripts at all.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Blueprint, current_app, render_template, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from autocrm.errors import DomainError, NotFound
from autocrm.tickets import conversation
from autocrm.tickets.models import Ticket
from web.forms import parse_rating

bp = Blueprint("feedback", __name__, template_folder="templates")

CSRF_MAX_AGE = 60 * 60 * 24  # a form left open over night still works
MAX_COMMENT = 5000
RATINGS = (
    (5, "5 - Excellent"),
    (4, "4 - Good"),
    (3, "3 - Okay"),
    (2, "2 - Poor"),
    (1, "1 - Very poor"),
)
SECURITY_HEADERS = {
    # No script may run; styles and the form only from here; never framed.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    # The URL is a credential: never send it on as a referrer, never cache the page.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def _csrf_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="autocrm.feedback-form")


def _link_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def issue_csrf_token(token: str) -> str:
    return _csrf_serializer().dumps(_link_digest(token))


def check_csrf_token(token: str, csrf_token: str) -> bool:
    try:
        bound = _csrf_serializer().loads(csrf_token, max_age=CSRF_MAX_AGE)
    except (SignatureExpired, BadSignature):
        return False
    return bound == _link_digest(token)


def _page(status: int = 200, **context: Any) -> Response:
    html = render_template("feedback.html", ratings=RATINGS, **context)
    response = Response(html, status, mimetype="text/html")
    response.headers.update(SECURITY_HEADERS)
    return response


def _form(token: str, ticket: Ticket, status: int = 200, **context: Any) -> Response:
    context.setdefault("rating", None)
    context.setdefault("comment", "")
    return _page(
        status,
        state="form",
        ticket=ticket,
        token=token,
        csrf_token=issue_csrf_token(token),
        **context,
    )


def _not_found() -> Response:
    return _page(404, state="not_found")


@bp.get("/feedback/<token>")
def form(token: str) -> Response:
    try:
        _requester, ticket = conversation.access_feedback_link(token)
    except NotFound:
        return _not_found()
    return _form(token, ticket)


@bp.post("/feedback/<token>")
def submit(token: str) -> Response:
    try:
        requester, ticket = conversation.access_feedback_link(token)
    except NotFound:
        return _not_found()
    if not check_csrf_token(token, request.form.get("csrf_token", "")):
        return _page(400, state="bad_request", token=token)
    raw_rating = request.form.get("rating")
    comment = request.form.get("comment", "")
    rating = parse_rating(raw_rating)
    if rating is None:
        return _form(
            token, ticket, 422, error="Please choose a rating from 1 to 5.", comment=comment
        )
    if len(comment) > MAX_COMMENT:
        return _form(
            token,
            ticket,
            422,
            error=f"Please keep the comment under {MAX_COMMENT} characters.",
            rating=rating,
            comment=comment,
        )
    try:
        conversation.do_give_feedback(requester, ticket.id, rating, comment)
    except DomainError as exc:
        return _form(
            token, ticket, exc.status_code, error=exc.message, rating=rating, comment=comment
        )
    return _page(state="thanks", ticket=ticket, rating=rating)
