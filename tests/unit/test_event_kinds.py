"""The event spine's tables agree with each other and with the rule vocabulary: every handler
named in ``HANDLERS`` exists and takes an event, every consumed kind is a typed event, and
every event a workflow rule may react to reaches the rules."""

from __future__ import annotations

import inspect

from autocrm.events.handlers import HANDLERS, RULES, resolve
from autocrm.events.kinds import KINDS, EmailRequested, TicketTransitioned, from_row
from autocrm.events.models import OutboxEvent
from workflows import vocabulary


def test_every_handler_in_the_table_resolves_to_a_function_of_one_event():
    for kind, names in HANDLERS.items():
        assert kind in KINDS, f"{kind} is handled but is no typed event"
        for name in names:
            handler = resolve(name)
            assert len(inspect.signature(handler).parameters) == 1, name


def test_every_kind_a_rule_may_name_runs_the_rules():
    for kind in vocabulary.EVENTS:
        assert RULES in HANDLERS.get(kind, []), f"rules never see {kind}"


def test_an_event_survives_its_outbox_row():
    event = TicketTransitioned(
        ticket_id=7,
        actor_id=3,
        actor_role="agent",
        transition="solve",
        from_state="open",
        to_state="solved",
        to_category="solved",
        change_id="c1",
        cause=None,
    )
    row = OutboxEvent(id=event.id, kind=event.kind, payload=event.payload())
    assert from_row(row) == event
    assert "id" not in event.payload()


def test_a_row_written_by_an_older_version_with_a_field_since_dropped_still_reads():
    row = OutboxEvent(
        id="e1", kind="email.requested", payload={"email_id": 4, "change_id": "c", "gone": 1}
    )
    assert from_row(row) == EmailRequested(id="e1", email_id=4, change_id="c", cause=None)
