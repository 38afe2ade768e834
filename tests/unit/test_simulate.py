"""The simulator: replaying recorded ticket histories under a draft shows exactly where the
draft would behave differently (rules, time rules, SLA outcomes), and nothing where it would not."""

import copy
from datetime import UTC, datetime, timedelta

from workflows import default_definition, load_definition
from workflows.simulate import (
    RuleDifference,
    SlaOutcome,
    StateDifference,
    TransitionDifference,
    simulate,
    simulate_ticket,
)

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
        "definition": draft(),
        "version": 1,
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
    }
    return {**base, **overrides}


NOW = at(0, days=1)
# The default calendar opens 08:00-18:00 on weekdays: 480 business minutes from Monday 09:00.
NORMAL_FIRST_RESPONSE_DUE = at(480)


def test_the_workflow_that_ran_shows_no_differences():
    report = simulate(draft(), [history()], NOW)

    assert report.simulated == 1
    assert report.with_differences == 0
    [ticket] = report.tickets
    assert ticket.would_fire_not_fired == []
    assert ticket.fired_would_not == []
    assert ticket.transitions == [] and ticket.states == []
    assert ticket.caveats == []
    assert ticket.sla["first_response"] == SlaOutcome(
        "met", "met", NORMAL_FIRST_RESPONSE_DUE, NORMAL_FIRST_RESPONSE_DUE
    )
    assert ticket.sla["resolution"].published == ticket.sla["resolution"].draft == "met"


# -- the bug: differences that are not there (issue 10, item 5) ----------------------------------


def add_unrelated_state(raw: dict) -> None:
    """A state nothing in the history goes to, with its own way in and out."""
    raw["states"].append({"name": "parked", "category": "open", "label": "Parked"})
    raw["transitions"].append(
        {"name": "park", "from": ["open"], "to": "parked", "roles": ["agent", "admin"]}
    )
    raw["transitions"].append(
        {"name": "unpark", "from": ["parked"], "to": "open", "roles": ["agent", "admin"]}
    )


def test_a_draft_adding_an_unrelated_state_reports_no_differences():
    report = simulate(
        draft(add_unrelated_state), [history(), solved_and_closed_by_time_rules()], at(0, days=6)
    )

    assert report.with_differences == 0
    assert [t.caveats for t in report.tickets] == [[], []]


def test_a_draft_adding_an_unreachable_state_reports_no_differences():
    # Validation refuses an unreachable state; the simulator must still not invent differences.
    unreachable = draft()
    unreachable["states"].append(
        {"name": "limbo", "category": "pending", "label": None, "terminal": True}
    )

    report = simulate(unreachable, [history(), solved_and_closed_by_time_rules()], at(0, days=6))

    assert report.with_differences == 0


def test_renaming_a_state_label_reports_no_differences():
    def relabel(raw):
        for state in raw["states"]:
            state["label"] = f"{state['label']} (renamed)"

    report = simulate(draft(relabel), [history(), solved_and_closed_by_time_rules()], at(0, days=6))

    assert report.with_differences == 0


def test_what_the_replay_model_gets_wrong_about_reality_is_no_difference():
    """Reality differs from the model here (the SLA escalation fired although the model sees the
    target met; a worker lagged; no recorded firings at all): comparing like with like, the
    published definition still reports nothing."""
    odd = history()
    odd["events"].append(
        {
            "kind": "sla.breached",
            "at": at(45),
            "payload": {"metric": "first_response", "cause": {"rule": "sla.first_response.breach"}},
        }
    )
    odd["events"].append(
        {
            "kind": "message.created",
            "at": at(60.5),
            "payload": {"actor_role": "customer", "author_role": "customer", "internal": False},
        }
    )

    assert not simulate_ticket(draft(), odd, NOW).differs


