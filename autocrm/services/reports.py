"""Team performance reports, aggregated in SQL.

Every figure is a GROUP BY over an index range (team and created_at, team and solved_at, team
and category, clocks by stopped_at); Python only receives per-team, per-agent and per-day
aggregates, never ticket rows, so a report stays fast on a million tickets.

Definitions (the period is ``start`` 00:00 UTC up to the end of ``end``, both dates included):
- created / solved: tickets created / solved (``solved_at``) in the period;
- backlog_now: tickets of the team whose category is not solved or closed, now;
- backlog_trend: per day, tickets open at the end of that day (UTC midnight closing it):
  created before it and not solved (``solved_at``) before it;
- first response times: tickets created in the period that got a first response; resolution
  times: tickets solved in the period. Both are wall-clock seconds; converting each ticket's
  span to business hours in SQL is left for later, since calendars belong to workflow versions;
  percentiles interpolate linearly (PostgreSQL's ``percentile_cont``; the same formula on SQLite);
- SLA compliance: of the team's SLA clocks stopped in the period, the share never breached;
- CSAT: ratings of tickets solved in the period; response rate = ratings / solved;
- per agent (members of the team): open tickets of the team assigned to them now, tickets of
  the team they solved in the period, and their median first response.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    Interval,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    union_all,
)

from autocrm import policies
from autocrm.errors import Forbidden, NotFound
from autocrm.extensions import db
from autocrm.models import Feedback, SlaClock, Team, TeamMembership, Ticket, User
from workflows.definition import CATEGORIES

DONE_CATEGORIES = ("solved", "closed")
OPEN_CATEGORIES = tuple(c for c in CATEGORIES if c not in DONE_CATEGORIES)
PERCENTILES = (("p50", 0.5), ("p90", 0.9))


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # included

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(), UTC)

    @property
    def until(self) -> datetime:  # excluded
        return datetime.combine(self.end + timedelta(days=1), time(), UTC)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def _dialect() -> str:
    return db.session.get_bind().dialect.name


# -- dialect-specific pieces -----------------------------------------------------------------


def _seconds_between(later: Any, earlier: Any) -> ColumnElement[Any]:
    if _dialect() == "postgresql":
        return cast(func.extract("epoch", later - earlier), Integer)
    # Whole seconds, exact (julianday arithmetic would add floating-point noise).
    return cast(func.strftime("%s", later), Integer) - cast(func.strftime("%s", earlier), Integer)


def _day_of(column: Any) -> ColumnElement[Any]:
    return cast(column, Date) if _dialect() == "postgresql" else func.date(column)


def _day_series(period: Period) -> Any:
    """One row per day of the period, column ``day``."""
    if _dialect() == "postgresql":
        series = func.generate_series(
            cast(literal(period.start.isoformat()), Date),
            cast(literal(period.end.isoformat()), Date),
            cast(literal("1 day"), Interval),
        )
        return select(cast(series, Date).label("day")).subquery("days")
    days = select(literal(period.start.isoformat()).label("day")).cte("days", recursive=True)
    return days.union_all(
        select(func.date(days.c.day, "+1 day")).where(days.c.day < period.end.isoformat())
    )


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _percentiles(durations: Any, keys: Sequence[str]) -> Select[Any]:
    """p50 and p90 of ``durations.c.d`` per ``keys``, interpolated like ``percentile_cont``."""
    key_cols = [durations.c[k] for k in keys]
    if _dialect() == "postgresql":
        return select(
            *key_cols,
            *(
                func.percentile_cont(q).within_group(durations.c.d).label(name)
                for name, q in PERCENTILES
            ),
        ).group_by(*key_cols)
    ranked = select(
        *key_cols,
        durations.c.d,
        func.row_number().over(partition_by=key_cols, order_by=durations.c.d).label("rn"),
        func.count().over(partition_by=key_cols).label("n"),
    ).subquery("ranked")
    picks = []
    for name, q in PERCENTILES:
        position = 1 + q * (ranked.c.n - 1)  # 1-based, fractional
        low = cast(position, Integer)
        frac = position - low
        picks.append(
            (
                func.sum(case((ranked.c.rn == low, ranked.c.d * (1 - frac)), else_=0))
                + func.sum(case((ranked.c.rn == low + 1, ranked.c.d * frac), else_=0))
            ).label(name)
        )
    ranked_keys = [ranked.c[k] for k in keys]
    return select(*ranked_keys, *picks).group_by(*ranked_keys)


# -- the report ------------------------------------------------------------------------------


def _visible_teams(actor: User, team_id: int | None) -> list[Team]:
    if team_id is not None:
        team = db.session.get(Team, team_id)
        if team is None or not policies.can_view_team_report(actor, team):
            raise NotFound(f"Team {team_id} not found.")
        return [team]
    teams = list(
        db.session.scalars(
            select(Team).where(policies.visible_report_teams(actor)).order_by(Team.id)
        )
    )
    if not teams and not policies.is_admin(actor):
        raise Forbidden("Only admins and team leads may see team reports.")
    return teams


def _counts(stmt: Select[Any]) -> dict[Any, int]:
    """``{key: count}`` from rows ``(*key, count)``; a one-column key is the bare value."""
    rows = db.session.execute(stmt)
    return {tuple(row[:-1]) if len(row) > 2 else row[0]: row[-1] for row in rows}


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def _team_counts(ids: list[int], period: Period) -> dict[str, dict[Any, int]]:
    in_teams = Ticket.team_id.in_(ids)
    created = and_(Ticket.created_at >= period.since, Ticket.created_at < period.until)
    solved = and_(Ticket.solved_at >= period.since, Ticket.solved_at < period.until)
    count = func.count()
    team, agent = Ticket.team_id, Ticket.assignee_id
    is_open = Ticket.category.in_(OPEN_CATEGORIES)
    return {
        "created": _counts(select(team, count).where(in_teams, created).group_by(team)),
        "solved": _counts(select(team, count).where(in_teams, solved).group_by(team)),
        "backlog_now": _counts(select(team, count).where(in_teams, is_open).group_by(team)),
        "agent_open": _counts(
            select(team, agent, count)
            .where(in_teams, is_open, agent.is_not(None))
            .group_by(team, agent)
        ),
        "agent_solved": _counts(
            select(team, agent, count)
            .where(in_teams, solved, agent.is_not(None))
            .group_by(team, agent)
        ),
    }


def _response_times(ids: list[int], period: Period) -> dict[str, dict[Any, dict[str, Any]]]:
    in_teams = Ticket.team_id.in_(ids)
    first_response = (
        select(
            Ticket.team_id,
            Ticket.assignee_id,
            _seconds_between(Ticket.first_responded_at, Ticket.created_at).label("d"),
        )
        .where(
            in_teams,
            Ticket.created_at >= period.since,
            Ticket.created_at < period.until,
            Ticket.first_responded_at.is_not(None),
        )
        .subquery("first_response")
    )
    resolution = (
        select(Ticket.team_id, _seconds_between(Ticket.solved_at, Ticket.created_at).label("d"))
        .where(in_teams, Ticket.solved_at >= period.since, Ticket.solved_at < period.until)
        .subquery("resolution")
    )
    agent_first_response = (
        select(first_response).where(first_response.c.assignee_id.is_not(None)).subquery("afr")
    )

    def rows(stmt: Select[Any], n_keys: int) -> dict[Any, dict[str, Any]]:
        out = {}
        for row in db.session.execute(stmt):
            key = row[0] if n_keys == 1 else tuple(row[:n_keys])
            out[key] = {name: _rounded(row._mapping[name]) for name, _ in PERCENTILES}
        return out

    return {
        "first_response": rows(_percentiles(first_response, ["team_id"]), 1),
        "resolution": rows(_percentiles(resolution, ["team_id"]), 1),
        "agent_first_response": rows(
            _percentiles(agent_first_response, ["team_id", "assignee_id"]), 2
        ),
    }


def _backlog_trend(ids: list[int], period: Period) -> dict[int, dict[date, int]]:
    """Open at the end of day d = (never solved) - (created after d) + (solved after d).

    Tickets are first bucketed per team and day (index range scans from the period start),
    then the day series is joined with those few buckets: no per-ticket work per day.
    """
    in_teams = Ticket.team_id.in_(ids)
    events = union_all(
        select(Ticket.team_id, literal(None).label("b"), literal(1).label("delta")).where(
            in_teams, Ticket.solved_at.is_(None)
        ),
        select(Ticket.team_id, _day_of(Ticket.created_at).label("b"), literal(-1)).where(
            in_teams, Ticket.created_at >= period.since
        ),
        select(Ticket.team_id, _day_of(Ticket.solved_at).label("b"), literal(1)).where(
            in_teams, Ticket.solved_at >= period.since
        ),
    ).subquery("events")
    buckets = (
        select(events.c.team_id, events.c.b, func.sum(events.c.delta).label("n"))
        .group_by(events.c.team_id, events.c.b)
        .subquery("buckets")
    )
    days = _day_series(period)
    stmt = (
        select(days.c.day, buckets.c.team_id, func.sum(buckets.c.n))
        .select_from(days)
        .join(buckets, or_(buckets.c.b.is_(None), buckets.c.b > days.c.day))
        .group_by(days.c.day, buckets.c.team_id)
    )
    trend: dict[int, dict[date, int]] = defaultdict(dict)
    for day, team_id, n in db.session.execute(stmt):
        trend[team_id][_as_date(day)] = int(n)
    return trend


def _sla_and_csat(ids: list[int], period: Period) -> dict[str, dict[int, Any]]:
    clocks = (
        select(
            Ticket.team_id,
            func.count(),
            func.count(case((SlaClock.breached_at.is_(None), 1))),
        )
        .join(Ticket, Ticket.id == SlaClock.ticket_id)
        .where(
            Ticket.team_id.in_(ids),
            SlaClock.stopped_at >= period.since,
            SlaClock.stopped_at < period.until,
        )
        .group_by(Ticket.team_id)
    )
    ratings = (
        select(Ticket.team_id, func.count(), func.avg(Feedback.rating))
        .join(Ticket, Ticket.id == Feedback.ticket_id)
        .where(
            Ticket.team_id.in_(ids),
            Ticket.solved_at >= period.since,
            Ticket.solved_at < period.until,
        )
        .group_by(Ticket.team_id)
    )
    return {
        "sla": {team: (n, kept) for team, n, kept in db.session.execute(clocks)},
        "csat": {team: (n, avg) for team, n, avg in db.session.execute(ratings)},
    }


def _members(ids: list[int]) -> dict[int, list[tuple[int, str]]]:
    stmt = (
        select(TeamMembership.team_id, User.id, User.name)
        .join(User, User.id == TeamMembership.user_id)
        .where(TeamMembership.team_id.in_(ids))
        .order_by(TeamMembership.team_id, User.id)
    )
    members: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for team_id, user_id, name in db.session.execute(stmt):
        members[team_id].append((user_id, name))
    return members


def _ratio(part: float, whole: float, scale: float = 1.0) -> float | None:
    return round(scale * part / whole, 4) if whole else None


def team_report(
    actor: User, *, start: date, end: date, team_id: int | None = None
) -> dict[str, Any]:
    """The report of every team ``actor`` may see (or of ``team_id``) over start..end."""
    period = Period(start, end)
    teams = _visible_teams(actor, team_id)
    ids = [t.id for t in teams]
    counts = _team_counts(ids, period) if ids else defaultdict(dict)
    times = _response_times(ids, period) if ids else defaultdict(dict)
    trend = _backlog_trend(ids, period) if ids else {}
    quality = _sla_and_csat(ids, period) if ids else defaultdict(dict)
    members = _members(ids) if ids else {}
    empty = {name: None for name, _ in PERCENTILES}
    return {
        "start": start,
        "end": end,
        "teams": [
            _team_entry(team, period, counts, times, trend, quality, members, empty)
            for team in teams
        ],
    }


def _team_entry(
    team: Team,
    period: Period,
    counts: dict[str, dict[Any, int]],
    times: dict[str, dict[Any, dict[str, Any]]],
    trend: dict[int, dict[date, int]],
    quality: dict[str, dict[int, Any]],
    members: dict[int, list[tuple[int, str]]],
    empty: dict[str, None],
) -> dict[str, Any]:
    tid = team.id
    solved = counts["solved"].get(tid, 0)
    clocks, kept = quality["sla"].get(tid, (0, 0))
    ratings, average = quality["csat"].get(tid, (0, None))
    first_response = times["first_response"].get(tid, empty)
    resolution = times["resolution"].get(tid, empty)
    days = trend.get(tid, {})
    return {
        "team_id": tid,
        "team_name": team.name,
        "created": counts["created"].get(tid, 0),
        "solved": solved,
        "backlog_now": counts["backlog_now"].get(tid, 0),
        "backlog_trend": [{"day": d, "open": days.get(d, 0)} for d in period.days],
        "first_response_seconds_p50": first_response["p50"],
        "first_response_seconds_p90": first_response["p90"],
        "resolution_seconds_p50": resolution["p50"],
        "resolution_seconds_p90": resolution["p90"],
        "sla_clocks_stopped": clocks,
        "sla_compliance_percent": _ratio(kept, clocks, 100),
        "csat_ratings": ratings,
        "csat_average": _rounded(average),
        "csat_response_rate": _ratio(ratings, solved),
        "agents": [
            {
                "user_id": uid,
                "name": name,
                "open_assigned": counts["agent_open"].get((tid, uid), 0),
                "solved": counts["agent_solved"].get((tid, uid), 0),
                "first_response_seconds_p50": times["agent_first_response"].get((tid, uid), empty)[
                    "p50"
                ],
            }
            for uid, name in members.get(tid, [])
        ],
    }
