"""How parts of one change (and changes of one window) read: each thing said once, the most
important kind first, a redelivered part changing nothing."""

from __future__ import annotations

from autocrm.notifications import texts

REPLY = "Ann replied:\n\nTry turning it off and on."


def test_a_reply_and_the_status_quoting_it_say_the_reply_once():
    parts = {
        "public_reply": texts.part("New reply on [#1] Printer", REPLY),
        "status_changed": texts.part(
            "[#1] Printer is now Open", "Your ticket is now Open (it was New).", REPLY
        ),
    }
    kind, title, body = texts.render(parts)
    assert (kind, title) == ("status_changed", "[#1] Printer is now Open")
    assert body == f"Your ticket is now Open (it was New).\n\n{REPLY}"


def test_the_latest_state_supersedes_and_other_kinds_add_only_news():
    first = texts.part("is now Open", "Open.")
    later = texts.part("is now Solved", "Solved.")
    assert texts.merged(first, later, superseding=True) == later
    escalated = texts.merged(first, later, superseding=False)
    assert escalated == {**first, "text": "Open.\n\nSolved."}
    assert texts.merged(escalated, later, superseding=False) == escalated, "a redelivery"


def test_blocks_already_told_are_left_out():
    assert texts.said_once(["a", "", REPLY, "b", "a"], told=[REPLY]) == ["a", "b"]
