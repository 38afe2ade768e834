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
The authoring list, ``list_articles``, is the same search a page at a time: a cursor continues
after (score, id) with a query, after (updated_at, id) without one.

Deflection: the portal records ``do_record_suggestion_opened`` when a customer opens a
suggested article; ``do_settle_suggestions`` (run periodically) later marks each event whose
window has passed with whether that customer filed a ticket within the window. Events with
``ticket_filed`` False are deflected tickets.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Double,
    Select,
    Text,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    select,
    table,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.exc import IntegrityError

from autocrm import policies
from autocrm.errors import Conflict, Forbidden, InvalidInput, NotFound
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
from autocrm.services.listing import (
    MAX_PAGE_SIZE,
    Page,
    PageRequest,
    decode_cursor,
    encode_cursor,
    keyset_page,
)
from autocrm.services.tickets import normalize_tags
from autocrm.services.transaction import rolls_back_on_error

MAX_TITLE = 200
MAX_BODY = 100_000
MAX_CATEGORY_NAME = 100
MAX_QUERY_WORDS = 16
MAX_SEARCH_RESULTS = 50
DEFLECTION_WINDOW = timedelta(hours=24)
STALE_EDIT = "Someone else saved this article after you started editing it."

_WORD = re.compile(r"\w+", re.UNICODE)
# An article's address in the help center (web/help_center.py), as links in replies carry it.
HELP_ARTICLE_LINK = re.compile(r"/help/articles/(\d+)(?!\d)")
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


@dataclass(frozen=True)
class ArticleFilter:
    """Narrows a search; None leaves that field open."""

    category_id: int | None = None
    status: ArticleStatus | None = None  # authoring lists; readers see published ones anyway
    visibility: ArticleVisibility | None = None


def _filtered(actor: User | None, where: ArticleFilter) -> Select[tuple[Article]]:
    stmt = select(Article).where(policies.visible_articles(actor))
    if where.category_id is not None:
        stmt = stmt.where(Article.category_id == where.category_id)
    if where.status is not None:
        stmt = stmt.where(Article.status == where.status)
    if where.visibility is not None:
        stmt = stmt.where(Article.visibility == where.visibility)
    return stmt


def search(
    actor: User | None,
    q: str | None,
    limit: int = 20,
    *,
    category_id: int | None = None,
    status: ArticleStatus | None = None,
    visibility: ArticleVisibility | None = None,
    help_center: bool = False,
    any_word: bool = False,
) -> list[SearchResult]:
    """The articles ``actor`` may read matching ``q``, best first, with highlighted snippets;
    without ``q`` (or with no words in it), the most recently updated ones. ``help_center``
    narrows to what the help center shows (see ``help_center_only``); ``any_word`` matches
    articles with at least one of the words instead of all of them (ranking still prefers
    articles with more of them)."""
    limit = max(1, min(limit, MAX_SEARCH_RESULTS))
    where = ArticleFilter(category_id, status, visibility)
    words = query_words(q or "")
    base = _filtered(actor, where)
    if help_center:
        base = base.where(help_center_only())
    if not words:
        stmt = base.order_by(Article.updated_at.desc(), Article.id.desc())
        return [SearchResult(a, None, 0.0) for a in db.session.scalars(stmt.limit(limit))]
    ranked, score = _ranked(base, words, any_word)
    rows = db.session.execute(ranked.order_by(score.desc(), Article.id).limit(limit))
    return [_result(row) for row in rows]


def _result(row: Any) -> SearchResult:
    article, snippet, score = row
    return SearchResult(article, _html_snippet(snippet), float(score))


LIST_SORT = "-updated_at"  # the authoring list without a query


