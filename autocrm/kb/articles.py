"""Knowledge-base articles: reading one, writing, publishing, deleting, and their revisions.

Who may do what (``autocrm.policies``): anyone reads published public articles, signed-in
customers also customers-only ones, staff everything; agents and admins write, publish and
delete articles. An article the caller may not read is reported as missing (404). Every save
keeps a revision; a save against a stale revision is refused (409).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import (
    func,
    select,
)

from autocrm import policies
from autocrm.columns import utcnow
from autocrm.errors import Conflict, Forbidden, InvalidInput, NotFound
from autocrm.extensions import db
from autocrm.files import services as files
from autocrm.kb.models import (
    Article,
    ArticleRevision,
    ArticleStatus,
    ArticleVisibility,
    KbCategory,
)
from autocrm.people.models import User
from autocrm.tickets.services import normalize_tags
from autocrm.transaction import rolls_back_on_error

MAX_TITLE = 200
MAX_BODY = 100_000
STALE_EDIT = "Someone else saved this article after you started editing it."
# An article's address in the help center (web/help_center.py), as links in replies carry it.
HELP_ARTICLE_LINK = re.compile(r"/help/articles/(\d+)(?!\d)")


# -- reading -----------------------------------------------------------------------------------


def access_article_by_id(actor: User | None, article_id: int) -> Article:
    article = db.session.get(Article, article_id)
    if article is None or not policies.can_view_article(actor, article):
        raise NotFound(f"Article {article_id} not found.")
    return article


def list_revisions(actor: User, article_id: int) -> list[ArticleRevision]:
    _require_writer(actor)
    article = access_article_by_id(actor, article_id)
    stmt = select(ArticleRevision).where(ArticleRevision.article_id == article.id)
    return list(db.session.scalars(stmt.order_by(ArticleRevision.number)))


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
                Article.visibility.in_(policies.HELP_CENTER_VISIBILITIES),
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
    attachment_ids: list[int] = (),  # type: ignore[assignment]
) -> Article:
    """A new article (a draft unless ``status`` says published) and its revision 1, with the
    writer's uploads ``attachment_ids`` (readers see them as they see the article)."""
    _require_writer(actor)
    fields = check_article_fields(
        {"title": title, "body": body, "category_id": category_id, "visibility": visibility,
         "tags": list(tags)}
    )  # fmt: skip
    article = Article(author_id=actor.id, status=ArticleStatus.DRAFT, **fields)
    db.session.add(article)
    db.session.flush()
    files.attach(actor, attachment_ids, article_id=article.id)
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
    files.attach(actor, changes.pop("attachment_ids", None) or [], article_id=article.id)
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
