"""The IMAP client the mailbox poller uses: connect (TLS, STARTTLS or plain), fetch the
messages waiting in a folder, and move (or delete) each one once its ticket change committed.

Why it looks like this: the poller must never lose or duplicate mail, so a message leaves the
folder only when the caller says so (``mark_processed``), fetching never sets ``\\Seen``
(``BODY.PEEK[]``) and everything is addressed by UID, which does not shift when other messages
leave. Whatever goes wrong becomes an ``ImapError`` whose text an admin can act on, with the
server's own answer in it; it is what the console's "test connection" button shows.

Standard library only (``imaplib``) and no application imports: the poller and the console
pass plain settings in.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import re
import socket
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

SECURITY_CHOICES = ("ssl", "starttls", "none")
_FETCH_UID = re.compile(rb"\bUID (\d+)")


@dataclass(frozen=True)
class ImapSettings:
    """Where a mailbox's mail waits and what happens to it once processed."""

    host: str
    port: int
    security: str  # "ssl" | "starttls" | "none"
    username: str
    password: str = field(repr=False)
    folder: str = "INBOX"
    processed_folder: str | None = "Processed"  # None: delete after processing
    timeout: float = 20.0
    cafile: str | None = None  # an extra CA to trust (tests, self-hosted servers)


class ImapError(Exception):
    """What went wrong, readable for an admin, with the server's own answer when it gave one
    (``LOGIN failed: [AUTHENTICATIONFAILED] Authentication failed.``)."""


def check_connection(settings: ImapSettings) -> str:
    """Connect, log in and look at the folder without changing anything; say what was found,
    or raise ``ImapError`` saying why not."""
    with _connected(settings) as client:
        typ, data = client.select(_mailbox(settings.folder), readonly=True)
        _expect_ok(typ, data, f"Opening the folder {settings.folder}")
        count = int(data[0] or 0) if data and isinstance(data[0], bytes) else 0
    noun = "message" if count == 1 else "messages"
    return f"Connected to {settings.host}; {count} {noun} in {settings.folder}."


@contextlib.contextmanager
def session(settings: ImapSettings) -> Iterator[ImapSession]:
    """A logged-in connection with ``settings.folder`` selected for reading and moving."""
    with _connected(settings) as client:
        typ, data = client.select(_mailbox(settings.folder))
        _expect_ok(typ, data, f"Opening the folder {settings.folder}")
        yield ImapSession(client, settings, _capabilities(client))


class ImapSession:
    """The selected folder of one connection: what waits there, and taking it out."""

    def __init__(
        self, client: imaplib.IMAP4, settings: ImapSettings, capabilities: frozenset[str]
    ) -> None:
        self._client = client
        self._settings = settings
        self._capabilities = capabilities
        self._processed_folder_ready = False

    def fetch_new(self, limit: int) -> list[tuple[int, bytes]]:
        """``(UID, raw message)`` of the messages waiting in the folder, oldest first, at most
        ``limit``. Processed messages have left the folder, so everything there is new. Flags
        are left alone: a person looking at the mailbox still sees them unread."""
        uids = self._waiting_uids()[: max(limit, 0)]
        if not uids:
            return []
        typ, data = self._run(
            "Fetching messages", "UID", "FETCH", ",".join(map(str, uids)), "(UID BODY.PEEK[])"
        )
        _expect_ok(typ, data, "Fetching messages")
        fetched = _raw_by_uid(data)
        # A message another client removed meanwhile is simply not there any more.
        return [(uid, fetched[uid]) for uid in uids if uid in fetched]

    def mark_processed(self, uid: int) -> None:
        """Take message ``uid`` out of the folder: into the processed folder (created if
        missing), or deleted when the settings keep no processed folder."""
        target = self._settings.processed_folder
        if target is None:
            self._delete(uid)
            return
        self._ensure_processed_folder(target)
        if "MOVE" in self._capabilities:
            typ, data = self._run(f"Moving to {target}", "UID", "MOVE", str(uid), _mailbox(target))
            _expect_ok(typ, data, f"Moving message {uid} to {target}")
            return
        typ, data = self._run(f"Copying to {target}", "UID", "COPY", str(uid), _mailbox(target))
        _expect_ok(typ, data, f"Copying message {uid} to {target}")
        self._delete(uid)

    def _waiting_uids(self) -> list[int]:
        # NOOP first: a server reports mail that arrived since the last command on NOOP, not
        # necessarily on SEARCH (Dovecot does not), and a session may live across polls.
        typ, data = self._run("Checking for new mail", "NOOP")
        _expect_ok(typ, data, "Checking for new mail")
        for name in ("EXISTS", "RECENT", "EXPUNGE"):
            self._client.response(name)  # read, so they do not pile up in a long session
        # UNDELETED: a message copied and flagged by a run that died before EXPUNGE is done.
        typ, data = self._run("Searching the folder", "UID", "SEARCH", "UNDELETED")
        _expect_ok(typ, data, "Searching the folder")
        return sorted(int(n) for line in data if line for n in line.split())

    def _delete(self, uid: int) -> None:
        typ, data = self._run("Deleting", "UID", "STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)")
        _expect_ok(typ, data, f"Deleting message {uid}")
        if "UIDPLUS" in self._capabilities:
            # Only this message: another client's \Deleted flags are not ours to act on.
            typ, data = self._run("Expunging", "UID", "EXPUNGE", str(uid))
        else:
            typ, data = self._run("Expunging", "EXPUNGE")
        _expect_ok(typ, data, f"Expunging message {uid}")

    def _ensure_processed_folder(self, name: str) -> None:
        if self._processed_folder_ready:
            return
        typ, data = self._run("Listing folders", "LIST", '""', _mailbox(name))
        _expect_ok(typ, data, "Listing folders")
        if not any(data):
            typ, data = self._run(f"Creating {name}", "CREATE", _mailbox(name))
            _expect_ok(typ, data, f"Creating the folder {name}")
            # Subscribed, so that mail clients show it; a refusal changes nothing for us.
            with contextlib.suppress(imaplib.IMAP4.error):
                self._client.subscribe(_mailbox(name))
        self._processed_folder_ready = True

    def _run(self, what: str, command: str, *args: str) -> tuple[str, list[Any]]:
        """One IMAP command; a dropped connection or protocol error becomes an ImapError."""
        try:
            if command == "UID":
                return self._client.uid(*args)
            if command == "LIST":
                return self._client.list(*args)
            method = getattr(self._client, command.lower())
            typ, data = method(*args)
            return typ, data
        except (imaplib.IMAP4.error, OSError) as exc:
            raise ImapError(f"{what} failed: {_text(exc)}") from exc


