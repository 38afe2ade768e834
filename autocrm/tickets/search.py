"""Ticket search: ranked full-text over everything a ticket says, with a highlighted snippet.

One document per ticket (migration 0023_ticket_search, kept in step by database triggers, so
every writer, a bulk load included, keeps it current): the subject, the requester's name and
email, the description, the public messages and the internal notes. Staff search all five
parts; a customer's search leaves the notes out, in the match, the ranking and the snippet,
so a note's words never find a ticket for a customer nor show in what they see.

PostgreSQL ranks with ``ts_rank`` over a GIN-indexed stored tsvector (``all_tsv`` for staff,
``public_tsv`` for customers) and highlights with ``ts_headline``; SQLite ranks with FTS5's
``bm25()`` and highlights with ``snippet()``. On PostgreSQL the user's text goes through
``plainto_tsquery`` (no syntax, every word must match; an email address is one word); on
SQLite each whitespace-separated piece becomes a quoted phrase of its words, so no input is
read as FTS5 syntax and ``ann@example.com`` matches the address.

Only the newest RANK_WINDOW matches are ranked (best first); the older ones follow them,
newest first. Ranking every match of a common word costs a score per match (seconds at 1M
tickets), and which of 200,000 tickets saying "printer" ranks highest says little; the
newest matches come from the GIN index and the tickets' primary key without reading the
others. So the results are all the matches, in two runs: the ranked window, then the rest by
age. Counting the matches (a saved view's count) stops at COUNT_LIMIT + 1: more than
COUNT_LIMIT is reported as such, not counted.

A query that is a ticket number (``210``, ``#210``) puts that ticket first when the reader
may see it and it passes the other filters. The list pages by (score, id) in the window and
by id after it (a cursor without a score): its cursor is named "-score", so a cursor of the
plain listing is refused by a search and the other way round (422); a search ignores the
requested sort. Snippets are computed afterwards for the page's tickets only, never for every
match.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Double,
    Select,
    bindparam,
    cast,
    column,
    func,
    literal_column,
    select,
    table,
    text,
)

from autocrm import policies
from autocrm.columns import MAX_INT32
from autocrm.extensions import db
from autocrm.listing import (
    MAX_PAGE_SIZE,
    Page,
    PageRequest,
    bad_cursor,
    decode_cursor,
    encode_cursor,
)
from autocrm.people.models import User
from autocrm.tickets.models import Ticket

# Every full-text object of migration 0021 has this in its name (schema comparison skips them).
SEARCH_NAME_MARK = "ticket_search"
SCORE_SORT = "-score"
TICKET_NUMBER = re.compile(r"#?\s*([0-9]{1,10})")

# Highlight markers: private-use characters, turned into <mark> after HTML escaping.
_START, _STOP = "\ue000", "\ue001"
_WORD = re.compile(r"\w+", re.UNICODE)
_SPACE = re.compile(r"\s+")
MAX_PHRASES = 16
_ABOVE_ANY_SCORE = 1e300
# The newest this many matches are ranked; the older ones follow, newest first.
RANK_WINDOW = 1000
# Counting matches stops above this many (reported as "more than COUNT_LIMIT").
COUNT_LIMIT = 1000

# The document's parts, in the order a snippet is taken from (the first holding a match).
PUBLIC_PARTS = ("description", "messages", "requester", "subject")
STAFF_PARTS = ("description", "messages", "notes", "requester", "subject")
_FTS_COLUMN = {"subject": 0, "requester": 1, "description": 2, "messages": 3, "notes": 4}

_docs = table(
    "ticket_search_docs",
    column("ticket_id"),
    column("public_tsv"),
    column("all_tsv"),
    *(column(part) for part in STAFF_PARTS),
)


@dataclass
class SearchPage(Page[Ticket]):
    """A page of search results; ``snippets`` holds, by ticket id, HTML (escaped text with
    the matches in <mark>) for the tickets whose text matched."""

    snippets: dict[int, str] = field(default_factory=dict)


@dataclass
class TicketHit:
    """A found ticket with its snippet, read like the ticket itself (serializers)."""

    ticket: Ticket
    snippet: str | None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ticket, name)


def phrases(q: str) -> list[list[str]]:
    """The query's whitespace-separated pieces as lists of words (pieces without a word
    dropped), at most MAX_PHRASES."""
    pieces = [_WORD.findall(piece.lower()) for piece in q.split()]
    return [words for words in pieces if words][:MAX_PHRASES]


def ticket_number(q: str) -> int | None:
    number = TICKET_NUMBER.fullmatch(q.strip())
    if number and 1 <= int(number[1]) <= MAX_INT32:
        return int(number[1])
    return None


def is_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def search_page(actor: User, base: Select[Any], q: str, page: PageRequest) -> SearchPage:
    """One page of the tickets of ``base`` (already narrowed to what ``actor`` may see and
    to the other filters) matching ``q``: the newest RANK_WINDOW matches best first, then the
    older ones newest first; ticket number ``q`` first of all."""
    limit = max(1, min(page.limit, MAX_PAGE_SIZE))
    staff = policies.is_staff(actor)
    number = ticket_number(q)
    first: list[Ticket] = []
    found = _matching(base, q, staff).with_only_columns(Ticket.id)
    if number is not None:
        found = found.where(Ticket.id != number)
        if not page.cursor:
            first = list(db.session.scalars(base.where(Ticket.id == number)))
    after = _decode_score_cursor(page.cursor) if page.cursor else None
    wanted = limit - len(first)
    # Staff: the newest matches, read newest first when the word is common (the planner's
    # pick). A customer sees few tickets: "+ 0" keeps the planner from reading every search
    # document newest first to find their few, and makes it narrow to theirs first (17 s ->
    # 1 s at 1M, when it guessed half the tickets visible to a customer). Since the clause is
    # index-friendly (policies.visible_tickets) the planner estimates it right, and plans as
    # fast came out with or without "+ 0" (EXPLAIN ANALYZE at 1M); it stays as a guard.
    newest = Ticket.id.desc() if staff else (Ticket.id + 0).desc()
    window = list(db.session.scalars(found.order_by(newest).limit(RANK_WINDOW)))
    hits: list[tuple[float | None, int]] = []  # (score, or None after the window; id)
    if after is None or after[0] is not None:
        hits.extend(_ranked_window(q, window, staff, after)[: wanted + 1])
    if len(hits) <= wanted and len(window) == RANK_WINDOW:
        below = window[-1] if after is None or after[0] is not None else min(after[1], window[-1])
        older = found.where(Ticket.id < below)
        older = older.order_by(Ticket.id.desc()).limit(wanted + 1 - len(hits))
        hits += [(None, ticket_id) for ticket_id in db.session.scalars(older)]
    shown = [ticket_id for _, ticket_id in hits[:wanted]]
    by_id = {t.id: t for t in db.session.scalars(base.where(Ticket.id.in_(shown)))}
    items = first + [by_id[ticket_id] for ticket_id in shown if ticket_id in by_id]
    next_cursor = None
    if len(hits) > wanted and wanted > 0:
        # The score as the database computed it, not rounded: the next page compares with it.
        last_score, last_id = hits[wanted - 1]
        next_cursor = encode_cursor(SCORE_SORT, last_score, last_id)
    elif hits and wanted == 0:  # the number's ticket filled a one-row page: all ranked next
        next_cursor = encode_cursor(SCORE_SORT, _ABOVE_ANY_SCORE, 1)
    return SearchPage(items, next_cursor, snippets(q, [t.id for t in items], staff))


def _ranked_window(
    q: str, window: list[int], staff: bool, after: tuple[float | None, int] | None
) -> list[tuple[float, int]]:
    """The window's tickets as (score, id), best first, those after cursor ``after`` only."""
    scores = _scores(q, window, staff)
    ranked = sorted(((scores.get(t, 0.0), t) for t in window), key=lambda hit: (-hit[0], hit[1]))
    if after is None or after[0] is None:
        return ranked
    last_score, last_id = after[0], after[1]
    return [h for h in ranked if h[0] < last_score or (h[0] == last_score and h[1] > last_id)]


