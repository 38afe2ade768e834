"""Knowledge-base endpoints: search and read articles (anonymous readers too), write them
(staff), categories, "was this helpful?" votes and suggestion-open events.

Reading articles and categories works without a token (public articles only) and uses the
token when one is sent; every other operation needs one (see ``_authenticate``).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import g, request
from flask.views import MethodView
from flask_smorest import Blueprint

from api import schemas
from api.auth import require_bearer
from api.errors import ErrorSchema
from api.etags import expected_version, with_etag
from autocrm.kb import articles, categories, votes
from autocrm.kb import search as kb_search
from autocrm.kb.models import Article
from autocrm.people.models import User

blp = Blueprint(
    "kb", __name__, url_prefix="/api/kb", description="Knowledge base: articles and categories."
)

# Token optional: anonymous callers read public articles.
OPTIONAL_BEARER = [{}, {"bearerAuth": []}]
_PUBLIC_VIEWS = frozenset({"ArticleCollection", "ArticleItem", "CategoryCollection"})
NOT_FOUND = "No such article, or not one you may read."


@blp.before_request
def _authenticate() -> None:
    view = (request.endpoint or "").rsplit(".", 1)[-1]
    public_read = request.method in {"GET", "HEAD"} and view in _PUBLIC_VIEWS
    if public_read and "Authorization" not in request.headers:
        g.actor = None
        return
    require_bearer()


def _with_etag(article: Article) -> tuple[Article, dict[str, str]]:
    return with_etag(article, articles.latest_revision_number(article.id))


def reader() -> User | None:
    return g.actor


def signed_in() -> User:
    return g.actor


@blp.route("/articles")
class ArticleCollection(MethodView):
    @blp.doc(security=OPTIONAL_BEARER)
    @blp.arguments(schemas.ArticleListArgsSchema, location="query", unknown=ma.RAISE)
    @blp.response(200, schemas.ArticleSearchPageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """Search the articles you may read (ranked, with highlighted snippets), or without
        ``q`` list the most recently updated ones."""
        results = kb_search.search(
            reader(), args.get("q"), args["limit"], category_id=args.get("category_id")
        )
        return {"items": results}

    @blp.arguments(schemas.ArticleCreateSchema)
    @blp.response(201, schemas.ArticleSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Staff only.")
    def post(self, body: dict[str, Any]) -> Any:
        """Write an article (staff); a draft unless ``status`` is published."""
        return _with_etag(articles.do_create_article(signed_in(), **body))


@blp.route("/articles/<id:article_id>")
class ArticleItem(MethodView):
    @blp.doc(security=OPTIONAL_BEARER)
    @blp.response(200, schemas.ArticleSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    def get(self, article_id: int) -> Any:
        """One article, if you may read it; its ETag is its newest revision number."""
        return _with_etag(articles.access_article_by_id(reader(), article_id))

    @blp.arguments(schemas.ArticleUpdateSchema)
    @blp.response(200, schemas.ArticleSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Staff only.")
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    @blp.alt_response(
        409, schema=ErrorSchema, description="Stale revision: someone saved the article meanwhile."
    )
    @blp.alt_response(412, schema=ErrorSchema, description="If-Match is not a revision number.")
    def patch(self, body: dict[str, Any], article_id: int) -> Any:
        """Edit an article (staff; appends a revision), or publish/unpublish it (``status``).
        Send the revision you edited as ``If-Match`` (the ETag of GET) or ``revision`` to be
        refused with 409 instead of overwriting a save made meanwhile."""
        expected = expected_version(body, "revision")
        article = articles.do_update_article(
            signed_in(), article_id, body, expected_revision=expected
        )
        return _with_etag(article)

    @blp.response(200, schemas.ArticleDeletedSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Staff only.")
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    def delete(self, article_id: int) -> Any:
        """Delete an article with its revisions, votes and events (staff)."""
        articles.do_delete_article(signed_in(), article_id)
        return {"id": article_id, "deleted": True}


@blp.route("/articles/<id:article_id>/revisions")
class ArticleRevisions(MethodView):
    @blp.response(200, schemas.ArticleRevisionSchema(many=True))
    @blp.alt_response(403, schema=ErrorSchema, description="Staff only.")
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    def get(self, article_id: int) -> Any:
        """Every saved version of an article, oldest first (staff): title, body, category
        (with its name at the time), visibility and tags as each save left them."""
        return articles.list_revisions(signed_in(), article_id)


@blp.route("/articles/<id:article_id>/votes")
class ArticleVotes(MethodView):
    @blp.arguments(schemas.VoteRequestSchema)
    @blp.response(200, schemas.VoteTallySchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    def post(self, body: dict[str, Any], article_id: int) -> Any:
        """Answer "was this helpful?"; answering again replaces your earlier answer."""
        return votes.do_vote(signed_in(), article_id, helpful=body["helpful"])


@blp.route("/suggestions/opened")
class SuggestionOpened(MethodView):
    @blp.arguments(schemas.SuggestionOpenedSchema)
    @blp.response(201, schemas.SuggestionEventSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    def post(self, body: dict[str, Any]) -> Any:
        """Record that you opened a suggested article (found with ``query``); whether a ticket
        followed is settled later (deflection tracking)."""
        return votes.do_record_suggestion_opened(signed_in(), body["article_id"], body["query"])


@blp.route("/categories")
class CategoryCollection(MethodView):
    @blp.doc(security=OPTIONAL_BEARER)
    @blp.response(200, schemas.KbCategorySchema(many=True))
    def get(self) -> Any:
        """All categories, in display order."""
        return categories.list_categories()

    @blp.arguments(schemas.KbCategoryCreateSchema)
    @blp.response(201, schemas.KbCategorySchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def post(self, body: dict[str, Any]) -> Any:
        """Create a category (admin)."""
        return categories.do_create_category(signed_in(), **body)


@blp.route("/categories/<id:category_id>")
class CategoryItem(MethodView):
    @blp.arguments(schemas.KbCategoryUpdateSchema)
    @blp.response(200, schemas.KbCategorySchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    @blp.alt_response(404, schema=ErrorSchema, description="No such category.")
    def patch(self, body: dict[str, Any], category_id: int) -> Any:
        """Rename or reorder a category (admin)."""
        return categories.do_update_category(signed_in(), category_id, body)
