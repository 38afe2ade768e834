"""The knowledge base: articles and categories, full-text search, votes, deflection events.

Who may do what (``autocrm.policies``): anyone reads published public articles, signed-in
customers also customers-only ones, staff everything; agents and admins write, publish and
delete articles; admins manage categories. An article the caller may not read is reported as
missing (404).

Search is ``search()``, one function over two engines: PostgreSQL ranks with ``ts_rank`` over
the GIN-indexed ``to_tsvector('english', title || ' ' || body)`` and highlights with
``ts_headline``; SQLite (the embedded default) ranks with FTS5's ``bm25()`` and highlights with
``snippet()``. The user's text is reduced to its words and each word is quoted, so no input
is ever read as query syntax (``"``, ``*``, ``NEAR``, ``-``, ``OR`` ... are plain text); every
word must match. Snippets are HTML: the text is escaped and matches wrapped in ``<mark>``.

Deflection: the portal records ``do_record_suggestion_opened`` when a customer opens a
suggested article; ``do_settle_suggestions`` (run periodically) later marks each event whose
window has passed with whether that customer filed a ticket within the window. Events with
``ticket_filed`` False are deflected tickets.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, exists, func, literal_column, select, text, update
from sqlalchemy.exc import IntegrityError

from autocrm import policies
from autocrm.errors import Forbidden, InvalidInput, NotFound
from autocrm.extensions import db
from autocrm.models import (
    Article,
    ArticleRevision,
    ArticleStatus,
    ArticleVisibility,
    ArticleVote,
    KbCategory,
    KbSuggestionEvent,
    Ticket,
    User,
    utcnow,
)
from autocrm.services.tickets import normalize_tags

MAX_TITLE = 200
MAX_BODY = 100_000
MAX_CATEGORY_NAME = 100
MAX_QUERY_WORDS = 16
MAX_SEARCH_RESULTS = 50
DEFLECTION_WINDOW = timedelta(hours=24)

_WORD = re.compile(r"\w+", re.UNICODE)
# Highlight markers: private-use characters, turned into <mark> after HTML escaping.
_START, _STOP = "\ue000", "\ue001"


# -- reading -----------------------------------------------------------------------------------


def access_article_by_id(actor: User | None, article_id: int) -> Article:
    article = db.session.get(Article, article_id)
    if article is None or not policies.can_view_article(actor, article):
        raise NotFound(f"Article {article_id} not found.")
    return article


@dataclass
class SearchResult:
    article: Article
    snippet: str | None  # HTML: escaped text, matches in <mark>
    score: float  # higher is better; 0 when listing without a query

    def __getattr__(self, name: str) -> Any:  # serializers read the article's fields
        return getattr(self.article, name)


def query_words(q: str) -> list[str]:
    """The words of a user's query, at most MAX_QUERY_WORDS, lower-cased, de-duplicated."""
    words: list[str] = []
    for word in _WORD.findall(q.lower()):
        if word not in words:
            words.append(word)
    return words[:MAX_QUERY_WORDS]


def _filtered(actor: User | None, category_id: int | None) -> Select[tuple[Article]]:
    stmt = select(Article).where(policies.visible_articles(actor))
    if category_id is not None:
        stmt = stmt.where(Article.category_id == category_id)
    return stmt


def search(
    actor: User | None, q: str | None, limit: int = 20, *, category_id: int | None = None
) -> list[SearchResult]:
    """The articles ``actor`` may read matching ``q``, best first, with highlighted snippets;
    without ``q`` (or with no words in it), the most recently updated ones."""
    limit = max(1, min(limit, MAX_SEARCH_RESULTS))
    words = query_words(q or "")
    if not words:
        stmt = _filtered(actor, category_id).order_by(Article.updated_at.desc(), Article.id.desc())
        return [SearchResult(a, None, 0.0) for a in db.session.scalars(stmt.limit(limit))]
    if db.session.get_bind().dialect.name == "postgresql":
        rows = _search_postgresql(actor, words, limit, category_id)
    else:
        rows = _search_sqlite(actor, words, limit, category_id)
    return [
        SearchResult(article, _html_snippet(snippet), float(score))
        for article, snippet, score in rows
    ]


def _html_snippet(raw: str | None) -> str | None:
    if raw is None:
        return None
    return html.escape(raw).replace(_START, "<mark>").replace(_STOP, "</mark>")


def _search_sqlite(
    actor: User | None, words: list[str], limit: int, category_id: int | None
) -> list[Any]:
    match = " ".join(f'"{word}"' for word in words)  # \w+ holds no quote to escape
    fts = (
        text(
            "SELECT rowid AS article_id, bm25(kb_articles_fts, 10.0, 1.0) AS rank, "
            "snippet(kb_articles_fts, 1, :start, :stop, '…', 24) AS snippet "
            "FROM kb_articles_fts WHERE kb_articles_fts MATCH :match"
        )
        .columns(literal_column("article_id"), literal_column("rank"), literal_column("snippet"))
        .subquery("fts")
    )
    stmt = (
        _filtered(actor, category_id)
        .join(fts, fts.c.article_id == Article.id)
        .add_columns(fts.c.snippet, -fts.c.rank)  # bm25: lower is better
        .order_by(fts.c.rank, Article.id)
        .limit(limit)
    )
    return list(db.session.execute(stmt, {"match": match, "start": _START, "stop": _STOP}).all())


