"""SLA escalations: what a workflow's SLA policy does when a clock warns or is breached.

The sweep records the warning or breach (``sla.warning`` / ``sla.breached``) in the transaction
that claims the clock; the policy's actions run here, in a worker, on the escalations queue, so
that breaches fire in parallel and a slow action never holds up the sweep.
"""

from __future__ import annotations

from autocrm.automation.actions import run_actions
from autocrm.events.kinds import SlaDue, SlaWarned
from autocrm.extensions import db
from autocrm.sla import clocks as sla
from autocrm.sla.models import SlaClock
from autocrm.tickets.models import Ticket
from workflows import rules


def run_sla_escalation(event: SlaDue) -> None:
    clock = db.session.get(SlaClock, event.clock_id)
    if clock is None:
        return
    warning = isinstance(event, SlaWarned)
    if warning and (clock.stopped_at is not None or clock.breached_at is not None):
        return  # met, or breached, since the warning fell due: the warning is stale
    policy = sla.policy_of(clock.workflow_version_id) or {}
    cause = event.cause or {}
    match = rules.RuleMatch(
        rule=cause.get("rule", f"sla.{clock.metric}"),
        actions=policy.get("on_warning" if warning else "on_breach", []),
        because=cause.get("because", []),
    )
    what = "warning" if warning else "breach"
    run_actions(
        db.session.get_one(Ticket, event.ticket_id),
        match,
        version=clock.workflow_version_id,
        depth=event.depth,
        dedupe=f"sla:{clock.id}:{what}",
    )
