"""The knowledge base: categories, articles with tags and revisions, "was this helpful?" votes,
and suggestion-open events (deflection tracking).

The full-text index is not part of this metadata: it is dialect-specific (an expression GIN
index on PostgreSQL, an FTS5 virtual table with triggers on SQLite), created by migration
0004_knowledge_base and queried by ``autocrm.kb.search`` only. Their names all contain
``FTS_NAME_MARK``, which schema comparison (migrations/env.py) uses to leave them alone.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.ext.associationproxy import AssociationProxy, association_proxy
from sqlalchemy.orm import Mapped, mapped_column, relationship

from autocrm.columns import JSONType, UTCDateTime, utcnow
from autocrm.extensions import Model
from autocrm.people.models import User, enum_values

if TYPE_CHECKING:
    from autocrm.files.models import Attachment

# In the FTS5 table (and its shadow tables) on SQLite, the expression index on PostgreSQL.
FTS_NAME_MARK = "kb_articles_fts"


class ArticleStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


class ArticleVisibility(enum.StrEnum):
    PUBLIC = "public"  # anyone, signed in or not
    CUSTOMERS = "customers"  # signed-in users
    INTERNAL = "internal"  # staff only


class KbCategory(Model):
    __tablename__ = "kb_categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    position: Mapped[int] = mapped_column(default=0)


class Article(Model):
    __tablename__ = "kb_articles"
    __table_args__ = (
        Index("ix_kb_articles_status_visibility", "status", "visibility"),
        Index("ix_kb_articles_category_updated", "category_id", "updated_at"),
        Index("ix_kb_articles_updated_at_id", "updated_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)  # Markdown
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("kb_categories.id", ondelete="SET NULL")
    )
    status: Mapped[ArticleStatus] = mapped_column(
        Enum(ArticleStatus, native_enum=False, length=20, values_callable=enum_values),
        default=ArticleStatus.DRAFT,
    )
    visibility: Mapped[ArticleVisibility] = mapped_column(
        Enum(ArticleVisibility, native_enum=False, length=20, values_callable=enum_values),
        default=ArticleVisibility.PUBLIC,
    )
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    category: Mapped[KbCategory | None] = relationship()
    author: Mapped[User | None] = relationship()
    tag_rows: Mapped[list[ArticleTag]] = relationship(
        cascade="all, delete-orphan", order_by="ArticleTag.tag", lazy="selectin"
    )
    tags: AssociationProxy[list[str]] = association_proxy(
        "tag_rows", "tag", creator=lambda tag: ArticleTag(tag=tag)
    )
    # Files and images for the article; readers see them as they see the article.
    attachments: Mapped[list[Attachment]] = relationship(order_by="Attachment.id", viewonly=True)

    def __repr__(self) -> str:
        return f"<Article {self.id} {self.status} {self.visibility}>"


class ArticleTag(Model):
    __tablename__ = "kb_article_tags"
    __table_args__ = (Index("ix_kb_article_tags_tag_article", "tag", "article_id"),)

    article_id: Mapped[int] = mapped_column(
        ForeignKey("kb_articles.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(50), primary_key=True)


class ArticleRevision(Model):
    """Append-only: every save of an article appends everything an editor can change, as it
    became: title, body, category, visibility and tags (publishing is not a revision).

    ``category_name`` is the category's name at the time, so the history still reads after the
    category is renamed or deleted (``category_id`` then becomes NULL)."""

    __tablename__ = "kb_article_revisions"
    __table_args__ = (UniqueConstraint("article_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"))
    number: Mapped[int]
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("kb_categories.id", ondelete="SET NULL")
    )
    category_name: Mapped[str | None] = mapped_column(String(100))
    visibility: Mapped[ArticleVisibility] = mapped_column(
        Enum(ArticleVisibility, native_enum=False, length=20, values_callable=enum_values)
    )
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[User | None] = relationship()


class ArticleVote(Model):
    """One "was this helpful?" answer per user and article; voting again replaces it."""

    __tablename__ = "kb_article_votes"
    __table_args__ = (UniqueConstraint("article_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    helpful: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class KbSuggestionEvent(Model):
    """A user opened a suggested article (typically while writing a ticket).

    ``ticket_filed`` is None until the outcome is settled (``services.kb.do_settle_suggestions``):
    True if the user filed a ticket soon after, False if the article deflected the ticket.
    """

    __tablename__ = "kb_suggestion_events"
    __table_args__ = (Index("ix_kb_suggestion_events_pending", "ticket_filed", "opened_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("kb_articles.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    query: Mapped[str] = mapped_column(String(200), default="")
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ticket_filed: Mapped[bool | None]
