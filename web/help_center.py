"""The help center: customers and anonymous readers browse, search and read the knowledge
base, vote on whether an article helped, and get articles suggested while writing a ticket.

What a reader sees is decided by the kb service (``helpcenter.help_center_only`` over the policy):
anonymous readers published public articles, signed-in customers public and customers-only
ones; drafts and internal articles never appear here, not even for staff. Customers see the
pages inside the portal's layout, everyone else inside the plain one.

Deflection: ``suggest`` answers the new-ticket page's typeahead. Each suggestion's link carries
a signed token (reader, article, the subject typed so far); opening it records
``votes.do_record_suggestion_opened`` and redirects to the article's plain address. The token is
what makes that GET safe from cross-site requests: nobody can forge one for another reader.
"""

from __future__ import annotations

import html
import re
from typing import Any

import nh3
from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer
from markupsafe import Markup, escape
from werkzeug.wrappers import Response

from autocrm import database, markdown
from autocrm.kb import categories, helpcenter, votes
from autocrm.kb import search as kb_search
from autocrm.kb.models import Article, KbCategory
from autocrm.people.models import User
from web.session import current_user

bp = Blueprint("help", __name__, url_prefix="/help")

MAX_QUERY = 200
SEARCH_LIMIT = 20
PER_PAGE = 20
EXCERPT_CHARS = 180
SUGGESTION_LINK_MAX_AGE = 60 * 60  # seconds a suggestion's link records its opening

Errors = dict[str, list[str]]


# -- helpers -----------------------------------------------------------------------------------


def _render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    user = current_user()
    customer = user is not None and not user.role.is_staff
    context.setdefault("errors", {})
    context.setdefault("q", "")
    layout = "portal/_layout.html" if customer else "base.html"
    return render_template(template, user=user, layout=layout, **context), status


def _positive_int(raw: str) -> int | None:
    return int(raw) if raw.isdecimal() and 0 < len(raw) < 10 and int(raw) > 0 else None


_MARK = re.compile(r"</?mark>")


@bp.app_template_filter("kb_snippet")
def safe_snippet(snippet: str | None) -> Markup:
    """A search snippet (HTML from ``kb_search.search``) for a page: kept as HTML only if it
    is escaped text with balanced, unnested ``<mark>`` highlights and nothing else; otherwise
    its text."""
    if not snippet:
        return Markup("")
    tags = _MARK.findall(snippet)
    texts = _MARK.split(snippet)
    balanced = tags == ["<mark>", "</mark>"] * (len(tags) // 2)
    if balanced and not any("<" in part or ">" in part for part in texts):
        return Markup(snippet)  # noqa: S704 - checked just above: escaped text and <mark> only
    return escape(html.unescape("".join(texts)))


@bp.app_template_filter("kb_excerpt")
def excerpt(body: str, length: int = EXCERPT_CHARS) -> str:
    """The start of an article's Markdown body as plain text (autoescaped by the template)."""
    text = html.unescape(nh3.clean(markdown.render(body), tags=set()))
    text = " ".join(text.split())
    if len(text) <= length:
        return text
    return text[:length].rsplit(" ", 1)[0].rstrip(",;:.") + "…"


def _categories_by_id() -> dict[int, KbCategory]:
    return {category.id: category for category in categories.list_categories()}


# -- suggestion links --------------------------------------------------------------------------


def _suggestion_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="autocrm.kb-suggestion")


def suggestion_url(user: User | None, article_id: int, query: str) -> str:
    """The article's address; for a customer, one that records the opening (deflection is
    about customers: staff and anonymous readers file no portal tickets)."""
    if user is None or user.role.is_staff:
        return url_for("help.article", article_id=article_id)
    token = _suggestion_signer().dumps({"u": user.id, "a": article_id, "q": query[:MAX_QUERY]})
    return url_for("help.article", article_id=article_id, suggested=token)


def _suggested_query(token: str, user: User | None, article_id: int) -> str | None:
    """The query of a valid suggestion token issued to ``user`` for this article, else None."""
    if user is None or user.role.is_staff:
        return None
    try:
        data = _suggestion_signer().loads(token, max_age=SUGGESTION_LINK_MAX_AGE)
    except BadSignature:  # forged, altered or expired
        return None
    if not isinstance(data, dict) or data.get("u") != user.id or data.get("a") != article_id:
        return None
    query = data.get("q")
    return query if isinstance(query, str) else None


# -- pages -------------------------------------------------------------------------------------


@bp.get("/")
def index() -> tuple[str, int]:
    user = current_user()
    return _render(
        "help/index.html",
        sections=helpcenter.help_center_sections(user),
        recent=[result.article for result in kb_search.search(user, None, 5, help_center=True)],
        categories=_categories_by_id(),
    )


