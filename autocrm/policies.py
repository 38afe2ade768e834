"""Who may see and do what. Every service asks here; nothing else decides access.

Visibility rules:
- a customer sees only the tickets they requested or follow, never internal notes, only their
  own user;
  a merged ticket (``tickets.merging``) only to its own requester, who is shown where it went
  (its followers moved to the ticket it was merged into);
  a customer who manages their organization also sees (and acts on, as on their own) the
  tickets of every customer of it;
- an agent sees tickets of their teams and tickets with no team yet (the triage queue);
- an admin sees everything.
- knowledge-base articles: anonymous readers see published public ones, customers published
  public and customers-only ones, staff everything (drafts and internal articles included).
Ticket followers: staff add staff (who must already see the ticket) and customers; a customer
who sees a ticket adds customers only; staff remove anyone, anyone removes themselves.
Team performance reports: admins see every team's, a team's lead sees that team's.
The audit log of admin changes: admins only.
Saved queue views (staff only): a personal view only to its owner, a team view to that team's
members (and admins), a global view to all staff; admins make global views, a team's members
(or admins) make its views.
Attachments: whoever may see what a file is attached to may download it (an internal note's
files: staff only); an upload not yet attached, only its uploader. The uploader may delete
their upload until it is attached; admins may delete any attachment.
Resources a caller may not see are reported as missing (404) by the services, not forbidden.
Personal API tokens narrow what their user may do by their scope (``User.token_scope``): a
"read" token changes nothing, a "write" token no administration (users, teams, workflows, KB
categories, macros shared with everyone), and no token manages tokens.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, false, or_, select, true

from autocrm.extensions import db
from autocrm.files.models import Attachment
from autocrm.kb.models import Article, ArticleStatus, ArticleVisibility
from autocrm.listing import among
from autocrm.macros.models import Macro
from autocrm.people.models import Role, Team, TeamMembership, TokenScope, User
from autocrm.tickets.models import SavedView, Ticket, TicketFollower, ViewScope

# Fields of a ticket only staff may set (at creation or later).
STAFF_TICKET_FIELDS = frozenset({"requester_id", "team_id", "assignee_id", "tags"})
# Fields of a ticket anyone allowed to change it may PATCH, by role.
PATCHABLE_TICKET_FIELDS = {
    # Custom ``fields``: which of them each person may set is ``autocrm.fields.values``'s.
    Role.CUSTOMER: frozenset({"fields"}),
    Role.AGENT: frozenset({"priority", "assignee_id", "team_id", "tags", "fields", "form"}),
    Role.ADMIN: frozenset({"priority", "assignee_id", "team_id", "tags", "fields", "form"}),
}


def is_staff(actor: User) -> bool:
    return actor.role.is_staff


def is_admin(actor: User) -> bool:
    return actor.role is Role.ADMIN


def may_change(actor: User) -> bool:
    """Whether this request may change anything at all: not with a "read" token."""
    return actor.token_scope is not TokenScope.READ


def can_administer(actor: User) -> bool:
    """Change users, teams, workflows and the like: admins, unless their personal token's
    scope stops short of administration."""
    return is_admin(actor) and actor.token_scope in (None, TokenScope.ADMIN)


def can_manage_tokens(actor: User) -> bool:
    """Make and revoke personal tokens: with one's password or web session, never with a
    token (a leaked token must not be able to mint more)."""
    return actor.token_scope is None


def visible_tickets(actor: User) -> ColumnElement[bool]:
    """A WHERE clause selecting exactly the tickets ``actor`` may see."""
    if actor.role is Role.ADMIN:
        return true()
    if actor.role is Role.AGENT:
        teams = actor.team_ids
        return (
            or_(Ticket.team_id.is_(None), Ticket.team_id.in_(teams))
            if teams
            else (Ticket.team_id.is_(None))
        )
    if actor.role is Role.CUSTOMER:
        # Each term of the OR stands alone on an index (requester, primary key, requester),
        # so a customer's few tickets are found by index at any table size: see ``among``.
        unmerged = Ticket.merged_into_id.is_(None)
        followed = select(TicketFollower.ticket_id).where(TicketFollower.user_id == actor.id)
        terms = [Ticket.requester_id == actor.id, and_(unmerged, among(Ticket.id, followed))]
        if manages_organization(actor):
            colleagues = select(User.id).where(User.organization_id == actor.organization_id)
            terms.append(and_(unmerged, among(Ticket.requester_id, colleagues)))
        return or_(*terms)
    return false()


def staff_viewers(ticket: Ticket) -> ColumnElement[bool]:
    """A WHERE clause on users selecting the staff who may see ``ticket``: what
    ``can_view_ticket`` answers for each of them (admins; agents of its team, or every agent
    while it has none)."""
    if ticket.team_id is None:
        return User.role.in_([Role.ADMIN, Role.AGENT])
    members = select(TeamMembership.user_id).where(TeamMembership.team_id == ticket.team_id)
    return or_(User.role == Role.ADMIN, and_(User.role == Role.AGENT, User.id.in_(members)))


def manages_organization(actor: User) -> bool:
    """A customer flagged manager of the organization they belong to."""
    return (
        actor.role is Role.CUSTOMER
        and actor.organization_manager
        and actor.organization_id is not None
    )


def can_view_ticket(actor: User, ticket: Ticket) -> bool:
    if actor.role is Role.ADMIN:
        return True
    if actor.role is Role.AGENT:
        return ticket.team_id is None or ticket.team_id in actor.team_ids
    if ticket.requester_id == actor.id:
        return True
    if ticket.merged_into_id is not None:
        return False
    if manages_organization(actor) and ticket.requester.organization_id == actor.organization_id:
        return True
    return follows(actor, ticket)


def follows(user: User, ticket: Ticket) -> bool:
    """Whether ``user`` follows ``ticket`` (a customer follower sees it as its requester)."""
    stmt = select(TicketFollower.id).where(
        TicketFollower.ticket_id == ticket.id, TicketFollower.user_id == user.id
    )
    return db.session.scalar(stmt) is not None


def can_add_followers(actor: User, ticket: Ticket) -> bool:
    """Staff, and the customers who see the ticket (its requester, its followers, their
    organization's manager), add followers; the ticket is already visible to ``actor``."""
    return may_change(actor) and (is_staff(actor) or actor.role is Role.CUSTOMER)


def may_add_as_follower(actor: User, user: User) -> bool:
    """Staff add anyone; customers add only customers (a colleague, never the support team)."""
    return is_staff(actor) or user.role is Role.CUSTOMER


def can_remove_follower(actor: User, user_id: int) -> bool:
    """Staff remove any follower; anyone may unfollow (remove themselves)."""
    return may_change(actor) and (is_staff(actor) or actor.id == user_id)


def can_see_internal_notes(actor: User) -> bool:
    return is_staff(actor)


def can_view_attachment(
    actor: User | None,
    attachment: Attachment,
    *,
    ticket: Ticket | None = None,
    internal: bool = False,
    article: Article | None = None,
) -> bool:
    """``ticket``/``article``: what the attachment is attached to; ``internal``: attached to an
    internal note. ``actor`` None: an anonymous reader."""
    if attachment.article_id is not None:
        return article is not None and can_view_article(actor, article)
    if actor is None:
        return False
    if attachment.ticket_id is not None:
        if ticket is None or not can_view_ticket(actor, ticket):
            return False
        return not internal or can_see_internal_notes(actor)
    return attachment.uploader_id == actor.id


def can_delete_attachment(actor: User, attachment: Attachment) -> bool:
    if can_administer(actor):
        return True
    return may_change(actor) and attachment.uploader_id == actor.id and not attachment.attached


def can_view_storage_usage(actor: User) -> bool:
    return is_admin(actor)


def forbidden_ticket_fields(actor: User, fields: set[str], *, creating: bool) -> set[str]:
    """The fields among ``fields`` that ``actor`` may not set."""
    if creating:
        return set() if is_staff(actor) else fields & STAFF_TICKET_FIELDS
    return fields - PATCHABLE_TICKET_FIELDS[actor.role]


def can_give_feedback(actor: User, ticket: Ticket) -> bool:
    return ticket.requester_id == actor.id


def can_view_user(actor: User, user: User) -> bool:
    return is_staff(actor) or actor.id == user.id


def can_list_users(actor: User) -> bool:
    return is_admin(actor)


def can_manage_users_and_teams(actor: User) -> bool:
    return can_administer(actor)


def can_manage_organizations(actor: User) -> bool:
    return can_administer(actor)


def can_edit_customer(actor: User, customer: User) -> bool:
    """Agents keep a customer's name and notes up to date (the customer page)."""
    return is_staff(actor) and may_change(actor) and customer.role is Role.CUSTOMER


def can_manage_mailboxes(actor: User) -> bool:
    """Connect support mailboxes and handle the mail that failed: admins."""
    return can_administer(actor)


def can_manage_webhooks(actor: User) -> bool:
    """Subscribe endpoints to ticket events (they receive every matching ticket): admins."""
    return can_administer(actor)


def can_manage_ticket_fields(actor: User) -> bool:
    """Define custom ticket fields (``autocrm.fields``)."""
    return can_administer(actor)


def can_view_organizations(actor: User) -> bool:
    """Staff see organizations (the workspace and queue name them); customers do not."""
    return is_staff(actor)


def can_list_teams(actor: User) -> bool:
    return is_staff(actor)


def can_view_audit_log(actor: User) -> bool:
    return is_admin(actor)


def visible_macros(actor: User) -> ColumnElement[bool]:
    """Staff see their own personal macros, their teams' and the global ones; admins also
    every team's. Someone else's personal macro is nobody else's business."""
    personal = Macro.owner_id == actor.id
    if is_admin(actor):
        return or_(Macro.owner_id.is_(None), personal)
    shared = and_(
        Macro.owner_id.is_(None),
        or_(Macro.team_id.is_(None), Macro.team_id.in_(actor.team_ids)),
    )
    return or_(personal, shared)


def can_view_macro(actor: User, macro: Macro) -> bool:
    if not is_staff(actor):
        return False
    if macro.owner_id is not None:
        return macro.owner_id == actor.id
    return is_admin(actor) or macro.team_id is None or macro.team_id in actor.team_ids


def can_manage_macro(actor: User, macro: Macro) -> bool:
    """Agents manage their own and their teams' macros; only admins manage the global ones."""
    if not may_change(actor) or not can_view_macro(actor, macro):
        return False
    if macro.owner_id is not None or is_admin(actor):
        return True
    return macro.team_id is not None and macro.team_id in actor.team_ids


def can_share_macro_with_everyone(actor: User) -> bool:
    return can_administer(actor)


# -- knowledge base ----------------------------------------------------------------------------

_READER_VISIBILITIES = {
    None: (ArticleVisibility.PUBLIC,),
    Role.CUSTOMER: (ArticleVisibility.PUBLIC, ArticleVisibility.CUSTOMERS),
}


def visible_articles(actor: User | None) -> ColumnElement[bool]:
    """A WHERE clause selecting the articles ``actor`` (None: anonymous) may read."""
    if actor is not None and is_staff(actor):
        return true()
    visibilities = _READER_VISIBILITIES[None if actor is None else actor.role]
    return (Article.status == ArticleStatus.PUBLISHED) & Article.visibility.in_(visibilities)


def can_view_article(actor: User | None, article: Article) -> bool:
    if actor is not None and is_staff(actor):
        return True
    visibilities = _READER_VISIBILITIES[None if actor is None else actor.role]
    return article.status is ArticleStatus.PUBLISHED and article.visibility in visibilities


# What the customer-facing help center shows, to every reader: published articles for the
# public or for customers. Staff may read drafts and internal articles (the policy), but they
# stay out of the help center, whose pages and links are meant for customers.
HELP_CENTER_VISIBILITIES = (ArticleVisibility.PUBLIC, ArticleVisibility.CUSTOMERS)


def help_center_only() -> ColumnElement[bool]:
    """A WHERE clause narrowing (never widening) ``visible_articles`` to the help
    center's articles."""
    return (Article.status == ArticleStatus.PUBLISHED) & Article.visibility.in_(
        HELP_CENTER_VISIBILITIES
    )


def can_write_articles(actor: User) -> bool:
    """Agents and admins write, publish and delete articles."""
    return is_staff(actor)


def can_manage_kb_categories(actor: User) -> bool:
    return can_administer(actor)


def visible_report_teams(actor: User) -> ColumnElement[bool]:
    """The teams whose performance report ``actor`` may see: all for admins, else those led."""
    if is_admin(actor):
        return true()
    if is_staff(actor):
        return Team.lead_id == actor.id
    return false()


def leads_a_team() -> ColumnElement[bool]:
    """Whether the user of a query of users leads a team (then, as staff, they see its report:
    ``visible_report_teams``); read with a web login (``User.leads_a_team``)."""
    return select(Team.id).where(Team.lead_id == User.id).exists()


def can_view_team_report(actor: User, team: Team) -> bool:
    return is_admin(actor) or (is_staff(actor) and team.lead_id == actor.id)


def visible_saved_views(actor: User) -> ColumnElement[bool]:
    """The saved views ``actor`` sees in the queue: their own, their teams', the global ones
    (an admin also reaches any team's view by its id: ``can_manage_saved_view``)."""
    if not is_staff(actor):
        return false()
    return or_(
        SavedView.scope == ViewScope.GLOBAL,
        and_(SavedView.scope == ViewScope.PERSONAL, SavedView.owner_id == actor.id),
        and_(SavedView.scope == ViewScope.TEAM, SavedView.team_id.in_(actor.team_ids)),
    )


def can_view_saved_view(actor: User, view: SavedView) -> bool:
    if not is_staff(actor):
        return False
    if view.scope is ViewScope.PERSONAL:
        return view.owner_id == actor.id
    if view.scope is ViewScope.TEAM:
        return is_admin(actor) or view.team_id in actor.team_ids
    return True


def can_manage_saved_view(
    actor: User, scope: ViewScope, team_id: int | None, owner_id: int
) -> bool:
    """Whether ``actor`` may make, change or delete a view of this scope (and team, owner)."""
    if not is_staff(actor):
        return False
    if scope is ViewScope.PERSONAL:
        return owner_id == actor.id
    if scope is ViewScope.TEAM:
        return is_admin(actor) or team_id in actor.team_ids
    return is_admin(actor)
