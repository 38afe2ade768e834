"""Merging and linking on the pages: the agent workspace links a related ticket by number (and
unlinks it), refuses a bad number at its field keeping what was typed, and merges a duplicate
into another ticket by number; the duplicate's requester then sees on the portal where the
conversation went."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import Factory, csrf_token, web_login


@pytest.fixture
def desk(factory: Factory, fresh_login_limit: Any) -> dict[str, Any]:
    team = factory.team()
    people: dict[str, Any] = {
        "team": team,
        "agent": factory.agent(team, name="Agnes Agent"),
        "alice": factory.customer(name="Alice"),
        "bob": factory.customer(name="Bob"),
    }
    people["target"] = factory.ticket(people["alice"], team=team, subject="Printer on fire")
    people["source"] = factory.ticket(people["bob"], team=team, subject="Printer burning")
    return people


def html_of(response: Any) -> str:
    return response.get_data(as_text=True)


def test_the_workspace_links_a_ticket_by_number_and_unlinks_it(client, desk):
    source, target = desk["source"], desk["target"]
    web_login(client, desk["agent"])
    page = f"/agent/tickets/{source.id}"
    csrf = csrf_token(client, page)
    assert 'id="ws-links-none"' in html_of(client.get(page))

    linked = client.post(f"{page}/links", data={"csrf_token": csrf, "linked_id": f"#{target.id}"})

    assert linked.status_code == 302
    html = html_of(client.get(f"/agent/tickets/{target.id}"))  # shown on both
    assert f'data-linked-id="{source.id}"' in html and "Printer burning" in html
    assert f"Linked to #{source.id}" in html  # the history says so
    removed = client.post(
        f"{page}/links/{target.id}/remove", data={"csrf_token": csrf}, follow_redirects=True
    )
    assert f"Unlinked #{target.id}." in html_of(removed)
    assert 'id="ws-links-none"' in html_of(removed)


@pytest.mark.parametrize(("typed", "says"), [("abc", "Give a ticket number"), ("self", "itself")])
def test_a_bad_number_is_refused_at_its_field_keeping_what_was_typed(client, desk, typed, says):
    source = desk["source"]
    typed = str(source.id) if typed == "self" else typed
    web_login(client, desk["agent"])
    page = f"/agent/tickets/{source.id}"
    csrf = csrf_token(client, page)

    for field, path in (("linked_id", "links"), ("into", "merge")):
        refused = client.post(f"{page}/{path}", data={"csrf_token": csrf, field: typed})

        assert refused.status_code == 422
        html = html_of(refused)
        assert f'id="ws-{field}-error"' in html and says in html
        assert f'value="{typed}"' in html


def test_the_workspace_merges_into_a_ticket_by_number_and_the_requester_sees_where(
    client, desk, factory
):
    source, target = desk["source"], desk["target"]
    web_login(client, desk["agent"])
    page = f"/agent/tickets/{source.id}"
    csrf = csrf_token(client, page)
    assert 'id="ws-merge"' in html_of(client.get(page))

    merged = client.post(f"{page}/merge", data={"csrf_token": csrf, "into": str(target.id)})

    assert merged.status_code == 302 and merged.headers["Location"].endswith(f"/{target.id}")
    html = html_of(client.get(f"/agent/tickets/{target.id}"))
    assert f"Merged #{source.id} into this ticket" in html and "Printer burning" in html
    source_page = html_of(client.get(page))
    assert 'id="ws-merged-into"' in source_page and 'id="ws-merge"' not in source_page

    client.post("/logout", data={"csrf_token": csrf_token(client, page)})
    web_login(client, desk["bob"])
    portal = html_of(client.get(f"/portal/tickets/{source.id}"))
    assert 'id="merged-into"' in portal and f"/portal/tickets/{target.id}" in portal
    assert client.get(f"/portal/tickets/{target.id}").status_code == 200