def _check_search(q: str, raw_category: str) -> tuple[Errors, KbCategory | None]:
    errors: Errors = {}
    if not q.strip():
        errors["q"] = ["Type a word or two to search for."]
    elif len(q) > MAX_QUERY:
        errors["q"] = [f"Please keep your search under {MAX_QUERY} characters."]
    elif not kb_search.query_words(q):
        errors["q"] = ["Search for words or numbers: punctuation alone matches nothing."]
    category = None
    if raw_category:
        category_id = _positive_int(raw_category)
        category = _categories_by_id().get(category_id or 0)
        if category is None:
            errors["category"] = ["There is no such category; search them all instead."]
    return errors, category


@bp.get("/search")
def search() -> tuple[str, int]:
    user = current_user()
    q = request.args.get("q", "")
    errors, category = _check_search(q, request.args.get("category", ""))
    if errors:
        return _render(
            "help/search.html", 400, q=q[: MAX_QUERY * 2], errors=errors, results=[], category=None
        )
    results = helpcenter.help_center_search(
        user, q, SEARCH_LIMIT, category_id=category.id if category else None
    )
    return _render(
        "help/search.html",
        q=q,
        results=results,
        category=category,
        categories=_categories_by_id(),
        limited=len(results) == SEARCH_LIMIT,
    )


@bp.get("/categories/<int:category_id>")
def category(category_id: int) -> tuple[str, int]:
    user = current_user()
    shown = categories.access_category_by_id(category_id)
    raw_page = request.args.get("page", "1")
    page = _positive_int(raw_page)
    if page is None:
        return _render(
            "help/category.html",
            400,
            category=shown,
            articles=[],
            page=1,
            more=False,
            errors={"page": [f"“{raw_page[:20]}” is not a page number (1, 2, 3 …)."]},
        )
    articles, more = helpcenter.help_center_category_articles(
        user, category_id, page=page, per_page=PER_PAGE
    )
    return _render("help/category.html", category=shown, articles=articles, page=page, more=more)


def _article_page(
    user: User | None, article: Article, status: int = 200, **context: Any
) -> tuple[str, int]:
    return _render(
        "help/article.html",
        status,
        article=article,
        votes=votes.vote_summary(user, article.id),
        **context,
    )


@bp.get("/articles/<int:article_id>")
def article(article_id: int) -> Response | tuple[str, int]:
    user = current_user()
    shown = helpcenter.access_help_center_article(user, article_id)
    token = request.args.get("suggested")
    if token is not None:
        query = _suggested_query(token, user, shown.id)
        if query is not None:
            with database.writing():
                votes.do_record_suggestion_opened(user, shown.id, query)
        # The plain address: a reload, a bookmark or a shared link records nothing.
        return redirect(url_for("help.article", article_id=shown.id), 303)
    return _article_page(user, shown)


def _tally_json(summary: votes.VoteSummary) -> dict[str, Any]:
    return {
        "article_id": summary.article_id,
        "helpful_count": summary.helpful_count,
        "not_helpful_count": summary.not_helpful_count,
        "mine": summary.mine,
    }


@bp.post("/articles/<int:article_id>/vote")
def vote(article_id: int) -> Response | tuple[Any, int]:
    """ "Was this helpful?": the form without JavaScript (back to the article), or JSON for
    help.js. Answering again replaces the earlier answer."""
    user = current_user()
    wants_json = request.accept_mimetypes.best == "application/json"
    if user is None:
        if wants_json:
            return jsonify({"error": "Please log in to answer."}), 401
        next_url = url_for("help.article", article_id=article_id)
        return redirect(url_for("web_auth.login", next=next_url))
    shown = helpcenter.access_help_center_article(user, article_id)
    answer = request.form.get("helpful", "")
    if answer not in ("yes", "no"):
        message = "Please answer Yes or No."
        if wants_json:
            return jsonify({"error": message, "errors": {"helpful": [message]}}), 422
        return _article_page(user, shown, 422, errors={"helpful": [message]})
    votes.do_vote(user, shown.id, helpful=answer == "yes")
    summary = votes.vote_summary(user, shown.id)
    if wants_json:
        return jsonify(_tally_json(summary)), 200
    return redirect(url_for("help.article", article_id=shown.id, _anchor="helpful"), 303)


# -- deflection --------------------------------------------------------------------------------


@bp.get("/suggest")
def suggest() -> Response | tuple[Response, int]:
    """Articles for a ticket subject being typed (``q``), at most helpcenter.SUGGESTION_LIMIT; none
    for fewer than helpcenter.SUGGESTION_MIN_CHARS characters."""
    user = current_user()
    q = request.args.get("q", "")
    if len(q) > MAX_QUERY:
        message = f"Please keep the text under {MAX_QUERY} characters."
        return jsonify({"error": message, "errors": {"q": [message]}}), 400
    categories = _categories_by_id()
    items = [
        {
            "id": result.article.id,
            "title": result.article.title,
            "category": (
                categories[result.article.category_id].name
                if result.article.category_id in categories
                else None
            ),
            "url": suggestion_url(user, result.article.id, q.strip()),
        }
        for result in helpcenter.suggest(user, q)
    ]
    response = jsonify({"query": q, "items": items})
    response.headers["Cache-Control"] = "private, no-store"  # links are signed for this reader
    return response
