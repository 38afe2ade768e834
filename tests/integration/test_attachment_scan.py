"""The optional malware scan, against a real ClamAV daemon (``tests.clamd_server``): an upload
waits for its scan (409), is served once clean, is quarantined (410, a trail entry) when the
daemon finds the test signature, is retried while the daemon is down and in the end withheld
as failed (shown to admins, who can have it scanned again); without a daemon configured,
nothing is scanned and files are served at once. One test runs the whole path through a real
worker process after commit; the others run the worker's service in-process, as
``test_attachment_workers`` does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from autocrm.columns import utcnow
from autocrm.extensions import db
from autocrm.files import scanning
from autocrm.files.models import Attachment, ScanStatus
from autocrm.files.scanning import ClamdScanner, NoScanner
from autocrm.people.models import User
from autocrm.tickets.models import TicketEvent
from tests import clamd_server, processes
from tests.clamd_server import INFECTED_PAYLOAD, SIGNATURE
from tests.factories import ApiClient, csrf_token, web_login
from tests.integration.test_attachments import ok, uploaded
from tests.processes import free_port

CLEAN = b"Printer log: paper jam at 09:14, cleared.\n"


@pytest.fixture(scope="module")
def clamd_url() -> Iterator[str]:
    with clamd_server.running() as url:
        yield url


@pytest.fixture
def use_scanner(app, monkeypatch):
    """``use_scanner(url)``: the app scans with clamd at ``url`` (as AUTOCRM_CLAMD_URL does)."""

    def set_scanner(url: str) -> None:
        monkeypatch.setitem(app.config, "AUTOCRM_CLAMD_URL", url)
        monkeypatch.setitem(app.extensions, "autocrm.scanner", ClamdScanner(url, timeout=5))

    return set_scanner


@pytest.fixture
def desk(factory, client) -> dict[str, Any]:
    team = factory.team()
    customer, agent, admin = factory.customer(), factory.agent(team), factory.admin()
    return {
        "ticket": factory.ticket(customer, team=team),
        "customer": customer,
        "agent": agent,
        "admin": admin,
        "customer_api": ApiClient(client, customer),
        "agent_api": ApiClient(client, agent),
    }


def send(desk: dict[str, Any], ids: list[int]) -> dict[str, Any]:
    ticket = desk["ticket"]
    return ok(
        desk["customer_api"].post(
            f"/api/tickets/{ticket.id}/messages", json={"body": "Files", "attachment_ids": ids}
        ),
        201,
    )


def quarantine_notes(ticket_id: int) -> list[dict[str, Any]]:
    rows = db.session.scalars(
        select(TicketEvent).where(
            TicketEvent.ticket_id == ticket_id, TicketEvent.kind == "attachment.quarantined"
        )
    )
    return [row.data for row in rows]


def test_an_upload_waits_for_its_scan_then_a_clean_one_is_served(desk, use_scanner, clamd_url):
    use_scanner(clamd_url)
    api = desk["customer_api"]
    [item] = uploaded(api, ("printer.log", CLEAN))
    assert item["scan_status"] == "pending"
    waiting = api.get(item["url"])
    assert waiting.status_code == 409
    assert "being scanned" in waiting.get_json()["message"]

    assert scanning.do_scan(item["id"]) == ScanStatus.CLEAN
    served = api.get(item["url"])
    assert served.status_code == 200
    assert served.data == CLEAN
    # The task delivered again changes nothing.
    assert scanning.do_scan(item["id"]) is None


def test_an_infected_file_is_quarantined_with_a_note_in_the_trail(
    desk, use_scanner, clamd_url, client
):
    use_scanner(clamd_url)
    ticket = desk["ticket"]
    clean, infected = uploaded(
        desk["customer_api"], ("printer.log", CLEAN), ("invoice.txt", INFECTED_PAYLOAD)
    )
    send(desk, [clean["id"], infected["id"]])
    assert scanning.do_scan(clean["id"]) == ScanStatus.CLEAN
    assert scanning.do_scan(infected["id"]) == ScanStatus.INFECTED

    for api in (desk["customer_api"], desk["agent_api"]):
        refused = api.get(infected["url"])
        assert refused.status_code == 410
        assert "quarantined" in refused.get_json()["message"]
        assert SIGNATURE in refused.get_json()["message"]
        assert api.get(clean["url"]).data == CLEAN
    [note] = quarantine_notes(ticket.id)
    assert note["attachment_id"] == infected["id"]
    assert note["filename"] == "invoice.txt"
    assert note["signature"].startswith(SIGNATURE)

    web_login(client, desk["agent"])
    assert client.get(infected["page_url"]).status_code == 410
    page = client.get(f"/agent/tickets/{ticket.id}").get_data(as_text=True)
    assert "invoice.txt quarantined: malware found" in page  # the history says it
    assert "Quarantined: malware found" in page  # at the file, in the conversation


def test_a_file_found_infected_before_it_is_sent_is_noted_when_sent(desk, use_scanner, clamd_url):
    use_scanner(clamd_url)
    [infected] = uploaded(desk["customer_api"], ("invoice.txt", INFECTED_PAYLOAD))
    assert scanning.do_scan(infected["id"]) == ScanStatus.INFECTED
    assert desk["customer_api"].get(infected["url"]).status_code == 410
    message = send(desk, [infected["id"]])  # the message and its text still go
    assert [a["scan_status"] for a in message["attachments"]] == ["infected"]
    [note] = quarantine_notes(desk["ticket"].id)
    assert note["attachment_id"] == infected["id"]


def test_a_scan_retries_while_clamd_is_down_then_fails_and_an_admin_rescans(
    desk, use_scanner, clamd_url, client, db_session
):
    use_scanner(f"tcp://127.0.0.1:{free_port()}")  # nothing listens there
    [item] = uploaded(desk["customer_api"], ("printer.log", CLEAN))

    assert scanning.do_scan(item["id"]) == ScanStatus.PENDING
    row = db_session.get_one(Attachment, item["id"])
    assert row.scan_attempts == 1
    assert "Connection refused" in (row.scan_result or "")
    retry_in = row.scan_due_at - utcnow()
    assert timedelta(seconds=25) < retry_in <= scanning.FIRST_RETRY
    assert scanning.do_scan_due() == 0  # not due yet
    db_session.execute(
        update(Attachment)
        .where(Attachment.id == item["id"])
        .values(scan_due_at=utcnow() - timedelta(seconds=1))
    )
    assert scanning.do_scan_due() == 1  # sent again, under a new lease
    assert scanning.do_scan_due() == 0
    assert [scanning.retry_delay(n).total_seconds() for n in (1, 2, 3, 7, 8)] == [
        30,
        60,
        120,
        1800,
        1800,
    ]

    for _ in range(scanning.MAX_ATTEMPTS - 1):
        scanning.do_scan(item["id"])
    db_session.refresh(row)
    assert row.scan_status == ScanStatus.FAILED
    withheld = desk["customer_api"].get(item["url"])
    assert withheld.status_code == 409
    assert "could not be scanned" in withheld.get_json()["message"]

    web_login(client, desk["admin"])
    page = client.get("/admin/storage").get_data(as_text=True)
    assert "Files are scanned for malware by ClamAV" in page
    assert "printer.log" in page
    assert "Could not be scanned" in page
    use_scanner(clamd_url)  # clamd is back
    rescan = client.post(
        "/admin/storage/rescan", data={"csrf_token": csrf_token(client, "/admin/storage")}
    )
    assert rescan.status_code == 302
    assert scanning.do_scan(item["id"]) == ScanStatus.CLEAN
    assert desk["customer_api"].get(item["url"]).data == CLEAN


def test_without_clamd_nothing_is_scanned_and_files_are_served_at_once(
    desk, app, monkeypatch, client
):
    monkeypatch.setitem(app.extensions, "autocrm.scanner", NoScanner())
    [item] = uploaded(desk["customer_api"], ("invoice.txt", INFECTED_PAYLOAD))
    assert item["scan_status"] == "not_scanned"
    assert desk["customer_api"].get(item["url"]).data == INFECTED_PAYLOAD
    assert scanning.do_scan(item["id"]) is None

    send(desk, [item["id"]])
    web_login(client, desk["admin"])
    page = client.get("/admin/storage").get_data(as_text=True)
    assert "Files are not scanned for malware (AUTOCRM_CLAMD_URL not set)" in page
    assert f"#{desk['ticket'].id}" in page  # the ticket's storage use


def test_turning_scanning_off_serves_waiting_files_but_never_quarantined_ones(
    desk, app, monkeypatch, use_scanner, clamd_url
):
    use_scanner(clamd_url)
    waiting, infected = uploaded(
        desk["customer_api"], ("printer.log", CLEAN), ("invoice.txt", INFECTED_PAYLOAD)
    )
    assert scanning.do_scan(infected["id"]) == ScanStatus.INFECTED
    monkeypatch.setitem(app.extensions, "autocrm.scanner", NoScanner())
    assert desk["customer_api"].get(waiting["url"]).data == CLEAN
    assert desk["customer_api"].get(infected["url"]).status_code == 410
    assert scanning.do_scan_due() == 0


def test_the_clamd_url_must_name_a_tcp_port_or_a_unix_socket():
    assert ClamdScanner("unix:///run/clamav/clamd.ctl").address == "/run/clamav/clamd.ctl"
    assert ClamdScanner("tcp://10.0.0.5:3310").address == ("10.0.0.5", 3310)
    for wrong in ("10.0.0.5:3310", "tcp://10.0.0.5", "http://clamd:3310"):
        with pytest.raises(ValueError, match="AUTOCRM_CLAMD_URL"):
            ClamdScanner(wrong)


# -- a real worker ---------------------------------------------------------------------------


@pytest.fixture
def scanning_worker(database_url, redis_url, broker, tmp_path: Path, clamd_url):
    processes.drop_queued_messages(broker)
    worker = processes.start_worker(
        "worker", database_url, redis_url, tmp_path, env={"AUTOCRM_CLAMD_URL": clamd_url}
    )
    try:
        yield worker
    finally:
        worker.stop()
        processes.drop_queued_messages(broker)


def test_a_worker_scans_uploads_after_commit(app, scanning_worker, use_scanner, clamd_url):
    use_scanner(clamd_url)
    with app.app_context(), processes.committed_data():
        desk = processes.staffed_team(agents=1)
        ticket_id = processes.open_ticket(desk)
        api = ApiClient(app.test_client(), db.session.get_one(User, desk.customer_id))
        db.session.rollback()
        clean, infected = uploaded(api, ("printer.log", CLEAN), ("invoice.txt", INFECTED_PAYLOAD))
        ok(
            api.post(
                f"/api/tickets/{ticket_id}/messages",
                json={"body": "Files", "attachment_ids": [clean["id"], infected["id"]]},
            ),
            201,
        )
        ids = [clean["id"], infected["id"]]
        statuses = processes.wait_for(
            lambda: dict(
                db.session.execute(
                    select(Attachment.id, Attachment.scan_status).where(Attachment.id.in_(ids))
                ).all()
            ),
            lambda found: ScanStatus.PENDING not in found.values(),
            timeout=30,
        )
        assert statuses == {clean["id"]: ScanStatus.CLEAN, infected["id"]: ScanStatus.INFECTED}
        assert api.get(clean["url"]).data == CLEAN
        assert api.get(infected["url"]).status_code == 410
        [note] = processes.snapshot(lambda: quarantine_notes(ticket_id))
        assert note["attachment_id"] == infected["id"]


def test_due_scans_are_on_the_beat_schedule():
    import celeryconfig

    entry = celeryconfig.settings["beat_schedule"]["scan-due-attachments"]
    assert entry["task"] == "workers.tasks.scan_due_attachments"
    assert celeryconfig.settings["task_routes"][entry["task"]] == {"queue": "beat"}
