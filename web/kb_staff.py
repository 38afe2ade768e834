"""Knowledge-base authoring for agents and admins: the article list (search and filters, a
page at a time), writing and editing articles (Markdown with a server-rendered preview, saved
as a draft or published), revision history (the text's diff and every other field that
changed; any revision loads back into the editor), deleting, and the categories page (admins
only).

Pages work without JavaScript: "Preview" is a submit button that re-renders the form with the
rendered text and saves nothing; ``static/js/kb_editor.js`` shows the preview in place instead,
through the ``preview`` endpoint. Every change goes through ``autocrm.kb``. An edit
carries the revision it started from, so saving over text someone else saved meanwhile is
refused (409) with the user's input kept.

Links that send readers to an article (the help center's page) are built here and only here:
``help_article_url`` and ``reply_link`` (the ticket workspace inserts them into replies).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response

from autocrm import markdown, policies
from autocrm.errors import Conflict, DomainError, InvalidInput, NotFound
from autocrm.kb import articles
from autocrm.kb import categories as kb_categories
from autocrm.kb import search as kb_search
from autocrm.kb.models import Article, ArticleRevision, ArticleStatus, ArticleVisibility
from autocrm.listing import PageRequest
from autocrm.people import users
from autocrm.people.models import User
from web.forms import parse_id
from web.session import admin_required, current_user, login_required

bp = Blueprint("kb_staff", __name__, url_prefix="/agent/kb")

# The help center's article page (web/help_center.py serves it); kept here as a string so that
# every link to an article is built in one place.
HELP_ARTICLE_PATH = "/help/articles/{id}"
LIST_LIMIT = 50  # articles per page of the list
WORKSPACE_RESULTS = 8

VISIBILITY_LABELS = {
    ArticleVisibility.PUBLIC.value: "Public: anyone, also without signing in",
    ArticleVisibility.CUSTOMERS.value: "Customers: signed-in customers and staff",
    ArticleVisibility.INTERNAL.value: "Internal: staff only",
}
VISIBILITY_SHORT = {"public": "Public", "customers": "Customers only", "internal": "Internal"}
STATUS_LABELS = {ArticleStatus.DRAFT.value: "Draft", ArticleStatus.PUBLISHED.value: "Published"}
SAVE_ACTIONS = {"draft": ArticleStatus.DRAFT, "publish": ArticleStatus.PUBLISHED}
FORM_FIELDS = ("title", "body", "category_id", "visibility", "tags")


@bp.context_processor
def _section_context() -> dict[str, Any]:
    user = current_user()
    return {
        "manage_kb_categories": user is not None and policies.can_manage_kb_categories(user),
        "status_labels": STATUS_LABELS,
        "visibility_labels": VISIBILITY_LABELS,
        "visibility_short": VISIBILITY_SHORT,
    }


# -- links to articles -------------------------------------------------------------------------


def help_article_url(article_id: int) -> str:
    """Where readers open an article: absolute, because replies also reach customers by email."""
    base = current_app.config["AUTOCRM_BASE_URL"].rstrip("/")
    return base + HELP_ARTICLE_PATH.format(id=article_id)


def markdown_link(article: Article) -> str:
    title = re.sub(r"([\\\[\]])", r"\\\1", " ".join(article.title.split()))
    return f"[{title}]({help_article_url(article.id)})"


@dataclass(frozen=True)
class ReplyLink:
    """What inserting an article into a reply gives: ``markdown`` is None when the article
    must not go into that kind of reply; ``warning`` is shown next to it either way."""

    markdown: str | None
    warning: str | None


INTERNAL_REFUSED = (
    "Internal article: customers cannot open it, so it is not offered for public replies. "
    "Link it in an internal note."
)


def reply_link(article: Article, *, internal_reply: bool) -> ReplyLink:
    if article.visibility is ArticleVisibility.INTERNAL:
        if not internal_reply:
            return ReplyLink(None, INTERNAL_REFUSED)
        return ReplyLink(markdown_link(article), "Internal article: only staff can open it.")
    if article.status is not ArticleStatus.PUBLISHED and not internal_reply:
        return ReplyLink(
            markdown_link(article),
            "Draft: customers cannot open it until it is published; publish it before sending.",
        )
    return ReplyLink(markdown_link(article), None)


def reply_results(user: User, q: str, *, internal_reply: bool) -> list[dict[str, Any]]:
    """The workspace's knowledge-base search: matching articles with their snippets and the
    link to insert into a public reply or an internal note (or why not)."""
    if not kb_search.query_words(q):
        return []
    items = []
    for result in kb_search.search(user, q, WORKSPACE_RESULTS):
        link = reply_link(result.article, internal_reply=internal_reply)
        items.append(
            {
                "id": result.article.id,
                "title": result.article.title,
                "snippet": result.snippet,  # HTML: escaped, matches in <mark>
                "status": result.article.status.value,
                "visibility": result.article.visibility.value,
                "url": help_article_url(result.article.id),
                "edit_url": url_for("kb_staff.edit", article_id=result.article.id),
                "insert": link.markdown,
                "warning": link.warning,
            }
        )
    return items


# -- the article list --------------------------------------------------------------------------


def _list_filters() -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """(the filter values as typed, the service's filters, errors by filter name): a filter
    with a value not on offer is reported at that filter and left out."""
    names = ("q", "status", "category", "visibility", "cursor")
    values = {name: request.args.get(name, "").strip() for name in names}
    filters: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if values["status"]:
        if values["status"] in STATUS_LABELS:
            filters["status"] = ArticleStatus(values["status"])
        else:
            errors["status"] = "Choose a status from the list."
    if values["visibility"]:
        if values["visibility"] in VISIBILITY_LABELS:
            filters["visibility"] = ArticleVisibility(values["visibility"])
        else:
            errors["visibility"] = "Choose a visibility from the list."
    if values["category"]:
        if (category_id := parse_id(values["category"])) is not None:
            filters["category_id"] = category_id
        else:
            errors["category"] = "Choose a category from the list."
    return values, filters, errors


@bp.get("/")
@login_required(staff=True)
def index(user: User) -> tuple[str, int]:
    """The articles, a page at a time; the "Next page" link carries the search and filters
    with the cursor."""
    values, filters, errors = _list_filters()
    listing = None
    page = PageRequest(limit=LIST_LIMIT, cursor=values["cursor"] or None)
    try:
        listing = kb_search.list_articles(
            user, values["q"], page, kb_search.ArticleFilter(**filters)
        )
    except InvalidInput as exc:  # a cursor that is not one of ours (edited, or outdated)
        errors["cursor"] = exc.message
    categories = kb_categories.list_categories()
    html = render_template(
        "kb/index.html",
        user=user,
        results=listing.items if listing else [],
        next_cursor=listing.next_cursor if listing else None,
        values=values,
        errors=errors,
        list_args={k: v for k, v in values.items() if v and k != "cursor"},
        categories=categories,
        category_names={c.id: c.name for c in categories},
        names=users.staff_names(),
    )
    return html, 422 if errors else 200


# -- writing and editing -----------------------------------------------------------------------


def _form_values() -> dict[str, str]:
    values = {name: request.form.get(name, "") for name in FORM_FIELDS}
    values["body"] = values["body"].replace("\r\n", "\n")  # browsers send CRLF
    return values


def _article_values(article: Article) -> dict[str, str]:
    return {
        "title": article.title,
        "body": article.body,
        "category_id": str(article.category_id or ""),
        "visibility": article.visibility.value,
        "tags": ", ".join(article.tags),
    }


def check_form(values: dict[str, str]) -> dict[str, Any]:
    """The service's fields from the form's text, validated; InvalidInput names every field
    that is wrong at once."""
    errors: dict[str, list[str]] = {}
    fields: dict[str, Any] = {
        "title": values["title"],
        "body": values["body"],
        "visibility": values["visibility"],
        "tags": [t for t in values["tags"].replace(",", " ").split() if t],
        "category_id": None,
    }
    if values["category_id"].strip():
        if (category_id := parse_id(values["category_id"])) is not None:
            fields["category_id"] = category_id
        else:
            errors["category_id"] = ["Choose a category from the list."]
            del fields["category_id"]
    try:
        fields = {**fields, **articles.check_article_fields(fields)}
    except InvalidInput as exc:
        errors = {**exc.errors, **errors}
    if errors:
        raise InvalidInput("Please correct the marked fields.", errors)
    return fields


def _render_editor(
    user: User,
    values: dict[str, str],
    *,
    article: Article | None = None,
    base_revision: int | None = None,
    errors: dict[str, Any] | None = None,
    notice: str | None = None,
    preview: str | None = None,
    loaded: ArticleRevision | None = None,
    status: int = 200,
) -> tuple[str, int]:
    html = render_template(
        "kb/edit.html",
        user=user,
        article=article,
        form=values,
        base_revision=base_revision,
        errors=errors or {},
        notice=notice,
        preview=preview,
        loaded=loaded,
        # A loaded revision's category deleted since: the editor cannot offer it any more.
        lost_category=loaded.category_name if loaded and loaded.category_id is None else None,
        categories=kb_categories.list_categories(),
    )
    return html, status


def _save_action() -> str:
    action = request.form.get("action", "")
    if action != "preview" and action not in SAVE_ACTIONS:
        raise InvalidInput("Choose Save draft, Publish or Preview.", {"action": ["Unknown."]})
    return action


@bp.get("/new")
@login_required(staff=True)
def new(user: User) -> tuple[str, int]:
    values = {"title": "", "body": "", "category_id": "", "visibility": "public", "tags": ""}
    return _render_editor(user, values)


@bp.post("/new")
@login_required(staff=True)
def create(user: User) -> Any:
    values = _form_values()
    try:
        action = _save_action()
        if action == "preview":
            return _render_editor(user, values, preview=markdown.render(values["body"]))
        fields = check_form(values)
        article = articles.do_create_article(user, **fields, status=SAVE_ACTIONS[action])
    except DomainError as exc:
        return _render_editor(
            user, values, errors=exc.errors, notice=exc.message, status=exc.status_code
        )
    flash("Article published." if action == "publish" else "Draft saved.", "success")
    return redirect(url_for(".edit", article_id=article.id))


@bp.get("/<int:article_id>/edit")
@login_required(staff=True)
def edit(user: User, article_id: int) -> tuple[str, int]:
    """The editor; ``?revision=N`` loads revision N into it: title, text, category,
    visibility and tags (saved only when the user saves, as a new revision)."""
    article = articles.access_article_by_id(user, article_id)
    values = _article_values(article)
    wanted = request.args.get("revision", type=int)
    loaded = None
    if wanted is not None:
        loaded = _revision(user, article_id, wanted)
        values = _revision_values(loaded)
    base = articles.latest_revision_number(article.id)
    return _render_editor(user, values, article=article, base_revision=base, loaded=loaded)


def _revision(user: User, article_id: int, number: int) -> ArticleRevision:
    for revision in articles.list_revisions(user, article_id):
        if revision.number == number:
            return revision
    raise NotFound(f"Article {article_id} has no revision {number}.")


def _revision_values(revision: ArticleRevision) -> dict[str, str]:
    return {
        "title": revision.title,
        "body": revision.body,
        "category_id": str(revision.category_id or ""),
        "visibility": revision.visibility.value,
        "tags": ", ".join(revision.tags),
    }


def _changes(article: Article, fields: dict[str, Any]) -> dict[str, Any]:
    current = {
        "title": article.title,
        "body": article.body,
        "category_id": article.category_id,
        "visibility": article.visibility,
        "tags": list(article.tags),
    }
    return {name: value for name, value in fields.items() if value != current[name]}


@bp.post("/<int:article_id>/edit")
@login_required(staff=True)
def update(user: User, article_id: int) -> Any:
    article = articles.access_article_by_id(user, article_id)
    values = _form_values()
    base = request.form.get("base_revision", type=int)
    try:
        action = _save_action()
        if action == "preview":
            preview = markdown.render(values["body"])
            return _render_editor(
                user, values, article=article, base_revision=base, preview=preview
            )
        if base is None:
            raise InvalidInput("The form is missing the revision it started from; reload it.")
        changes = _changes(article, check_form(values))
        if SAVE_ACTIONS[action] is not article.status:
            changes["status"] = SAVE_ACTIONS[action]
        if changes:
            articles.do_update_article(user, article_id, changes, expected_revision=base)
    except NotFound:
        raise
    except DomainError as exc:
        article = articles.access_article_by_id(user, article_id)
        notice = exc.message
        if isinstance(exc, Conflict):
            # Saving again is then a conscious choice over the other person's text.
            base = articles.latest_revision_number(article_id)
            notice = (
                f"{exc.message} Your text is kept below; compare it with the current "
                "revision in the history, then save again to replace it."
            )
        return _render_editor(
            user,
            values,
            article=article,
            base_revision=base,
            errors=exc.errors,
            notice=notice,
            status=exc.status_code,
        )
    if not changes:
        flash("Nothing to change.", "success")
    elif action == "publish":
        flash("Article saved and published.", "success")
    else:
        flash("Draft saved." if "status" not in changes else "Unpublished: now a draft.", "success")
    return redirect(url_for(".edit", article_id=article_id))


@bp.post("/preview")
@login_required(staff=True)
def preview(user: User) -> tuple[Response, int]:
    """The editor's preview: Markdown (JSON ``{"body"}``) rendered and sanitized, as readers
    will see it."""
    data = request.get_json(silent=True)
    body = str(data.get("body") or "") if isinstance(data, dict) else ""
    if len(body) > articles.MAX_BODY:
        return jsonify({"ok": False, "error": f"At most {articles.MAX_BODY} characters."}), 422
    return jsonify({"ok": True, "html": markdown.render(body)}), 200


# -- history and deleting ----------------------------------------------------------------------


def diff_lines(old: str, new: str) -> list[tuple[str, str]]:
    """A line diff with two lines of context, as (kind, text): kind is "add", "del", "same", or
    "gap" between distant changes."""
    out = list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=2))
    lines = []
    for line in out[2:]:  # after the ---/+++ file headers
        if line.startswith("@@"):
            lines.append(("gap", "…"))
        else:
            lines.append(({"+": "add", "-": "del"}.get(line[:1], "same"), line[1:]))
    return lines[1:] if lines and lines[0][0] == "gap" else lines


@dataclass(frozen=True)
class FieldChange:
    """A change to one of a revision's fields besides the text, for the history: ``before``
    and ``after`` as readers see them; tags as what was added and removed instead."""

    label: str
    before: str = ""
    after: str = ""
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


NO_CATEGORY = "No category"


def category_label(revision: ArticleRevision) -> str:
    """A revision's category by the name it had then (even if renamed or deleted since)."""
    return revision.category_name or NO_CATEGORY


def field_changes(previous: ArticleRevision, revision: ArticleRevision) -> list[FieldChange]:
    """What changed from ``previous`` to ``revision`` besides the title and text."""
    changes = []
    before, after = category_label(previous), category_label(revision)
    # The same category renamed in between is no change; a deleted one has no id left, so
    # its name tells (None and None may be "no category" and a deleted one).
    moved = previous.category_id != revision.category_id
    if moved or (previous.category_id is None and before != after):
        changes.append(FieldChange("Category", before, after))
    if previous.visibility is not revision.visibility:
        changes.append(
            FieldChange(
                "Visibility",
                VISIBILITY_SHORT[previous.visibility.value],
                VISIBILITY_SHORT[revision.visibility.value],
            )
        )
    added = tuple(t for t in revision.tags if t not in previous.tags)
    removed = tuple(t for t in previous.tags if t not in revision.tags)
    if added or removed:
        changes.append(FieldChange("Tags", added=added, removed=removed))
    return changes


@bp.get("/<int:article_id>/history")
@login_required(staff=True)
def history(user: User, article_id: int) -> str:
    article = articles.access_article_by_id(user, article_id)
    entries = []
    previous = None
    for revision in articles.list_revisions(user, article_id):
        entries.append(
            {
                "revision": revision,
                "previous": previous,
                "title_changed": previous is not None and previous.title != revision.title,
                "field_changes": field_changes(previous, revision) if previous else [],
                "diff": diff_lines(previous.body, revision.body) if previous else [],
            }
        )
        previous = revision
    return render_template(
        "kb/history.html",
        user=user,
        article=article,
        entries=list(reversed(entries)),  # newest first
        names=users.staff_names(),
        category_label=category_label,
    )


@bp.get("/<int:article_id>/delete")
@login_required(staff=True)
def confirm_delete(user: User, article_id: int) -> str:
    article = articles.access_article_by_id(user, article_id)
    return render_template(
        "kb/delete.html",
        user=user,
        article=article,
        revisions=articles.latest_revision_number(article.id),
    )


@bp.post("/<int:article_id>/delete")
@login_required(staff=True)
def delete(user: User, article_id: int) -> Response:
    title = articles.access_article_by_id(user, article_id).title
    articles.do_delete_article(user, article_id)
    flash(f"Deleted “{title}”.", "success")
    return redirect(url_for(".index"))


# -- categories (admins) -----------------------------------------------------------------------


def _render_categories(
    user: User,
    *,
    errors: dict[Any, Any] | None = None,
    values: dict[Any, str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    """``errors`` and ``values`` are keyed by category id, or "new" for the create form."""
    html = render_template(
        "kb/categories.html",
        user=user,
        categories=kb_categories.list_categories(),
        errors=errors or {},
        values=values or {},
    )
    return html, status


@bp.get("/categories")
@admin_required
def categories(user: User) -> tuple[str, int]:
    return _render_categories(user)


@bp.post("/categories")
@admin_required
def create_category(user: User) -> Any:
    name = request.form.get("name", "")
    try:
        position = len(kb_categories.list_categories())
        kb_categories.do_create_category(user, name=name, position=position)
    except DomainError as exc:
        return _render_categories(
            user, errors={"new": exc.errors}, values={"new": name}, status=exc.status_code
        )
    flash(f"Category “{name.strip()}” created.", "success")
    return redirect(url_for(".categories"))


@bp.post("/categories/<int:category_id>")
@admin_required
def rename_category(user: User, category_id: int) -> Any:
    name = request.form.get("name", "")
    try:
        kb_categories.do_update_category(user, category_id, {"name": name})
    except NotFound:
        raise
    except DomainError as exc:
        return _render_categories(
            user,
            errors={category_id: exc.errors},
            values={category_id: name},
            status=exc.status_code,
        )
    flash(f"Category renamed to “{name.strip()}”.", "success")
    return redirect(url_for(".categories"))


@bp.post("/categories/<int:category_id>/move")
@admin_required
def move_category(user: User, category_id: int) -> Any:
    order = [c.id for c in kb_categories.list_categories()]
    if category_id not in order:
        raise NotFound(f"Category {category_id} not found.")
    step = {"up": -1, "down": 1}.get(request.form.get("direction", ""))
    if step is None:
        flash("Move a category up or down.", "error")
        return redirect(url_for(".categories"))
    here = order.index(category_id)
    there = here + step
    if 0 <= there < len(order):
        order[here], order[there] = order[there], order[here]
        try:
            kb_categories.do_reorder_categories(user, order)
        except DomainError as exc:  # a category was added meanwhile
            flash(f"{exc.message} Try again.", "error")
    return redirect(url_for(".categories", _anchor=f"category-{category_id}"))
