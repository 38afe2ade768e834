"""Custom ticket fields through the API: admins define them, tickets carry typed values with
errors at ``fields.<key>``, each audience reads only what it may (a customer never sees a
staff-only value), lists filter by ``field.<key>``, options retire without losing old values,
and a required-to-solve field blocks solving until it is filled."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, event, select

from autocrm.audit.models import AdminAuditEntry
from autocrm.fields import values
from autocrm.fields.models import FieldType, TicketField
from tests.factories import ApiClient, assert_error


@pytest.fixture
def admin_api(client, factory) -> ApiClient:
    return ApiClient(client, factory.admin())


@pytest.fixture
def agent_api(client, factory) -> ApiClient:
    return ApiClient(client, factory.agent())


def define(admin_api: ApiClient, key: str, type_: str, **more: Any) -> dict[str, Any]:
    body = {"key": key, "label": key.replace("_", " ").capitalize(), "type": type_, **more}
    response = admin_api.post("/api/ticket-fields", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


PRODUCTS = [{"value": "printer", "label": "Printer"}, {"value": "scanner", "label": "Scanner"}]


@pytest.fixture
def fields(admin_api) -> dict[str, dict[str, Any]]:
    return {
        "product": define(
            admin_api, "product", "dropdown", options=PRODUCTS, visibility="customer_editable"
        ),
        "internal_cost": define(admin_api, "internal_cost", "decimal"),
        "order_ref": define(admin_api, "order_ref", "text", visibility="customer_visible"),
        "seats": define(admin_api, "seats", "number"),
        "due": define(admin_api, "due", "date"),
        "vip": define(admin_api, "vip", "checkbox"),
        "areas": define(
            admin_api,
            "areas",
            "multi_select",
            options=[{"value": "ui"}, {"value": "api"}, {"value": "db"}],
        ),
    }


def open_ticket(api: ApiClient, **more: Any) -> dict[str, Any]:
    body = {"subject": "Broken", "description": "It broke.", **more}
    response = api.post("/api/tickets", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_an_admin_defines_fields_and_staff_and_customers_list_what_they_may_see(
    admin_api, agent_api, client, factory, fields, db_session
):
    keys = [f["key"] for f in agent_api.get("/api/ticket-fields").get_json()["items"]]
    assert keys == ["product", "internal_cost", "order_ref", "seats", "due", "vip", "areas"]
    customer_keys = [
        f["key"]
        for f in ApiClient(client, factory.customer()).get("/api/ticket-fields").get_json()["items"]
    ]
    assert customer_keys == ["product", "order_ref"]
    assert fields["product"]["options"][0] == {
        "value": "printer",
        "label": "Printer",
        "retired": False,
    }
    audited = db_session.scalars(
        select(AdminAuditEntry.action).where(AdminAuditEntry.target_type == "ticket_field")
    ).all()
    assert audited.count("ticket_field.created") == 7


def test_only_admins_change_field_definitions(agent_api, admin_api, fields):
    assert_error(
        agent_api.post("/api/ticket-fields", json={"key": "x", "label": "X", "type": "text"}), 403
    )
    assert_error(
        agent_api.patch(f"/api/ticket-fields/{fields['vip']['id']}", json={"label": "Y"}), 403
    )
    assert_error(agent_api.delete(f"/api/ticket-fields/{fields['vip']['id']}"), 403)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"key": "Bad Key", "label": "X", "type": "text"}, "key"),
        ({"key": "product", "label": "X", "type": "text"}, "key"),
        ({"key": "kind", "label": "X", "type": "dropdown"}, "options"),
        (
            {
                "key": "kind",
                "label": "X",
                "type": "dropdown",
                "options": [{"value": "a"}, {"value": "a"}],
            },
            "options",
        ),
        ({"key": "kind", "label": "X", "type": "text", "options": [{"value": "a"}]}, "options"),
        ({"key": "kind", "label": "X", "type": "colour"}, "type"),
    ],
)
def test_bad_definitions_are_refused_at_their_field(admin_api, fields, body, where):
    errors = assert_error(admin_api.post("/api/ticket-fields", json=body), 422)["errors"]
    assert where in errors.get("json", errors)  # the schema's errors come by location


def test_values_are_typed_and_read_back(agent_api, factory, fields):
    customer = factory.customer()
    ticket = open_ticket(
        agent_api,
        requester_id=customer.id,
        fields={
            "product": "printer",
            "internal_cost": "12.50",
            "order_ref": " A-1 ",
            "seats": 12,
            "due": "2026-12-24",
            "vip": True,
            "areas": ["api", "ui", "api"],
        },
    )
    assert ticket["fields"] == {
        "product": "printer",
        "internal_cost": "12.50",
        "order_ref": "A-1",
        "seats": 12,
        "due": "2026-12-24",
        "vip": True,
        "areas": ["api", "ui"],
    }
    changed = agent_api.patch(
        f"/api/tickets/{ticket['id']}",
        json={"fields": {"seats": None, "order_ref": ""}, "version": ticket["version"]},
    )
    assert changed.status_code == 200, changed.get_json()
    assert "seats" not in changed.get_json()["fields"]
    assert "order_ref" not in changed.get_json()["fields"]
    stale = agent_api.patch(
        f"/api/tickets/{ticket['id']}",
        json={"fields": {"seats": 3}, "version": ticket["version"]},
    )
    assert_error(stale, 409)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("seats", "twelve"),
        ("seats", True),
        ("seats", 1.5),
        ("internal_cost", "lots"),
        ("due", "24/12/2026"),
        ("vip", "yes"),
        ("product", "fax"),
        ("areas", "ui"),
        ("areas", ["ui", "fax"]),
        ("order_ref", 12),
        ("nope", "x"),
    ],
)
def test_a_wrong_value_is_refused_naming_its_field_and_nothing_is_saved(
    agent_api, factory, fields, key, value
):
    ticket = open_ticket(agent_api, requester_id=factory.customer().id)
    response = agent_api.patch(
        f"/api/tickets/{ticket['id']}", json={"fields": {"vip": True, key: value}}
    )
    body = assert_error(response, 422)
    assert list(body["errors"]) == [f"fields.{key}"]
    assert agent_api.get(f"/api/tickets/{ticket['id']}").get_json()["fields"] == {}


def test_a_customer_never_sees_staff_only_values_and_sets_only_editable_ones(
    agent_api, client, factory, fields
):
    customer = factory.customer()
    ticket = open_ticket(
        agent_api,
        requester_id=customer.id,
        fields={"product": "printer", "internal_cost": "99.90", "order_ref": "A-1"},
    )
    customer_api = ApiClient(client, customer)
    seen = customer_api.get(f"/api/tickets/{ticket['id']}").get_json()
    assert seen["fields"] == {"product": "printer", "order_ref": "A-1"}
    listed = customer_api.get("/api/tickets").get_json()["items"]
    assert listed[0]["fields"] == {"product": "printer", "order_ref": "A-1"}
    assert "99.90" not in customer_api.get(f"/api/tickets/{ticket['id']}").get_data(as_text=True)
    # A staff-only field is unknown to a customer: setting or filtering by it reveals nothing.
    refused = customer_api.patch(
        f"/api/tickets/{ticket['id']}", json={"fields": {"internal_cost": "1"}}
    )
    assert list(assert_error(refused, 422)["errors"]) == ["fields.internal_cost"]
    probe = customer_api.get("/api/tickets?field.internal_cost=99.90")
    assert list(assert_error(probe, 422)["errors"]) == ["field.internal_cost"]
    visible_only = customer_api.patch(
        f"/api/tickets/{ticket['id']}", json={"fields": {"order_ref": "B-2"}}
    )
    assert list(assert_error(visible_only, 422)["errors"]) == ["fields.order_ref"]
    edited = customer_api.patch(
        f"/api/tickets/{ticket['id']}", json={"fields": {"product": "scanner"}}
    )
    assert edited.status_code == 200, edited.get_json()
    assert agent_api.get(f"/api/tickets/{ticket['id']}").get_json()["fields"]["internal_cost"] == (
        "99.90"
    )
    mine = open_ticket(customer_api, fields={"product": "printer"})
    assert mine["fields"] == {"product": "printer"}
    staff_only = customer_api.post(
        "/api/tickets",
        json={"subject": "S", "description": "D", "fields": {"vip": True}},
    )
    assert list(assert_error(staff_only, 422)["errors"]) == ["fields.vip"]


def test_lists_filter_by_a_field(agent_api, factory, fields):
    customer = factory.customer()
    printer = open_ticket(
        agent_api,
        requester_id=customer.id,
        fields={"product": "printer", "seats": 3, "vip": True, "areas": ["ui", "db"]},
    )
    scanner = open_ticket(
        agent_api, requester_id=customer.id, fields={"product": "scanner", "areas": ["api"]}
    )
    open_ticket(agent_api, requester_id=customer.id)

    def ids(query: str) -> list[int]:
        response = agent_api.get(f"/api/tickets?{query}")
        assert response.status_code == 200, response.get_json()
        return [t["id"] for t in response.get_json()["items"]]

    assert ids("field.product=printer") == [printer["id"]]
    assert ids("field.product=scanner&priority=normal") == [scanner["id"]]
    assert ids("field.seats=3") == [printer["id"]]
    assert ids("field.vip=true") == [printer["id"]]
    assert ids("field.areas=db") == [printer["id"]]
    assert ids("field.areas=api") == [scanner["id"]]
    assert ids("field.product=printer&field.areas=api") == []
    assert list(assert_error(agent_api.get("/api/tickets?field.seats=many"), 422)["errors"]) == [
        "field.seats"
    ]
    assert_error(agent_api.get("/api/tickets?nofield=1"), 422)


def test_options_reorder_and_retire_without_losing_values_and_one_in_use_stays(
    admin_api, agent_api, factory, fields
):
    product = fields["product"]
    ticket = open_ticket(
        agent_api, requester_id=factory.customer().id, fields={"product": "printer"}
    )
    removed = admin_api.patch(
        f"/api/ticket-fields/{product['id']}", json={"options": [PRODUCTS[1]]}
    )
    assert "options" in assert_error(removed, 422)["errors"]
    retired = admin_api.patch(
        f"/api/ticket-fields/{product['id']}",
        json={"options": [PRODUCTS[1], {**PRODUCTS[0], "retired": True}, {"value": "fax"}]},
    )
    assert retired.status_code == 200, retired.get_json()
    assert [o["value"] for o in retired.get_json()["options"]] == ["scanner", "printer", "fax"]
    assert (
        agent_api.get(f"/api/tickets/{ticket['id']}").get_json()["fields"]["product"] == "printer"
    )
    kept = agent_api.patch(
        f"/api/tickets/{ticket['id']}", json={"fields": {"product": "printer", "vip": True}}
    )
    assert kept.status_code == 200, kept.get_json()
    other = open_ticket(agent_api, requester_id=factory.customer().id)
    refused = agent_api.patch(
        f"/api/tickets/{other['id']}", json={"fields": {"product": "printer"}}
    )
    assert "retired" in assert_error(refused, 422)["errors"]["fields.product"][0]
    in_use = admin_api.delete(f"/api/ticket-fields/{product['id']}")
    assert_error(in_use, 422)
    unused = admin_api.delete(f"/api/ticket-fields/{fields['due']['id']}")
    assert unused.status_code == 200
    assert "due" not in [f["key"] for f in admin_api.get("/api/ticket-fields").get_json()["items"]]


def test_fields_reorder(admin_api, fields):
    wanted = [fields["vip"]["id"], fields["product"]["id"]]
    response = admin_api.put("/api/ticket-fields/order", json={"field_ids": wanted})
    assert response.status_code == 200, response.get_json()
    keys = [f["key"] for f in admin_api.get("/api/ticket-fields").get_json()["items"]]
    assert keys[:3] == ["vip", "product", "internal_cost"]


def test_a_required_field_blocks_solving_until_filled(admin_api, agent_api, factory, fields):
    admin_api.patch(
        f"/api/ticket-fields/{fields['product']['id']}", json={"required_to_solve": True}
    )
    admin_api.patch(f"/api/ticket-fields/{fields['seats']['id']}", json={"required_to_solve": True})
    ticket = open_ticket(agent_api, requester_id=factory.customer().id, fields={"seats": 1})
    assert "solve" not in [t["name"] for t in ticket["transitions"]]
    refused = agent_api.post(f"/api/tickets/{ticket['id']}/transitions", json={"name": "solve"})
    body = assert_error(refused, 409)
    assert "Product" in body["message"]
    assert "Seats" not in body["message"]
    agent_api.patch(f"/api/tickets/{ticket['id']}", json={"fields": {"product": "scanner"}})
    solved = agent_api.post(f"/api/tickets/{ticket['id']}/transitions", json={"name": "solve"})
    assert solved.status_code == 200, solved.get_json()
    assert solved.get_json()["category"] == "solved"


def test_the_trail_records_field_changes_for_staff_only(agent_api, client, factory, fields):
    customer = factory.customer()
    ticket = open_ticket(agent_api, requester_id=customer.id)
    agent_api.patch(f"/api/tickets/{ticket['id']}", json={"fields": {"internal_cost": "5"}})
    trail = agent_api.get(f"/api/tickets/{ticket['id']}/events").get_json()
    assert trail[-1]["data"]["changes"] == {"fields.internal_cost": [None, "5"]}
    customer_trail = ApiClient(client, customer).get(f"/api/tickets/{ticket['id']}/events")
    assert "internal_cost" not in customer_trail.get_data(as_text=True)


def test_definitions_read_once_per_transaction_follow_its_own_changes(db_session):
    """A request reads the definitions once (issue 17), yet what its own transaction adds,
    changes, deletes or rolls back to a savepoint is seen at once, and a new transaction reads
    them anew (another process may have changed them)."""
    reads: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        if "FROM ticket_fields" in statement:
            reads.append(statement)

    engine = db_session.get_bind().engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert "early" not in values.defined_fields()
        values.defined_fields(active_only=False)
        assert len(reads) == 1, "read once in the transaction"
        db_session.add(TicketField(key="early", label="Early", type=FieldType.TEXT))
        early = values.defined_fields()["early"]  # pending: seen
        early.active = False
        assert "early" not in values.defined_fields()
        assert "early" in values.defined_fields(active_only=False)
        with db_session.begin_nested() as savepoint:
            db_session.add(TicketField(key="undone", label="Undone", type=FieldType.TEXT))
            assert "undone" in values.defined_fields()
            savepoint.rollback()
        assert "undone" not in values.defined_fields()
        db_session.execute(delete(TicketField).where(TicketField.key == "early"))
        assert "early" not in values.defined_fields(active_only=False)
        db_session.commit()
        reads.clear()
        values.defined_fields()
        values.defined_fields()
        assert len(reads) == 1, "a new transaction reads them anew, once"
    finally:
        event.remove(engine, "before_cursor_execute", record)
