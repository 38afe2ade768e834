"""The help center's reading of the knowledge base: topics, article pages, search, and the
suggestions offered while a customer types a new ticket's subject.

The help center shows published articles for the public or for customers, to every reader:
staff may read drafts and internal articles elsewhere, but they stay out of the help center.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Result,
    case,
    func,
    literal,
    literal_column,
    select,
    table,
)

from autocrm import policies
from autocrm.errors import NotFound
from autocrm.extensions import db
from autocrm.kb.articles import access_article_by_id
from autocrm.kb.categories import list_categories
from autocrm.kb.models import (
    Article,
    ArticleStatus,
    KbCategory,
)
from autocrm.kb.search import (
    MAX_SEARCH_RESULTS,
    ArticleFilter,
    SearchResult,
    filtered_articles,
    pg_document,
    query_words,
    search,
)
from autocrm.people.models import User

# -- the help center --------------------------------------------------------------------------

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


def access_help_center_article(actor: User | None, article_id: int) -> Article:
    """An article as the help center shows it: one ``actor`` may read, published for the
    public or for customers (internal articles and drafts are missing here, even for staff)."""
    article = access_article_by_id(actor, article_id)
    if (
        article.status is not ArticleStatus.PUBLISHED
        or article.visibility not in policies.HELP_CENTER_VISIBILITIES
    ):
        raise NotFound(f"Article {article_id} not found.")
    return article


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
        .where(policies.visible_articles(actor), policies.help_center_only())
        .where(Article.category_id.is_not(None))
        .subquery("ranked")
    )
    result: Result[Article, int] = db.session.execute(
        select(Article, ranked.c.total)
        .join(ranked, ranked.c.id == Article.id)
        .where(ranked.c.n <= per_category)
        .order_by(ranked.c.n)
    )
    rows = result.all()
    # Looked up by an article's category_id, typed optional; these articles all have one.
    sections: dict[int | None, CategorySection] = {
        category.id: CategorySection(category, 0, []) for category in list_categories()
    }
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
        filtered_articles(actor, ArticleFilter(category_id))
        .where(policies.help_center_only())
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
        english: ColumnElement[Any] = literal_column("'english'::regconfig")
        document = pg_document(english)
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
    held: ColumnElement[Any] = sum((case((hit, 1), else_=0) for hit in hits), literal_column("0"))
    rows: Result[int, int] = db.session.execute(
        select(Article.id, held).where(Article.id.in_(article_ids))
    )
    return {article_id: int(count) for article_id, count in rows}
