"""One JSON error shape for every failure: ``{code, status, message, errors}``.

``errors`` maps a location or field to its messages; validation errors from request parsing
keep webargs' nesting (``{"json": {"subject": ["Missing data for required field."]}}``).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Flask
from flask_smorest import Api
from flask_smorest.error_handler import ErrorSchema as SmorestErrorSchema
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from autocrm.errors import DomainError


class ErrorSchema(SmorestErrorSchema):
    allowed_transitions = ma.fields.List(
        ma.fields.String(), metadata={"description": "With 409 on a transition: what is allowed."}
    )
    current_version = ma.fields.Integer(metadata={"description": "With 409 on a stale version."})
    scan_status = ma.fields.String(
        metadata={"description": "With 409/410 on a download: the file's malware-scan state."}
    )


class ApiWithErrors(Api):
    """flask-smorest's Api whose HTTP errors always carry ``message`` and ``errors``."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> tuple[dict[str, Any], int, Any]:
        payload, code, headers = super().handle_http_exception(error)
        if "errors" in payload:  # request parsing failed: say where to look
            payload.setdefault("message", "Invalid request; `errors` names each wrong field.")
        payload.setdefault("message", error.description or error.name)
        payload.setdefault("errors", {})
        return payload, code, headers


def http_error_response(error: HTTPException) -> tuple[dict[str, Any], int]:
    """The error shape for an HTTP error raised outside a view (e.g. werkzeug's 413 while
    reading the body), where an app-wide handler of its own must answer."""
    code = error.code or 500
    body = {
        "code": code,
        "status": HTTP_STATUS_CODES.get(code, "Error"),
        "message": error.description or error.name,
        "errors": {},
    }
    return body, code


def domain_error_response(error: DomainError) -> tuple[dict[str, Any], int]:
    code = error.status_code
    body = {
        "code": code,
        "status": HTTP_STATUS_CODES.get(code, "Error"),
        "message": error.message,
        "errors": error.errors,
        **error.extra,
    }
    return body, code


def register(app: Flask) -> None:
    app.register_error_handler(DomainError, domain_error_response)
