"""Who may read which knowledge-base article (autocrm.policies): the row check and the SQL
filter every listing uses must agree, for every role, visibility and status."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from autocrm import policies
from autocrm.kb.models import Article, ArticleStatus, ArticleVisibility
from autocrm.people.models import Role

PUBLISHED, DRAFT = ArticleStatus.PUBLISHED, ArticleStatus.DRAFT
PUBLIC, CUSTOMERS, INTERNAL = (
    ArticleVisibility.PUBLIC,
    ArticleVisibility.CUSTOMERS,
    ArticleVisibility.INTERNAL,
)
READABLE = {
    None: {(PUBLISHED, PUBLIC)},  # anonymous readers
    Role.CUSTOMER: {(PUBLISHED, PUBLIC), (PUBLISHED, CUSTOMERS)},
    Role.AGENT: set(itertools.product(ArticleStatus, ArticleVisibility)),  # drafts, internal
    Role.ADMIN: set(itertools.product(ArticleStatus, ArticleVisibility)),
}


@pytest.fixture
def every_kind_of_article(db_session):
    articles = {
        (status, visibility): Article(
            title=f"{status} {visibility}", body="text", status=status, visibility=visibility
        )
        for status, visibility in itertools.product(ArticleStatus, ArticleVisibility)
    }
    db_session.add_all(articles.values())
    db_session.flush()
    return articles


@pytest.mark.parametrize("role", list(READABLE), ids=lambda r: "anonymous" if r is None else r)
def test_readers_see_exactly_their_articles(role, every_kind_of_article, db_session, factory):
    actor = None if role is None else factory.user(role=role)

    by_row = {
        kind
        for kind, article in every_kind_of_article.items()
        if policies.can_view_article(actor, article)
    }
    listed = set(
        db_session.scalars(
            select(Article.id).where(
                policies.visible_articles(actor),
                Article.id.in_([a.id for a in every_kind_of_article.values()]),
            )
        )
    )
    by_query = {kind for kind, a in every_kind_of_article.items() if a.id in listed}

    assert by_row == by_query == READABLE[role]
    if role in (None, Role.CUSTOMER):
        assert not any(visibility is INTERNAL for _, visibility in by_row)
