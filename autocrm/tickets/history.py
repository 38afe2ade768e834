"""A ticket's history in words people read: "Priority changed from Normal to High by Ann Admin",
"Assigned to Alex Agent by round robin", "Reopened because the customer replied".

Each trail entry (``TicketEvent``) gets a one-line ``summary`` and, for automated changes, the
``why``: the rule's description and the conditions that held, which pages show behind a toggle.
One change that both sets the assignee (``ticket.updated``) and announces it
(``ticket.assigned``) is one line: the announcement's summary is None, so nothing reads twice.
The workspace, the REST trail and the realtime ``trail`` event all use these words
(``representation.trail_views``); names are read in bulk, whatever the number of entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from autocrm.engine.versions import engine_for_version, version_numbers
from autocrm.extensions import db
from autocrm.people.models import Team, User
from autocrm.tickets.models import Ticket, TicketEvent
from autocrm.transaction import held_values
from workflows.engine import CompiledWorkflow

METRIC_LABELS = {
    "first_response": "first response",
    "next_reply": "next reply",
    "resolution": "resolution",
}
ASSIGNMENT_POLICIES = {"round_robin": "round robin", "least_open": "least-open assignment"}
OPERATORS = {
    "eq": "is",
    "ne": "is not",
    "in": "is one of",
    "not_in": "is none of",
    "gt": "is more than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "is_null": "is empty",
    "not_null": "is set",
    "contains": "contains",
    "policy": "assigns by",
    "due": "was due at",
}
SINCE = {
    "solved_at": "it was solved",
    "created_at": "it was opened",
    "updated_at": "its last change",
}


@dataclass(frozen=True)
class HistoryLine:
    summary: str | None  # None: the entry before it says it already
    why: list[str] = field(default_factory=list)


@dataclass
class Names:
    """What the lines of some entries name, read in bulk (``load_names``)."""

    users: dict[int, str]
    teams: dict[int, str]
    engines: dict[int, CompiledWorkflow]  # ticket id -> its workflow
    rule_versions: dict[int, CompiledWorkflow]  # workflow version id -> the workflow
    version_numbers: dict[int, int]

    def user(self, user_id: Any) -> str:
        if user_id is None:
            return "nobody"
        return self.users.get(user_id, f"user #{user_id}")

    def team(self, team_id: Any) -> str:
        if team_id is None:
            return "no team"
        return self.teams.get(team_id, f"team #{team_id}")


def describe_entries(
    entries: Sequence[TicketEvent], names: Names | None = None
) -> list[HistoryLine]:
    """Each entry's line, in order; ``names``: ``load_names(entries)`` if the caller has it."""
    if not entries:
        return []
    names = names or load_names(entries)
    lines = []
    previous: TicketEvent | None = None
    for entry in entries:
        if _repeats(previous, entry):
            lines.append(HistoryLine(None))
        else:
            lines.append(_line(entry, names))
        previous = entry
    return lines


def _repeats(previous: TicketEvent | None, entry: TicketEvent) -> bool:
    """An assignment announced right after the field change that made it (one change)."""
    if previous is None or entry.kind != "ticket.assigned" or previous.kind != "ticket.updated":
        return False
    change = (previous.data.get("changes") or {}).get("assignee_id")
    return (
        previous.ticket_id == entry.ticket_id
        and previous.actor_id == entry.actor_id
        and isinstance(change, list)
        and len(change) == 2
        and change[1] == entry.data.get("assignee_id")
    )


# -- loading names in bulk ---------------------------------------------------------------------


def ticket_workflow_versions(ticket_ids: set[int]) -> dict[int, int]:
    """Each ticket's workflow version id (read only for the tickets the session lacks)."""
    versions: dict[int, int] = held_values(Ticket, ticket_ids, "workflow_version_id")
    if missing := ticket_ids - versions.keys():
        stmt = select(Ticket.id, Ticket.workflow_version_id).where(Ticket.id.in_(missing))
        versions.update({row[0]: row[1] for row in db.session.execute(stmt)})
    return versions


def team_names(team_ids: set[int]) -> dict[int, str]:
    """The teams' names; those the session holds (a page's list of teams) are not read again."""
    names: dict[int, str] = held_values(Team, team_ids, "name")
    if missing := team_ids - names.keys():
        rows = db.session.execute(select(Team.id, Team.name).where(Team.id.in_(missing)))
        names.update({row[0]: row[1] for row in rows})
    return names


