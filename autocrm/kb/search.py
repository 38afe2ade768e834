"""Knowledge-base full-text search, and the authoring list that pages through it.

Search is ``search()``, one function over two engines: PostgreSQL ranks with ``ts_rank`` over
the GIN-indexed ``to_tsvector('english', title || ' ' || body)`` and highlights with
``ts_headline``; SQLite (the embedded default) ranks with FTS5's ``bm25()`` and highlights with
``snippet()``. The user's text is reduced to its words and each word is quoted, so no input
is ever read as query syntax (``"``, ``*``, ``NEAR``, ``-``, ``OR`` ... are plain text); every
word must match. Snippets are HTML: the text is escaped and matches wrapped in ``<mark>``.
The authoring list, ``list_articles``, is the same search a page at a time: a cursor continues
after (score, id) with a query, after (updated_at, id) without one.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Double,
    Select,
    Text,
    cast,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import TSQUERY

from autocrm import policies
from autocrm.extensions import db
from autocrm.kb.models import (
    Article,
    ArticleStatus,
    ArticleVisibility,
)
from autocrm.listing import (
    MAX_PAGE_SIZE,
    Page,
    PageRequest,
    bad_cursor,
    decode_cursor,
    encode_cursor,
    keyset_page,
)
from autocrm.people.models import User

MAX_QUERY_WORDS = 16
MAX_SEARCH_RESULTS = 50

# Highlight markers: private-use characters, turned into <mark> after HTML escaping.
_START, _STOP = "\ue000", "\ue001"
_WORD = re.compile(r"\w+", re.UNICODE)


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


def filtered_articles(actor: User | None, where: ArticleFilter) -> Select[Article]:
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
    base = filtered_articles(actor, where)
    if help_center:
        base = base.where(policies.help_center_only())
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
    base = filtered_articles(actor, where)
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
        raise bad_cursor()
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
    base: Select[Article], words: list[str], any_word: bool
) -> tuple[Select[Any], ColumnElement[float]]:
    """``base`` narrowed to the articles matching ``words``, selecting (article, snippet,
    score), and the score (higher is better) to order and page by."""
    if db.session.get_bind().dialect.name == "postgresql":
        return _ranked_postgresql(base, words, any_word)
    return _ranked_sqlite(base, words, any_word)


def _ranked_sqlite(
    base: Select[Article], words: list[str], any_word: bool
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
    base: Select[Article], words: list[str], any_word: bool
) -> tuple[Select[Any], ColumnElement[float]]:
    # plainto_tsquery never raises on its input; the words are already stripped of syntax.
    english: ColumnElement[Any] = literal_column("'english'::regconfig")
    query: ColumnElement[Any] = func.plainto_tsquery(english, " ".join(words))
    if any_word:
        # Its text form is 'lexeme' & 'lexeme' ...; lexemes of \w+ words hold no "&", and the
        # cast back parses without normalizing again.
        query = cast(func.replace(cast(query, Text), "&", "|"), TSQUERY)
    document = pg_document(english)
    weighted = func.setweight(func.to_tsvector(english, Article.title), literal_column("'A'")).op(
        "||"
    )(func.setweight(func.to_tsvector(english, Article.body), literal_column("'D'")))
    # ts_rank is a real; as double precision its text form reads back exactly (cursors).
    score = cast(func.ts_rank(weighted, query), Double)
    options = f'StartSel="{_START}", StopSel="{_STOP}", MaxWords=35, MinWords=15'
    snippet = func.ts_headline(english, Article.body, query, options)
    stmt = base.where(document.op("@@")(query)).add_columns(snippet, score)
    return stmt, score


def pg_document(english: ColumnElement[Any]) -> ColumnElement[Any]:
    # The exact expression of the GIN index ix_kb_articles_fts (literals, not bound
    # parameters), so that the planner uses the index.
    return func.to_tsvector(
        english, Article.title.op("||")(literal_column("' '")).op("||")(Article.body)
    )
