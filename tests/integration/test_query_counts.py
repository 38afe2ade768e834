"""Hot endpoints issue a fixed number of queries, however many rows a page holds (no N+1)."""

from contextlib import contextmanager

from sqlalchemy import event

from autocrm.extensions import db
from tests.factories import ApiClient


@contextmanager
def count_queries():
    """Statements run inside the block, starting from an empty session as a new request does
    (within one test the session would otherwise keep what earlier requests loaded)."""
    db.session.remove()
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def queries_to_list(api: ApiClient, **params) -> int:
    with count_queries() as statements:
        response = api.get("/api/tickets", query_string=params)
    assert response.status_code == 200
    return len(statements)


def test_ticket_list_query_count_does_not_grow_with_the_page(client, factory):
    team = factory.team()
    agent = factory.agent(team)
    customer = factory.customer()
    for n in range(12):
        factory.ticket(customer, team=team, tags=[f"tag{n}", "shared"], assignee_id=agent.id)
    api = ApiClient(client, agent)
    small = queries_to_list(api, limit=2)
    large = queries_to_list(api, limit=12)
    assert small == large
    assert large <= 6, "auth, memberships, the page, its tags: a handful, not one per ticket"


def test_message_list_query_count_does_not_grow_with_the_page(client, factory):
    customer = factory.customer()
    url = f"/api/tickets/{factory.ticket(customer).id}/messages"
    api = ApiClient(client, customer)
    for n in range(10):
        api.post(url, json={"body": f"message {n}"})
    with count_queries() as few:
        assert api.get(url, query_string={"limit": 2}).status_code == 200
    with count_queries() as many:
        assert api.get(url, query_string={"limit": 10}).status_code == 200
    assert len(few) == len(many)