def matching(actor: User, base: Select[Any], q: str) -> Select[Any]:
    """``base`` narrowed to the tickets searching ``q`` finds (for counting them)."""
    found = _matching(base, q, policies.is_staff(actor))
    number = ticket_number(q)
    if number is None:
        return found
    found_ids = found.with_only_columns(Ticket.id).union(
        base.where(Ticket.id == number).with_only_columns(Ticket.id)
    )
    return select(Ticket).where(Ticket.id.in_(select(found_ids.subquery().c[0])))


def matches(actor: User, base: Select[Any], q: str, ticket_id: int) -> bool:
    """Whether ticket ``ticket_id`` of ``base`` is among the results of searching ``q``."""
    if ticket_number(q) == ticket_id:
        return db.session.scalar(base.where(Ticket.id == ticket_id)) is not None
    found = _matching(base, q, policies.is_staff(actor))
    return db.session.execute(found.where(Ticket.id == ticket_id).limit(1)).first() is not None


def _decode_score_cursor(cursor: str) -> tuple[float | None, int]:
    """(score, id) of a cursor in the ranked window, (None, id) of one after it."""
    score, ticket_id = decode_cursor(cursor, SCORE_SORT)
    if score is None:
        return None, ticket_id
    numbers_ok = (
        isinstance(score, int | float) and not isinstance(score, bool) and math.isfinite(score)
    )
    if not numbers_ok:
        raise bad_cursor()
    return float(score), ticket_id


