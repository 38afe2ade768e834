"""The ticket list's JSON is built without marshmallow (``representation.listed_items``, for
speed): it must equal what the documented schema (``TicketPageSchema``) dumps for the same
tickets, for staff and customers, plain listings and searches."""

from __future__ import annotations

from typing import Any

import pytest

from api.schemas import TicketPageSchema
from autocrm.extensions import db
from autocrm.fields import values as field_values
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Priority, Ticket
from tests.factories import ApiClient


class _Documented:
    """A ticket as the schema reads it: its fields, the custom fields the audience may see
    and, when searching, its snippet."""

    def __init__(self, ticket: Ticket, audience: str, snippet: Any = None, hit: bool = False):
        self.ticket = ticket
        self.visible_fields = field_values.visible_values(
            ticket.custom_fields, audience, field_values.defined_fields()
        )
        if hit:
            self.snippet = snippet

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ticket, name)


def documented(page: dict[str, Any], audience: str) -> dict[str, Any]:
    db.session.expire_all()
    items = [
        _Documented(
            db.session.get(Ticket, item["id"]), audience, item.get("snippet"), "snippet" in item
        )
        for item in page["items"]
    ]
    return TicketPageSchema().dump({"items": items, "next_cursor": page["next_cursor"]})


@pytest.fixture
def listed(client, factory):
    admin = factory.admin()
    admin_api = ApiClient(client, admin)
    for key, type_, visibility in (
        ("order_ref", "text", "customer_visible"),
        ("internal_cost", "decimal", "staff"),
    ):
        body = {"key": key, "label": key, "type": type_, "visibility": visibility}
        assert admin_api.post("/api/ticket-fields", json=body).status_code == 201
    team = factory.team()
    agent = factory.agent(team)
    customer = factory.customer()
    plain = factory.ticket(customer, subject="Plain printer")
    tagged = factory.ticket(
        customer,
        team=team,
        assignee_id=agent.id,
        priority=Priority.URGENT,
        tags=["zeta", "alpha"],
        subject="Tagged printer",
    )
    fields = {"fields": {"order_ref": "A-1", "internal_cost": "12.50"}}
    assert admin_api.patch(f"/api/tickets/{tagged.id}", json=fields).status_code == 200
    tickets.do_transition(agent, tagged.id, "solve")
    db.session.commit()
    return {"staff": ApiClient(client, admin), "customer": ApiClient(client, customer)}, plain


@pytest.mark.parametrize("audience", ["staff", "customer"])
@pytest.mark.parametrize("query", ["limit=1", "limit=50", "q=printer", "q=%23", "tag=alpha"])
def test_the_list_answers_what_its_schema_documents(listed, audience, query):
    apis, _ = listed
    response = apis[audience].get(f"/api/tickets?{query}")
    assert response.status_code == 200
    page = response.get_json()
    assert page["items"] or query == "q=%23"
    assert page == documented(page, audience)


def test_a_search_by_ticket_number_lists_it_first_with_a_null_snippet(listed):
    apis, plain = listed
    page = apis["staff"].get(f"/api/tickets?q=%23{plain.id}").get_json()
    assert page["items"][0]["id"] == plain.id
    assert page["items"][0]["snippet"] is None
    assert page == documented(page, "staff")
