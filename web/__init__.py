"""The web pages: agent workspace, customer portal, help center, knowledge-base authoring,
reports, the admin console and login; server-rendered with small JS.

Every form carries a CSRF token (Flask-WTF); the REST API, which authenticates with bearer
tokens, is exempt. Pages send a Content-Security-Policy without inline scripts, deny framing,
and use HttpOnly, SameSite session cookies (Secure when ``AUTOCRM_SECURE_COOKIES`` is on).
"""

from __future__ import annotations

from flask import Flask, current_app, render_template, request
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import (
    HTTPException,
    InternalServerError,
    MethodNotAllowed,
    RequestEntityTooLarge,
)
from werkzeug.exceptions import NotFound as UnknownUrl
from werkzeug.wrappers import Response

from api.errors import domain_error_response, http_error_response
from autocrm import markdown
from autocrm.engine.versions import engine_for
from autocrm.errors import NotFound
from autocrm.extensions import db
from autocrm.files.representation import render_attachments
from autocrm.reports.services import can_view_reports
from autocrm.tickets.models import Ticket
from web import (
    admin,
    agent,
    agent_tickets,
    attachments,
    auth,
    custom_fields,
    customers,
    feedback,
    help_center,
    intake,
    kb_staff,
    logins,
    macros,
    passwords,
    portal,
    reports,
    sso,
    timefmt,
    twofactor,
    workspace,
)
from web.session import current_user

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

csrf = CSRFProtect()


def _security_headers(response: Response) -> Response:
    if request.path.startswith("/api/"):  # JSON, and Swagger UI brings its own scripts
        return response
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _not_found(error: NotFound) -> tuple[object, int]:
    """A page for web users; the API and sockets keep the JSON error shape."""
    if request.path.startswith("/api/"):
        return domain_error_response(error)
    return render_template("error.html", user=current_user(), message=error.message), 404


# What a person is told, by status, when a page fails outside a view's own error handling.
PAGE_ERRORS = {
    404: ("Page not found", "The address may be mistyped, or the page has moved."),
    405: ("That does not work here", "This address cannot be used that way; go back, try again."),
    500: (
        "Something went wrong on our side",
        "It has been logged. Go back and try again in a moment; what you typed is still in the "
        "form after Back.",
    ),
}


def _http_error_page(error: HTTPException) -> tuple[object, int]:
    """Unknown URLs, wrong methods and server errors: a page in the site's shell for people,
    the API's JSON error shape under ``/api/`` (an API 500 never shows Python's text)."""
    code = error.code or 500
    if request.path.startswith("/api/"):
        return http_error_response(error)
    message, detail = PAGE_ERRORS[code]
    if code == 500:
        db.session.rollback()  # whatever failed must not fail the error page too
    try:
        user = current_user()
    except SQLAlchemyError:  # the database itself is what failed
        user = None
    return render_template("error.html", user=user, message=message, detail=detail), code


def _too_large(error: RequestEntityTooLarge) -> tuple[object, int]:
    """A body over ``AUTOCRM_MAX_REQUEST_BYTES``: the API's error shape, or a page saying what
    to do (the browser's Back keeps what was typed)."""
    if request.path.startswith("/api/"):
        return http_error_response(error)
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    detail = (
        f"Pages accept at most {limit // 1024} KiB at once. Go back, shorten the text or split "
        "it in parts, and send it again."
    )
    page = render_template(
        "error.html", user=current_user(), message="That was too much to send", detail=detail
    )
    return page, 413


def _state_label(state: str, ticket: Ticket) -> str:
    """A workflow state as people read it, in the version the ticket runs on."""
    return engine_for(ticket).state_labels.get(state, state)


def init_app(app: Flask, api_blueprints: tuple) -> None:
    # Flask's own defaults exist for these keys, so set them (setdefault would do nothing).
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"
    app.config["SESSION_COOKIE_SECURE"] = app.config.get("AUTOCRM_SECURE_COOKIES", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # tied to the session instead
    csrf.init_app(app)
    for blueprint in (*api_blueprints, feedback.bp):  # bearer tokens / their own CSRF token
        csrf.exempt(blueprint)
    pages = (
        auth.bp,
        sso.bp,
        logins.bp,
        passwords.bp,
        twofactor.bp,
        agent.bp,
        agent_tickets.bp,
        workspace.bp,
        macros.bp,
        customers.bp,
        portal.bp,
        feedback.bp,
        help_center.bp,
        intake.bp,
        kb_staff.bp,
        attachments.bp,
        custom_fields.bp,
    )
    for blueprint in (*pages, reports.bp, *admin.blueprints):
        app.register_blueprint(blueprint)
    app.register_error_handler(NotFound, _not_found)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    for page_error in (UnknownUrl, MethodNotAllowed, InternalServerError):
        app.register_error_handler(page_error, _http_error_page)
    app.after_request(_security_headers)
    app.add_template_filter(markdown.render, "markdown")
    app.add_template_filter(markdown.render_body, "body_html")
    app.add_template_filter(_state_label, "state_label")
    app.add_template_global(can_view_reports)
    app.add_template_global(timefmt.when)
    app.add_template_global(attachments.upload_limits)
    app.add_template_global(render_attachments)
    app.add_template_filter(attachments.file_size, "file_size")
