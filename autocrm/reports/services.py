"""Team performance reports, aggregated in SQL.

Every figure is a GROUP BY over an index range that grows with the period, not with the
history: tickets by (team, created_at), (team, solved_at) and (team, closed_at), the open
backlog by (team, category), SLA clocks by stopped_at; a rating, and the team of a clock's
ticket, are looked up per row of that range through a unique index. Python only receives
per-team, per-agent and per-day aggregates, never ticket rows, so a report stays fast on a
million tickets (bench/report_bench.py measures it at 10k and 1M).

Definitions (the period is ``start`` 00:00 UTC up to the end of ``end``, both dates included):
- created / solved: tickets created / solved (``solved_at``) in the period;
- backlog_now: tickets of the team whose category is not solved or closed, now;
- backlog_trend: per day, tickets open at the end of that day (the UTC midnight closing it):
  created before it, and not done before it, where done is ``solved_at`` (or ``closed_at`` for
  a ticket closed without being solved). It is worked out backwards from backlog_now, so the
  last day of a period ending today equals backlog_now; a reopened ticket counts as open from
  its creation to its latest solve (or until now, if it is open);
- first response time: business seconds from creation to the first public staff reply, of the
  tickets created in the period that got one; resolution time: business seconds from creation
  to ``solved_at``, of the tickets solved in the period (a reopened ticket counts from creation
  to its latest solve). Both are measured in the ticket's business hours (its team's calendar,
  else its workflow SLA policy's: ``sla.calendar_for_ticket``) and stored on the ticket when
  they become known (``first_response_business_seconds``, ``resolution_business_seconds``);
  tickets answered or solved before migration 0007 carry wall-clock seconds. Percentiles
  interpolate linearly (PostgreSQL's ``percentile_cont``; the same formula on SQLite);
- SLA compliance: of the team's SLA clocks stopped in the period, the share never breached;
- CSAT: ratings of tickets solved in the period; response rate = ratings / solved;
- per agent (members of the team): open tickets of the team assigned to them now, tickets of
  the team they solved in the period, and their median first response (business seconds);
- with ``group_by=field.<key>`` (a dropdown), per team and option: created, solved, open now
  (``by_field``).
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
    Result,
    Select,
    case,
    cast,
    func,
    literal,
    select,
    text,
    union_all,
)

from autocrm import policies
from autocrm.errors import Forbidden, NotFound
from autocrm.extensions import db
from autocrm.people.models import Team, TeamMembership, User
from autocrm.reports import by_field
from autocrm.sla.models import SlaClock
from autocrm.tickets.models import Feedback, Ticket
from workflows.definition import CATEGORIES, DONE_CATEGORIES

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


def _day_of(column: Any) -> ColumnElement[Any]:
    return cast(column, Date) if _dialect() == "postgresql" else func.date(column)


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


def can_view_reports(actor: User) -> bool:
    """Whether ``actor`` sees any team report (the Reports link in the staff navigation)."""
    if policies.is_admin(actor):
        return True
    if policies.is_staff(actor) and actor.leads_a_team is not None:
        return actor.leads_a_team  # read with the web login (``policies.leads_a_team``)
    stmt = select(Team.id).where(policies.visible_report_teams(actor)).limit(1)
    return db.session.scalar(stmt) is not None


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def _per_row_lookups(stmt: Select[Any], name: str) -> Any:
    """``stmt``, whose columns look a value up per row (a correlated subquery on a unique
    index), as a CTE that is computed once.

    A join would let PostgreSQL's planner hash the whole other table (every ticket, every
    rating: work that grows with the history) rather than probe it once per row of the
    period; MATERIALIZED also keeps each lookup from being repeated for every aggregate that
    reads it.
    """
    return stmt.cte(name).prefix_with("MATERIALIZED")


def _team_counts(ids: list[int], period: Period) -> dict[str, dict[Any, Any]]:
    """Per team: created in the period; per team and assignee, added up into the team's
    figure (unassigned tickets included): open now, and solved in the period with ratings."""
    in_teams = Ticket.team_id.in_(ids)
    team, agent = Ticket.team_id, Ticket.assignee_id
    created = (
        select(team, func.count())
        .where(in_teams, Ticket.created_at >= period.since, Ticket.created_at < period.until)
        .group_by(team)
    )
    open_now = (
        select(team, agent, func.count())
        .where(in_teams, Ticket.category.in_(OPEN_CATEGORIES))
        .group_by(team, agent)
    )
    rating = select(Feedback.rating).where(Feedback.ticket_id == Ticket.id).scalar_subquery()
    solved = _per_row_lookups(
        select(team, agent, rating.label("rating")).where(
            in_teams, Ticket.solved_at >= period.since, Ticket.solved_at < period.until
        ),
        "solved",
    )
    solved_by_agent = select(
        solved.c.team_id,
        solved.c.assignee_id,
        func.count(),
        func.count(solved.c.rating),
        func.sum(solved.c.rating),
    ).group_by(solved.c.team_id, solved.c.assignee_id)
    counts: dict[str, dict[Any, Any]] = {
        "created": dict(db.session.execute(created).all()),
        "backlog_now": defaultdict(int),
        "agent_open": {},
        "solved": defaultdict(int),
        "agent_solved": {},
        "ratings": defaultdict(lambda: (0, 0)),
    }
    for team_id, assignee_id, n in db.session.execute(open_now):
        counts["backlog_now"][team_id] += n
        if assignee_id is not None:
            counts["agent_open"][(team_id, assignee_id)] = n
    # The CTE's columns are untyped; the rows' types are stated so that they unpack typed.
    solved_rows: Result[int | None, int | None, int, int, int | None]
    solved_rows = db.session.execute(solved_by_agent)
    for team_id, assignee_id, n, rated, total in solved_rows:
        counts["solved"][team_id] += n
        if assignee_id is not None:
            counts["agent_solved"][(team_id, assignee_id)] = n
        ratings, points = counts["ratings"][team_id]
        counts["ratings"][team_id] = (ratings + rated, points + (total or 0))
    return counts


def _response_times(ids: list[int], period: Period) -> dict[str, dict[Any, dict[str, Any]]]:
    in_teams = Ticket.team_id.in_(ids)
    first_response = (
        select(
            Ticket.team_id,
            Ticket.assignee_id,
            Ticket.first_response_business_seconds.label("d"),
        )
        .where(
            in_teams,
            Ticket.created_at >= period.since,
            Ticket.created_at < period.until,
            Ticket.first_response_business_seconds.is_not(None),
        )
        .subquery("first_response")
    )
    resolution = (
        select(Ticket.team_id, Ticket.resolution_business_seconds.label("d"))
        .where(
            in_teams,
            Ticket.solved_at >= period.since,
            Ticket.solved_at < period.until,
            Ticket.resolution_business_seconds.is_not(None),
        )
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


def _per_day(moments: Any, period: Period) -> dict[int, dict[date | None, int]]:
    """``{team: {day: n}}``: the sum of ``n`` over ``moments`` (rows ``team_id, at, n``) from
    the period's start, one bucket per day of the period and ``None`` for all after it."""
    bucketed = select(
        moments.c.team_id,
        case((moments.c.at < period.until, _day_of(moments.c.at)), else_=None).label("b"),
        moments.c.n,
    ).subquery("bucketed")
    # Grouped outside the CASE's query: PostgreSQL would not match a GROUP BY that repeats the
    # CASE, since each copy gets its own bound parameters.
    stmt = select(bucketed.c.team_id, bucketed.c.b, func.sum(bucketed.c.n)).group_by(
        bucketed.c.team_id, bucketed.c.b
    )
    counts: dict[int, dict[date | None, int]] = defaultdict(dict)
    rows: Result[int, Any, int] = db.session.execute(stmt)
    for team_id, bucket, n in rows:
        counts[team_id][None if bucket is None else _as_date(bucket)] = int(n)
    return counts


