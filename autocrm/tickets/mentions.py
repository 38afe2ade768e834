"""@mentions of colleagues in internal notes: the syntax, who may be mentioned, how it reads.

A note mentions a colleague as ``@[Full Name](user:<id>)`` (the workspace's composer inserts
it from its suggestions; the API takes the same text). ``@address`` typed by hand mentions the
staff member with that address: the note is stored with it written as the syntax
(``with_addresses_resolved``); any other address stays as written.

Only internal notes mention: a mention tells a colleague to look at the note, and a public
reply is the customer's to read, so staff writing the syntax in a public reply are asked to
make it a note instead.

Who may be mentioned is who may read the note: active staff who may see the ticket
(``policies.staff_viewers``, the same rule as ``policies.can_view_ticket``). A note mentioning
anyone else is refused with a message naming them ("Bea can't see this ticket"), so nobody
is told of a ticket they cannot open and the author knows at once who would not hear of it.

Each person mentioned hears of it once per note (``notifications.routing``, kind
``mentioned``), never the author; a note reads with each mention as the highlighted name.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select

from autocrm import markdown, policies
from autocrm.errors import InvalidInput
from autocrm.extensions import db
from autocrm.listing import contains
from autocrm.people.models import Role, User
from autocrm.requestguard import UNSTORABLE_TEXT, is_storable
from autocrm.tickets.models import Message, Ticket

# A name as the composer writes it: no brackets or line breaks, at most a user name's length.
MENTION = re.compile(r"@\[(?P<name>[^\[\]\n]{1,120})\]\(user:(?P<id>[0-9]{1,20})\)")
# PostgreSQL integer columns end there; a larger id from a note must not reach SQL.
MAX_ID = 2**31 - 1
STAFF_ROLES = (Role.AGENT, Role.ADMIN)
MAX_QUERY = 100
SUGGESTIONS = 10
# "@" and an email address, not inside a word or another address.
ADDRESS_MENTION = re.compile(
    r"(?<![\w@.\[])@(?P<email>[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+)"
)
# Private-use characters standing in for mentions while Markdown is rendered and sanitized.
_OPEN, _CLOSE = "\ue000", "\ue001"
_PLACEHOLDER = re.compile(f"{_OPEN}([0-9]+){_CLOSE}")


@dataclass(frozen=True)
class Mention:
    user_id: int
    name: str  # as written in the note


def _name(match: re.Match[str]) -> str:
    return match["name"].strip() or f"user {match['id']}"


def parse(body: str) -> list[Mention]:
    """The mentions in ``body``, in order, each person once."""
    found: dict[int, Mention] = {}
    for match in MENTION.finditer(body):
        user_id = int(match["id"])
        found.setdefault(user_id, Mention(user_id, _name(match)))
    return list(found.values())


def with_addresses_resolved(body: str) -> str:
    """``body`` with each ``@address`` of a staff member written as the mention syntax."""
    addresses = {m["email"].lower() for m in ADDRESS_MENTION.finditer(body)}
    if not addresses:
        return body
    staff = {
        user.email: user
        for user in db.session.scalars(
            select(User).where(User.email.in_(addresses), User.role.in_(STAFF_ROLES))
        )
    }

    def resolved(match: re.Match[str]) -> str:
        user = staff.get(match["email"].lower())
        return syntax(user) if user is not None else match[0]

    return ADDRESS_MENTION.sub(resolved, body)


def _people(mentions: Sequence[Mention]) -> dict[int, User]:
    ids = [m.user_id for m in mentions if 1 <= m.user_id <= MAX_ID]
    if not ids:
        return {}
    return {user.id: user for user in db.session.scalars(select(User).where(User.id.in_(ids)))}


def _refused(message: str) -> InvalidInput:
    return InvalidInput(message, {"body": [message]})


def check_mentions(actor: User, ticket: Ticket, body: str, *, internal: bool) -> list[User]:
    """The colleagues a message by ``actor`` mentions, each of whom may be told of it;
    InvalidInput naming ``body`` for a mention in a public reply or of anyone who may not
    read the note. Customers' messages mention nobody (their text is taken as written)."""
    mentions = parse(body)
    if not mentions or not policies.is_staff(actor):
        return []
    if not internal:
        raise _refused(
            "Mentions notify colleagues from internal notes only: send this as an internal "
            "note, or remove the mention."
        )
    people = _people(mentions)
    users: list[User] = []
    for mention in mentions:
        user = people.get(mention.user_id)
        if user is None or not policies.is_staff(user):
            raise _refused(f"@{mention.name} is not a colleague who can be mentioned.")
        if not user.active:
            raise _refused(f"{user.name}'s account is deactivated — they can't be mentioned.")
        if not policies.can_view_ticket(user, ticket):
            raise _refused(
                f"{user.name} can't see this ticket — not notified. Remove the mention, or "
                "move the ticket to a team they are in."
            )
        users.append(user)
    return users