def _search_postgresql(
    actor: User | None, words: list[str], limit: int, category_id: int | None
) -> list[Any]:
    # plainto_tsquery never raises on its input; the words are already stripped of syntax.
    english = literal_column("'english'::regconfig")
    query = func.plainto_tsquery(english, " ".join(words))
    # The exact expression of the GIN index ix_kb_articles_fts (literals, not bound
    # parameters), so that the planner uses the index.
    document = func.to_tsvector(
        english, Article.title.op("||")(literal_column("' '")).op("||")(Article.body)
    )
    weighted = func.setweight(func.to_tsvector(english, Article.title), literal_column("'A'")).op(
        "||"
    )(func.setweight(func.to_tsvector(english, Article.body), literal_column("'D'")))
    rank = func.ts_rank(weighted, query)
    options = f'StartSel="{_START}", StopSel="{_STOP}", MaxWords=35, MinWords=15'
    snippet = func.ts_headline(english, Article.body, query, options)
    stmt = (
        _filtered(actor, category_id)
        .where(document.op("@@")(query))
        .add_columns(snippet, rank)
        .order_by(rank.desc(), Article.id)
        .limit(limit)
    )
    return list(db.session.execute(stmt).all())


def list_revisions(actor: User, article_id: int) -> list[ArticleRevision]:
    _require_writer(actor)
    article = access_article_by_id(actor, article_id)
    stmt = select(ArticleRevision).where(ArticleRevision.article_id == article.id)
    return list(db.session.scalars(stmt.order_by(ArticleRevision.number)))


def list_categories() -> list[KbCategory]:
    """Categories are shown to every reader (they name no article)."""
    return list(
        db.session.scalars(select(KbCategory).order_by(KbCategory.position, KbCategory.name))
    )


# -- writing articles --------------------------------------------------------------------------


def _require_writer(actor: User) -> None:
    if not policies.can_write_articles(actor):
        raise Forbidden("Only agents and admins write knowledge-base articles.")