def _backlog_trend(
    ids: list[int], period: Period, backlog_now: dict[Any, int]
) -> dict[int, dict[date, int]]:
    """Open at the end of day d = open now - created after d + done after d.

    Worked backwards from the open backlog (counted by category), so only tickets created,
    solved or closed since the period's start are read, bucketed per team and day: index ranges
    on (team, created_at), (team, solved_at) and (team, closed_at).
    The services clear solved_at and closed_at when a ticket leaves the done categories, so
    "done" needs no look at the category.
    """
    in_teams = Ticket.team_id.in_(ids)
    one = literal(1).label("n")
    created = select(Ticket.team_id, Ticket.created_at.label("at"), one).where(
        in_teams, Ticket.created_at >= period.since
    )
    done = union_all(
        select(Ticket.team_id, Ticket.solved_at.label("at"), one).where(
            in_teams, Ticket.solved_at >= period.since
        ),
        # Counted in the SELECT, not filtered in the WHERE: given "solved_at IS NULL", SQLite
        # (without statistics) walks the index on solved_at through every unsolved ticket.
        select(
            Ticket.team_id,
            Ticket.closed_at.label("at"),
            case((Ticket.solved_at.is_(None), 1), else_=0).label("n"),
        ).where(in_teams, Ticket.closed_at >= period.since),
    )
    created_per_day = _per_day(created.subquery("created"), period)
    done_per_day = _per_day(done.subquery("done"), period)
    trend: dict[int, dict[date, int]] = {}
    for team_id in ids:
        open_now = backlog_now.get(team_id, 0)
        created_after = created_per_day[team_id].get(None, 0)
        done_after = done_per_day[team_id].get(None, 0)
        days: dict[date, int] = {}
        for day in reversed(period.days):
            days[day] = open_now - created_after + done_after
            created_after += created_per_day[team_id].get(day, 0)
            done_after += done_per_day[team_id].get(day, 0)
        trend[team_id] = days
    return trend


