"""The service layer owns the transaction, also when a change fails.

A ``do_*`` function commits its own changes. If it raises instead (bad input found half-way,
a stale version, a conflict), ``rolls_back_on_error`` rolls back whatever it had changed in
the session before the error reaches the caller: a page that catches the error re-renders
from the database as it was, and neither views nor socket handlers ever roll back themselves.
Inside a savepoint (bulk changes, rule actions) the savepoint's own rollback applies instead,
so the outer transaction keeps the work done so far.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from autocrm.extensions import db

P = ParamSpec("P")
R = TypeVar("R")


def rolls_back_on_error(service: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(service)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return service(*args, **kwargs)
        except BaseException:
            if not db.session().in_nested_transaction():
                db.session.rollback()
            raise

    return run
