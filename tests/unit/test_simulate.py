"""The simulator: replaying recorded ticket histories under a draft shows exactly where the
draft would behave differently (rules, time rules, SLA outcomes), and nothing where it would not."""

import copy
from datetime import UTC, datetime, timedelta

from workflows import default_definition, load_definition
from workflows.simulate import RuleDifference, SlaOutcome, simulate, simulate_ticket

MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday; the default calendar opens at 8


def at(minutes: float, days: float = 0) -> datetime:
    return MONDAY_9 + timedelta(days=days, minutes=minutes)


def draft(change=None) -> dict:
    raw = copy.deepcopy(default_definition())
    if change:
        change(raw)
    return load_definition(raw)


def rule_named(raw: dict, name: str) -> dict:
    return next(r for r in raw["rules"] if r["name"] == name)


def history(**overrides) -> dict:
    """A normal-priority ticket as the default workflow ran it: created, an agent's first reply
    started it (rule), solved an hour in (feedback requested by rule); one day later."""
    base = {
        "ticket_id": 1,
        "created_at": at(0),
        "priority": "normal",
        "requester_id": 5,
        "channel": "web",
        "tags": [],
        "events": [
            {
                "kind": "ticket.created",
                "at": at(0),
                "payload": {"actor_role": "customer", "to_state": "new", "priority": "normal"},
            },
            {
                "kind": "message.created",
                "at": at(30),
                "payload": {"actor_role": "agent", "author_role": "agent", "internal": False},
            },
            {
                "kind": "ticket.transitioned",
                "at": at(30.01),
                "payload": {
                    "actor_role": None,
                    "transition": "start",
                    "from_state": "new",
                    "to_state": "open",
                    "to_category": "open",
                    "cause": {"rule": "start_on_first_agent_reply", "depth": 1},
                },
            },
            {
                "kind": "ticket.transitioned",
                "at": at(60),
                "payload": {
                    "actor_role": "agent",
                    "transition": "solve",
                    "from_state": "open",
                    "to_state": "solved",
                    "to_category": "solved",
                },
            },
        ],
        "fired": [
            {"rule": "start_on_first_agent_reply", "at": at(30.01)},
            {"rule": "ask_for_feedback", "at": at(60.02)},
        ],
        "sla": {"first_response_at": at(30), "solved_at": at(60), "breaches": []},
    }
    return {**base, **overrides}


NOW = at(0, days=1)


def test_the_workflow_that_ran_shows_no_differences():
    report = simulate(draft(), [history()], NOW)

    assert report.simulated == 1
    assert report.with_differences == 0
    [ticket] = report.tickets
    assert ticket.would_fire_not_fired == []
    assert ticket.fired_would_not == []
    assert ticket.sla["first_response"].actual == ticket.sla["first_response"].draft == "met"
    assert ticket.sla["resolution"].actual == ticket.sla["resolution"].draft == "met"


def test_an_added_rule_shows_where_it_would_have_fired():
    def add_rule(raw):
        raw["rules"].append(
            {
                "name": "tag_normal",
                "event": "ticket.created",
                "if": [{"field": "ticket.priority", "op": "eq", "value": "normal"}],
                "then": [{"action": "add_tag", "tag": "plain"}],
            }
        )

    ticket = simulate_ticket(draft(add_rule), history(), NOW)

    assert ticket.would_fire_not_fired == [RuleDifference("tag_normal", at(0), "ticket.created")]
    assert ticket.fired_would_not == []
    assert ticket.differs


def test_an_added_rule_whose_conditions_do_not_hold_changes_nothing():
    def add_rule(raw):
        raw["rules"].append(
            {
                "name": "tag_urgent",
                "event": "ticket.created",
                "if": [{"field": "ticket.priority", "op": "eq", "value": "urgent"}],
                "then": [{"action": "add_tag", "tag": "hot"}],
            }
        )

    assert not simulate_ticket(draft(add_rule), history(), NOW).differs