# -- real changes are still reported ------------------------------------------------------------


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
    # Its tag would change what later rules see: the report says it did not simulate that.
    [caveat] = ticket.caveats
    assert "'tag_normal'" in caveat and "add_tag" in caveat and "not simulated" in caveat


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
        RuleDifference("start_on_first_agent_reply", at(30), "message.created")
    ]
    assert ticket.would_fire_not_fired == []
    # The transition it caused stays in the replay: said, not guessed away.
    [caveat] = ticket.caveats
    assert "'start_on_first_agent_reply'" in caveat and "still replayed" in caveat


def test_a_changed_condition_sees_the_replayed_ticket_and_event():
    def internal_only(raw):
        rule = rule_named(raw, "start_on_first_agent_reply")
        rule["if"][1]["value"] = True  # event.internal eq true: a public reply no longer counts

    ticket = simulate_ticket(draft(internal_only), history(), NOW)

    assert [d.rule for d in ticket.fired_would_not] == ["start_on_first_agent_reply"]


def test_removing_a_transition_the_history_used_refuses_it_and_what_followed():
    def no_solve_from_open(raw):
        next(t for t in raw["transitions"] if t["name"] == "solve")["from"].remove("open")

    ticket = simulate_ticket(draft(no_solve_from_open), history(), NOW)

    assert ticket.transitions == [
        TransitionDifference(
            "solve", at(60), "allowed", "refused", "'solve' does not leave state 'open'"
        )
    ]
    assert ticket.states == [StateDifference(at(60), "solve", "solved", "open")]
    # No ticket.transitioned event under the draft: ask_for_feedback has nothing to react to.
    assert ticket.fired_would_not == [
        RuleDifference("ask_for_feedback", at(60), "ticket.transitioned")
    ]
    assert ticket.sla["resolution"].published == "met"
    assert ticket.sla["resolution"].draft == "open"
    assert any("would refuse 'solve'" in c for c in ticket.caveats)


def test_a_transition_taken_from_a_role_is_refused_for_that_role():
    def agents_only(raw):
        next(t for t in raw["transitions"] if t["name"] == "solve")["roles"] = ["agent", "admin"]

    by_customer = history()
    by_customer["events"][3]["payload"]["actor_role"] = "customer"

    ticket = simulate_ticket(draft(agents_only), by_customer, NOW)

    assert [(t.transition, t.draft, t.reason) for t in ticket.transitions] == [
        ("solve", "refused", "'solve' is not for role 'customer'")
    ]
    assert not simulate_ticket(draft(agents_only), history(), NOW).differs, "an agent solved it"


def test_a_transition_a_rule_fired_is_not_held_to_the_roles():
    def rules_only(raw):
        next(t for t in raw["transitions"] if t["name"] == "start")["roles"] = []

    assert not simulate_ticket(draft(rules_only), history(), NOW).differs


def test_a_guard_is_checked_against_the_replayed_assignee():
    def needs_assignee(raw):
        next(t for t in raw["transitions"] if t["name"] == "solve")["guards"] = ["has_assignee"]

    unassigned = simulate_ticket(draft(needs_assignee), history(), NOW)
    assigned = history()
    assigned["events"].insert(
        1, {"kind": "ticket.assigned", "at": at(10), "payload": {"assignee_id": 9}}
    )

    assert [(t.transition, t.reason) for t in unassigned.transitions] == [
        ("solve", "guard has_assignee not met")
    ]
    assert any("assignee and team as recorded" in c for c in unassigned.caveats)
    assert not simulate_ticket(draft(needs_assignee), assigned, NOW).differs


def test_a_tighter_sla_target_turns_met_into_breached():
    def tighter(raw):
        raw["sla"]["targets"]["normal"]["first_response"] = 10

    ticket = simulate_ticket(draft(tighter), history(), NOW)

    assert ticket.sla["first_response"] == SlaOutcome(
        "met", "breached", NORMAL_FIRST_RESPONSE_DUE, at(10)
    )
    assert not ticket.sla["resolution"].differs
    assert ticket.differs
    assert any("escalation is not simulated" in c for c in ticket.caveats)


