from tests.factories import ApiClient


def test_customer_opens_and_reads_a_ticket(client, factory):
    customer = factory.customer()
    api = ApiClient(client, customer)
    created = api.post("/api/tickets", json={"subject": "Help", "description": "Please"})
    assert created.status_code == 201, created.json
    got = api.get(f"/api/tickets/{created.json['id']}")
    assert got.status_code == 200
    assert got.json["status"] == "new"
    assert got.json["requester_id"] == customer.id