def test_a_removed_rule_shows_where_it_fired():
    def remove(raw):
        raw["rules"].remove(rule_named(raw, "start_on_first_agent_reply"))

    ticket = simulate_ticket(draft(remove), history(), NOW)

    assert ticket.fired_would_not == [
        RuleDifference("start_on_first_agent_reply", at(30.01), "message.created")
    ]
    assert ticket.would_fire_not_fired == []


def test_a_changed_condition_sees_the_replayed_ticket_and_event():
    def internal_only(raw):
        rule = rule_named(raw, "start_on_first_agent_reply")
        rule["if"][1]["value"] = True  # event.internal eq true: a public reply no longer counts

    ticket = simulate_ticket(draft(internal_only), history(), NOW)

    assert [d.rule for d in ticket.fired_would_not] == ["start_on_first_agent_reply"]


def test_a_worker_that_lagged_behind_the_next_event_is_not_a_difference():
    lagging = history()
    lagging["fired"][1] = {"rule": "ask_for_feedback", "at": at(61)}  # handled late ...
    lagging["events"].append(  # ... after the customer had already written again
        {
            "kind": "message.created",
            "at": at(60.5),
            "payload": {"actor_role": "customer", "author_role": "customer", "internal": False},
        }
    )

    assert not simulate_ticket(draft(), lagging, NOW).differs


def test_a_tighter_sla_target_turns_met_into_breached():
    def tighter(raw):
        raw["sla"]["targets"]["normal"]["first_response"] = 10

    ticket = simulate_ticket(draft(tighter), history(), NOW)

    assert ticket.sla["first_response"] == SlaOutcome("met", "breached", at(10))
    assert ticket.sla["resolution"].draft == "met"
    assert ticket.differs


def test_sla_targets_follow_the_priority_in_force_and_count_business_hours():
    urgent = history(
        created_at=at(-120),  # Monday 07:00: the calendar opens at 08:00
        events=[
            {
                "kind": "ticket.created",
                "at": at(-120),
                "payload": {"actor_role": "customer", "to_state": "new", "priority": "normal"},
            },
            {
                "kind": "ticket.updated",
                "at": at(-100),
                "payload": {"actor_role": "agent", "changes": {"priority": ["normal", "urgent"]}},
            },
        ],
        fired=[],
        sla={"first_response_at": None, "solved_at": None, "breaches": []},
    )

    ticket = simulate_ticket(draft(), urgent, now=at(30))  # 09:30: 90 business minutes in

    # Urgent first response is 60 business minutes: due 09:00, not 08:00.
    assert ticket.sla["first_response"] == SlaOutcome("open", "breached", at(0))
    assert ticket.sla["resolution"] == SlaOutcome(
        "open", "open", at(0, days=0) + timedelta(hours=7)
    )


def test_a_recorded_breach_the_draft_would_meet():
    def looser(raw):
        raw["sla"]["targets"]["normal"]["resolution"] = 10_000

    late = history(
        sla={"first_response_at": at(30), "solved_at": at(60), "breaches": ["resolution"]}
    )

    ticket = simulate_ticket(draft(looser), late, NOW)

    assert ticket.sla["resolution"].actual == "breached"
    assert ticket.sla["resolution"].draft == "met"


def test_no_sla_policy_in_the_draft_means_no_clock():
    def no_sla(raw):
        raw["sla"] = None

    ticket = simulate_ticket(draft(no_sla), history(), NOW)

    assert ticket.sla["first_response"] == SlaOutcome("met", "none", None)


# -- time-based rules ---------------------------------------------------------------------------


def solved_and_closed_by_time_rules() -> dict:
    """Solved at 10:00 on day 0; the reminder fired two days later, auto-close four days later."""
    solved = at(60)
    closing = {
        "kind": "ticket.transitioned",
        "at": solved + timedelta(days=4, seconds=2),
        "payload": {
            "actor_role": None,
            "transition": "close",
            "from_state": "solved",
            "to_state": "closed",
            "to_category": "closed",
            "cause": {"rule": "auto_close_solved", "depth": 1},
        },
    }
    base = history()
    return {
        **base,
        "events": [*base["events"], closing],
        "fired": [
            *base["fired"],
            {
                "rule": "remind_about_feedback",
                "at": solved + timedelta(days=2, seconds=1),
                "anchor": solved,
            },
            {
                "rule": "auto_close_solved",
                "at": solved + timedelta(days=4, seconds=2),
                "anchor": solved,
            },
        ],
    }