def test_a_looser_sla_target_moves_the_due_time_even_when_both_are_met():
    def looser(raw):
        raw["sla"]["targets"]["normal"]["first_response"] = 540

    ticket = simulate_ticket(draft(looser), history(), NOW)

    assert ticket.sla["first_response"] == SlaOutcome(
        "met", "met", NORMAL_FIRST_RESPONSE_DUE, at(540)
    )
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
    )

    ticket = simulate_ticket(draft(), urgent, now=at(30))  # 09:30: 90 business minutes in

    # Urgent first response is 60 business minutes: due 09:00, not 08:00.
    assert ticket.sla["first_response"] == SlaOutcome("breached", "breached", at(0), at(0))
    assert ticket.sla["resolution"] == SlaOutcome(
        "open", "open", at(0) + timedelta(hours=7), at(0) + timedelta(hours=7)
    )
    assert not ticket.differs


def test_a_breach_the_draft_would_meet():
    def strict(raw):
        raw["sla"]["targets"]["normal"]["resolution"] = 30

    published = draft(strict)  # solved after 60 minutes: breached as published

    ticket = simulate_ticket(draft(), history(definition=published), NOW)

    assert ticket.sla["resolution"].published == "breached"
    assert ticket.sla["resolution"].draft == "met"


def test_no_sla_policy_in_the_draft_means_no_clock():
    def no_sla(raw):
        raw["sla"] = None

    ticket = simulate_ticket(draft(no_sla), history(), NOW)

    assert ticket.sla["first_response"] == SlaOutcome(
        "met", "none", NORMAL_FIRST_RESPONSE_DUE, None
    )


def test_a_ticket_moved_between_versions_says_which_version_it_was_replayed_against():
    moved = history(version=2)
    moved["events"].append(
        {
            "kind": "workflow.migrated",
            "at": at(120),
            "payload": {"from_state": "solved", "to_state": "solved", "from_version": 1},
        }
    )

    ticket = simulate_ticket(draft(), moved, NOW)

    assert not ticket.differs
    assert ticket.caveats == [
        "Moved between workflow versions at 2026-03-02 11:00 UTC; the whole history is "
        "replayed against version 2."
    ]


# -- time-based rules ---------------------------------------------------------------------------


def solved_and_closed_by_time_rules() -> dict:
    """Solved at 10:00 on day 0; auto-close closed it four days later (the reminder, two days
    after solving, left nothing in the trail)."""
    closing = {
        "kind": "ticket.transitioned",
        "at": at(60) + timedelta(days=4, seconds=2),
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
    return {**base, "events": [*base["events"], closing]}


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
    assert ticket.fired_would_not == [RuleDifference("auto_close_solved", at(60, days=4), "time")]
    # Closing three days sooner would change the rest of the story; the replay keeps it.
    assert any("'auto_close_solved' would fire" in c for c in ticket.caveats)


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

    def sooner(raw):
        rule_named(raw, "auto_close_solved")["after"] = {"hours": 2, "since": "solved_at"}

    ticket = simulate_ticket(draft(sooner), reopened, at(0, days=6))

    # Neither the reminder nor auto-close, as published or drafted: solved_at was cleared
    # before they were due.
    assert not ticket.differs
    # Open again, and six days on past its resolution target either way.
    assert ticket.sla["resolution"].published == ticket.sla["resolution"].draft == "breached"


def test_every_ticket_gets_a_report_and_the_summary_counts_differences():
    def tighter_for_urgent(raw):
        raw["sla"]["targets"]["urgent"]["first_response"] = 10

    urgent = history(ticket_id=2, priority="urgent")
    urgent["events"][0]["payload"]["priority"] = "urgent"

    report = simulate(draft(tighter_for_urgent), [history(), urgent], NOW)

    assert [t.ticket_id for t in report.tickets] == [1, 2]
    assert report.simulated == 2
    assert report.with_differences == 1
    assert report.with_caveats == 1  # the urgent one's breach would escalate