def check_article_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Validated, normalized article fields among title, body, category_id, visibility, tags."""
    errors: dict[str, list[str]] = {}
    cleaned = dict(fields)
    if "title" in fields:
        cleaned["title"] = fields["title"].strip()
        if not cleaned["title"]:
            errors["title"] = ["Must not be blank."]
        elif len(cleaned["title"]) > MAX_TITLE:
            errors["title"] = [f"At most {MAX_TITLE} characters."]
    if "body" in fields:
        if not fields["body"].strip():
            errors["body"] = ["Must not be blank."]
        elif len(fields["body"]) > MAX_BODY:
            errors["body"] = [f"At most {MAX_BODY} characters."]
    category_id = fields.get("category_id")
    if category_id is not None and db.session.get(KbCategory, category_id) is None:
        errors["category_id"] = [f"No category {category_id}."]
    if "visibility" in fields:
        cleaned["visibility"] = ArticleVisibility(fields["visibility"])
    if errors:
        raise InvalidInput("Please correct the marked fields.", errors)
    if "tags" in fields:
        cleaned["tags"] = normalize_tags(fields["tags"])
    return cleaned


def _append_revision(actor: User, article: Article) -> ArticleRevision:
    last = db.session.scalar(
        select(func.max(ArticleRevision.number)).where(ArticleRevision.article_id == article.id)
    )
    revision = ArticleRevision(
        article_id=article.id,
        number=(last or 0) + 1,
        title=article.title,
        body=article.body,
        author_id=actor.id,
    )
    db.session.add(revision)
    return revision


def do_create_article(
    actor: User,
    *,
    title: str,
    body: str,
    category_id: int | None = None,
    visibility: ArticleVisibility | str = ArticleVisibility.PUBLIC,
    tags: list[str] = (),  # type: ignore[assignment]
    status: ArticleStatus | str = ArticleStatus.DRAFT,
) -> Article:
    """A new article (a draft unless ``status`` says published) and its revision 1."""
    _require_writer(actor)
    fields = check_article_fields(
        {"title": title, "body": body, "category_id": category_id, "visibility": visibility,
         "tags": list(tags)}
    )  # fmt: skip
    article = Article(author_id=actor.id, status=ArticleStatus.DRAFT, **fields)
    db.session.add(article)
    db.session.flush()
    _append_revision(actor, article)
    if ArticleStatus(status) is ArticleStatus.PUBLISHED:
        _publish(article)
    db.session.commit()
    return article


def do_update_article(actor: User, article_id: int, changes: dict[str, Any]) -> Article:
    """Change title, body, category, visibility or tags; every save appends a revision.
    ``status`` in ``changes`` publishes or unpublishes (no revision: the text is unchanged)."""
    _require_writer(actor)
    article = access_article_by_id(actor, article_id)
    changes = dict(changes)
    status = changes.pop("status", None)
    if changes:
        for name, value in check_article_fields(changes).items():
            setattr(article, name, value)
        article.updated_at = utcnow()
        db.session.flush()
        _append_revision(actor, article)
    if status is not None:
        if ArticleStatus(status) is ArticleStatus.PUBLISHED:
            _publish(article)
        else:
            article.status = ArticleStatus.DRAFT
    db.session.commit()
    return article


def _publish(article: Article) -> None:
    if article.status is not ArticleStatus.PUBLISHED:
        article.status = ArticleStatus.PUBLISHED
        article.published_at = utcnow()


def do_publish(actor: User, article_id: int) -> Article:
    return do_update_article(actor, article_id, {"status": ArticleStatus.PUBLISHED})


def do_delete_article(actor: User, article_id: int) -> None:
    _require_writer(actor)
    db.session.delete(access_article_by_id(actor, article_id))
    db.session.commit()


# -- categories --------------------------------------------------------------------------------


def _require_category_manager(actor: User) -> None:
    if not policies.can_manage_kb_categories(actor):
        raise Forbidden("Only admins manage knowledge-base categories.")


def _check_category_name(name: str, category_id: int | None = None) -> str:
    name = name.strip()
    if not name or len(name) > MAX_CATEGORY_NAME:
        raise InvalidInput("Invalid name.", {"name": [f"1 to {MAX_CATEGORY_NAME} characters."]})
    clash = select(KbCategory.id).where(func.lower(KbCategory.name) == name.lower())
    if category_id is not None:
        clash = clash.where(KbCategory.id != category_id)
    if db.session.scalar(clash) is not None:
        raise InvalidInput("Name taken.", {"name": ["A category with this name exists."]})
    return name


def do_create_category(actor: User, *, name: str, position: int = 0) -> KbCategory:
    _require_category_manager(actor)
    category = KbCategory(name=_check_category_name(name), position=position)
    db.session.add(category)
    db.session.commit()
    return category


def do_update_category(actor: User, category_id: int, changes: dict[str, Any]) -> KbCategory:
    _require_category_manager(actor)
    category = db.session.get(KbCategory, category_id)
    if category is None:
        raise NotFound(f"Category {category_id} not found.")
    if "name" in changes:
        category.name = _check_category_name(changes["name"], category_id)
    if "position" in changes:
        category.position = changes["position"]
    db.session.commit()
    return category


# -- votes and deflection ----------------------------------------------------------------------


@dataclass
class VoteTally:
    article_id: int
    helpful: bool  # the caller's vote
    helpful_count: int
    not_helpful_count: int


def do_vote(actor: User, article_id: int, *, helpful: bool) -> VoteTally:
    """Record or replace ``actor``'s "was this helpful?" answer for an article they can read."""
    article = access_article_by_id(actor, article_id)
    vote = db.session.scalar(
        select(ArticleVote).where(
            ArticleVote.article_id == article.id, ArticleVote.user_id == actor.id
        )
    )
    if vote is None:
        try:
            with db.session.begin_nested():
                db.session.add(
                    ArticleVote(article_id=article.id, user_id=actor.id, helpful=helpful)
                )
        except IntegrityError:  # a concurrent first vote of the same user won: replace it
            db.session.execute(
                update(ArticleVote)
                .where(ArticleVote.article_id == article.id, ArticleVote.user_id == actor.id)
                .values(helpful=helpful, created_at=utcnow())
            )
    else:
        vote.helpful, vote.created_at = helpful, utcnow()
    db.session.commit()
    counts = dict(
        db.session.execute(
            select(ArticleVote.helpful, func.count())
            .where(ArticleVote.article_id == article.id)
            .group_by(ArticleVote.helpful)
        ).all()
    )
    return VoteTally(article.id, helpful, counts.get(True, 0), counts.get(False, 0))


def do_record_suggestion_opened(actor: User, article_id: int, query: str) -> KbSuggestionEvent:
    """``actor`` opened a suggested article (found with ``query``); the outcome is settled
    later by ``do_settle_suggestions``."""
    article = access_article_by_id(actor, article_id)
    event = KbSuggestionEvent(article_id=article.id, user_id=actor.id, query=query.strip()[:200])
    db.session.add(event)
    db.session.commit()
    return event


def do_settle_suggestions(
    now: datetime | None = None, window: timedelta = DEFLECTION_WINDOW
) -> int:
    """Mark every unsettled suggestion event opened more than ``window`` ago: ``ticket_filed``
    becomes whether its user opened a ticket within ``window`` after it. Idempotent (settled
    events are left alone); returns how many were settled. Meant for a periodic sweep."""
    now = now or utcnow()
    pending = (KbSuggestionEvent.ticket_filed.is_(None)) & (
        KbSuggestionEvent.opened_at <= now - window
    )
    events = list(db.session.scalars(select(KbSuggestionEvent).where(pending)))
    for event in events:
        event.ticket_filed = bool(
            db.session.scalar(
                select(
                    exists().where(
                        Ticket.requester_id == event.user_id,
                        Ticket.created_at >= event.opened_at,
                        Ticket.created_at <= event.opened_at + window,
                    )
                )
            )
        )
    db.session.commit()
    return len(events)