def load_names(entries: Sequence[TicketEvent]) -> Names:
    """The people, teams and workflows the entries name (their actors and tickets' too)."""
    user_ids: set[int] = set()
    team_ids: set[int] = set()
    rule_version_ids: set[int] = set()
    for entry in entries:
        data = entry.data or {}
        mentioned = (entry.actor_id, data.get("assignee_id"), data.get("user_id"))
        user_ids |= {i for i in mentioned if isinstance(i, int)}
        if isinstance(data.get("team_id"), int):
            team_ids.add(data["team_id"])
        changes = data.get("changes") or {}
        user_ids |= {i for i in changes.get("assignee_id") or [] if isinstance(i, int)}
        team_ids |= {i for i in changes.get("team_id") or [] if isinstance(i, int)}
        cause = _cause(entry)
        if cause and isinstance(cause.get("workflow_version"), int):
            rule_version_ids.add(cause["workflow_version"])
    users: dict[int, str] = held_values(User, user_ids, "name")
    if missing := user_ids - users.keys():
        rows = db.session.execute(select(User.id, User.name).where(User.id.in_(missing)))
        users.update({row[0]: row[1] for row in rows})
    teams = team_names(team_ids)
    versions = ticket_workflow_versions({e.ticket_id for e in entries})
    return Names(
        users=users,
        teams=teams,
        engines={ticket_id: engine_for_version(version) for ticket_id, version in versions.items()},
        rule_versions={v: engine_for_version(v) for v in rule_version_ids},
        version_numbers=version_numbers(rule_version_ids),
    )


def _cause(entry: TicketEvent) -> dict[str, Any] | None:
    cause = (entry.data or {}).get("cause")
    return cause if isinstance(cause, dict) else None


# -- one line ------------------------------------------------------------------------------------


def _line(entry: TicketEvent, names: Names) -> HistoryLine:
    what = _what(entry, names)
    cause = _cause(entry)
    if cause is None:
        if entry.actor_id is not None:
            return HistoryLine(f"{what} by {names.user(entry.actor_id)}")
        return HistoryLine(f"{what} automatically" if entry.kind.startswith("ticket.") else what)
    reason, why = _reason(cause, names)
    if entry.kind.startswith("sla."):  # the deadline itself is the reason
        return HistoryLine(what, why)
    return HistoryLine(f"{what} {reason}", why)


def _what(entry: TicketEvent, names: Names) -> str:
    data = entry.data or {}
    kind = entry.kind
    if kind == "ticket.created":
        return "Opened"
    if kind in {"ticket.transitioned", "workflow.migrated"}:
        return _moved(entry, names)
    if kind == "ticket.updated":
        return _changed(data.get("changes") or {}, names)
    if kind == "ticket.assigned":
        assignee = data.get("assignee_id")
        return f"Assigned to {names.user(assignee)}" if assignee else "Unassigned"
    if kind in {"sla.warning", "sla.breached"}:
        metric = METRIC_LABELS.get(str(data.get("metric")), str(data.get("metric")))
        what = "is due soon" if kind == "sla.warning" else "was missed"
        return f"The {metric} target {what}"
    if kind in {"follower.added", "follower.removed"}:
        verb = "Added" if kind == "follower.added" else "Removed"
        return f"{verb} follower {names.user(data.get('user_id'))}"
    if kind == "ticket.merged":
        source, target = data.get("source_id"), data.get("target_id")
        if entry.ticket_id == source:
            return f"Merged into #{target}"
        return f"Merged #{source} into this ticket"
    if kind in {"ticket.linked", "ticket.unlinked"}:
        verb = "Linked to" if kind == "ticket.linked" else "Unlinked from"
        return f"{verb} #{data.get('linked_id')}"
    if kind == "feedback.created":
        return f"The customer rated the help {data.get('rating')}/5"
    if kind == "automation.failed":
        return f"An automated action failed: {data.get('error')}"
    if kind == "attachment.quarantined":
        return f"{data.get('filename')} quarantined: malware found ({data.get('signature')})"
    return kind.replace(".", " ").replace("_", " ").capitalize()


def _moved(entry: TicketEvent, names: Names) -> str:
    engine = names.engines.get(entry.ticket_id)
    labels = engine.state_labels if engine else {}
    categories = engine.categories if engine else {}
    to_state = entry.to_state or ""
    label = labels.get(to_state, to_state.replace("_", " ").capitalize())
    before, after = categories.get(entry.from_state or ""), categories.get(to_state)
    if entry.kind == "workflow.migrated":
        return f"Moved onto workflow version {entry.data.get('to_version')} (now {label})"
    if after == "solved" and before != "solved":
        return "Solved"
    if after == "closed" and before != "closed":
        return "Closed"
    if after in {"open", "new"} and before in {"pending", "solved", "closed"}:
        return "Reopened"
    if after == "open" and before == "new":
        return "Work started"
    return f"Set to {label}"


