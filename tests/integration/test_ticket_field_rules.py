"""Custom fields in the workflow engine: rule conditions on ``fields.<key>`` (event rules and
the time-rule sweep), the ``set_field`` action, draft validation of both, and the simulator
replaying field changes without false differences."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from autocrm.automation import sweep
from autocrm.columns import utcnow
from autocrm.engine.drafts import check_definition
from autocrm.engine.simulation import load_histories
from autocrm.fields import definitions
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Ticket, TicketEvent
from tests.factories import drain
from tests.integration.test_automation import use_workflow
from workflows.definition import default_definition
from workflows.simulate import simulate


def make_fields(factory: Any) -> None:
    admin = factory.admin()
    definitions.do_create_field(
        admin,
        {
            "key": "product",
            "label": "Product",
            "type": "dropdown",
            "options": [{"value": "printer"}, {"value": "scanner"}],
        },
    )
    definitions.do_create_field(
        admin,
        {"key": "areas", "label": "Areas", "type": "multi_select", "options": [{"value": "ui"}]},
    )
    definitions.do_create_field(admin, {"key": "vip", "label": "VIP", "type": "checkbox"})


def with_rules(*rules: dict[str, Any]):
    def edit(definition: dict[str, Any]) -> None:
        definition["rules"] = [*definition["rules"], *rules]

    return edit


def test_a_rule_routes_by_a_dropdown_field_and_sets_another(factory, db_session):
    make_fields(factory)
    printers = factory.team("Printers")
    use_workflow(
        db_session,
        with_rules(
            {
                "name": "route_printers",
                "event": "ticket.updated",
                "if": [{"field": "fields.product", "op": "eq", "value": "printer"}],
                "then": [
                    {"action": "assign_team", "team_id": printers.id},
                    {"action": "set_field", "value": "vip=true"},
                    {"action": "set_field", "value": "areas=ui"},
                ],
            },
        ),
    )
    agent = factory.agent()
    printer = factory.ticket(factory.customer())
    scanner = factory.ticket(factory.customer())
    tickets.do_update_ticket(agent, printer.id, {"fields": {"product": "printer"}})
    tickets.do_update_ticket(agent, scanner.id, {"fields": {"product": "scanner"}})
    drain(db_session)
    routed = db_session.get(Ticket, printer.id)
    assert routed.team_id == printers.id
    assert routed.custom_fields == {"product": "printer", "vip": True, "areas": ["ui"]}
    assert db_session.get(Ticket, scanner.id).team_id is None
    [set_by_rule] = [
        e
        for e in db_session.scalars(
            select(TicketEvent).where(
                TicketEvent.ticket_id == printer.id, TicketEvent.kind == "ticket.updated"
            )
        )
        if "fields.vip" in e.data["changes"]
    ]
    assert set_by_rule.actor_id is None
    assert set_by_rule.data["cause"]["rule"] == "route_printers"


def test_a_set_field_naming_no_field_is_recorded_as_failed_and_the_rest_happens(
    factory, db_session
):
    make_fields(factory)
    use_workflow(
        db_session,
        with_rules(
            {
                "name": "broken",
                "event": "ticket.created",
                "then": [
                    {"action": "set_field", "value": "gone=1"},
                    {"action": "add_tag", "tag": "seen"},
                ],
            }
        ),
    )
    ticket = factory.ticket(factory.customer())
    drain(db_session)
    assert db_session.get(Ticket, ticket.id).tags == ["seen"]
    failed = db_session.scalars(
        select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "automation.failed"
        )
    ).all()
    assert len(failed) == 1
    assert "gone=1" in str(failed[0].data["action"]) and failed[0].data["error"]


def test_the_time_rule_sweep_reads_field_conditions(factory, db_session):
    make_fields(factory)
    use_workflow(
        db_session,
        with_rules(
            {
                "name": "chase_vips",
                "after": {"hours": 1, "since": "created_at"},
                "if": [
                    {"field": "fields.vip", "op": "eq", "value": True},
                    {"field": "fields.areas", "op": "contains", "value": "ui"},
                ],
                "then": [{"action": "add_tag", "tag": "chased"}],
            }
        ),
    )
    agent = factory.agent()
    vip = factory.ticket(factory.customer())
    plain = factory.ticket(factory.customer())
    tickets.do_update_ticket(agent, vip.id, {"fields": {"vip": True, "areas": ["ui"]}})
    tickets.do_update_ticket(agent, plain.id, {"fields": {"vip": False, "areas": ["ui"]}})
    drain(db_session)
    sweep.do_sweep(utcnow() + timedelta(hours=2))
    assert "chased" in db_session.get(Ticket, vip.id).tags
    assert "chased" not in db_session.get(Ticket, plain.id).tags


def test_drafts_check_field_conditions_and_set_field_for_their_form():
    draft = copy.deepcopy(default_definition())
    draft["rules"].append(
        {
            "name": "by_field",
            "event": "ticket.created",
            "if": [{"field": "fields.product", "op": "eq", "value": "printer"}],
            "then": [{"action": "set_field", "value": "vip=true"}],
        }
    )
    assert check_definition(draft)[1] == {}
    bad = copy.deepcopy(draft)
    bad["rules"][-1]["if"][0]["field"] = "fields.Not A Key"
    bad["rules"][-1]["then"][0]["value"] = "no equals sign"
    errors = check_definition(bad)[1]
    assert any("Unknown field" in m for ms in errors.values() for m in ms), errors
    assert any("key=value" in m for ms in errors.values() for m in ms), errors


def test_the_simulator_replays_field_changes_without_false_differences(factory, db_session):
    make_fields(factory)
    rule = {
        "name": "tag_printers",
        "event": "ticket.updated",
        "if": [{"field": "fields.product", "op": "eq", "value": "printer"}],
        "then": [{"action": "add_tag", "tag": "printer"}],
    }
    use_workflow(db_session, with_rules(rule))
    ticket = factory.ticket(factory.customer())
    tickets.do_update_ticket(factory.agent(), ticket.id, {"fields": {"product": "printer"}})
    drain(db_session)
    assert db_session.get(Ticket, ticket.id).tags == ["printer"]
    [history] = [h for h in load_histories(5) if h["ticket_id"] == ticket.id]
    same = simulate(history["definition"], [history], utcnow())
    [report] = same.tickets
    assert not report.differs, report
    without = copy.deepcopy(history["definition"])
    without["rules"] = [r for r in without["rules"] if r["name"] != "tag_printers"]
    [changed] = simulate(without, [history], utcnow()).tickets
    # It fired twice: its own tag change was an update the rule saw again (and did nothing).
    assert {d.rule for d in changed.fired_would_not} == {"tag_printers"}