def list_articles(
    actor: User, q: str | None, page: PageRequest, where: ArticleFilter = ArticleFilter()
) -> Page[SearchResult]:
    """One page of the authoring list: the articles ``actor`` may read that match ``q`` and
    ``where``, best match first (with snippets), or without words in ``q`` the most recently
    updated first. ``page.cursor`` is a ``next_cursor`` of the page before, for the same
    ordering (a query's or the plain list's); ``page.sort`` is not used."""
    base = _filtered(actor, where)
    words = query_words(q or "")
    if not words:
        recent = PageRequest(limit=page.limit, cursor=page.cursor, sort=LIST_SORT)
        listing = keyset_page(base, recent, {"updated_at": Article.updated_at}, Article.id)
        return Page([SearchResult(a, None, 0.0) for a in listing.items], listing.next_cursor)
    ranked, score = _ranked(base, words, any_word=False)
    if page.cursor:
        last_score, last_id = _decode_score_cursor(page.cursor)
        ranked = ranked.where(
            (score < last_score) | ((score == last_score) & (Article.id > last_id))
        )
    limit = max(1, min(page.limit, MAX_PAGE_SIZE))
    rows = list(db.session.execute(ranked.order_by(score.desc(), Article.id).limit(limit + 1)))
    items = [_result(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        # The score as the database computed it, not rounded: the next page compares with it.
        next_cursor = encode_cursor(_SCORE_SORT, float(rows[limit - 1][2]), items[-1].article.id)
    return Page(items, next_cursor)


# A ranked list pages by (score, id): a float sort key, which ``listing.keyset_page`` (whose
# columns are real ones) does not order by; the cursor is listing's all the same.
_SCORE_SORT = "-score"


def _decode_score_cursor(cursor: str) -> tuple[float, int]:
    score, article_id = decode_cursor(cursor, _SCORE_SORT)
    numbers_ok = (
        isinstance(score, int | float)
        and not isinstance(score, bool)
        and math.isfinite(score)
        and abs(article_id) < 2**31
    )
    if not numbers_ok:
        raise InvalidInput("Invalid cursor.", {"cursor": ["Not a cursor from this listing."]})
    return float(score), article_id


# Markdown syntax a reader of a snippet should not see: link targets, emphasis and code marks,
# heading and quote markers. Underscores stay (snake_case words are common in support texts).
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MD_MARKS = re.compile(r"\*+|`+|(?m:^\s*(?:#{1,6}|>)\s+)")


def _html_snippet(raw: str | None) -> str | None:
    """A search snippet as HTML: the body's words as plain text, the matches in <mark>."""
    if raw is None:
        return None
    plain = _MD_MARKS.sub("", _MD_LINK.sub(r"\1", raw))
    return html.escape(plain).replace(_START, "<mark>").replace(_STOP, "</mark>")


def _ranked(
    base: Select[tuple[Article]], words: list[str], any_word: bool
) -> tuple[Select[Any], ColumnElement[float]]:
    """``base`` narrowed to the articles matching ``words``, selecting (article, snippet,
    score), and the score (higher is better) to order and page by."""
    if db.session.get_bind().dialect.name == "postgresql":
        return _ranked_postgresql(base, words, any_word)
    return _ranked_sqlite(base, words, any_word)


def _ranked_sqlite(
    base: Select[tuple[Article]], words: list[str], any_word: bool
) -> tuple[Select[Any], ColumnElement[float]]:
    # \w+ holds no quote to escape; juxtaposed phrases must all match, OR-ed ones any.
    match = (" OR " if any_word else " ").join(f'"{word}"' for word in words)
    fts = (
        text(
            "SELECT rowid AS article_id, bm25(kb_articles_fts, 10.0, 1.0) AS rank, "
            "snippet(kb_articles_fts, 1, :start, :stop, '…', 24) AS snippet "
            "FROM kb_articles_fts WHERE kb_articles_fts MATCH :match"
        )
        .bindparams(match=match, start=_START, stop=_STOP)
        .columns(literal_column("article_id"), literal_column("rank"), literal_column("snippet"))
        .subquery("fts")
    )
    score = -fts.c.rank  # bm25: lower is better
    stmt = base.join(fts, fts.c.article_id == Article.id).add_columns(fts.c.snippet, score)
    return stmt, score


def _ranked_postgresql(
    base: Select[tuple[Article]], words: list[str], any_word: bool
) -> tuple[Select[Any], ColumnElement[float]]:
    # plainto_tsquery never raises on its input; the words are already stripped of syntax.
    english = literal_column("'english'::regconfig")
    query = func.plainto_tsquery(english, " ".join(words))
    if any_word:
        # Its text form is 'lexeme' & 'lexeme' ...; lexemes of \w+ words hold no "&", and the
        # cast back parses without normalizing again.
        query = cast(func.replace(cast(query, Text), "&", "|"), TSQUERY)
    document = _pg_document(english)
    weighted = func.setweight(func.to_tsvector(english, Article.title), literal_column("'A'")).op(
        "||"
    )(func.setweight(func.to_tsvector(english, Article.body), literal_column("'D'")))
    # ts_rank is a real; as double precision its text form reads back exactly (cursors).
    score = cast(func.ts_rank(weighted, query), Double)
    options = f'StartSel="{_START}", StopSel="{_STOP}", MaxWords=35, MinWords=15'
    snippet = func.ts_headline(english, Article.body, query, options)
    stmt = base.where(document.op("@@")(query)).add_columns(snippet, score)
    return stmt, score


def _pg_document(english: ColumnElement[Any]) -> ColumnElement[Any]:
    # The exact expression of the GIN index ix_kb_articles_fts (literals, not bound
    # parameters), so that the planner uses the index.
    return func.to_tsvector(
        english, Article.title.op("||")(literal_column("' '")).op("||")(Article.body)
    )


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


# -- the help center --------------------------------------------------------------------------

# What the customer-facing help center shows, to every reader: published articles for the
# public or for customers. Staff may read drafts and internal articles (the policy), but they
# stay out of the help center, whose pages and links are meant for customers.
HELP_CENTER_VISIBILITIES = (ArticleVisibility.PUBLIC, ArticleVisibility.CUSTOMERS)
SUGGESTION_LIMIT = 5
SUGGESTION_MIN_CHARS = 3
SUGGESTION_CANDIDATES = 20  # at least this many best-scored matches are weighed
# Words questions and ticket subjects are full of that say nothing about their topic; FTS5
# keeps every word (PostgreSQL's english configuration drops most of these too), and matching
# any word of "I cannot get to my invoice" must not mean matching every article with "my".
_STOPWORDS = frozenset({
    "a", "about", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "before", "being", "but", "by", "can", "cannot", "cant", "could", "did", "do", "does",
    "doesn", "doing", "don", "dont", "for", "from", "get", "gets", "getting", "got", "had", "has",
    "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into",
    "is", "isn", "it", "its", "just", "me", "more", "most", "my", "no", "nor", "not", "now", "of",
    "off", "on", "once", "only", "or", "our", "ours", "out", "over", "own", "please", "same",
    "she", "should", "so", "some", "such", "than", "that", "the", "their", "them", "then",
    "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up",
    "very", "was", "wasn", "we", "were", "what", "when", "where", "which", "while", "who", "whom",
    "why", "will", "with", "won", "would", "you", "your", "yours", "hi", "hello", "thanks",
    "thank", "help",
})  # fmt: skip


def help_center_only() -> ColumnElement[bool]:
    """A WHERE clause narrowing (never widening) ``policies.visible_articles`` to the help
    center's articles."""
    return (Article.status == ArticleStatus.PUBLISHED) & Article.visibility.in_(
        HELP_CENTER_VISIBILITIES
    )


def access_help_center_article(actor: User | None, article_id: int) -> Article:
    """An article as the help center shows it: one ``actor`` may read, published for the
    public or for customers (internal articles and drafts are missing here, even for staff)."""
    article = access_article_by_id(actor, article_id)
    if (
        article.status is not ArticleStatus.PUBLISHED
        or article.visibility not in HELP_CENTER_VISIBILITIES
    ):
        raise NotFound(f"Article {article_id} not found.")
    return article


def access_category_by_id(category_id: int) -> KbCategory:
    category = db.session.get(KbCategory, category_id)
    if category is None:
        raise NotFound(f"Category {category_id} not found.")
    return category


@dataclass
class CategorySection:
    category: KbCategory
    article_count: int
    articles: list[Article]  # the most recently updated few


def help_center_sections(actor: User | None, per_category: int = 3) -> list[CategorySection]:
    """The categories holding help-center articles ``actor`` may read, in display order, each
    with its article count and most recently updated articles (one query, however many)."""
    ranked = (
        select(
            Article.id.label("id"),
            func.row_number()
            .over(
                partition_by=Article.category_id,
                order_by=(Article.updated_at.desc(), Article.id.desc()),
            )
            .label("n"),
            func.count().over(partition_by=Article.category_id).label("total"),
        )
        .where(policies.visible_articles(actor), help_center_only())
        .where(Article.category_id.is_not(None))
        .subquery("ranked")
    )
    rows = db.session.execute(
        select(Article, ranked.c.total)
        .join(ranked, ranked.c.id == Article.id)
        .where(ranked.c.n <= per_category)
        .order_by(ranked.c.n)
    ).all()
    sections = {category.id: CategorySection(category, 0, []) for category in list_categories()}
    for article, total in rows:
        section = sections[article.category_id]
        section.article_count = total
        section.articles.append(article)
    return [section for section in sections.values() if section.articles]


def help_center_category_articles(
    actor: User | None, category_id: int, *, page: int = 1, per_page: int = 20
) -> tuple[list[Article], bool]:
    """One page of a category's help-center articles ``actor`` may read, by title, and
    whether more pages follow."""
    page, per_page = max(1, page), max(1, min(per_page, MAX_SEARCH_RESULTS))
    stmt = (
        _filtered(actor, ArticleFilter(category_id))
        .where(help_center_only())
        .order_by(func.lower(Article.title), Article.id)
        .offset((page - 1) * per_page)
        .limit(per_page + 1)
    )
    articles = list(db.session.scalars(stmt))
    return articles[:per_page], len(articles) > per_page


def help_center_search(
    actor: User | None, q: str, limit: int = 20, *, category_id: int | None = None
) -> list[SearchResult]:
    """The help center's search box: help-center articles ``actor`` may read matching the
    telling words of ``q`` (all its words when it has no telling one), see ``_best_matches``.
    People type questions ("how do I reset my password"), not keywords."""
    words = telling_words(q) or query_words(q)
    if not words:
        return []
    return _best_matches(actor, words, limit, category_id)


def suggest(actor: User | None, q: str, limit: int = SUGGESTION_LIMIT) -> list[SearchResult]:
    """Help-center articles that may answer a ticket being written (``q``: its subject so
    far), see ``_best_matches``; none for fewer than SUGGESTION_MIN_CHARS characters or no
    telling word."""
    if len(q.strip()) < SUGGESTION_MIN_CHARS:
        return []
    words = telling_words(q)
    if not words:
        return []
    return _best_matches(actor, words, max(1, min(limit, SUGGESTION_LIMIT)), None)


def telling_words(q: str) -> list[str]:
    """The words of ``q`` that say something about its topic (no "how", "my", "the" ...)."""
    return [w for w in query_words(q) if len(w) > 1 and w not in _STOPWORDS]


def _best_matches(
    actor: User | None, words: list[str], limit: int, category_id: int | None
) -> list[SearchResult]:
    """Help-center articles holding any of ``words``, those holding the most of them first
    (then by score). An article holding fewer than half as many of the words as the best one
    is left out: next to "The app crashes when exporting", an article that only mentions an
    "app" says nothing about "app crashes on export"."""
    candidates = search(
        actor,
        " ".join(words),
        max(limit, SUGGESTION_CANDIDATES),
        category_id=category_id,
        help_center=True,
        any_word=True,
    )
    if not candidates:
        return []
    held = _words_held([c.article.id for c in candidates], words)
    most = max(held.values())
    kept = [c for c in candidates if held[c.article.id] * 2 >= most]
    kept.sort(key=lambda c: -held[c.article.id])  # stable: by score among equals
    return kept[:limit]


def _words_held(article_ids: list[int], words: list[str]) -> dict[int, int]:
    """How many of ``words`` each article holds, matched as the search engine matches them
    (stemmed); one query."""
    if db.session.get_bind().dialect.name == "postgresql":
        english = literal_column("'english'::regconfig")
        document = _pg_document(english)
        hits = [document.op("@@")(func.plainto_tsquery(english, word)) for word in words]
    else:
        fts = table("kb_articles_fts")
        hits = [
            Article.id.in_(
                select(literal_column("rowid"))
                .select_from(fts)
                .where(literal_column("kb_articles_fts").op("MATCH")(literal(f'"{word}"')))
            )  # \w+ holds no quote to escape
            for word in words
        ]
    held = sum((case((hit, 1), else_=0) for hit in hits), literal_column("0"))
    rows = db.session.execute(select(Article.id, held).where(Article.id.in_(article_ids)))
    return {article_id: int(count) for article_id, count in rows}


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
        try:
            cleaned["visibility"] = ArticleVisibility(fields["visibility"])
        except ValueError:
            choices = ", ".join(v.value for v in ArticleVisibility)
            errors["visibility"] = [f"One of {choices}."]
    if "tags" in fields:
        try:
            cleaned["tags"] = normalize_tags(fields["tags"])
        except InvalidInput as exc:  # reported together with the other fields' errors
            errors.update(exc.errors)
    if errors:
        raise InvalidInput("Please correct the marked fields.", errors)
    return cleaned


def check_public_links(text: str) -> None:
    """A reply customers read may link only articles they can open: published, and not
    internal. Anything else would reach them as a dead link (or name an internal article)."""
    linked = sorted({int(number) for number in HELP_ARTICLE_LINK.findall(text)})
    if not linked:
        return
    readable = set(
        db.session.scalars(
            select(Article.id).where(
                Article.id.in_(linked),
                Article.status == ArticleStatus.PUBLISHED,
                Article.visibility.in_(HELP_CENTER_VISIBILITIES),
            )
        )
    )
    problems = []
    for article_id in linked:
        if article_id in readable:
            continue
        article = db.session.get(Article, article_id)
        if article is None:
            problems.append(f"article {article_id} does not exist")
        elif article.visibility is ArticleVisibility.INTERNAL:
            problems.append(f"article {article_id} is internal")
        else:
            problems.append(f"article {article_id} is not published")
    if problems:
        reason = "; ".join(problems)
        raise InvalidInput(
            f"Customers cannot open a linked article ({reason}). Remove the link, publish the "
            "article, or write an internal note instead.",
            {"body": [f"Links an article customers cannot open: {reason}."]},
        )


def latest_revision_number(article_id: int) -> int:
    """The number of an article's newest revision (0 if it has none)."""
    number = db.session.scalar(
        select(func.max(ArticleRevision.number)).where(ArticleRevision.article_id == article_id)
    )
    return number or 0


def _append_revision(actor: User, article: Article) -> ArticleRevision:
    """Record everything an editor can change, as it is now (``article`` flushed)."""
    # By id, not article.category: the relationship may still hold the category it had.
    category = db.session.get(KbCategory, article.category_id) if article.category_id else None
    revision = ArticleRevision(
        article_id=article.id,
        number=latest_revision_number(article.id) + 1,
        title=article.title,
        body=article.body,
        category_id=article.category_id,
        category_name=category.name if category else None,
        visibility=article.visibility,
        tags=sorted(article.tags),
        author_id=actor.id,
    )
    db.session.add(revision)
    return revision


@rolls_back_on_error
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


@rolls_back_on_error
def do_update_article(
    actor: User,
    article_id: int,
    changes: dict[str, Any],
    *,
    expected_revision: int | None = None,
) -> Article:
    """Change title, body, category, visibility or tags; every save appends a revision holding
    all of them. ``status`` in ``changes`` publishes or unpublishes (no revision).

    ``expected_revision``: the revision the editor started from. If someone saved since, the
    save is refused (409) rather than silently overwriting their text. The article's row is
    locked first, so a concurrent save cannot slip in between the check and this one."""
    _require_writer(actor)
    article = access_article_by_id(actor, article_id)
    if expected_revision is not None:
        db.session.get(Article, article.id, with_for_update=True, populate_existing=True)
        if latest_revision_number(article.id) != expected_revision:
            raise Conflict(STALE_EDIT, {"revision": [STALE_EDIT]})
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


@rolls_back_on_error
def do_publish(actor: User, article_id: int) -> Article:
    return do_update_article(actor, article_id, {"status": ArticleStatus.PUBLISHED})


@rolls_back_on_error
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


@rolls_back_on_error
def do_create_category(actor: User, *, name: str, position: int = 0) -> KbCategory:
    _require_category_manager(actor)
    category = KbCategory(name=_check_category_name(name), position=position)
    db.session.add(category)
    db.session.commit()
    return category


@rolls_back_on_error
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


@rolls_back_on_error
def do_reorder_categories(actor: User, category_ids: list[int]) -> list[KbCategory]:
    """Put the categories in the order of ``category_ids`` (every category, each once)."""
    _require_category_manager(actor)
    categories = {c.id: c for c in db.session.scalars(select(KbCategory))}
    if sorted(category_ids) != sorted(categories):
        raise InvalidInput(
            "The order must name every category once.", {"order": ["Reload and try again."]}
        )
    for position, category_id in enumerate(category_ids):
        categories[category_id].position = position
    db.session.commit()
    return [categories[i] for i in category_ids]


# -- votes and deflection ----------------------------------------------------------------------


@dataclass
class VoteTally:
    article_id: int
    helpful: bool  # the caller's vote
    helpful_count: int
    not_helpful_count: int


@rolls_back_on_error
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
    counts = _vote_counts(article.id)
    return VoteTally(article.id, helpful, counts.get(True, 0), counts.get(False, 0))


def _vote_counts(article_id: int) -> dict[bool, int]:
    return dict(
        db.session.execute(
            select(ArticleVote.helpful, func.count())
            .where(ArticleVote.article_id == article_id)
            .group_by(ArticleVote.helpful)
        ).all()
    )


@dataclass
class VoteSummary:
    article_id: int
    helpful_count: int
    not_helpful_count: int
    mine: bool | None  # the reader's answer; None: not answered (or anonymous)


def vote_summary(actor: User | None, article_id: int) -> VoteSummary:
    """How readers answered "was this helpful?" for an article ``actor`` may read, and how
    ``actor`` did."""
    article = access_article_by_id(actor, article_id)
    counts = _vote_counts(article.id)
    mine = None
    if actor is not None:
        mine = db.session.scalar(
            select(ArticleVote.helpful).where(
                ArticleVote.article_id == article.id, ArticleVote.user_id == actor.id
            )
        )
    return VoteSummary(article.id, counts.get(True, 0), counts.get(False, 0), mine)


@rolls_back_on_error
def do_record_suggestion_opened(actor: User, article_id: int, query: str) -> KbSuggestionEvent:
    """``actor`` opened a suggested article (found with ``query``); the outcome is settled
    later by ``do_settle_suggestions``."""
    article = access_article_by_id(actor, article_id)
    event = KbSuggestionEvent(article_id=article.id, user_id=actor.id, query=query.strip()[:200])
    db.session.add(event)
    db.session.commit()
    return event


@rolls_back_on_error
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