def test_time_rules_that_fired_as_the_draft_would_are_no_difference():
    assert not simulate_ticket(draft(), solved_and_closed_by_time_rules(), at(0, days=6)).differs


def test_a_time_rule_the_draft_adds_fires_at_anchor_plus_delay_if_its_conditions_hold():
    def add_rule(raw):
        raw["rules"].append(
            {
                "name": "nudge_after_reply",
                "after": {"hours": 3, "since": "created_at"},
                "if": [{"field": "ticket.status", "op": "eq", "value": "solved"}],
                "then": [{"action": "notify", "to": "assignee"}],
            }
        )
        raw["rules"].append(
            {
                "name": "nudge_while_new",
                "after": {"hours": 3, "since": "created_at"},
                "if": [{"field": "ticket.status", "op": "eq", "value": "new"}],
                "then": [{"action": "notify", "to": "assignee"}],
            }
        )

    ticket = simulate_ticket(draft(add_rule), solved_and_closed_by_time_rules(), at(0, days=6))

    assert ticket.would_fire_not_fired == [RuleDifference("nudge_after_reply", at(180), "time")]
    assert ticket.fired_would_not == []


def test_a_time_rule_not_yet_due_does_not_fire():
    def add_rule(raw):
        raw["rules"].append(
            {
                "name": "much_later",
                "after": {"days": 30, "since": "created_at"},
                "then": [{"action": "notify", "to": "assignee"}],
            }
        )

    ticket = simulate_ticket(draft(add_rule), solved_and_closed_by_time_rules(), at(0, days=6))

    assert not ticket.differs


def test_a_changed_delay_shows_both_firings():
    def sooner(raw):
        rule_named(raw, "auto_close_solved")["after"] = {"days": 1, "since": "solved_at"}

    ticket = simulate_ticket(draft(sooner), solved_and_closed_by_time_rules(), at(0, days=6))

    assert ticket.would_fire_not_fired == [
        RuleDifference("auto_close_solved", at(60, days=1), "time")
    ]
    assert [(d.rule, d.trigger) for d in ticket.fired_would_not] == [("auto_close_solved", "time")]


def test_a_removed_time_rule_shows_where_it_fired():
    def remove(raw):
        raw["rules"].remove(rule_named(raw, "remind_about_feedback"))

    ticket = simulate_ticket(draft(remove), solved_and_closed_by_time_rules(), at(0, days=6))

    assert [d.rule for d in ticket.fired_would_not] == ["remind_about_feedback"]
    assert ticket.would_fire_not_fired == []


def test_a_reopened_ticket_loses_its_solved_anchor():
    reopened = history()
    reopened["events"].append(
        {
            "kind": "ticket.transitioned",
            "at": at(120),
            "payload": {
                "actor_role": "customer",
                "transition": "reopen",
                "from_state": "solved",
                "to_state": "open",
                "to_category": "open",
            },
        }
    )
    reopened["sla"] = {"first_response_at": at(30), "solved_at": None, "breaches": []}

    ticket = simulate_ticket(draft(), reopened, at(0, days=6))

    # Neither the reminder nor auto-close: solved_at was cleared before they were due.
    assert ticket.would_fire_not_fired == []
    assert ticket.sla["resolution"].actual == "open"


def test_every_ticket_gets_a_report_and_the_summary_counts_differences():
    def tighter(raw):
        raw["sla"]["targets"]["normal"]["first_response"] = 10

    quick = history(
        ticket_id=2, sla={"first_response_at": at(5), "solved_at": at(60), "breaches": []}
    )
    quick["events"][1]["at"] = at(5)

    report = simulate(draft(tighter), [history(), quick], NOW)

    assert [t.ticket_id for t in report.tickets] == [1, 2]
    assert report.simulated == 2
    assert report.with_differences == 1
