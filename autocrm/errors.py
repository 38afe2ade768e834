"""Domain errors: what a service raises when a request cannot be honoured.

Each carries the HTTP status it maps to; ``api.errors`` turns them into the one JSON error shape
(``code``, ``status``, ``message``, ``errors``) so handlers never translate errors themselves.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str, errors: dict[str, Any] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        self.extra = extra  # further top-level keys of the error body, e.g. allowed_transitions


class NotAuthenticated(DomainError):
    status_code = 401


class Forbidden(DomainError):
    status_code = 403


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class InvalidInput(DomainError):
    """Input that parses but breaks a rule; ``errors`` names the fields, as webargs does."""

    status_code = 422


class PreconditionFailed(DomainError):
    status_code = 412
