"""The mailbox poller's IMAP client against a real Dovecot (tests/imap_server.py): what an
admin's "test connection" shows, and that mail leaves the folder only when marked processed,
exactly as it arrived and oldest first."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from autocrm.mail.imap import ImapError, ImapSettings, check_connection, session
from tests.imap_server import DovecotServer, free_port, running

Account = tuple[DovecotServer, str, str]


def settings_for(account: Account, security: str = "starttls", **overrides: object) -> ImapSettings:
    server, address, password = account
    port = server.ssl_port if security == "ssl" else server.port
    base = ImapSettings(
        host="localhost", port=port, security=security, username=address, password=password,
        cafile=server.ca_file, timeout=10.0,
    )  # fmt: skip
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def message(n: int) -> bytes:
    """A distinct message with CRLF line ends and an 8-bit body, as real mail has."""
    return (
        f"From: Customer {n} <customer{n}@example.org>\r\n"
        f"To: support@example.test\r\n"
        f"Subject: Question {n}\r\n"
        f"Message-ID: <question-{n}@example.org>\r\n"
        "Content-Type: text/plain; charset=latin-1\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
    ).encode() + f"Caf\xe9 number {n}.\r\n".encode("latin-1")


def flags(account: Account, folder: str = "INBOX") -> list[bytes]:
    server, address, _ = account
    client = server.connect(address)
    try:
        client.select(f'"{folder}"', readonly=True)
        _, data = client.uid("FETCH", "1:*", "(FLAGS)")
        return [line for line in data if isinstance(line, bytes)]
    finally:
        client.logout()


@pytest.mark.parametrize("security", ["none", "starttls", "ssl"])
def test_check_connection_counts_the_messages_waiting(imap_account: Account, security: str) -> None:
    server, address, _ = imap_account
    settings = settings_for(imap_account, security)
    assert check_connection(settings) == "Connected to localhost; 0 messages in INBOX."

    server.append(address, message(1))

    assert check_connection(settings) == "Connected to localhost; 1 message in INBOX."


def test_check_connection_changes_nothing(imap_account: Account) -> None:
    server, address, _ = imap_account
    server.append(address, message(1))

    check_connection(settings_for(imap_account))

    assert server.list_messages(address) == [message(1)]
    assert b"\\Seen" not in b" ".join(flags(imap_account))


def test_a_wrong_password_shows_the_servers_answer(imap_account: Account) -> None:
    with pytest.raises(ImapError) as refused:
        check_connection(settings_for(imap_account, password="not-the-password"))

    assert str(refused.value) == "LOGIN failed: [AUTHENTICATIONFAILED] Authentication failed."
    assert "not-the-password" not in repr(settings_for(imap_account, password="not-the-password"))


def test_an_unknown_folder_is_named(imap_account: Account) -> None:
    with pytest.raises(ImapError) as refused:
        check_connection(settings_for(imap_account, folder="Support Queue"))

    assert str(refused.value).startswith("Opening the folder Support Queue failed: ")
    assert "doesn't exist" in str(refused.value)


def test_a_certificate_nobody_vouches_for_is_refused(imap_account: Account) -> None:
    for security in ("ssl", "starttls"):
        with pytest.raises(ImapError) as refused:
            check_connection(settings_for(imap_account, security, cafile=None))

        assert "certificate not trusted" in str(refused.value)


def test_a_closed_port_is_reported(imap_account: Account) -> None:
    port = free_port()  # nothing listens there

    with pytest.raises(ImapError) as refused:
        check_connection(settings_for(imap_account, port=port))

    assert str(refused.value) == f"Cannot connect to localhost:{port}: connection refused."


def test_a_server_that_never_greets_times_out(imap_account: Account) -> None:
    server = imap_account[0]
    # The TLS port waits for a TLS hello that a plain client never sends.
    settings = settings_for(imap_account, "none", port=server.ssl_port, timeout=0.5)

    with pytest.raises(ImapError) as silent:
        check_connection(settings)

    assert str(silent.value) == f"No answer from localhost:{server.ssl_port} within 0.5 seconds."


def test_an_unknown_security_is_refused(imap_account: Account) -> None:
    with pytest.raises(ImapError, match="Unknown security 'tls'"):
        check_connection(settings_for(imap_account, security="tls"))


def test_fetch_new_gives_the_exact_messages_oldest_first_and_leaves_them_unread(
    imap_account: Account,
) -> None:
    server, address, _ = imap_account
    for n in range(1, 5):
        server.append(address, message(n))

    with session(settings_for(imap_account)) as mailbox:
        first_three = mailbox.fetch_new(limit=3)
        everything = mailbox.fetch_new(limit=10)

    assert [raw for _, raw in first_three] == [message(1), message(2), message(3)]
    assert [raw for _, raw in everything] == [message(n) for n in range(1, 5)]
    uids = [uid for uid, _ in everything]
    assert uids == sorted(uids)
    assert b"\\Seen" not in b" ".join(flags(imap_account))


def test_a_25_mb_message_arrives_whole(imap_account: Account) -> None:
    server, address, _ = imap_account
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n"
    big = message(1).replace(b"\r\n\r\n", b"\r\nX-Size: big\r\n\r\n") + line * (
        25 * 1024 * 1024 // len(line)
    )
    server.append(address, big)

    with session(settings_for(imap_account)) as mailbox:
        [(_, raw)] = mailbox.fetch_new(limit=10)

    assert raw == big


def test_an_empty_folder_gives_nothing(imap_account: Account) -> None:
    with session(settings_for(imap_account, "ssl")) as mailbox:
        assert mailbox.fetch_new(limit=10) == []


def test_processed_messages_move_to_a_folder_created_for_them(imap_account: Account) -> None:
    server, address, _ = imap_account
    for n in range(1, 4):
        server.append(address, message(n))
    assert "Processed" not in server.folders(address)

    with session(settings_for(imap_account)) as mailbox:
        fetched = mailbox.fetch_new(limit=2)
        for uid, _ in fetched:
            mailbox.mark_processed(uid)

    assert server.folders(address) == ["INBOX", "Processed"]
    assert server.list_messages(address, "Processed") == [message(1), message(2)]
    assert server.list_messages(address) == [message(3)]
    with session(settings_for(imap_account)) as mailbox:
        assert [raw for _, raw in mailbox.fetch_new(limit=10)] == [message(3)]


def test_processed_messages_go_to_an_existing_folder_of_the_admins_choice(
    imap_account: Account,
) -> None:
    server, address, _ = imap_account
    server.append(address, message(9), folder="Done by AutoCRM")
    server.append(address, message(1))

    settings = settings_for(imap_account, processed_folder="Done by AutoCRM")
    with session(settings) as mailbox:
        [(uid, _)] = mailbox.fetch_new(limit=10)
        mailbox.mark_processed(uid)

    assert server.list_messages(address, "Done by AutoCRM") == [message(9), message(1)]
    assert server.list_messages(address) == []


def test_folder_names_may_be_in_any_language(imap_account: Account) -> None:
    server, address, _ = imap_account
    # How IMAP spells "Réception" and "Traités & faits" (modified UTF-7, RFC 3501 5.1.3).
    server.append(address, message(1), folder="R&AOk-ception")

    settings = settings_for(imap_account, folder="Réception", processed_folder="Traités & faits")
    assert check_connection(settings) == "Connected to localhost; 1 message in Réception."
    with session(settings) as mailbox:
        [(uid, _)] = mailbox.fetch_new(limit=10)
        mailbox.mark_processed(uid)

    assert server.list_messages(address, "Trait&AOk-s &- faits") == [message(1)]
    assert server.list_messages(address, "R&AOk-ception") == []


def test_without_a_processed_folder_messages_are_deleted(imap_account: Account) -> None:
    server, address, _ = imap_account
    server.append(address, message(1))
    server.append(address, message(2))

    with session(settings_for(imap_account, processed_folder=None)) as mailbox:
        uid, _ = mailbox.fetch_new(limit=1)[0]
        mailbox.mark_processed(uid)
        assert [raw for _, raw in mailbox.fetch_new(limit=10)] == [message(2)]

    assert server.list_messages(address) == [message(2)]
    assert server.folders(address) == ["INBOX"]


def test_mail_arriving_during_a_session_is_fetched_next_time(imap_account: Account) -> None:
    server, address, _ = imap_account
    server.append(address, message(1))

    with session(settings_for(imap_account)) as mailbox:
        [(first_uid, _)] = mailbox.fetch_new(limit=10)
        mailbox.mark_processed(first_uid)
        server.append(address, message(2))

        [(second_uid, raw)] = mailbox.fetch_new(limit=10)

    assert raw == message(2)
    assert second_uid > first_uid


def test_another_folder_is_polled_when_configured(imap_account: Account) -> None:
    server, address, _ = imap_account
    server.append(address, message(1))
    server.append(address, message(2), folder="Support")

    with session(settings_for(imap_account, folder="Support")) as mailbox:
        [(uid, raw)] = mailbox.fetch_new(limit=10)
        mailbox.mark_processed(uid)

    assert raw == message(2)
    assert server.list_messages(address, "Processed") == [message(2)]
    assert server.list_messages(address) == [message(1)]


# A server without MOVE (RFC 6851) or UIDPLUS: processing falls back to COPY, \Deleted and
# EXPUNGE, which every IMAP server has.
OLD_SERVER_CAPABILITIES = "imap_capability = IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE"


@pytest.fixture(scope="module")
def old_server() -> Iterator[DovecotServer]:
    with running({"old@example.test": "old-password"}, OLD_SERVER_CAPABILITIES) as server:
        yield server


def test_a_server_without_move_still_gets_messages_moved(old_server: DovecotServer) -> None:
    account = (old_server, "old@example.test", "old-password")
    for n in range(1, 4):
        old_server.append("old@example.test", message(n))

    with session(settings_for(account)) as mailbox:
        assert "MOVE" not in mailbox._capabilities
        for uid, _ in mailbox.fetch_new(limit=2):
            mailbox.mark_processed(uid)
        assert [raw for _, raw in mailbox.fetch_new(limit=10)] == [message(3)]

    assert old_server.list_messages("old@example.test", "Processed") == [message(1), message(2)]
    assert old_server.list_messages("old@example.test") == [message(3)]
