"""Readers' votes on articles ("was this helpful?") and deflection.

Deflection: the portal records ``do_record_suggestion_opened`` when a customer opens a
suggested article; ``do_settle_suggestions`` (run periodically) later marks each event whose
window has passed with whether that customer filed a ticket within the window. Events with
``ticket_filed`` False are deflected tickets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    exists,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from autocrm.columns import utcnow
from autocrm.extensions import db
from autocrm.kb.articles import access_article_by_id
from autocrm.kb.models import (
    ArticleVote,
    KbSuggestionEvent,
)
from autocrm.people.models import User
from autocrm.tickets.models import Ticket
from autocrm.transaction import rolls_back_on_error

DEFLECTION_WINDOW = timedelta(hours=24)


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