def _sla_clocks(ids: list[int], period: Period) -> dict[int, tuple[int, int]]:
    """Per team: SLA clocks stopped in the period, and how many of them were never breached."""
    # Counted per ticket first: a ticket's clocks (about two per ticket) share one lookup.
    per_ticket = (
        select(
            SlaClock.ticket_id,
            func.count().label("n"),
            func.count(case((SlaClock.breached_at.is_(None), 1))).label("kept"),
        )
        .where(SlaClock.stopped_at >= period.since, SlaClock.stopped_at < period.until)
        .group_by(SlaClock.ticket_id)
        .subquery("per_ticket")
    )
    ticket_team = (
        select(Ticket.team_id).where(Ticket.id == per_ticket.c.ticket_id).scalar_subquery()
    )
    stopped = _per_row_lookups(
        select(ticket_team.label("team_id"), per_ticket.c.n, per_ticket.c.kept), "stopped"
    )
    clocks = (
        select(stopped.c.team_id, func.sum(stopped.c.n), func.sum(stopped.c.kept))
        .where(stopped.c.team_id.in_(ids))
        .group_by(stopped.c.team_id)
    )
    rows: Result[int, int, int] = db.session.execute(clocks)
    return {team: (int(n), int(kept)) for team, n, kept in rows}


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
    actor: User,
    *,
    start: date,
    end: date,
    team_id: int | None = None,
    group_by: str | None = None,
) -> dict[str, Any]:
    """The report of every team ``actor`` may see (or of ``team_id``) over start..end; with
    ``group_by``, each team's figures per option of that dropdown field too."""
    field = by_field.check_group_by(actor, group_by) if group_by else None
    period = Period(start, end)
    teams = _visible_teams(actor, team_id)
    ids = [t.id for t in teams]
    if ids and _dialect() == "postgresql":
        # PostgreSQL JIT-compiles any statement whose estimated cost passes jit_above_cost,
        # which the per-row lookups below reach; compiling takes longer than they run.
        db.session.execute(text("SET LOCAL jit = off"))
    counts = _team_counts(ids, period) if ids else defaultdict(dict)
    times = _response_times(ids, period) if ids else defaultdict(dict)
    trend = _backlog_trend(ids, period, counts["backlog_now"]) if ids else {}
    sla = _sla_clocks(ids, period) if ids else {}
    members = _members(ids) if ids else {}
    empty = {name: None for name, _ in PERCENTILES}
    report: dict[str, Any] = {
        "start": start,
        "end": end,
        "teams": [
            _team_entry(team, period, counts, times, trend, sla, members, empty) for team in teams
        ],
    }
    if field is not None:
        groups = by_field.field_groups(ids, period.since, period.until, OPEN_CATEGORIES, field)
        report["group_by"] = {"key": field.key, "label": field.label}
        for entry in report["teams"]:
            entry["by_field"] = groups.get(entry["team_id"], [])
    return report


def _team_entry(
    team: Team,
    period: Period,
    counts: dict[str, dict[Any, Any]],
    times: dict[str, dict[Any, dict[str, Any]]],
    trend: dict[int, dict[date, int]],
    sla: dict[int, tuple[int, int]],
    members: dict[int, list[tuple[int, str]]],
    empty: dict[str, None],
) -> dict[str, Any]:
    tid = team.id
    solved = counts["solved"].get(tid, 0)
    clocks, kept = sla.get(tid, (0, 0))
    ratings, points = counts["ratings"].get(tid, (0, 0))
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
        "csat_average": _rounded(points / ratings) if ratings else None,
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