def recipients(ticket: Ticket, message: Message) -> list[User]:
    """Whom a note tells, when its notification is made: those it mentions who still may
    read it (someone moved off the ticket's team meanwhile is not told), never its author."""
    if not message.internal:
        return []
    mentions = parse(message.body)
    people = _people(mentions)
    return [
        user
        for m in mentions
        if (user := people.get(m.user_id)) is not None
        and user.id != message.author_id
        and user.active
        and policies.is_staff(user)
        and policies.can_view_ticket(user, ticket)
    ]


def mentionable(ticket: Ticket, q: str, *, exclude: int | None = None) -> list[User]:
    """Suggestions for a mention on ``ticket``: active staff who may see it whose name or
    email contains ``q`` (any of them for a blank ``q``), by name; the caller may read it."""
    q = q.strip()
    if len(q) > MAX_QUERY:
        raise InvalidInput(
            f"Search for at most {MAX_QUERY} characters.",
            {"q": [f"Longer than {MAX_QUERY} characters."]},
        )
    if not is_storable(q):
        raise InvalidInput("Invalid text in q.", {"q": [UNSTORABLE_TEXT]})
    stmt = select(User).where(User.active.is_(True), policies.staff_viewers(ticket))
    if exclude is not None:
        stmt = stmt.where(User.id != exclude)
    if q:
        stmt = stmt.where(or_(contains(User.name, q), contains(User.email, q)))
    return list(db.session.scalars(stmt.order_by(User.name, User.id).limit(SUGGESTIONS)))


def syntax(user: User) -> str:
    """The text that mentions ``user`` in a note (what the composer inserts)."""
    name = " ".join(re.sub(r"[\[\]]", " ", user.name).split()) or f"user {user.id}"
    return f"@[{name[:120]}](user:{user.id})"


def plain(body: str) -> str:
    """The text with each mention as ``@Name`` (notifications and emails are plain text)."""
    return MENTION.sub(lambda m: f"@{_name(m)}", body)


def render(body: str) -> str:
    """An internal note as sanitized HTML, each mention a highlighted name, not its syntax.

    The mentions are taken out before Markdown sees them (it would read them as links) and
    put back, escaped, after sanitizing: nothing a note says becomes markup."""
    found: list[tuple[int, str]] = []

    def hold(match: re.Match[str]) -> str:
        found.append((int(match["id"]), _name(match)))
        return f"{_OPEN}{len(found) - 1}{_CLOSE}"

    unmarked = body.replace(_OPEN, "").replace(_CLOSE, "")  # only ours stand for mentions
    rendered = markdown.render(MENTION.sub(hold, unmarked))
    if not found:
        return rendered

    def put_back(match: re.Match[str]) -> str:
        user_id, name = found[int(match[1])]
        return f'<span class="mention" data-user-id="{user_id}">@{html.escape(name)}</span>'

    return _PLACEHOLDER.sub(put_back, rendered)