def _matching(base: Select[Any], q: str, staff: bool) -> Select[Any]:
    """``base`` narrowed to the tickets matching ``q`` (through the full-text index)."""
    if is_postgresql():
        tsv = _docs.c.all_tsv if staff else _docs.c.public_tsv
        return base.join(_docs, _docs.c.ticket_id == Ticket.id).where(tsv.op("@@")(_pg_query(q)))
    fts = (
        text("SELECT rowid AS ticket_id FROM ticket_search_fts WHERE ticket_search_fts MATCH :m")
        .bindparams(m=_fts_match(q, staff))
        .columns(literal_column("ticket_id"))
        .subquery("fts")
    )
    return base.join(fts, fts.c.ticket_id == Ticket.id)


def _scores(q: str, ticket_ids: list[int], staff: bool) -> dict[int, float]:
    """By ticket id, how well each of ``ticket_ids`` (matching tickets) matches ``q``; higher
    is better: ``ts_rank`` on PostgreSQL, FTS5's ``bm25`` (negated) on SQLite."""
    if not ticket_ids:
        return {}
    if is_postgresql():
        tsv = _docs.c.all_tsv if staff else _docs.c.public_tsv
        # Double: the score as a float8, so the next page's cursor compares with it exactly.
        score = cast(func.ts_rank(tsv, _pg_query(q)), Double)
        stmt: Any = select(_docs.c.ticket_id, score).where(_docs.c.ticket_id.in_(ticket_ids))
    else:
        # One pass over the matches between the lowest and the highest id, scoring only
        # ``ticket_ids`` ("+rowid": a filter, not FTS5 look-ups). ``rowid IN`` made FTS5 look
        # up each id on its own, and bm25 counts the documents holding each phrase again at
        # every look-up (a pass over the whole word's list): 1.8 s for an organization
        # manager's ~330 common-word matches at 20k tickets, 8 ms this way.
        stmt = text(
            "SELECT rowid, -bm25(ticket_search_fts, 10.0, 5.0, 2.0, 1.0, 1.0) "
            "FROM ticket_search_fts WHERE ticket_search_fts MATCH :match "
            "AND rowid BETWEEN :first AND :last AND +rowid IN :ids"
        ).bindparams(
            bindparam("ids", ticket_ids, expanding=True),
            match=_fts_match(q, staff),
            first=min(ticket_ids),
            last=max(ticket_ids),
        )
    return {int(row[0]): float(row[1]) for row in db.session.execute(stmt)}


def _pg_query(q: str) -> ColumnElement[Any]:
    # plainto_tsquery never raises on its input and reads no syntax in it.
    return func.plainto_tsquery(literal_column("'english'::regconfig"), bindparam("q", q))


def _fts_match(q: str, staff: bool) -> str:
    # \w+ holds no quote to escape; juxtaposed phrases must all match.
    query = " ".join('"' + " ".join(words) + '"' for words in phrases(q)) or '""'
    if staff:
        return query
    return "{subject requester description messages} : (" + query + ")"


def snippets(q: str, ticket_ids: list[int], staff: bool) -> dict[int, str]:
    """By ticket id, the first part of its document (in PUBLIC_PARTS / STAFF_PARTS order)
    holding a match, as HTML; tickets whose text does not match are absent."""
    if not ticket_ids or not phrases(q):
        return {}
    parts = STAFF_PARTS if staff else PUBLIC_PARTS
    if is_postgresql():
        options = f'StartSel="{_START}", StopSel="{_STOP}", MaxWords=30, MinWords=12'
        english: ColumnElement[Any] = literal_column("'english'::regconfig")
        heads = [func.ts_headline(english, _docs.c[part], _pg_query(q), options) for part in parts]
        stmt: Any = select(_docs.c.ticket_id, *heads).where(_docs.c.ticket_id.in_(ticket_ids))
    else:
        heads_sql = ", ".join(
            f"snippet(ticket_search_fts, {_FTS_COLUMN[part]}, :start, :stop, '…', 24)"
            for part in parts
        )
        stmt = text(
            f"SELECT rowid, {heads_sql} FROM ticket_search_fts "  # noqa: S608 (fixed columns)
            "WHERE ticket_search_fts MATCH :match AND rowid IN :ids"
        ).bindparams(
            bindparam("ids", ticket_ids, expanding=True),
            match=_fts_match(q, staff),
            start=_START,
            stop=_STOP,
        )
    found: dict[int, str] = {}
    for row in db.session.execute(stmt):
        marked = next((h for h in row[1:] if isinstance(h, str) and _START in h), None)
        if marked is not None:
            found[int(row[0])] = html_snippet(marked)
    return found


def html_snippet(raw: str) -> str:
    """A snippet as HTML: the text on one line, escaped, the matches in <mark>."""
    plain = _SPACE.sub(" ", raw).strip()
    return html.escape(plain).replace(_START, "<mark>").replace(_STOP, "</mark>")