def _changed(changes: dict[str, Any], names: Names) -> str:
    parts = []
    # By name: a change read back from PostgreSQL's jsonb has its keys sorted, and the live
    # event's entry must read the same as the fetched one.
    for name, pair in sorted(changes.items()):
        old, new = pair if isinstance(pair, list) and len(pair) == 2 else (None, pair)
        if name == "priority":
            parts.append(f"Priority changed from {_label(old)} to {_label(new)}")
        elif name == "assignee_id":
            parts.append(f"Assigned to {names.user(new)}" if new else "Unassigned")
        elif name == "team_id":
            parts.append(
                f"Moved to {names.team(new)}" if new is not None else "Taken out of its team"
            )
        elif name == "tags":
            parts.append(_tags(old or [], new or []))
        elif name == "form_id":
            parts.append("Request form changed" if new is not None else "Request form removed")
        else:
            parts.append(f"{name.replace('_', ' ').capitalize()} changed")
    return "; ".join(parts) or "Changed"


def _label(value: Any) -> str:
    return str(value).capitalize() if value else "none"


def _tags(old: list[str], new: list[str]) -> str:
    added = [t for t in new if t not in old]
    removed = [t for t in old if t not in new]
    parts = []
    if added:
        parts.append("Tagged " + ", ".join(added))
    if removed:
        parts.append(("untagged " if added else "Untagged ") + ", ".join(removed))
    return " and ".join(parts) or "Tags changed"


# -- why automation did it -----------------------------------------------------------------------


def _reason(cause: dict[str, Any], names: Names) -> tuple[str, list[str]]:
    """The short reason for the main line, and the details behind the toggle."""
    rule = str(cause.get("rule") or "")
    because = [c for c in cause.get("because") or [] if isinstance(c, dict)]
    conditions = [_condition(c) for c in because]
    if rule.startswith("assignment:"):
        policy = rule.removeprefix("assignment:")
        words = ASSIGNMENT_POLICIES.get(policy, policy.replace("_", " "))
        teams = [str(c.get("actual")) for c in because if c.get("field") == "team"]
        return f"by {words}", [f"Team {team} assigns by {words}." for team in teams]
    if rule.startswith("sla."):
        metric, _, what = rule.removeprefix("sla.").rpartition(".")
        label = METRIC_LABELS.get(metric, metric.replace("_", " "))
        missed = "was missed" if what in {"breach", "breached"} else "was due soon"
        return f"because the {label} target {missed}", conditions
    definition = _rule_definition(cause, names)
    version = names.version_numbers.get(cause.get("workflow_version") or 0)
    origin = f"Rule “{rule}”" + (f" of workflow version {version}" if version else "")
    description = (definition or {}).get("description")
    why = [f"{origin}: {description}" if description else origin, *conditions]
    return _rule_reason(rule, definition, because), why


def _rule_definition(cause: dict[str, Any], names: Names) -> dict[str, Any] | None:
    engine = names.rule_versions.get(cause.get("workflow_version") or 0)
    if engine is None:
        return None
    for rule in engine.definition.get("rules") or []:
        if rule.get("name") == cause.get("rule"):
            return dict(rule)
    return None


def _rule_reason(
    rule: str, definition: dict[str, Any] | None, because: list[dict[str, Any]]
) -> str:
    held = {c.get("field"): c.get("actual") for c in because}
    if "event.author_role" in held and (definition or {}).get("event") == "message.created":
        role = held["event.author_role"]
        return "because the customer replied" if role == "customer" else "because an agent replied"
    after = (definition or {}).get("after")
    if isinstance(after, dict):
        since = str(after.get("since") or "")
        moment = SINCE.get(since, since.removesuffix("_at").replace("_", " "))
        return f"because {_delay(after)} passed since {moment}"
    return f"by the rule “{rule}”"


def _delay(after: dict[str, Any]) -> str:
    parts = []
    for unit in ("days", "hours", "minutes", "seconds"):
        amount = after.get(unit) or 0
        if amount:
            number = int(amount) if float(amount).is_integer() else amount
            parts.append(f"{number} {unit if number != 1 else unit[:-1]}")
    return " ".join(parts) or "no time"


def _condition(condition: dict[str, Any]) -> str:
    words = OPERATORS.get(str(condition.get("op")), str(condition.get("op")))
    value = condition.get("value")
    shown = "" if condition.get("op") in {"is_null", "not_null"} else f" {_value(value)}"
    actual = condition.get("actual")
    was = "" if actual == value else f" (it was {_value(actual)})"
    return f"{condition.get('field')} {words}{shown}{was}"


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value)
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
