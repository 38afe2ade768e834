"""A write based on a stale read loses with 409 instead of overwriting (no lost update)."""

import pytest
from sqlalchemy.orm import Session

from autocrm.errors import Conflict
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Priority, Ticket


def concurrent_writer(db_session, ticket_id: int) -> None:
    """Another request: its own session, committing a change to the same ticket."""
    other = Session(bind=db_session.get_bind(), join_transaction_mode="create_savepoint")
    row = other.get(Ticket, ticket_id)
    row.priority = Priority.URGENT
    other.commit()
    other.close()


@pytest.mark.parametrize("change", ["update", "transition"])
def test_stale_writer_gets_409_and_the_winner_is_kept(factory, db_session, change):
    admin = factory.admin()
    ticket = factory.ticket(factory.customer())
    stale = tickets.access_ticket_by_id(admin, ticket.id)  # read at version 1
    assert stale.version == 1
    # End this read's transaction but keep the loaded object, as a request that read before
    # the other one committed still holds it (on one shared test connection the other writer
    # must not nest inside our transaction).
    db_session.registry().expire_on_commit = False
    db_session.commit()
    concurrent_writer(db_session, ticket.id)
    with pytest.raises(Conflict):
        if change == "update":
            tickets.do_update_ticket(admin, ticket.id, {"priority": Priority.LOW})
        else:
            tickets.do_transition(admin, ticket.id, "start")
    db_session.expire_all()
    fresh = db_session.get(Ticket, ticket.id)
    assert (fresh.priority, fresh.status, fresh.version) == (Priority.URGENT, "new", 2)
