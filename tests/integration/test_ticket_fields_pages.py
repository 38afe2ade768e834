"""Custom ticket fields on the pages: the admin console adds, edits, reorders and retires them;
the workspace shows and saves the values; the portal's new-ticket form asks the
customer-editable ones; a customer's pages never show a staff-only value."""

from __future__ import annotations

from autocrm.fields import definitions
from autocrm.fields.models import TicketField
from autocrm.tickets.models import Ticket
from tests.factories import csrf_token, web_login


def html(response) -> str:
    return response.get_data(as_text=True)


def test_an_admin_adds_edits_reorders_and_retires_fields(
    client, factory, db_session, fresh_login_limit
):
    admin = factory.admin()
    web_login(client, admin)
    token = csrf_token(client, "/admin/fields")
    added = client.post(
        "/admin/fields",
        data={
            "csrf_token": token,
            "key": "product",
            "label": "Product",
            "type": "dropdown",
            "options": "printer | Printer\nscanner | Scanner",
            "visibility": "customer_editable",
            "active": "on",
        },
    )
    assert added.status_code == 302, html(added)
    bad = client.post(
        "/admin/fields",
        data={"csrf_token": token, "key": "Bad key", "label": "X", "type": "text", "active": "on"},
    )
    assert bad.status_code == 422
    assert 'aria-invalid="true"' in html(bad)
    cost_added = client.post(
        "/admin/fields",
        data={
            "csrf_token": token,
            "key": "cost",
            "label": "Cost",
            "type": "decimal",
            "visibility": "staff",
            "active": "on",
        },
    )
    assert cost_added.status_code == 302, html(cost_added)
    product = db_session.query(TicketField).filter_by(key="product").one()
    assert [o["label"] for o in product.options] == ["Printer", "Scanner"]
    saved = client.post(
        f"/admin/fields/{product.id}",
        data={
            "csrf_token": token,
            "label": "Product line",
            "options": "scanner | Scanner\nprinter | Printer (retired)",
            "visibility": "customer_editable",
            "active": "on",
        },
    )
    assert saved.status_code == 302, html(saved)
    db_session.refresh(product)
    assert product.label == "Product line"
    assert product.options == [
        {"value": "scanner", "label": "Scanner", "retired": False},
        {"value": "printer", "label": "Printer", "retired": True},
    ]
    cost = db_session.query(TicketField).filter_by(key="cost").one()
    client.post(f"/admin/fields/{cost.id}/move", data={"csrf_token": token, "direction": "up"})
    page = html(client.get("/admin/fields"))
    assert page.index("Cost") < page.index("Product line")


def test_the_workspace_shows_and_saves_values_and_the_portal_hides_staff_only_ones(
    client, factory, db_session, fresh_login_limit
):
    admin = factory.admin()
    definitions.do_create_field(
        admin,
        {
            "key": "product",
            "label": "Product",
            "type": "dropdown",
            "options": [{"value": "printer", "label": "Printer"}],
            "visibility": "customer_visible",
        },
    )
    definitions.do_create_field(admin, {"key": "cost", "label": "Internal cost", "type": "decimal"})
    definitions.do_create_field(
        admin, {"key": "vip", "label": "VIP", "type": "checkbox", "required_to_solve": True}
    )
    customer = factory.customer()
    ticket = factory.ticket(customer)
    agent = factory.agent()
    web_login(client, agent)
    workspace = html(client.get(f"/agent/tickets/{ticket.id}"))
    assert 'id="ws-custom-fields"' in workspace and "Internal cost" in workspace
    assert "Needed before solving: VIP." in workspace
    token = csrf_token(client, f"/agent/tickets/{ticket.id}")
    saved = client.post(
        f"/agent/tickets/{ticket.id}/custom-fields",
        data={
            "csrf_token": token,
            "version": str(ticket.version),
            "cf_shown": ["product", "cost", "vip"],
            "cf.product": "printer",
            "cf.cost": "41.99",
            "cf.vip": "on",
        },
    )
    assert saved.status_code == 302
    db_session.expire_all()
    assert db_session.get(Ticket, ticket.id).custom_fields == {
        "product": "printer",
        "cost": "41.99",
        "vip": True,
    }
    wrong = client.post(
        f"/agent/tickets/{ticket.id}/custom-fields",
        data={"csrf_token": token, "version": str(ticket.version), "cf.cost": "lots"},
        follow_redirects=True,
    )
    assert "Internal cost: Must be a number" in html(wrong)
    client.delete_cookie("session")
    web_login(client, customer)
    portal = html(client.get(f"/portal/tickets/{ticket.id}"))
    assert "Printer" in portal
    assert "41.99" not in portal and "Internal cost" not in portal and "VIP" not in portal


def test_the_portal_new_ticket_form_asks_customer_editable_fields(
    client, factory, db_session, fresh_login_limit
):
    admin = factory.admin()
    definitions.do_create_field(
        admin,
        {
            "key": "order_ref",
            "label": "Order number",
            "type": "text",
            "visibility": "customer_editable",
            "help_text": "On your invoice.",
        },
    )
    definitions.do_create_field(
        admin,
        {"key": "shown", "label": "Shown only", "type": "text", "visibility": "customer_visible"},
    )
    customer = factory.customer()
    web_login(client, customer)
    form = html(client.get("/portal/tickets/new"))
    assert 'name="cf.order_ref"' in form and "On your invoice." in form
    assert "cf.shown" not in form
    token = csrf_token(client, "/portal/tickets/new")
    sent = client.post(
        "/portal/tickets/new",
        data={
            "csrf_token": token,
            "subject": "Refund",
            "description": "Please.",
            "priority": "normal",
            "cf_shown": "order_ref",
            "cf.order_ref": "INV-7",
            "cf.shown": "sneaky",
        },
    )
    assert sent.status_code == 302, html(sent)
    ticket = db_session.query(Ticket).filter_by(subject="Refund").one()
    assert ticket.custom_fields == {"order_ref": "INV-7"}


def test_the_workflow_editor_offers_custom_fields_for_rule_conditions(
    client, factory, fresh_login_limit
):
    from autocrm.engine import drafts

    admin = factory.admin()
    definitions.do_create_field(admin, {"key": "region", "label": "Region", "type": "text"})
    workflow = drafts.do_create_workflow(admin, name="Fields editor")
    web_login(client, admin)
    editor = html(client.get(f"/admin/workflows/{workflow.id}/draft"))
    assert '<option value="fields.region">' in editor
    assert "key=value of a ticket field" in editor
