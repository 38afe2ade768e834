"""What every HTTP request must pass before a view sees it: text a database can store, JSON of
a sane depth, a body of a sane size.

PostgreSQL refuses text holding NUL, and no database driver can encode a lone UTF-16
surrogate (JSON's ``"\\ud800"``); both used to surface as 500s from deep inside a service.
JSON nested thousands of levels deep overflowed Python's stack in the parser. Checking here,
once per request, covers every field of every schema, the workflow definitions and calendars
kept as free-form JSON, and the query strings, instead of a check per field.

- JSON bodies (API and the pages' scripts): a 400 when nested more than ``MAX_JSON_DEPTH``
  levels, a 422 naming the field (``definition.states.0.name``) holding NUL or a surrogate.
- API query strings: a 422 naming the parameter.
- Page forms and query strings: NUL characters are dropped. A browser cannot send a lone
  surrogate (it is decoded to U+FFFD), and nobody types NUL, so nothing meant is lost.

The size cap is Flask's ``MAX_CONTENT_LENGTH`` (``AUTOCRM_MAX_REQUEST_BYTES``): werkzeug
refuses a larger body with a 413 before reading it. Views marked ``accepts_uploads`` (the
upload API, the forms that take files) get a larger cap instead: the files a message may carry
together (``AUTOCRM_MAX_ATTACHMENTS_BYTES``) plus the ordinary cap for the text beside them.
Their files are spooled to temporary files by werkzeug as they arrive, never held in memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from flask import Flask, current_app, request
from werkzeug.datastructures import ImmutableMultiDict, MultiDict
from werkzeug.routing import IntegerConverter, Map

from autocrm.columns import MAX_INT32
from autocrm.errors import DomainError, InvalidInput

# Deeper than any workflow definition or calendar needs, far below the interpreter's stack.
MAX_JSON_DEPTH = 64
V = TypeVar("V", bound=Callable[..., Any])
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
UNSTORABLE_TEXT = "Must not contain NUL characters or unpaired UTF-16 surrogates."


def is_storable(text: str) -> bool:
    """Whether ``text`` can be stored and encoded: no NUL, no lone surrogate."""
    return _UNSTORABLE.search(text) is None


def _walk(value: Any) -> Iterator[tuple[str, Any, int]]:
    """Every key and value of a parsed JSON document as (dotted path, value, depth), without
    recursion (the document may be deeper than the stack)."""
    stack: list[tuple[str, Any, int]] = [("", value, 0)]
    while stack:
        path, item, depth = stack.pop()
        yield path, item, depth
        if isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                yield child_path, key, depth + 1  # keys are text too
                stack.append((child_path, child, depth + 1))
        elif isinstance(item, list):
            for index, child in enumerate(item):
                stack.append((f"{path}.{index}" if path else str(index), child, depth + 1))


def json_problems(document: Any, location: str | None = "json") -> DomainError | None:
    """Why a parsed JSON document (a request body, a Socket.IO payload) cannot be accepted, or
    None. The error names the field under ``location``, as webargs does."""

    for path, item, depth in _walk(document):
        if depth > MAX_JSON_DEPTH:
            too_deep = [f"Nest at most {MAX_JSON_DEPTH} levels deep."]
            return DomainError(
                "The JSON is nested too deeply.",
                {location: too_deep} if location else {"_schema": too_deep},
            )
        if isinstance(item, str) and not is_storable(item):
            field = {path or "_schema": [UNSTORABLE_TEXT]}
            return InvalidInput(
                f"Invalid text in {path or 'the body'}.", {location: field} if location else field
            )
    return None


def parse_json_body(raw: bytes) -> Any:
    """The request's JSON document; None when it is not JSON (the view's parser reports that)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise DomainError(
            "The JSON is nested too deeply.",
            {"json": [f"Nest at most {MAX_JSON_DEPTH} levels deep."]},
        ) from None
    except ValueError:  # includes bad UTF-8
        return None


def _check_json_body() -> None:
    if not request.is_json:
        return
    raw = request.get_data(cache=True)  # a body over MAX_CONTENT_LENGTH raises the 413 here
    problem = json_problems(parse_json_body(raw)) if raw else None
    if problem is not None:
        raise problem


def _check_api_query() -> None:
    for name, value in request.args.items(multi=True):
        if not is_storable(value) or not is_storable(name):
            raise InvalidInput(f"Invalid text in {name!r}.", {"query": {name: [UNSTORABLE_TEXT]}})


def _without_nul(values: MultiDict[str, str]) -> ImmutableMultiDict[str, str] | None:
    """The values with NUL characters dropped; None when there were none."""
    if not any("\x00" in k or "\x00" in v for k, v in values.items(multi=True)):
        return None
    return ImmutableMultiDict(
        (k.replace("\x00", ""), v.replace("\x00", "")) for k, v in values.items(multi=True)
    )


def _clean_page_input() -> None:
    # werkzeug caches the parsed args and form on the request: replace them there.
    cached: dict[str, Any] = request._get_current_object().__dict__  # type: ignore[attr-defined]
    if (args := _without_nul(request.args)) is not None:
        cached["args"] = args
    if request.mimetype in FORM_TYPES and (form := _without_nul(request.form)) is not None:
        cached["form"] = form


def accepts_uploads(view: V) -> V:
    """Mark a view function or ``MethodView`` class as taking file uploads (the larger cap)."""
    view.accepts_uploads = True  # type: ignore[attr-defined]
    return view


def upload_request_limit() -> int:
    config = current_app.config
    return int(config["AUTOCRM_MAX_ATTACHMENTS_BYTES"]) + int(config["MAX_CONTENT_LENGTH"] or 0)


def _takes_uploads() -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(
        getattr(view, "accepts_uploads", False)
        or getattr(getattr(view, "view_class", None), "accepts_uploads", False)
    )


def guard_request() -> None:
    if request.mimetype == "multipart/form-data" and _takes_uploads():
        # Only files may use the larger cap: each text field stays within MAX_FORM_MEMORY_SIZE.
        request.max_content_length = upload_request_limit()
    _check_json_body()
    if request.path.startswith("/api/"):
        _check_api_query()
    else:
        _clean_page_input()


class Int32Converter(IntegerConverter):
    """``<int:...>`` in routes matches only numbers an integer column can hold; a larger one
    is a plain 404 instead of a database error."""

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_INT32)
        super().__init__(url_map, *args, **kwargs)


def install(app: Flask) -> None:
    """Before any blueprint is registered (routes pick their converters when added)."""
    app.url_map.converters["int"] = Int32Converter
    # First of the before-request hooks: a login's rate limit or CSRF check reads the form too.
    app.before_request_funcs.setdefault(None, []).insert(0, guard_request)