@contextlib.contextmanager
def _connected(settings: ImapSettings) -> Iterator[imaplib.IMAP4]:
    """A logged-in client, logged out on exit."""
    client = _open(settings)
    try:
        try:
            client.login(_quoted(settings.username), settings.password)
        except imaplib.IMAP4.error as exc:
            raise ImapError(f"LOGIN failed: {_text(exc)}") from exc
        yield client
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            client.logout()


def _open(settings: ImapSettings) -> imaplib.IMAP4:
    """The connection, over TLS unless the settings say otherwise, certificate verified."""
    if settings.security not in SECURITY_CHOICES:
        raise ImapError(f"Unknown security {settings.security!r}: use ssl, starttls or none.")
    where = f"{settings.host}:{settings.port}"
    try:
        if settings.security == "ssl":
            return imaplib.IMAP4_SSL(
                settings.host, settings.port, ssl_context=_tls(settings), timeout=settings.timeout
            )
        client = imaplib.IMAP4(settings.host, settings.port, timeout=settings.timeout)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise ImapError(_connection_problem(where, settings.timeout, exc)) from exc
    if settings.security == "starttls":
        try:
            _start_tls(client, settings, where)
        except BaseException:
            with contextlib.suppress(OSError):
                client.shutdown()
            raise
    return client


def _start_tls(client: imaplib.IMAP4, settings: ImapSettings, where: str) -> None:
    if "STARTTLS" not in client.capabilities:
        raise ImapError(f"{where} does not offer STARTTLS; choose SSL or no security.")
    try:
        client.starttls(ssl_context=_tls(settings))
    except (OSError, imaplib.IMAP4.error) as exc:
        raise ImapError(_connection_problem(where, settings.timeout, exc)) from exc


def _tls(settings: ImapSettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.cafile:
        context.load_verify_locations(cafile=settings.cafile)
    return context


def _connection_problem(where: str, timeout: float, exc: BaseException) -> str:
    """Why connecting failed, in words an admin can act on."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS with {where} failed: certificate not trusted ({exc.verify_message})."
    if isinstance(exc, ssl.SSLError):
        return f"TLS with {where} failed: {exc.reason or exc}."
    if isinstance(exc, ConnectionRefusedError):
        return f"Cannot connect to {where}: connection refused."
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"No answer from {where} within {timeout:g} seconds."
    if isinstance(exc, socket.gaierror):
        return f"Cannot find the host of {where}: {exc.strerror}."
    if isinstance(exc, imaplib.IMAP4.error):
        return f"{where} did not answer as an IMAP server: {_text(exc)}"
    return f"Cannot connect to {where}: {exc.strerror or exc}."  # type: ignore[attr-defined]


def _capabilities(client: imaplib.IMAP4) -> frozenset[str]:
    """What the server supports once logged in (often more than it announced before)."""
    typ, data = client.capability()
    if typ != "OK" or not data or not isinstance(data[0], bytes):
        return frozenset(client.capabilities)
    return frozenset(data[0].decode("ascii", "replace").upper().split())


def _raw_by_uid(data: Sequence[object]) -> dict[int, bytes]:
    """``{uid: raw message}`` from a FETCH answer; lines without a body (flag updates) skipped."""
    found = {}
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            match = _FETCH_UID.search(item[0])
            if match:
                found[int(match.group(1))] = item[1]
    return found


def _expect_ok(typ: str, data: Sequence[object], what: str) -> None:
    if typ != "OK":
        raise ImapError(f"{what} failed: {_answer(data)}")


def _answer(data: Sequence[object]) -> str:
    """The server's text from a command's response data."""
    parts = [p.decode("utf-8", "replace") if isinstance(p, bytes) else str(p) for p in data if p]
    return " ".join(parts) or "no reason given"


def _text(exc: BaseException) -> str:
    """imaplib puts the server's answer in the exception, sometimes as bytes."""
    if exc.args and isinstance(exc.args[0], bytes):
        return exc.args[0].decode("utf-8", "replace")
    return str(exc)


def _quoted(name: str) -> str:
    """An IMAP quoted string, so names with spaces or quotes survive."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _mailbox(name: str) -> str:
    """A folder name as IMAP spells it: quoted, non-ASCII in modified UTF-7 (RFC 3501
    5.1.3), so an admin can name the folder "Traités" as their mail client shows it."""
    return _quoted(_modified_utf7(name))


def _modified_utf7(name: str) -> str:
    out: list[str] = []
    pending: list[str] = []
    for char in [*name, ""]:
        if char and not 0x20 <= ord(char) <= 0x7E:
            pending.append(char)
            continue
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).decode("ascii")
            out.append("&" + encoded.rstrip("=").replace("/", ",") + "-")
            pending.clear()
        out.append("&-" if char == "&" else char)
    return "".join(out)
